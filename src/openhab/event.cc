#include "openhab/event.h"

#include <fmt/format.h>

#include <vector>

#include "common/json_depth.h"

namespace iothub::openhab {
namespace {

Error Bad(std::string message) { return MakeError("bad_event", std::move(message)); }

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

// A string member, or "" when absent; nullopt when present with another type.
std::optional<std::string> StringField(const Json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::int64_t EpochField(const Json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

struct TypeInfo {
  std::string_view type;
  EventKind kind;
  std::string_view suffix;  // the topic's last segment
  bool group;               // topic has a member segment
};

constexpr TypeInfo kTypes[] = {
    {"ItemStateEvent", EventKind::kItemState, "state", false},
    {"ItemStateUpdatedEvent", EventKind::kItemStateUpdated, "stateupdated", false},
    {"ItemStateChangedEvent", EventKind::kItemStateChanged, "statechanged", false},
    {"GroupItemStateChangedEvent", EventKind::kGroupStateChanged, "statechanged", true},
    {"ItemCommandEvent", EventKind::kItemCommand, "command", false},
    {"ItemAddedEvent", EventKind::kItemAdded, "added", false},
    {"ItemRemovedEvent", EventKind::kItemRemoved, "removed", false},
    {"ItemUpdatedEvent", EventKind::kItemUpdated, "updated", false},
};

Status DecodeValue(const Json& payload, Event& event) {
  if (!payload.is_object()) return Bad(fmt::format("{} payload is not an object", event.type));
  auto type = StringField(payload, "type");
  auto value = StringField(payload, "value");
  auto old_type = StringField(payload, "oldType");
  auto old_value = StringField(payload, "oldValue");
  if (!type || !value || !old_type || !old_value || type->empty()) {
    return Bad(fmt::format("{} payload lacks a string type/value", event.type));
  }
  event.value_type = std::move(*type);
  event.value = std::move(*value);
  event.old_value_type = std::move(*old_type);
  event.old_value = std::move(*old_value);
  event.last_state_update_ms = EpochField(payload, "lastStateUpdate");
  event.last_state_change_ms = EpochField(payload, "lastStateChange");
  return Ok{};
}

Status DecodeItemEvent(const TypeInfo& info, Event& event) {
  // openhab/items/{item}/{suffix} or openhab/items/{group}/{member}/{suffix}
  const auto parts = Split(event.topic, '/');
  const std::size_t expected = info.group ? 5 : 4;
  if (parts.size() != expected || parts[0] != "openhab" || parts[1] != "items" ||
      parts.back() != info.suffix) {
    return Bad(fmt::format("{} on unexpected topic '{}'", event.type, event.topic));
  }
  event.item = std::string(parts[2]);
  if (info.group) event.member = std::string(parts[3]);
  if (!IsItemName(event.item) || (info.group && !IsItemName(event.member))) {
    return Bad(fmt::format("topic '{}' does not name an openHAB item", event.topic));
  }
  switch (info.kind) {
    case EventKind::kItemAdded:
    case EventKind::kItemRemoved:
      if (!event.payload.is_object()) return Bad(event.type + " payload is not an item");
      event.item_json = event.payload;
      return Ok{};
    case EventKind::kItemUpdated:
      if (!event.payload.is_array() || event.payload.size() != 2 || !event.payload[0].is_object() ||
          !event.payload[1].is_object()) {
        return Bad("ItemUpdatedEvent payload is not [new item, old item]");
      }
      event.item_json = event.payload[0];
      event.old_item_json = event.payload[1];
      return Ok{};
    default:
      return DecodeValue(event.payload, event);
  }
}

Status DecodeThingStatus(Event& event) {
  const auto parts = Split(event.topic, '/');
  if (parts.size() != 4 || parts[0] != "openhab" || parts[1] != "things" ||
      parts[3] != "statuschanged" || parts[2].empty()) {
    return Bad(fmt::format("ThingStatusInfoChangedEvent on unexpected topic '{}'", event.topic));
  }
  const Json& p = event.payload;
  if (!p.is_array() || p.size() != 2 || !p[0].is_object() || !p[1].is_object()) {
    return Bad("ThingStatusInfoChangedEvent payload is not [new info, old info]");
  }
  auto status = StringField(p[0], "status");
  auto old_status = StringField(p[1], "status");
  if (!status || !old_status || status->empty()) return Bad("thing status is not a string");
  event.thing_uid = std::string(parts[2]);
  event.thing_status = std::move(*status);
  event.old_thing_status = std::move(*old_status);
  return Ok{};
}

}  // namespace

bool IsItemName(std::string_view name) {
  if (name.empty()) return false;
  const auto word = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
  };
  if (!word(name.front(), true)) return false;
  for (const char c : name.substr(1)) {
    if (!word(c, false)) return false;
  }
  return true;
}

Result<Event> DecodeEvent(const SseEvent& sse) {
  auto data = ParseUntrustedJson(sse.data);
  if (!data || !data->is_object()) return Bad("event data is not a JSON object");
  Event event;
  if (sse.event == "alive") {
    event.kind = EventKind::kAlive;
    event.type = "ALIVE";
    if (const auto it = data->find("interval"); it != data->end() && it->is_number_integer()) {
      event.alive_interval_s = it->get<int>();
    }
    return event;
  }
  auto topic = StringField(*data, "topic");
  auto type = StringField(*data, "type");
  auto payload_text = StringField(*data, "payload");
  if (!topic || !type || !payload_text || topic->empty() || type->empty()) {
    return Bad("event lacks a string topic, type or payload");
  }
  event.topic = std::move(*topic);
  event.type = std::move(*type);
  if (!payload_text->empty()) {
    auto payload = ParseUntrustedJson(*payload_text);
    if (!payload) return Bad(fmt::format("{} payload is not JSON", event.type));
    event.payload = std::move(*payload);
  }
  for (const auto& info : kTypes) {
    if (event.type != info.type) continue;
    event.kind = info.kind;
    if (auto decoded = DecodeItemEvent(info, event); !decoded) return decoded.error();
    return event;
  }
  if (event.type == "ThingStatusInfoChangedEvent") {
    event.kind = EventKind::kThingStatusChanged;
    if (auto decoded = DecodeThingStatus(event); !decoded) return decoded.error();
    return event;
  }
  event.kind = EventKind::kOther;
  return event;
}

}  // namespace iothub::openhab
