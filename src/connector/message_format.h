// The telemetry message format (docs/message-format.md, schema docs/message-format.schema.json):
// how openHAB states become typed JSON values (EncodeValue), and how pending entries, in send
// order, are packed into one IoT Hub message filled up to the metering chunk (MessagePacker).
// A message's size is counted as the hub meters it (azure::MeteredBytes), so what the packer
// says a message costs is what the hub bills.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "azure/device_session.h"
#include "azure/property_bag.h"
#include "connector/config.h"
#include "connector/entry.h"
#include "openhab/state.h"

namespace iothub::connector {

// The body's "v". A reader accepts every body whose "v" it knows; fields may be added within a
// version (readers ignore what they do not know), a change of meaning or a removal makes a new
// version.
inline constexpr int kMessageFormatVersion = 1;

// Image data URIs up to this size travel inline; a larger image is left out (LeftOutValue):
// a camera snapshot would otherwise cost dozens of Free-tier chunks per change.
inline constexpr std::size_t kMaxInlineRawBytes = 1024;

// What an Entry holds of a state: the value as the message writes it, the unit beside a
// number, and "NULL"/"UNDEF" when the value is null.
struct EncodedValue {
  Json value;
  std::string unit;
  std::string state;
};

// The value of `state` for an item of `item_type` ("Number:Power", "Group:Dimmer", "Switch").
// Numbers (decimal, percent, quantity) are JSON numbers, integers as integers (exact up to 64
// bits when the received text is an integer), with a quantity's unit in `unit`; words (ON,
// OFF, OPEN, CLOSED, UP, PLAY, ...) are strings; HSB {"h","s","b"}; a point {"lat","lon"
// [,"alt"]}; a date-time an ISO 8601 UTC string with milliseconds when its instant is known,
// else the text received; a string as valid UTF-8 (invalid bytes become U+FFFD); a call's
// list an array of strings; an image its data URI up to kMaxInlineRawBytes, else
// LeftOutValue; NULL and UNDEF null with `state` set. Dimmer and Rollershutter items hold
// percents as openHAB stores them: ON/OFF become 100/0, UP/DOWN 0/100. Thread-safe (pure).
EncodedValue EncodeValue(std::string_view item_type, const openhab::State& state);

// A thing's status as an Entry value: {"status":"OFFLINE","detail":"COMMUNICATION_ERROR"
// [,"description":"..."]}; an empty detail or description is left out. Strings are made
// valid UTF-8. Thread-safe (pure).
Json EncodeThingStatus(std::string_view status, std::string_view detail,
                       std::string_view description);

// The value written in place of one too large to send: {"bytes":N[,"mimeType":"image/jpeg"]},
// N the size of what was left out (an image's decoded bytes). Callers use it for an entry
// MessagePacker reports as oversized. Thread-safe (pure).
Json LeftOutValue(std::int64_t bytes, std::string_view mime_type = {});

// Metered size of a message as the device session sends it: its body, the values of its
// system properties ($.mid, $.ct, $.ce, $.sub, $.ctime) and the names and values of its
// application properties (azure::MeteredBytes). Thread-safe (pure).
std::int64_t MeteredBytes(const azure::TelemetryMessage& message);

struct PackOptions {
  // Entries are added while the message's metered size stays within this: the metering
  // chunk (512 B Free, 4096 B paid), so that one billed message carries all it can.
  std::int64_t target_bytes = 512;
  std::int64_t chunk_bytes = 512;  // the metering chunk, for PackedMessage::billed_messages
  // Static application properties (iothub.properties), on every message after "kind". One
  // named "kind" is ignored: the format's own wins.
  azure::PropertyBag static_properties;
};

// The options for `config`'s tier and static properties.
PackOptions PackOptionsFor(const Config& config);

// What a message carries besides its entries, chosen by the caller.
struct MessageHeader {
  std::string message_id;       // $.mid: unique (e.g. NewUuid()), the same on every resend
  std::int64_t seq = 0;         // the body's "seq"
  std::int64_t created_ms = 0;  // iothub-creation-time-utc ($.ctime)
};

struct PackedMessage {
  azure::TelemetryMessage message;
  EntryKind kind = EntryKind::kChange;
  std::vector<std::int64_t> entry_ids;  // the entries it carries, in the order given
  std::int64_t metered_bytes = 0;       // MeteredBytes(message)
  std::int64_t billed_messages = 0;     // ceil(metered_bytes / chunk_bytes), at least 1
};

struct PackResult {
  // The message; nullopt when there were no entries or the first one is oversized.
  std::optional<PackedMessage> message;
  // The first entry's id when it alone makes a message over IoT Hub's 256 KB limit (counted
  // as the device session checks it): the caller replaces its value (LeftOutValue) and packs
  // again. `oversized_bytes` is the size that message would have had.
  std::optional<std::int64_t> oversized_entry;
  std::int64_t oversized_bytes = 0;
};

// Packs pending entries into one telemetry message. Given entries in send order (the
// outbox's: priority, then age), it takes the first entry's kind, then every further entry of
// that kind, in order, while the message's metered size stays within target_bytes. An item
// (or thing) whose entry is skipped, because it does not fit or is of another kind, has all
// its later entries skipped too, so that no change of an item ever travels ahead of an
// earlier one. The first entry is always taken: if it alone exceeds target_bytes the message
// is billed several chunks, and the rest of its last chunk (already paid) is still filled.
// Each entry is serialised once and only its length is tracked while packing; the body is
// assembled at the end. Not thread-safe: one packer per thread (it keeps scratch buffers).
class MessagePacker {
 public:
  explicit MessagePacker(PackOptions options);

  const PackOptions& options() const { return options_; }

  // Builds the message for `entries` (see the class comment). Entries of kind kThing must
  // hold EncodeThingStatus values; item entries any EncodeValue value.
  PackResult Pack(std::span<const Entry> entries, const MessageHeader& header);

 private:
  // One entry's serialised members, as offsets into arena_: `pre` ("value":..., or a thing's
  // status members), `unit` (,"unit":"..") and `post` (,"state", ,"time", ,"merged").
  struct Fragment {
    std::size_t entry = 0;  // index into the span given to Pack
    std::size_t pre_at = 0, pre_len = 0;
    std::size_t unit_at = 0, unit_len = 0;  // also for an empty unit, which a head leaves out
    std::size_t post_at = 0, post_len = 0;
    bool unit_empty = true;
  };
  // One item (or thing) in the message: its fragments oldest first, the last one the head.
  struct Slot {
    std::size_t key_at = 0, key_len = 0;    // "Name" (a JSON string)
    std::size_t type_at = 0, type_len = 0;  // "type":"Number:Power", (items only)
    std::vector<std::size_t> fragments;     // indices into fragments_
    std::size_t history_len = 0;            // bytes of the history elements, without commas
    std::size_t length = 0;                 // bytes of the whole "Name":{...}
  };

  Fragment Serialise(const Entry& entry, std::size_t index);
  void AppendString(std::string_view text);  // as a JSON string, to arena_
  static std::size_t HistoryElementLength(const Fragment& fragment, std::string_view head_unit,
                                          std::span<const Entry> entries);
  static std::size_t SlotLength(std::size_t key_len, std::size_t type_len, const Fragment& head,
                                std::size_t history_count, std::size_t history_len);
  void AppendSlot(std::string& body, const Slot& slot, std::span<const Entry> entries) const;

  PackOptions options_;
  std::int64_t static_metered_ = 0;  // metered bytes of the static properties
  // Scratch, reused by every Pack call.
  std::string arena_;
  std::vector<Fragment> fragments_;
  std::vector<Slot> slots_;
  std::unordered_map<std::string_view, std::size_t> slot_of_;  // key -> index into slots_
  std::unordered_set<std::string_view> blocked_;               // keys skipped in this pack
};

}  // namespace iothub::connector
