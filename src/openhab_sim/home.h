// The home openhab-sim serves: items with their states, groups with their functions, things
// and links (docs/openhab-sim.md#home-file), and the rules openHAB applies when a state or a
// command arrives (shared/reference/openhab.md §1, §3, §5): the parse check against the item
// type, autoupdate, group forwarding and group state functions. Every change returns the
// events openHAB would publish, in openHAB's order. Not thread-safe: the server serialises.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace iothub::sim {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// The openHAB release the sim imitates; it decides which events and fields exist.
struct OpenHabVersion {
  int major = 4;
  int minor = 3;
  int patch = 0;

  static Result<OpenHabVersion> Parse(std::string_view text);  // "4.3.0", "3.2", "5.0.1"
  std::string ToString() const;
  bool AtLeast(int want_major, int want_minor) const {
    return major > want_major || (major == want_major && minor >= want_minor);
  }
  bool state_updated_events() const { return AtLeast(4, 0); }  // ItemStateUpdatedEvent
  bool unit_symbol() const { return AtLeast(4, 0); }           // EnrichedItemDTO.unitSymbol
  bool last_state_fields() const { return AtLeast(5, 0); }     // lastState, lastStateUpdate..
  bool regex_filters() const { return AtLeast(3, 3); }         // else prefix filters
  int alive_interval_s() const { return AtLeast(3, 4) ? 10 : AtLeast(3, 3) ? 120 : 0; }
};

// One event as openHAB's event bus publishes it: `payload` is the JSON text that the SSE
// stream then encodes a second time.
struct SimEvent {
  std::string topic;
  std::string type;
  std::string payload;
};

struct SimItem {
  std::string name;
  std::string type;  // "Switch", "Number:Temperature", "Group"
  std::string label;
  std::string category;
  std::vector<std::string> tags;
  std::vector<std::string> groups;
  Json metadata = Json::object();  // namespace -> {"value":..,"config":{..}}
  Json state_description;          // null or openHAB's StateDescription object
  Json command_description;        // null or openHAB's CommandDescription object
  std::string unit;                // Number:<Dimension>: the item's unit (unitSymbol)
  bool editable = true;            // false: defined in a file, as in `.items`
  // Groups.
  std::string group_type;  // the base item type, "" for a plain group
  std::string function;    // "OR", "AND", "NOR", "NAND", "AVG", "SUM", "MIN", "MAX", "COUNT",
                           // "EQUALITY" (also a base type without a function); "" when none
  std::vector<std::string> function_params;
  // COUNT's pattern, compiled once; shared by copies of the item (it is immutable).
  std::shared_ptr<const std::regex> count_pattern;
  // State.
  std::string state = "NULL";
  std::string last_state;  // the state before the last change, "" when none
  std::int64_t last_update_ms = 0;
  std::int64_t last_change_ms = 0;

  bool is_group() const { return type == "Group"; }
};

// Reads one item of a home file, or an item a test adds; `where` names it in errors.
Result<SimItem> ParseSimItem(const Json& object, const std::string& where);

// The query options of GET /rest/items that shape each item (§1).
struct ItemView {
  std::string base_url;  // "http://host:port", for `link`
  // The metadata namespaces to include (MetadataSelectorMatcher's result); nullopt: all.
  std::optional<std::set<std::string>> namespaces;
  bool recursive = false;           // groups include their members in full
  std::vector<std::string> fields;  // empty: all fields
};

class Home {
 public:
  // A home file (docs/openhab-sim.md#home-file). Errors name the entry and the field.
  static Result<Home> Parse(const Json& document, OpenHabVersion version);
  static Result<Home> Load(const std::string& path, OpenHabVersion version);

  const OpenHabVersion& version() const { return version_; }
  const std::vector<SimItem>& items() const { return items_; }
  const SimItem* Find(std::string_view name) const;
  const Json& things() const { return things_; }
  const Json& links() const { return links_; }
  const Json& series() const { return series_; }  // the home's numeric series, as written
  // Every metadata namespace some item has.
  std::set<std::string> Namespaces() const;

  // GET /rest/items[/{name}] entries, in openHAB's field order (EnrichedItemDTO).
  OrderedJson ItemJson(const SimItem& item, const ItemView& view) const;
  // GET /rest/things: things with their linked items and current status.
  OrderedJson ThingsJson() const;

  // A state update from a binding or `PUT /rest/items/{name}/state` (§1): error code
  // "not_found" or "bad_state". Publishes ItemStateEvent, then what the item and its groups
  // announce (ItemStateUpdatedEvent, ItemStateChangedEvent, group events).
  Result<std::vector<SimEvent>> Update(std::string_view name, std::string_view text,
                                       std::int64_t now_ms);
  // A command (`POST /rest/items/{name}`): error code "not_found" or "bad_command". Publishes
  // ItemCommandEvent; groups forward the command to their members; autoupdate (unless the
  // item's `autoupdate` metadata is "false") turns commands that are states into updates.
  Result<std::vector<SimEvent>> Command(std::string_view name, std::string_view text,
                                        std::int64_t now_ms);
  // Adds an item, or replaces the item of the same name: ItemAddedEvent / ItemUpdatedEvent.
  // Error code "bad_item" for unknown groups or a membership cycle.
  Result<std::vector<SimEvent>> Put(SimItem item);
  // Removes an item: ItemRemovedEvent. Error code "not_found".
  Result<std::vector<SimEvent>> Remove(std::string_view name);
  // Sets a thing's status: ThingStatusInfoEvent and, when it changed,
  // ThingStatusInfoChangedEvent. Error codes "not_found", "bad_status".
  Result<std::vector<SimEvent>> SetThingStatus(std::string_view uid, const Json& status_info);

 private:
  // AutoUpdateManager's recommendation for a command that is also a state.
  enum class AutoUpdate { kRequired, kRecommended, kOptimistic, kDont, kRevert };

  SimItem* FindMutable(std::string_view name);
  AutoUpdate AutoUpdateFor(const SimItem& item) const;
  // The group that would contain itself through `groups`, if any ("" when none).
  std::string FindCycle() const;
  // Sets the state and appends the events of the item and of the groups it is in.
  void Apply(SimItem& item, const std::string& state, std::int64_t now_ms,
             std::vector<SimEvent>& events);
  void RecalculateGroups(const SimItem& member, std::int64_t now_ms, std::vector<SimEvent>& events);
  std::vector<const SimItem*> Members(const SimItem& group) const;
  // The state a group's function gives its members' current states.
  std::string GroupState(const SimItem& group) const;
  void AddCommandEvents(SimItem& item, const std::string& command, std::int64_t now_ms,
                        std::set<std::string>& reached, std::vector<SimEvent>& events);

  OpenHabVersion version_;
  std::vector<SimItem> items_;
  Json things_ = Json::array();
  Json links_ = Json::array();
  Json series_ = Json::array();
};

// COUNT matches states up to this length; libstdc++'s regex recurses once per character.
inline constexpr std::size_t kMaxCountedState = 1024;

// ItemDTO (the payload of ItemAddedEvent and friends).
OrderedJson ItemDto(const SimItem& item);

}  // namespace iothub::sim
