#include "openhab/item.h"

#include <fmt/format.h>

#include <charconv>

#include "common/json_depth.h"
#include "openhab/event.h"
#include "openhab/json_fields.h"

namespace iothub::openhab {
namespace {

using json::ReadString;
using json::ReadStrings;

std::int64_t ReadEpoch(const Json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

int LeadingInt(std::string_view text, std::size_t& at) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data() + at, text.data() + text.size(), value);
  if (ec != std::errc()) return 0;
  at = static_cast<std::size_t>(end - text.data());
  return value;
}

}  // namespace

Result<Item> ParseItem(const Json& object) {
  if (!object.is_object()) return MakeError("bad_item", "an item entry is not a JSON object");
  Item item;
  if (!ReadString(object, "name", item.name) || !IsItemName(item.name)) {
    return MakeError("bad_item", "an item has no valid name");
  }
  const auto bad = [&](std::string_view what) {
    return MakeError("bad_item", fmt::format("item '{}': {}", item.name, what));
  };
  if (!ReadString(object, "type", item.type) || item.type.empty()) return bad("no type");
  if (!ReadString(object, "label", item.label) || !ReadString(object, "category", item.category) ||
      !ReadString(object, "state", item.state) ||
      !ReadString(object, "transformedState", item.transformed_state) ||
      !ReadString(object, "unitSymbol", item.unit_symbol) ||
      !ReadString(object, "groupType", item.group_type)) {
    return bad("a text field has another type");
  }
  if (!ReadStrings(object, "tags", item.tags) || !ReadStrings(object, "groupNames", item.groups)) {
    return bad("tags or groupNames is not a list of strings");
  }
  if (item.state.empty()) item.state = "NULL";
  if (const auto it = object.find("stateDescription"); it != object.end() && it->is_object()) {
    if (const auto ro = it->find("readOnly"); ro != it->end() && ro->is_boolean()) {
      item.read_only = ro->get<bool>();
    }
    (void)ReadString(*it, "pattern", item.pattern);
  }
  if (const auto it = object.find("editable"); it != object.end() && it->is_boolean()) {
    item.editable = it->get<bool>();
  }
  if (const auto it = object.find("metadata"); it != object.end() && it->is_object()) {
    item.metadata = *it;
    if (const auto ns = it->find(kMetadataNamespace); ns != it->end()) {
      if (!ns->is_object()) return bad("metadata.azureiothub is not an object");
      Metadata m;
      if (!ReadString(*ns, "value", m.value)) return bad("metadata.azureiothub.value is not text");
      if (const auto config = ns->find("config"); config != ns->end() && !config->is_null()) {
        if (!config->is_object()) return bad("metadata.azureiothub.config is not an object");
        m.config = *config;
      }
      item.azure = std::move(m);
    }
  }
  if (const auto it = object.find("function"); it != object.end() && it->is_object()) {
    if (!ReadString(*it, "name", item.function) ||
        !ReadStrings(*it, "params", item.function_params)) {
      return bad("group function is malformed");
    }
  }
  if (const auto it = object.find("members"); it != object.end() && it->is_array()) {
    for (const auto& member : *it) {
      if (member.is_object() && member.contains("name") && member["name"].is_string()) {
        item.members.push_back(member["name"].get<std::string>());
      }
    }
  }
  item.last_state_update_ms = ReadEpoch(object, "lastStateUpdate");
  item.last_state_change_ms = ReadEpoch(object, "lastStateChange");
  return item;
}

Result<ItemList> ParseItems(std::string_view body) {
  auto parsed = detail::ParseEach<Item>(body, "item list", ParseItem);
  if (!parsed) return parsed.error();
  return ItemList{std::move(parsed->first), std::move(parsed->second)};
}

Result<ServerInfo> ParseServerInfo(std::string_view body) {
  auto doc = ParseUntrustedJson(body);
  if (!doc || !doc->is_object())
    return MakeError("bad_response", "GET /rest/ is not a JSON object");
  ServerInfo info;
  if (!ReadString(*doc, "version", info.api_version)) {
    return MakeError("bad_response", "GET /rest/: version is not text");
  }
  if (const auto it = doc->find("runtimeInfo"); it != doc->end() && it->is_object()) {
    (void)ReadString(*it, "version", info.runtime_version);
  }
  std::size_t at = 0;
  info.major = LeadingInt(info.runtime_version, at);
  if (at < info.runtime_version.size() && info.runtime_version[at] == '.') {
    ++at;
    info.minor = LeadingInt(info.runtime_version, at);
  }
  // Without runtimeInfo the server predates 3.0 (openHAB 2.x).
  const bool known = info.major > 0;
  const auto at_least = [&](int major, int minor) {
    return info.major > major || (info.major == major && info.minor >= minor);
  };
  info.filter_semantics =
      known && at_least(3, 3) ? FilterSemantics::kRegex : FilterSemantics::kPrefix;
  info.alive_interval_s = !known ? 0 : at_least(3, 4) ? 10 : at_least(3, 3) ? 120 : 0;
  return info;
}

}  // namespace iothub::openhab
