// What flows from the replicator through the outbox into telemetry: one pending fact about an
// item (a state change, or its state in a snapshot) or a thing (its status). The replicator
// makes entries, the outbox keeps them durable and merges them when the budget cannot carry
// them all, and the message format packs them into telemetry (docs/message-format.md).
// Plain data; thread-safe as any value.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "connector/config.h"

namespace iothub::connector {

using Json = nlohmann::json;

// One kind per telemetry message: a message carries entries of one kind only, and says which
// in its `kind` field and application property.
enum class EntryKind {
  kChange,    // "changes": a state change of an item
  kSnapshot,  // "snapshot": an item's current state, at start and after every resync
  kThing,     // "things": a thing's status (ONLINE, OFFLINE with detail, ...)
};
std::string_view ToString(EntryKind kind);  // "changes", "snapshot", "things"

struct Entry {
  std::int64_t id = 0;  // the outbox's sequence number; 0 until the outbox accepted it
  EntryKind kind = EntryKind::kChange;
  Priority priority = Priority::kNormal;
  std::string key;   // the item name, or the thing UID
  std::string type;  // the openHAB item type ("Number:Temperature"); "" for things
  // The value as the message format writes it (EncodeValue in message_format.h): a number,
  // a string, an object (HSB, point, a thing's status), an array (a call's numbers) or null
  // (NULL and UNDEF, then `state` says which).
  Json value;
  std::string unit;          // quantities: the unit beside the number ("°C"); else ""
  std::string state;         // "NULL" or "UNDEF" when `value` is null; else ""
  std::int64_t time_ms = 0;  // openHAB's time of the change (or of receipt), epoch ms
  // Merged entries stand for several changes: how many, since when, and for numbers the
  // smallest and largest value among them. A fresh entry has count 1 and no min/max.
  std::int64_t count = 1;
  std::int64_t first_ms = 0;  // time of the oldest change merged in (0: time_ms)
  std::optional<double> min;
  std::optional<double> max;
};

}  // namespace iothub::connector
