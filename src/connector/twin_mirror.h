// Reported properties that mirror the home (issue 10 "Twin"): each replicated item's current
// state, each thing's status (with an admin token) and the connector's own facts, as
//   {"items":{"Kitchen_Temp":{"value":21.5,"unit":"°C","type":"Number:Temperature",
//             "time":"2026-12-02T10:00:00.000Z"}},
//    "things":{"zwave:device:1:node3":{"status":"ONLINE","detail":"NONE"}},
//    "connector":{"version":"0.1.0","started":"...","budget":{...}}}
// Changes are coalesced (latest state wins) into one patch at a time, sent when the budget's
// main pool allows and at most every `min_interval` (longer when the budget is tight: the twin
// takes about a tenth of it). A patch waiting for the pace claims its chunks (Budget::Claim),
// so that telemetry does not take every chunk as the pace frees it. The
// reported document stays within IoT Hub's 32 KB: items that would take it past are left out,
// named in the log once and counted. A patch the session gives up on is retried from the
// mirror's own state (which the replicator rebuilds from openHAB after a restart). Without a
// twin (basic tiers) it does nothing. Not thread-safe: loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "azure/device_session.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "common/liveness.h"
#include "connector/budget.h"
#include "connector/entry.h"
#include "connector/log.h"

namespace iothub::connector {

// The most of a tight main pool the patches take: after a patch of n chunks the mirror waits
// until the pace has allowed 10 n more.
inline constexpr double kTwinShare = 1.0 / 11.0;

struct TwinMirrorOptions {
  bool enabled = true;
  std::int64_t min_interval_ms = 1'000;            // between patches, at the least
  std::size_t max_bytes = std::size_t{32} * 1024;  // IoT Hub's limit for reported properties
  std::size_t headroom_bytes =
      std::size_t{2} * 1024;  // kept for $metadata-free growth and the facts
  std::int64_t retry_ms = 5'000;
};

struct TwinCounters {
  std::int64_t patches = 0;
  std::int64_t failed = 0;
  std::int64_t billed_chunks = 0;
  std::int64_t reported_bytes = 0;  // the mirrored document's size
  std::int64_t left_out = 0;        // items not mirrored for the 32 KB limit
  std::int64_t last_patch_ms = 0;   // wall clock of the last acknowledged patch; 0: none yet
};

class TwinMirror {
 public:
  TwinMirror(EventLoop& loop, const Clock& wall, Budget& budget, Log& log,
             TwinMirrorOptions options);
  ~TwinMirror();
  TwinMirror(const TwinMirror&) = delete;
  TwinMirror& operator=(const TwinMirror&) = delete;

  void Attach(azure::DeviceSession* session);
  // The session is connected (or not): patches wait for a connection.
  void Connected(bool connected);

  void SetItem(const Entry& state);
  void RemoveItem(const std::string& name);
  void SetThing(const std::string& uid, const Json& status);
  void SetFacts(Json facts);  // the "connector" member

  const TwinCounters& counters() const { return counters_; }
  const std::set<std::string>& left_out() const { return left_out_; }
  bool enabled() const { return options_.enabled; }

 private:
  void Schedule(std::int64_t delay_ms);
  void Flush();
  std::int64_t IntervalMs() const;

  EventLoop& loop_;
  const Clock& wall_;
  Budget& budget_;
  Log& log_;
  TwinMirrorOptions options_;
  azure::DeviceSession* session_ = nullptr;
  bool connected_ = false;
  bool in_flight_ = false;
  std::int64_t last_patch_ms_ = -1;  // loop time
  std::int64_t last_patch_chunks_ = 1;
  EventLoop::TimerId timer_ = 0;

  // What the hub should hold: "items.X" as JSON text ("null": delete; text, because a parsed
  // value of a few members took four times the memory), and "things.X".
  std::map<std::string, std::string> items_;
  std::map<std::string, Json> things_;
  std::map<std::string, std::size_t> sizes_;  // serialised size per "things.X"
  std::size_t total_bytes_ = 0;
  Json facts_;
  std::set<std::string> dirty_items_, dirty_things_;
  bool dirty_facts_ = false;
  std::set<std::string> left_out_;
  TwinCounters counters_;
  Liveness liveness_;
};

}  // namespace iothub::connector
