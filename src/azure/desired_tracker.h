// Keeps a device's view of its desired properties exact across pushes and reconnects
// (shared/reference/azure-iothub.md §3 "Twin"). The hub pushes desired patches only while the
// device is connected, each with its "$version"; after a reconnect the device must GET the
// whole twin. Pushes and GETs race, so patches can arrive late, twice, or after a newer full
// document. The tracker applies changes in version order exactly once, and says when a gap
// means a full GET is needed. Not thread-safe; owned by one session.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace iothub::azure {

using Json = nlohmann::json;

class DesiredTracker {
 public:
  // A change to act on: a merge patch of desired properties (without "$version"/"$metadata")
  // and the version it brings the device to.
  struct Change {
    Json patch;
    std::int64_t version = 0;
  };

  // The desired section of a full twin GET (with "$version"). Returns what changed since the
  // last known state, or nothing if the document is not newer than what was applied.
  std::optional<Change> OnFullDocument(const Json& desired);
  // A pushed patch (with "$version"). Returns the changes that are now in order (possibly
  // several, when it fills a gap), oldest first; none for a stale or duplicate patch.
  std::vector<Change> OnPatch(const Json& patch);
  // Call on every (re)connect: pushes missed while away can only come from a full GET.
  void OnReconnect() { needs_full_get_ = true; }

  // True before the first full document, after a reconnect, and while a gap is open.
  bool NeedsFullGet() const { return needs_full_get_; }
  std::int64_t version() const { return version_; }
  const Json& desired() const { return desired_; }

 private:
  std::vector<Change> DrainBuffered();

  Json desired_ = Json::object();
  std::int64_t version_ = 0;  // 0: no baseline yet
  bool needs_full_get_ = true;
  std::vector<Change> buffered_;  // patches ahead of version_ + 1, sorted by version
};

}  // namespace iothub::azure
