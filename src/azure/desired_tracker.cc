#include "azure/desired_tracker.h"

#include <algorithm>

#include "common/json_merge_patch.h"

namespace iothub::azure {
namespace {

// The properties proper: without the hub's "$version" and "$metadata".
Json Properties(const Json& section) {
  Json out = section.is_object() ? section : Json::object();
  out.erase("$version");
  out.erase("$metadata");
  return out;
}

std::optional<std::int64_t> VersionOf(const Json& section) {
  if (!section.is_object() || !section.contains("$version") ||
      !section["$version"].is_number_integer()) {
    return std::nullopt;
  }
  return section["$version"].get<std::int64_t>();
}

}  // namespace

std::optional<DesiredTracker::Change> DesiredTracker::OnFullDocument(const Json& desired) {
  const auto version = VersionOf(desired);
  if (!version || *version <= version_) return std::nullopt;  // not newer than what we hold
  Json next = Properties(desired);
  Change change{MergeDiff(desired_, next), *version};
  desired_ = std::move(next);
  version_ = *version;
  needs_full_get_ = false;
  std::erase_if(buffered_, [&](const Change& c) { return c.version <= version_; });
  // Buffered patches beyond the document are applied by the next OnPatch/drain; report the
  // document's change now and fold in whatever is contiguous.
  for (Change& more : DrainBuffered()) {
    ComposeMergePatch(change.patch, more.patch);
    change.version = more.version;
  }
  return change;
}

std::vector<DesiredTracker::Change> DesiredTracker::OnPatch(const Json& patch) {
  const auto version = VersionOf(patch);
  if (!version || *version <= version_) return {};  // stale or duplicate
  const bool known = std::any_of(buffered_.begin(), buffered_.end(),
                                 [&](const Change& c) { return c.version == *version; });
  if (!known) {
    buffered_.push_back({Properties(patch), *version});
    std::sort(buffered_.begin(), buffered_.end(),
              [](const Change& a, const Change& b) { return a.version < b.version; });
  }
  if (version_ == 0) return {};  // no baseline yet: the first full GET decides
  std::vector<Change> ready = DrainBuffered();
  if (!buffered_.empty()) needs_full_get_ = true;  // a version is missing before these
  return ready;
}

std::vector<DesiredTracker::Change> DesiredTracker::DrainBuffered() {
  std::vector<Change> ready;
  while (!buffered_.empty() && buffered_.front().version == version_ + 1) {
    Change next = std::move(buffered_.front());
    buffered_.erase(buffered_.begin());
    ApplyMergePatch(desired_, next.patch);
    version_ = next.version;
    ready.push_back(std::move(next));
  }
  // Versions are consecutive: applying version_ + 1 proves nothing before it was missed.
  if (!ready.empty() && buffered_.empty()) needs_full_get_ = false;
  return ready;
}

}  // namespace iothub::azure
