// The effective per-item settings (docs/configuration.md, "Per-item behaviour"): the defaults,
// then every `[[item]]` rule whose `match` selects the item, in file order (a later rule wins
// for each field it sets), then the item's `azureiothub` metadata in openHAB, which wins over
// the file:
//   Number:Power Meter { azureiothub="telemetry"[priority="high", deadband="10 W",
//                                                min_interval="10s", heartbeat="1h"] }
// The metadata value is the send mode (empty: keep the file's); its config keys set the other
// fields. Bad metadata never stops anything: the bad key is reported and the file's setting
// kept.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "connector/config.h"
#include "connector/item_selection.h"
#include "openhab/item.h"

namespace iothub::connector {

struct ItemPolicy {
  Priority priority = Priority::kNormal;
  std::optional<Deadband> deadband;  // none: every change counts
  std::int64_t min_interval_ms = 0;  // 0: no minimum
  std::int64_t heartbeat_ms = 0;     // 0: no heartbeat
  // Both by default: telemetry keeps the history, the twin mirrors the current state.
  SendAs send = SendAs::kBoth;
};

// Metadata config keys that later issues read (`command`: commands allowed, `device`: the
// item's device identity): accepted with any value and ignored here.
inline constexpr std::string_view kReservedMetadataKeys[] = {"command", "device"};

// Applies an item's `azureiothub` metadata onto `policy` (what the file gave). The value, if
// not empty, is the send mode (telemetry | twin | both | none, ASCII case ignored). Config
// keys: priority (high | normal | low), deadband (text as ParseDeadband, or a JSON number: an
// amount without unit), min_interval and heartbeat (text as ParseDurationMs, or a JSON
// number of seconds). For every unknown key and every bad value one Error (code
// "bad_metadata") naming the item, the key, what was expected and what was given is appended
// to `problems`, and that field keeps the file's setting.
void ApplyMetadata(std::string_view item_name, const openhab::Metadata& metadata,
                   ItemPolicy& policy, std::vector<Error>& problems);

// The resolved settings of one item, with what was wrong in its metadata.
struct ResolvedPolicy {
  ItemPolicy policy;
  std::vector<Error> problems;
};

// The `[[item]]` rules, their patterns compiled once. Immutable once made: thread-safe for
// concurrent const use, each call with its own GroupMembership.
class PolicyResolver {
 public:
  // Errors (code "bad_pattern") name every rule whose `match` is no pattern.
  static Result<PolicyResolver> Create(std::vector<ItemRule> rules);

  // Defaults, then each matching rule in order, then `item.azure`. `groups` is over the map
  // `item` is in (for `@Group` matches).
  ResolvedPolicy Resolve(const openhab::Item& item, const GroupMembership& groups) const;

 private:
  PolicyResolver(std::vector<ItemRule> rules, std::vector<ItemPattern> patterns)
      : rules_(std::move(rules)), patterns_(std::move(patterns)) {}

  std::vector<ItemRule> rules_;
  std::vector<ItemPattern> patterns_;  // patterns_[i] is rules_[i].match
};

}  // namespace iothub::connector
