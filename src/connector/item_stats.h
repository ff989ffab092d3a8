// What the connector knows of each replicated item's journey, for metrics and the status
// (issue 10: "per-item staleness and merged count"): filled by the replicator (accepted,
// suppressed) and the dispatcher (delivered), read by the status snapshot. Plain data; loop
// thread only, like its writers.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace iothub::connector {

struct ItemStats {
  std::string type;
  std::int64_t last_change_ms = 0;    // openHAB's time of the newest change seen
  std::int64_t last_accepted_ms = 0;  // wall time the newest entry was accepted
  // Wall time since which the item's newest accepted state waits undelivered; 0 when the hub
  // has the newest state.
  std::int64_t pending_since_ms = 0;
  std::int64_t last_delivered_ms = 0;
  std::int64_t suppressed = 0;  // changes the deadband or a duplicate filtered out
};

using ItemBook = std::map<std::string, ItemStats, std::less<>>;

}  // namespace iothub::connector
