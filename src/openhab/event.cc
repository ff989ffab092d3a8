#include "openhab/event.h"

#include <fmt/format.h>

#include <array>
#include <utility>
#include <vector>

#include "common/json_depth.h"
#include "openhab/event_reference.h"
#include "openhab/json_scan.h"
#include "openhab/state.h"

namespace iothub::openhab {
namespace {

Error Bad(std::string message) { return MakeError("bad_event", std::move(message)); }

// A topic's '/'-separated segments, without an allocation per event: `count` is the number
// of segments, of which the first kMax are in `segment`.
struct TopicSegments {
  static constexpr std::size_t kMax = 5;  // the longest topic decoded has five
  std::array<std::string_view, kMax> segment;
  std::size_t count = 0;
  std::string_view back;  // the last segment
};

TopicSegments SplitTopic(std::string_view topic) {
  TopicSegments parts;
  for (;;) {
    const std::size_t at = topic.find('/');
    parts.back = topic.substr(0, at);
    if (parts.count < TopicSegments::kMax) parts.segment[parts.count] = parts.back;
    ++parts.count;
    if (at == std::string_view::npos) return parts;
    topic.remove_prefix(at + 1);
  }
}

// A string member, or "" when absent; nullopt when present with another type.
std::optional<std::string> StringField(const Json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// openHAB 5 writes these with its ZonedDateTime adapter as ISO_ZONED_DATE_TIME text
// (`2025-06-01T12:00:00.123+02:00[Europe/Berlin]`, AbstractEventFactory); epoch milliseconds
// (as in the REST item DTO) are accepted too. 0 when absent or not understood.
std::int64_t EpochField(const Json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end()) return 0;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (!it->is_string()) return 0;
  const auto time = ParseState("DateTime", it->get_ref<const std::string&>());
  return time && time->date_time.epoch_ms ? *time->date_time.epoch_ms : 0;
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
  const TopicSegments parts = SplitTopic(event.topic);
  const std::size_t expected = info.group ? 5 : 4;
  if (parts.count != expected || parts.segment[0] != "openhab" || parts.segment[1] != "items" ||
      parts.back != info.suffix) {
    return Bad(fmt::format("{} on unexpected topic '{}'", event.type, event.topic));
  }
  event.item = std::string(parts.segment[2]);
  if (info.group) event.member = std::string(parts.segment[3]);
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
  const TopicSegments parts = SplitTopic(event.topic);
  if (parts.count != 4 || parts.segment[0] != "openhab" || parts.segment[1] != "things" ||
      parts.segment[3] != "statuschanged" || parts.segment[2].empty()) {
    return Bad(fmt::format("ThingStatusInfoChangedEvent on unexpected topic '{}'", event.topic));
  }
  const Json& p = event.payload;
  if (!p.is_array() || p.size() != 2 || !p[0].is_object() || !p[1].is_object()) {
    return Bad("ThingStatusInfoChangedEvent payload is not [new info, old info]");
  }
  auto status = StringField(p[0], "status");
  auto old_status = StringField(p[1], "status");
  if (!status || !old_status || status->empty()) return Bad("thing status is not a string");
  event.thing_uid = std::string(parts.segment[2]);
  event.thing_status = std::move(*status);
  event.old_thing_status = std::move(*old_status);
  return Ok{};
}

// The payload text, parsed into event.payload; empty text is no payload (null). With `scan`,
// a flat object is read by ScanFlatObject and only other text by nlohmann.
Status ParsePayload(std::string_view text, bool scan, Event& event) {
  if (text.empty()) return Ok{};
  if (scan) {
    std::vector<FlatMember> members;
    if (ScanFlatObject(text, members)) {
      event.payload = FlatObjectToJson(std::move(members));
      return Ok{};
    }
  }
  auto payload = ParseUntrustedJson(text);
  if (!payload) return Bad(fmt::format("{} payload is not JSON", event.type));
  event.payload = std::move(*payload);
  return Ok{};
}

// The kind and the kind's fields, once topic, type and payload are known.
Status Classify(Event& event) {
  for (const auto& info : kTypes) {
    if (event.type != info.type) continue;
    event.kind = info.kind;
    return DecodeItemEvent(info, event);
  }
  if (event.type == "ThingStatusInfoChangedEvent") {
    event.kind = EventKind::kThingStatusChanged;
    return DecodeThingStatus(event);
  }
  event.kind = EventKind::kOther;
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

Result<Event> DecodeEventReference(const SseEvent& sse) {
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
  if (auto parsed = ParsePayload(*payload_text, /*scan=*/false, event); !parsed) {
    return parsed.error();
  }
  if (auto classified = Classify(event); !classified) return classified.error();
  return event;
}

// The fast path: the envelope and a flat payload are read by ScanFlatObject, without a DOM
// for the envelope. Whatever the scanner is unsure of, and every envelope that is an error,
// goes to the reference decoder, so that the result is always the same as its result.
Result<Event> DecodeEvent(const SseEvent& sse) {
  if (sse.event == "alive") return DecodeEventReference(sse);  // once in ten seconds
  std::vector<FlatMember> members;
  if (!ScanFlatObject(sse.data, members)) return DecodeEventReference(sse);
  Event event;
  std::string payload_text;
  for (FlatMember& member : members) {
    std::string* field = member.key == "topic"     ? &event.topic
                         : member.key == "type"    ? &event.type
                         : member.key == "payload" ? &payload_text
                                                   : nullptr;
    if (field == nullptr) continue;
    // As StringField reads the DOM: null is absent, the last of duplicate keys counts.
    if (member.value.kind == FlatValue::Kind::kString) {
      *field = std::move(member.value.text);
    } else if (member.value.kind == FlatValue::Kind::kNull) {
      field->clear();
    } else {
      return DecodeEventReference(sse);
    }
  }
  if (event.topic.empty() || event.type.empty()) return DecodeEventReference(sse);
  if (auto parsed = ParsePayload(payload_text, /*scan=*/true, event); !parsed) {
    return parsed.error();
  }
  if (auto classified = Classify(event); !classified) return classified.error();
  return event;
}

}  // namespace iothub::openhab
