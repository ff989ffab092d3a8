#include "openhab_sim/home.h"

#include <fmt/format.h>
#include <strings.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

#include "common/clock.h"
#include "common/json_depth.h"
#include "openhab/event.h"
#include "openhab/state.h"

namespace iothub::sim {

namespace oh = iothub::openhab;

namespace {

Error Bad(const std::string& where, const std::string& what) {
  return MakeError("bad_home", where + ": " + what);
}

// The units openHAB's SI system gives a dimension when the item names none (the common ones).
std::string DefaultUnit(std::string_view type) {
  static const std::map<std::string_view, std::string_view> kUnits = {
      {"Number:Temperature", "°C"},    {"Number:Power", "W"},
      {"Number:Energy", "kWh"},        {"Number:Dimensionless", "%"},
      {"Number:Pressure", "hPa"},      {"Number:Illuminance", "lx"},
      {"Number:Speed", "km/h"},        {"Number:ElectricPotential", "V"},
      {"Number:ElectricCurrent", "A"}, {"Number:Volume", "m³"},
      {"Number:Length", "m"},          {"Number:Time", "s"},
  };
  const auto it = kUnits.find(type);
  return it == kUnits.end() ? std::string() : std::string(it->second);
}

bool KnownType(std::string_view type) {
  static const std::set<std::string_view> kTypes = {
      "Switch", "Dimmer",   "Rollershutter", "Color", "Number", "Contact", "DateTime",
      "String", "Location", "Player",        "Image", "Call",   "Group"};
  return kTypes.contains(type) || type.starts_with("Number:");
}

// The type the state codec reads a state with: a group by its base type.
std::string CodecType(const SimItem& item) {
  if (!item.is_group()) return item.type;
  return item.group_type.empty() ? "Group" : "Group:" + item.group_type;
}

std::string BaseType(const SimItem& item) { return item.is_group() ? item.group_type : item.type; }

std::string TypeNameOf(const SimItem& item, const std::string& text) {
  return std::string(oh::TypeName(oh::ParseStateTolerant(CodecType(item), text).kind));
}

// A BigDecimal-like rendering: no exponent, no trailing zeros.
std::string FormatNumber(double value) {
  if (std::fabs(value) < 1e-12) return "0";
  std::string text = fmt::format("{:.10f}", value);
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text;
}

std::vector<std::string> StringList(const Json& value) {
  std::vector<std::string> out;
  if (!value.is_array()) return out;
  for (const auto& entry : value) {
    if (entry.is_string()) out.push_back(entry.get<std::string>());
  }
  return out;
}

// JSON text that never throws: bytes that are not UTF-8 become U+FFFD, as Java's decoding of
// a request body would make them.
std::string Text(const OrderedJson& value) {
  return value.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

OrderedJson ToOrdered(const Json& value) {
  return OrderedJson::parse(value.dump(-1, ' ', false, Json::error_handler_t::replace));
}

std::string StateText(const oh::State& state) {
  if (state.kind == oh::StateKind::kNull) return "NULL";
  if (state.kind == oh::StateKind::kUndef) return "UNDEF";
  return oh::ToCommandText(state);
}

}  // namespace

Result<OpenHabVersion> OpenHabVersion::Parse(std::string_view text) {
  OpenHabVersion v{0, 0, 0};
  int* parts[] = {&v.major, &v.minor, &v.patch};
  std::size_t index = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  while (p < end && index < 3) {
    const auto [next, ec] = std::from_chars(p, end, *parts[index]);
    if (ec != std::errc() || *parts[index] < 0) break;
    ++index;
    p = next;
    if (p < end && *p == '.')
      ++p;
    else
      break;
  }
  if (index < 2 || p != end || v.major < 2 || v.major > 9) {
    return MakeError("bad_version",
                     fmt::format("'{}' is no openHAB version (expected e.g. 4.3.0)", text));
  }
  return v;
}

std::string OpenHabVersion::ToString() const {
  return fmt::format("{}.{}.{}", major, minor, patch);
}

Result<SimItem> ParseSimItem(const Json& object, const std::string& where) {
  if (!object.is_object()) return Bad(where, "an item must be a JSON object");
  SimItem item;
  const auto text = [&](const char* key, std::string& out, bool required) -> Status {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) {
      if (required) return Bad(where, fmt::format("'{}' is missing", key));
      return Ok{};
    }
    if (!it->is_string()) return Bad(where, fmt::format("'{}' must be a string", key));
    out = it->get<std::string>();
    return Ok{};
  };
  for (const auto& [key, out, required] :
       {std::tuple<const char*, std::string*, bool>{"name", &item.name, true},
        {"type", &item.type, true},
        {"label", &item.label, false},
        {"category", &item.category, false},
        {"unit", &item.unit, false},
        {"groupType", &item.group_type, false}}) {
    if (auto status = text(key, *out, required); !status) return status.error();
  }
  if (!oh::IsItemName(item.name)) {
    return Bad(where, fmt::format("'{}' is no item name ([a-zA-Z_][a-zA-Z0-9_]*)", item.name));
  }
  const std::string at = where + " (" + item.name + ")";
  if (!KnownType(item.type)) {
    return Bad(at, fmt::format("unknown type '{}' (expected Switch, Dimmer, Rollershutter, Color, "
                               "Number[:Dimension], Contact, DateTime, String, Location, Player, "
                               "Image, Call or Group)",
                               item.type));
  }
  if (!item.group_type.empty() &&
      (!item.is_group() || !KnownType(item.group_type) || item.group_type == "Group")) {
    return Bad(at, "'groupType' must be an item type other than Group, and only on a Group");
  }
  for (const char* key : {"tags", "groups", "groupNames"}) {
    const auto it = object.find(key);
    if (it == object.end()) continue;
    if (!it->is_array() ||
        std::any_of(it->begin(), it->end(), [](const Json& e) { return !e.is_string(); })) {
      return Bad(at, fmt::format("'{}' must be an array of strings", key));
    }
    auto& out = std::string_view(key) == "tags" ? item.tags : item.groups;
    for (const auto& entry : *it) out.push_back(entry.get<std::string>());
  }
  for (const auto& group : item.groups) {
    if (!oh::IsItemName(group)) return Bad(at, fmt::format("group '{}' is no item name", group));
  }
  if (const auto it = object.find("metadata"); it != object.end()) {
    if (!it->is_object()) return Bad(at, "'metadata' must be an object of namespaces");
    for (const auto& [ns, entry] : it->items()) {
      if (!entry.is_object() || !entry.value("value", Json()).is_string() ||
          (entry.contains("config") && !entry["config"].is_object())) {
        return Bad(at,
                   fmt::format("metadata '{}' must be {{\"value\":\"..\",\"config\":{{..}}}}", ns));
      }
      item.metadata[ns] = {{"value", entry["value"]},
                           {"config", entry.value("config", Json::object())}};
    }
  }
  for (const auto& [key, out] :
       {std::pair<const char*, Json*>{"stateDescription", &item.state_description},
        {"commandDescription", &item.command_description}}) {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) continue;
    if (!it->is_object()) return Bad(at, fmt::format("'{}' must be an object", key));
    *out = *it;
  }
  if (const auto it = object.find("editable"); it != object.end()) {
    if (!it->is_boolean()) return Bad(at, "'editable' must be true or false");
    item.editable = it->get<bool>();
  }
  if (const auto it = object.find("function"); it != object.end() && !it->is_null()) {
    if (!item.is_group()) return Bad(at, "'function' is for Group items only");
    if (!it->is_object() || !it->value("name", Json()).is_string()) {
      return Bad(at, "'function' must be {\"name\":\"OR\",\"params\":[\"ON\",\"OFF\"]}");
    }
    item.function = (*it)["name"].get<std::string>();
    std::transform(item.function.begin(), item.function.end(), item.function.begin(), ::toupper);
    static const std::set<std::string> kFunctions = {"OR",  "AND", "NOR", "NAND",  "AVG",
                                                     "SUM", "MIN", "MAX", "COUNT", "EQUALITY"};
    if (!kFunctions.contains(item.function)) {
      return Bad(at, fmt::format("unknown group function '{}'", item.function));
    }
    item.function_params = StringList(it->value("params", Json::array()));
    const bool binary = item.function == "OR" || item.function == "AND" || item.function == "NOR" ||
                        item.function == "NAND";
    if (binary && item.function_params.size() != 2) {
      return Bad(at, fmt::format("{} needs two params (active, passive state)", item.function));
    }
    if (item.function == "COUNT" && item.function_params.size() != 1) {
      return Bad(at, "COUNT needs one param (a regular expression)");
    }
    if (item.group_type.empty()) return Bad(at, "a group function needs a 'groupType'");
    if (item.function == "COUNT") {
      try {
        item.count_pattern = std::make_shared<const std::regex>(item.function_params[0]);
      } catch (const std::regex_error& e) {
        return Bad(at, fmt::format("COUNT pattern '{}' is no regular expression: {}",
                                   item.function_params[0], e.what()));
      }
    }
  }
  // ItemDTOMapper: a group with a base type and no function gets EQUALITY.
  if (item.is_group() && !item.group_type.empty() && item.function.empty()) {
    item.function = "EQUALITY";
  }
  if (item.unit.empty() && BaseType(item).starts_with("Number:")) {
    item.unit = DefaultUnit(BaseType(item));
  }
  if (const auto it = object.find("state"); it != object.end() && !it->is_null()) {
    if (!it->is_string()) return Bad(at, "'state' must be a string");
    const std::string given = it->get<std::string>();
    auto state = oh::ParseState(CodecType(item), given);
    if (!state) return Bad(at, state.error().message);
    item.state = StateText(*state);
  }
  return item;
}

Result<Home> Home::Parse(const Json& document, OpenHabVersion version) {
  if (!document.is_object()) return Bad("home", "the home file must be a JSON object");
  const auto format = document.find("openhab-home");
  if (format == document.end() || !format->is_number_integer() || format->get<int>() != 1) {
    return Bad("home", "\"openhab-home\": 1 is missing (the only format version so far)");
  }
  Home home;
  home.version_ = version;
  const Json items = document.value("items", Json::array());
  if (!items.is_array()) return Bad("home", "'items' must be an array");
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto item = ParseSimItem(items[i], fmt::format("items[{}]", i));
    if (!item) return item.error();
    if (home.Find(item->name)) {
      return Bad(fmt::format("items[{}]", i), fmt::format("'{}' is defined twice", item->name));
    }
    home.items_.push_back(std::move(item).value());
  }
  for (const auto& item : home.items_) {
    for (const auto& group : item.groups) {
      const SimItem* parent = home.Find(group);
      if (!parent || !parent->is_group()) {
        return Bad(item.name, fmt::format("group '{}' is not a Group item of this home", group));
      }
    }
  }
  if (const std::string cycle = home.FindCycle(); !cycle.empty()) {
    return Bad(cycle, "the group contains itself (directly or through nested groups)");
  }
  for (const char* key : {"things", "links", "series"}) {
    const Json value = document.value(key, Json::array());
    if (!value.is_array()) return Bad("home", fmt::format("'{}' must be an array", key));
  }
  home.things_ = document.value("things", Json::array());
  for (std::size_t i = 0; i < home.things_.size(); ++i) {
    Json& thing = home.things_[i];
    if (!thing.is_object() || !thing.value("UID", Json()).is_string() ||
        !thing.value("thingTypeUID", Json()).is_string()) {
      return Bad(fmt::format("things[{}]", i), "a thing needs 'UID' and 'thingTypeUID' strings");
    }
    if (!thing.contains("statusInfo")) {
      thing["statusInfo"] = {{"status", "ONLINE"}, {"statusDetail", "NONE"}};
    }
    const Json& status = thing["statusInfo"];
    if (!status.is_object() || !status.value("status", Json()).is_string()) {
      return Bad(fmt::format("things[{}]", i), "'statusInfo' must be {\"status\":\"ONLINE\",..}");
    }
    for (const char* key : {"label", "bridgeUID", "location"}) {
      if (thing.contains(key) && !thing[key].is_string()) {
        return Bad(fmt::format("things[{}]", i), fmt::format("'{}' must be a string", key));
      }
    }
    for (const char* key : {"configuration", "properties"}) {
      if (thing.contains(key) && !thing[key].is_object()) {
        return Bad(fmt::format("things[{}]", i), fmt::format("'{}' must be an object", key));
      }
    }
    if (thing.contains("editable") && !thing["editable"].is_boolean()) {
      return Bad(fmt::format("things[{}]", i), "'editable' must be true or false");
    }
    const Json channels = thing.value("channels", Json::array());
    if (!channels.is_array() || std::any_of(channels.begin(), channels.end(), [](const Json& c) {
          return !c.is_object() || !c.value("uid", Json()).is_string();
        })) {
      return Bad(fmt::format("things[{}]", i), "'channels' must be objects with a 'uid' string");
    }
  }
  home.links_ = document.value("links", Json::array());
  for (std::size_t i = 0; i < home.links_.size(); ++i) {
    const Json& link = home.links_[i];
    if (!link.is_object() || !link.value("channelUID", Json()).is_string() ||
        !link.value("itemName", Json()).is_string() ||
        (link.contains("configuration") && !link["configuration"].is_object()) ||
        (link.contains("editable") && !link["editable"].is_boolean())) {
      return Bad(fmt::format("links[{}]", i), "a link needs 'channelUID' and 'itemName' strings");
    }
  }
  home.series_ = document.value("series", Json::array());
  // openHAB computes a group's state from its members at start-up, without events; inner
  // groups first, so nesting up to 8 deep settles.
  for (int pass = 0; pass < 8; ++pass) {
    for (auto& item : home.items_) {
      if (item.is_group() && !item.group_type.empty()) item.state = home.GroupState(item);
    }
  }
  return home;
}

Result<Home> Home::Load(const std::string& path, OpenHabVersion version) {
  std::ifstream in(path);
  if (!in) return MakeError("bad_home", path + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  auto document = ParseUntrustedJson(text.str());
  if (!document) return MakeError("bad_home", path + ": not valid JSON");
  auto home = Parse(*document, version);
  if (!home) return MakeError("bad_home", path + ": " + home.error().message);
  return home;
}

std::string Home::FindCycle() const {
  // Depth-first over `groups` edges; a node met again on the current path closes a cycle.
  std::map<std::string, int> mark;  // 1: on the path, 2: done
  std::string found;
  std::function<void(const SimItem&)> visit = [&](const SimItem& item) {
    mark[item.name] = 1;
    for (const auto& group : item.groups) {
      if (!found.empty()) return;
      const int m = mark[group];
      if (m == 1) {
        found = group;
      } else if (m == 0) {
        if (const SimItem* parent = Find(group)) visit(*parent);
      }
    }
    mark[item.name] = 2;
  };
  for (const auto& item : items_) {
    if (found.empty() && mark[item.name] == 0) visit(item);
  }
  return found;
}

std::set<std::string> Home::Namespaces() const {
  std::set<std::string> out;
  for (const auto& item : items_) {
    for (const auto& [ns, entry] : item.metadata.items()) out.insert(ns);
  }
  return out;
}

const SimItem* Home::Find(std::string_view name) const {
  const auto it = std::find_if(items_.begin(), items_.end(),
                               [&](const SimItem& item) { return item.name == name; });
  return it == items_.end() ? nullptr : &*it;
}

SimItem* Home::FindMutable(std::string_view name) {
  return const_cast<SimItem*>(Find(name));  // NOLINT(cppcoreguidelines-pro-type-const-cast)
}

std::vector<const SimItem*> Home::Members(const SimItem& group) const {
  std::vector<const SimItem*> out;
  for (const auto& item : items_) {
    if (std::find(item.groups.begin(), item.groups.end(), group.name) != item.groups.end()) {
      out.push_back(&item);
    }
  }
  return out;
}

OrderedJson ItemDto(const SimItem& item) {
  OrderedJson dto;
  dto["type"] = item.type;
  dto["name"] = item.name;
  if (!item.label.empty()) dto["label"] = item.label;
  if (!item.category.empty()) dto["category"] = item.category;
  dto["tags"] = item.tags;
  dto["groupNames"] = item.groups;
  if (item.is_group()) {
    if (!item.group_type.empty()) dto["groupType"] = item.group_type;
    if (!item.function.empty()) {
      dto["function"] = {{"name", item.function}, {"params", item.function_params}};
    }
  }
  return dto;
}

OrderedJson Home::ItemJson(const SimItem& item, const ItemView& view) const {
  // gson writes the subclass's fields first: EnrichedGroupItemDTO, EnrichedItemDTO, ItemDTO.
  OrderedJson out;
  if (item.is_group()) {
    OrderedJson members = OrderedJson::array();
    if (view.recursive) {
      for (const SimItem* member : Members(item)) members.push_back(ItemJson(*member, view));
    }
    out["members"] = std::move(members);
    if (!item.group_type.empty()) out["groupType"] = item.group_type;
    if (!item.function.empty()) {
      out["function"] = {{"name", item.function}, {"params", item.function_params}};
    }
  }
  out["link"] = view.base_url + "/rest/items/" + item.name;
  out["state"] = item.state;
  if (!item.state_description.is_null()) {
    OrderedJson description = ToOrdered(item.state_description);
    if (!description.contains("readOnly")) description["readOnly"] = false;
    if (!description.contains("options")) description["options"] = OrderedJson::array();
    out["stateDescription"] = std::move(description);
  }
  if (!item.command_description.is_null()) {
    out["commandDescription"] = ToOrdered(item.command_description);
  }
  if (version_.last_state_fields()) {
    if (!item.last_state.empty()) out["lastState"] = item.last_state;
    if (item.last_update_ms != 0) out["lastStateUpdate"] = item.last_update_ms;
    if (item.last_change_ms != 0) out["lastStateChange"] = item.last_change_ms;
  }
  if (version_.unit_symbol() && !item.unit.empty()) out["unitSymbol"] = item.unit;
  OrderedJson metadata = OrderedJson::object();
  for (const auto& [ns, entry] : item.metadata.items()) {
    if (!view.namespaces || view.namespaces->contains(ns)) metadata[ns] = ToOrdered(entry);
  }
  if (!metadata.empty()) out["metadata"] = std::move(metadata);
  out["editable"] = item.editable;
  const OrderedJson dto = ItemDto(item);
  for (const auto& [key, value] : dto.items()) {
    if (!out.contains(key)) out[key] = value;
  }
  if (!view.fields.empty()) {
    OrderedJson limited;
    for (auto& [key, value] : out.items()) {
      if (std::find(view.fields.begin(), view.fields.end(), key) != view.fields.end()) {
        limited[key] = value;
      }
    }
    return limited;
  }
  return out;
}

OrderedJson Home::ThingsJson() const {
  OrderedJson out = OrderedJson::array();
  for (const auto& thing : things_) {
    const std::string uid = thing["UID"].get<std::string>();
    OrderedJson channels = OrderedJson::array();
    for (const auto& channel : thing.value("channels", Json::array())) {
      OrderedJson entry;
      OrderedJson linked = OrderedJson::array();
      const std::string channel_uid = channel.value("uid", "");
      for (const auto& link : links_) {
        if (link["channelUID"] == channel_uid)
          linked.push_back(link["itemName"].get<std::string>());
      }
      entry["linkedItems"] = std::move(linked);
      const OrderedJson fields = ToOrdered(channel);
      for (const auto& [key, value] : fields.items()) entry[key] = value;
      channels.push_back(std::move(entry));
    }
    // EnrichedThingDTO first, then ThingDTO, as gson writes them.
    OrderedJson entry;
    entry["statusInfo"] = ToOrdered(thing["statusInfo"]);
    entry["editable"] = thing.value("editable", true);
    entry["label"] = thing.value("label", "");
    if (thing.contains("bridgeUID")) entry["bridgeUID"] = thing["bridgeUID"];
    entry["configuration"] = ToOrdered(thing.value("configuration", Json::object()));
    entry["properties"] = ToOrdered(thing.value("properties", Json::object()));
    entry["UID"] = uid;
    entry["thingTypeUID"] = thing["thingTypeUID"];
    if (thing.contains("location")) entry["location"] = thing["location"];
    entry["channels"] = std::move(channels);
    out.push_back(std::move(entry));
  }
  return out;
}

namespace {

// What a state-bearing command does to the item (AutoUpdateManager, then the item's own
// conversion in setState): nullopt when the command is no state for this item.
std::optional<std::string> AutoUpdateState(const SimItem& item, const oh::State& command) {
  const std::string type = BaseType(item);
  using oh::StateKind;
  using oh::Word;
  switch (command.kind) {
    case StateKind::kRefresh:
    case StateKind::kIncreaseDecrease:
    case StateKind::kNextPrevious:
    case StateKind::kStopMove:
      return std::nullopt;  // a binding would act; no state follows from the command itself
    default:
      break;
  }
  if (type == "Dimmer" && command.kind == StateKind::kOnOff) {
    return command.word == Word::kOn ? "100" : "0";
  }
  if (type == "Rollershutter" && command.kind == StateKind::kUpDown) {
    return command.word == Word::kUp ? "0" : "100";
  }
  if (type == "Color" &&
      (command.kind == StateKind::kOnOff || command.kind == StateKind::kPercent ||
       command.kind == StateKind::kDecimal)) {
    const oh::State current = oh::ParseStateTolerant("Color", item.state);
    oh::Hsb hsb = current.kind == StateKind::kHsb ? current.hsb : oh::Hsb{};
    if (command.kind == StateKind::kOnOff) {
      if (command.word == Word::kOff)
        hsb.b = 0;
      else if (hsb.b == 0)
        hsb.b = 100;
    } else {
      hsb.b = command.number;
    }
    return StateText(oh::MakeHsb(hsb.h, hsb.s, hsb.b));
  }
  if (type.starts_with("Number:") && command.kind == StateKind::kDecimal && !item.unit.empty()) {
    return StateText(command) + " " + item.unit;
  }
  return StateText(command);
}

}  // namespace

Result<std::vector<SimEvent>> Home::Update(std::string_view name, std::string_view text,
                                           std::int64_t now_ms) {
  SimItem* item = FindMutable(name);
  if (!item) return MakeError("not_found", fmt::format("Item {} does not exist!", name));
  auto parsed = oh::ParseState(CodecType(*item), text);
  if (!parsed) return MakeError("bad_state", fmt::format("State could not be parsed: {}", text));
  std::vector<SimEvent> events;
  const std::string given = StateText(*parsed);
  events.push_back({fmt::format("openhab/items/{}/state", item->name), "ItemStateEvent",
                    Text({{"type", oh::TypeName(parsed->kind)}, {"value", given}})});
  std::string state = given;
  if (parsed->kind != oh::StateKind::kNull && parsed->kind != oh::StateKind::kUndef) {
    state = AutoUpdateState(*item, *parsed).value_or(given);
  }
  Apply(*item, state, now_ms, events);
  return events;
}

void Home::Apply(SimItem& item, const std::string& state, std::int64_t now_ms,
                 std::vector<SimEvent>& events) {
  const std::string old = item.state;
  const bool changed = old != state;
  const std::int64_t previous_update = item.last_update_ms;
  const std::int64_t previous_change = item.last_change_ms;
  item.state = state;
  if (changed) item.last_state = old;
  // GenericItem.applyState notifies the groups before it posts its own events; openHAB runs
  // those listeners on another thread, so a real server often sends them later. Either order
  // must work for clients (docs/openhab-sim.md).
  RecalculateGroups(item, now_ms, events);
  const std::string type = TypeNameOf(item, state);
  if (version_.state_updated_events()) {
    OrderedJson payload = {{"type", type}, {"value", state}};
    if (version_.last_state_fields() && previous_update != 0) {
      payload["lastStateUpdate"] = FormatIsoTimeMs(previous_update);
    }
    events.push_back({fmt::format("openhab/items/{}/stateupdated", item.name),
                      "ItemStateUpdatedEvent", Text(payload)});
  }
  if (changed) {
    OrderedJson payload;  // openHAB's field order: type, value, oldType, oldValue
    payload["type"] = type;
    payload["value"] = state;
    payload["oldType"] = TypeNameOf(item, old);
    payload["oldValue"] = old;
    if (version_.last_state_fields()) {
      if (previous_update != 0) payload["lastStateUpdate"] = FormatIsoTimeMs(previous_update);
      if (previous_change != 0) payload["lastStateChange"] = FormatIsoTimeMs(previous_change);
    }
    events.push_back({fmt::format("openhab/items/{}/statechanged", item.name),
                      "ItemStateChangedEvent", Text(payload)});
    item.last_change_ms = now_ms;
  }
  item.last_update_ms = now_ms;
}

namespace {

// The numeric value of a member's state, for AVG/SUM/MIN/MAX.
std::optional<double> NumberOf(const SimItem& item) {
  const oh::State state = oh::ParseStateTolerant(CodecType(item), item.state);
  switch (state.kind) {
    case oh::StateKind::kDecimal:
    case oh::StateKind::kQuantity:
    case oh::StateKind::kPercent:
      return state.number;
    case oh::StateKind::kHsb:
      return state.hsb.b;
    case oh::StateKind::kOnOff:
      return state.word == oh::Word::kOn ? 100 : 0;
    default:
      return std::nullopt;
  }
}

// A member's state as the group's base type sees it (getStateAs): a dimmer or a colour light
// at a brightness above 0 is ON to a Switch group.
std::string AsType(const SimItem& item, const std::string& type) {
  if (type != "Switch") return item.state;
  const oh::State state = oh::ParseStateTolerant(CodecType(item), item.state);
  switch (state.kind) {
    case oh::StateKind::kPercent:
    case oh::StateKind::kDecimal:
      return state.number > 0 ? "ON" : "OFF";
    case oh::StateKind::kHsb:
      return state.hsb.b > 0 ? "ON" : "OFF";
    default:
      return item.state;
  }
}

}  // namespace

std::string Home::GroupState(const SimItem& group) const {
  // GroupItem.getStateMembers: members, where a member group with a state of its own counts
  // as one member and a plain member group is searched through (cycles are refused at load).
  std::vector<const SimItem*> members;
  std::vector<const SimItem*> pending = Members(group);
  std::set<std::string> seen;
  while (!pending.empty()) {
    const SimItem* next = pending.back();
    pending.pop_back();
    if (!seen.insert(next->name).second) continue;
    if (next->is_group() && next->group_type.empty()) {
      for (const SimItem* inner : Members(*next)) pending.push_back(inner);
    } else {
      members.push_back(next);
    }
  }
  const std::string& fn = group.function;
  if (fn == "OR" || fn == "NOR" || fn == "AND" || fn == "NAND") {
    const std::string& active = group.function_params[0];
    const std::string& passive = group.function_params[1];
    const auto is_active = [&](const SimItem* m) { return AsType(*m, group.group_type) == active; };
    const bool any = std::any_of(members.begin(), members.end(), is_active);
    const bool all = !members.empty() && std::all_of(members.begin(), members.end(), is_active);
    bool result = fn == "OR" || fn == "NOR" ? any : all;
    if (fn == "NOR" || fn == "NAND") result = !result;
    return result ? active : passive;
  }
  if (fn == "COUNT") {
    std::size_t count = 0;
    for (const SimItem* m : members) {
      // libstdc++'s regex recurses per character: long states are not matched at all.
      if (m->state.size() <= kMaxCountedState && std::regex_match(m->state, *group.count_pattern)) {
        ++count;
      }
    }
    return std::to_string(count);
  }
  if (fn == "EQUALITY") {
    if (members.empty()) return "UNDEF";
    std::string first = AsType(*members.front(), group.group_type);
    for (const SimItem* m : members) {
      if (AsType(*m, group.group_type) != first) return "UNDEF";
    }
    return first;
  }
  std::vector<double> values;
  for (const SimItem* m : members) {
    if (auto value = NumberOf(*m)) values.push_back(*value);
  }
  if (values.empty()) return "UNDEF";
  double result = 0;
  if (fn == "SUM" || fn == "AVG") {
    for (double v : values) result += v;
    if (fn == "AVG") result /= static_cast<double>(values.size());
  } else if (fn == "MIN") {
    result = *std::min_element(values.begin(), values.end());
  } else {
    result = *std::max_element(values.begin(), values.end());
  }
  std::string state = FormatNumber(result);
  if (group.group_type.starts_with("Number:") && !group.unit.empty()) state += " " + group.unit;
  return state;
}

void Home::RecalculateGroups(const SimItem& member, std::int64_t now_ms,
                             std::vector<SimEvent>& events) {
  for (const auto& group_name : member.groups) {
    SimItem* group = FindMutable(group_name);
    if (!group || group->group_type.empty()) continue;  // a plain group has no state
    const std::string state = GroupState(*group);
    const std::string old = group->state;
    const std::int64_t previous_update = group->last_update_ms;
    const std::int64_t previous_change = group->last_change_ms;
    group->state = state;
    group->last_update_ms = now_ms;
    // GroupItem.setState notifies the group's own groups before the group's events go out;
    // the membership graph has no cycles (checked at load), so this ends.
    if (old != state) group->last_state = old;
    RecalculateGroups(*group, now_ms, events);
    if (version_.state_updated_events()) {
      OrderedJson payload = {{"type", TypeNameOf(*group, state)}, {"value", state}};
      if (version_.last_state_fields() && previous_update != 0) {
        payload["lastStateUpdate"] = FormatIsoTimeMs(previous_update);
      }
      events.push_back({fmt::format("openhab/items/{}/{}/stateupdated", group->name, member.name),
                        "GroupStateUpdatedEvent", Text(payload)});
    }
    if (old != state) {
      OrderedJson payload;
      payload["type"] = TypeNameOf(*group, state);
      payload["value"] = state;
      payload["oldType"] = TypeNameOf(*group, old);
      payload["oldValue"] = old;
      if (version_.last_state_fields()) {
        if (previous_update != 0) payload["lastStateUpdate"] = FormatIsoTimeMs(previous_update);
        if (previous_change != 0) payload["lastStateChange"] = FormatIsoTimeMs(previous_change);
      }
      events.push_back({fmt::format("openhab/items/{}/{}/statechanged", group->name, member.name),
                        "GroupItemStateChangedEvent", Text(payload)});
      group->last_change_ms = now_ms;
    }
  }
}

Result<std::vector<SimEvent>> Home::Command(std::string_view name, std::string_view text,
                                            std::int64_t now_ms) {
  SimItem* item = FindMutable(name);
  if (!item) return MakeError("not_found", fmt::format("Item {} does not exist!", name));
  std::string command(text);
  // The REST API's TOGGLE (any case), for Switch and Rollershutter items only (ItemResource):
  // ON flips to OFF and back; a shutter at UP (0) goes DOWN, at DOWN (100) goes UP.
  if ((item->type == "Switch" || item->type == "Rollershutter") && text.size() == 6 &&
      strncasecmp(text.data(), "toggle", 6) == 0) {
    const std::string as_switch = AsType(*item, "Switch");
    if (item->type == "Switch" && (as_switch == "ON" || as_switch == "OFF")) {
      command = as_switch == "ON" ? "OFF" : "ON";
    } else if (item->state == "0" || item->state == "100") {
      command = item->state == "0" ? "DOWN" : "UP";
    } else {
      return MakeError("bad_command", "TOGGLE needs the item to be ON/OFF or UP/DOWN");
    }
  }
  auto parsed = oh::ParseCommand(CodecType(*item), command);
  if (parsed) {
    auto accepted = oh::CommandFor(CodecType(*item), *parsed);
    if (!accepted) parsed = accepted.error();
  }
  if (!parsed) return MakeError("bad_command", parsed.error().message);
  std::vector<SimEvent> events;
  std::set<std::string> reached;
  AddCommandEvents(*item, command, now_ms, reached, events);
  return events;
}

Home::AutoUpdate Home::AutoUpdateFor(const SimItem& item) const {
  // AutoUpdateManager.shouldAutoUpdate, then the item's `autoupdate` metadata.
  AutoUpdate result = AutoUpdate::kRequired;
  std::vector<const Json*> online;
  bool linked = false;
  for (const auto& link : links_) {
    if (link["itemName"] != item.name) continue;
    linked = true;
    const std::string channel_uid = link["channelUID"].get<std::string>();
    for (const auto& thing : things_) {
      if (!channel_uid.starts_with(thing["UID"].get<std::string>() + ":")) continue;
      if (thing["statusInfo"].value("status", "") != "ONLINE") continue;
      const auto channels = thing.find("channels");
      if (channels == thing.end()) continue;
      for (const auto& channel : *channels) {
        if (channel["uid"] == channel_uid) online.push_back(&channel);
      }
    }
  }
  if (linked && online.empty()) result = AutoUpdate::kRevert;
  for (const Json* channel : online) {
    const std::string policy = channel->value("autoUpdatePolicy", "DEFAULT");
    if (policy == "VETO") {
      result = AutoUpdate::kDont;
    } else if (policy == "RECOMMEND") {
      if (result == AutoUpdate::kRequired) result = AutoUpdate::kRecommended;
    } else if (result == AutoUpdate::kRequired || result == AutoUpdate::kRecommended) {
      result = AutoUpdate::kOptimistic;
    }
  }
  const auto metadata = item.metadata.find("autoupdate");
  if (metadata != item.metadata.end()) {
    const std::string value = (*metadata)["value"].get<std::string>();
    if (value.find_first_not_of(" \t") != std::string::npos) {
      result = strcasecmp(value.c_str(), "true") == 0 ? AutoUpdate::kRequired : AutoUpdate::kDont;
    }
  }
  return result;
}

void Home::AddCommandEvents(SimItem& item, const std::string& command, std::int64_t now_ms,
                            std::set<std::string>& reached, std::vector<SimEvent>& events) {
  if (!reached.insert(item.name).second) return;  // reached twice through nested groups
  auto parsed = oh::ParseCommand(CodecType(item), command);
  if (!parsed || !oh::CommandFor(CodecType(item), *parsed)) return;  // a member that cannot
  events.push_back(
      {fmt::format("openhab/items/{}/command", item.name), "ItemCommandEvent",
       Text({{"type", oh::TypeName(parsed->kind)}, {"value", oh::ToCommandText(*parsed)}})});
  if (item.is_group()) {  // groups forward commands and never autoupdate
    for (const SimItem* member : Members(item)) {
      AddCommandEvents(*FindMutable(member->name), command, now_ms, reached, events);
    }
    return;
  }
  const auto state = AutoUpdateState(item, *parsed);
  if (!state) return;  // INCREASE, STOP, REFRESH...: no state follows from the command
  const std::string command_state = oh::ToCommandText(*parsed);
  const auto predicted = [&](const std::string& type, const std::string& value, bool confirm) {
    OrderedJson payload;
    payload["predictedType"] = type;
    payload["predictedValue"] = value;
    payload["isConfirmation"] = confirm;
    events.push_back({fmt::format("openhab/items/{}/statepredicted", item.name),
                      "ItemStatePredictedEvent", Text(payload)});
  };
  switch (AutoUpdateFor(item)) {
    case AutoUpdate::kDont:
      return;
    case AutoUpdate::kRevert:  // every linked thing is offline: the controls snap back
      predicted(TypeNameOf(item, item.state), item.state, true);
      return;
    case AutoUpdate::kOptimistic:
      // openHAB predicts; the binding then reports what the device did. The sim's devices
      // obey, so the binding's update follows at once.
      predicted(std::string(oh::TypeName(parsed->kind)), command_state, false);
      break;
    case AutoUpdate::kRequired:
    case AutoUpdate::kRecommended:
      break;
  }
  // AutoUpdateManager (or the binding) posts the command as an ItemStateEvent; the item then
  // converts it (a Dimmer's ON to 100) and applies it.
  events.push_back({fmt::format("openhab/items/{}/state", item.name), "ItemStateEvent",
                    Text({{"type", oh::TypeName(parsed->kind)}, {"value", command_state}})});
  Apply(item, *state, now_ms, events);
}

Result<std::vector<SimEvent>> Home::Put(SimItem item) {
  for (const auto& group : item.groups) {
    const SimItem* parent = Find(group);
    if (!parent || !parent->is_group()) {
      return MakeError("bad_item", fmt::format("group '{}' is not a Group item", group));
    }
  }
  std::vector<SimEvent> events;
  Home candidate = *this;  // a membership cycle must not get in: check on a copy first
  if (SimItem* existing = candidate.FindMutable(item.name)) {
    *existing = item;
  } else {
    candidate.items_.push_back(item);
  }
  if (const std::string cycle = candidate.FindCycle(); !cycle.empty()) {
    return MakeError("bad_item", fmt::format("group '{}' would contain itself", cycle));
  }
  if (SimItem* existing = FindMutable(item.name)) {
    const std::string old_dto = Text(ItemDto(*existing));
    if (item.state == "NULL" && item.type == existing->type) item.state = existing->state;
    *existing = std::move(item);
    events.push_back({fmt::format("openhab/items/{}/updated", existing->name), "ItemUpdatedEvent",
                      "[" + Text(ItemDto(*existing)) + "," + old_dto + "]"});
    return events;
  }
  items_.push_back(std::move(item));
  events.push_back({fmt::format("openhab/items/{}/added", items_.back().name), "ItemAddedEvent",
                    Text(ItemDto(items_.back()))});
  return events;
}

Result<std::vector<SimEvent>> Home::Remove(std::string_view name) {
  const auto it = std::find_if(items_.begin(), items_.end(),
                               [&](const SimItem& item) { return item.name == name; });
  if (it == items_.end())
    return MakeError("not_found", fmt::format("Item {} does not exist!", name));
  std::vector<SimEvent> events;
  events.push_back(
      {fmt::format("openhab/items/{}/removed", it->name), "ItemRemovedEvent", Text(ItemDto(*it))});
  const std::string removed = it->name;
  items_.erase(it);
  for (auto& item : items_) {  // openHAB drops the membership of a removed group
    std::erase(item.groups, removed);
  }
  return events;
}

Result<std::vector<SimEvent>> Home::SetThingStatus(std::string_view uid, const Json& status_info) {
  static const std::set<std::string> kStatuses = {
      "UNINITIALIZED", "INITIALIZING", "UNKNOWN", "ONLINE", "OFFLINE", "REMOVING", "REMOVED"};
  if (!status_info.is_object() || !status_info.value("status", Json()).is_string() ||
      !kStatuses.contains(status_info["status"].get<std::string>())) {
    return MakeError("bad_status",
                     "expected {\"status\":\"ONLINE|OFFLINE|UNKNOWN|...\",\"statusDetail\":..}");
  }
  for (auto& thing : things_) {
    if (thing["UID"] != uid) continue;
    OrderedJson info;
    info["status"] = status_info["status"];
    info["statusDetail"] = status_info.value("statusDetail", "NONE");
    if (status_info.contains("description")) info["description"] = status_info["description"];
    const OrderedJson old = ToOrdered(thing["statusInfo"]);
    thing["statusInfo"] = Json::parse(Text(info));
    std::vector<SimEvent> events;
    events.push_back(
        {fmt::format("openhab/things/{}/status", uid), "ThingStatusInfoEvent", Text(info)});
    if (old != info) {
      events.push_back({fmt::format("openhab/things/{}/statuschanged", uid),
                        "ThingStatusInfoChangedEvent", "[" + Text(info) + "," + Text(old) + "]"});
    }
    return events;
  }
  return MakeError("not_found", fmt::format("Thing {} does not exist!", uid));
}

}  // namespace iothub::sim
