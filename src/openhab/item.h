// openHAB items and server facts as the REST API describes them
// (shared/reference/openhab.md §1): `GET /rest/items` entries and `GET /rest/`. Parsing is
// tolerant of what real installations send (missing labels, null fields, unknown members,
// versions 3.x to 5.x) and strict about what the connector relies on (a valid name and a
// type). Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "openhab/topic_filter.h"

namespace iothub::openhab {

using Json = nlohmann::json;

// The metadata namespace that configures the connector per item.
inline constexpr std::string_view kMetadataNamespace = "azureiothub";

struct Metadata {
  std::string value;
  Json config = Json::object();
};

struct Item {
  std::string name;
  std::string type;  // "Switch", "Number:Temperature", "Group", ...
  std::string label;
  std::string category;
  std::vector<std::string> tags;
  std::vector<std::string> groups;  // groupNames
  std::string state;                // the raw state text, "NULL" when never set
  std::string transformed_state;    // only when openHAB sends one
  std::string unit_symbol;          // 4.0+
  bool read_only = false;           // stateDescription.readOnly
  std::string pattern;              // stateDescription.pattern
  std::optional<Metadata> azure;    // metadata.azureiothub, when present
  Json metadata;                    // the namespaces asked for, as sent; null when none
  bool editable = false;
  // Groups only.
  std::string group_type;  // the base item type, "" for a plain group
  std::string function;    // "OR", "AVG", ... "" when none
  std::vector<std::string> function_params;
  std::vector<std::string> members;  // member names (when the server sends members)
  // 5.0+ (epoch ms), 0 when absent.
  std::int64_t last_state_update_ms = 0;
  std::int64_t last_state_change_ms = 0;

  bool is_group() const { return type == "Group" || type.starts_with("Group:"); }
  // The type its state and commands are typed by: a typed group's base type (`Group:Switch:OR`
  // → Switch), else its own type (a plain `Group` stays `Group`).
  std::string_view base_type() const {
    if (is_group() && !group_type.empty()) return group_type;
    std::string_view t = type;
    if (t.starts_with("Group:")) t.remove_prefix(6);
    return t;
  }
};

// One item object. Errors (code "bad_item") say what was wrong and with which item.
Result<Item> ParseItem(const Json& object);

struct ItemList {
  std::vector<Item> items;
  std::vector<Error> skipped;  // entries that could not be understood, with reasons
};
// A `GET /rest/items` body. Fails only when the body is not a JSON array.
Result<ItemList> ParseItems(std::string_view body);

struct ServerInfo {
  std::string api_version;      // "version", e.g. "8"
  std::string runtime_version;  // runtimeInfo.version, e.g. "4.3.0" ("" when absent: 2.x)
  int major = 0;
  int minor = 0;
  // 3.3+ regex filters; older prefix filters.
  FilterSemantics filter_semantics = FilterSemantics::kRegex;
  // Keep-alive events the server sends: 10 s from 3.4, 120 s in 3.3, none before (0).
  int alive_interval_s = 10;
};
// A `GET /rest/` body.
Result<ServerInfo> ParseServerInfo(std::string_view body);

}  // namespace iothub::openhab
