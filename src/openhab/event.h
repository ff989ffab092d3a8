// openHAB's events as /rest/events delivers them (shared/reference/openhab.md §3): an SSE
// event whose data is `{"topic":..,"payload":"<JSON as a string>","type":..}`, the payload
// encoded twice. Decoding is strict about shape and tolerant about content: what cannot be
// understood is an Error for the caller to count and log, never a crash. Thread-safe (pure).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"
#include "openhab/sse_parser.h"

namespace iothub::openhab {

using Json = nlohmann::json;

enum class EventKind {
  kAlive,               // keep-alive (`event: alive`), 3.4+
  kItemState,           // ItemStateEvent: an update request, may not change the state
  kItemStateUpdated,    // ItemStateUpdatedEvent (4.0+)
  kItemStateChanged,    // ItemStateChangedEvent
  kGroupStateChanged,   // GroupItemStateChangedEvent: `item` is the group, `member` the member
  kItemCommand,         // ItemCommandEvent
  kItemAdded,           // ItemAddedEvent: `item_json` is the item
  kItemRemoved,         // ItemRemovedEvent: `item_json` is the item
  kItemUpdated,         // ItemUpdatedEvent: `item_json` new, `old_item_json` old
  kThingStatusChanged,  // ThingStatusInfoChangedEvent
  kOther,               // any other event type: kept, with topic and raw payload
};

struct Event {
  EventKind kind = EventKind::kOther;
  std::string type;  // openHAB's event type name, e.g. "ItemStateChangedEvent"
  std::string topic;
  std::string item;        // the item (or group) the topic names
  std::string member;      // kGroupStateChanged: the member whose change changed the group
  std::string value_type;  // e.g. "Quantity" (§3 value type names)
  std::string value;       // e.g. "21.5 °C"
  std::string old_value_type;
  std::string old_value;
  std::int64_t last_state_update_ms = 0;  // 5.0+ on state changes, 0 if absent
  std::int64_t last_state_change_ms = 0;
  Json item_json;      // added / removed / updated (new)
  Json old_item_json;  // updated (old)
  std::string thing_uid;
  std::string thing_status;  // e.g. "ONLINE"
  std::string old_thing_status;
  int alive_interval_s = 0;  // kAlive: the announced interval (0 if not given)
  Json payload;              // the decoded payload, for kOther and diagnostics
};

// Decodes one SSE event from /rest/events. Errors (code "bad_event"): data that is not JSON,
// not an object, missing topic/type, a payload that is not JSON, item names that are not
// openHAB item names, fields of the wrong type.
Result<Event> DecodeEvent(const SseEvent& sse);

// openHAB item names: [a-zA-Z_][a-zA-Z0-9_]*.
bool IsItemName(std::string_view name);

}  // namespace iothub::openhab
