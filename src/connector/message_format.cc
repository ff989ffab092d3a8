#include "connector/message_format.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <utility>

#include "azure/tier.h"

namespace iothub::connector {
namespace {

using openhab::StateKind;

constexpr std::string_view kContentType = "application/json";
constexpr std::string_view kContentEncoding = "utf-8";
constexpr std::string_view kKindProperty = "kind";
// The names of the system properties the device session puts on every message ($.mid, $.ct,
// $.ce, $.ctime): the hub does not meter them, but the session's 256 KB check counts them.
constexpr std::int64_t kSystemNameBytes = 5 + 4 + 4 + 7;
// `,"history":[`
constexpr std::size_t kHistoryOpen = 12;
// No entry adds fewer bytes than this to a message: `{"value":0,"time":"<24>"}` and a comma
// (a thing's `"status":""` is longer than `"value":0`). Below it, packing stops scanning.
constexpr std::int64_t kMinAddedBytes = 45;
// `"time":"<24>"` with its leading comma.
constexpr std::size_t kTimeMemberBytes = 34;

std::string Dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Valid UTF-8 of any text, through the state codec's sanitiser (invalid bytes become U+FFFD).
Json Utf8(std::string_view text) {
  Json json = openhab::ToJson(openhab::MakeString(std::string(text)));
  return std::move(json["value"]);
}

// Integers as integers (exact up to 2^53), other numbers as doubles; non-finite as null.
Json NumberJson(double value) {
  constexpr double kMaxExact = 9007199254740992.0;  // 2^53
  if (!std::isfinite(value)) return nullptr;
  if (std::trunc(value) == value && std::fabs(value) <= kMaxExact) {
    return static_cast<std::int64_t>(value);
  }
  return value;
}

// A number state: the received text when it is an integer that fits 64 bits (exact, where a
// double would round), else the double.
Json StateNumber(const openhab::State& state) {
  std::string_view text = state.number_text;
  if (text.starts_with('+')) text.remove_prefix(1);
  const bool integer_text =
      !text.empty() &&
      text.find_first_not_of("0123456789", text.starts_with('-') ? 1 : 0) == std::string_view::npos;
  if (integer_text && text != "-") {
    std::int64_t i = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), i);
    if (ec == std::errc() && end == text.data() + text.size()) return i;
    std::uint64_t u = 0;
    const auto [uend, uec] = std::from_chars(text.data(), text.data() + text.size(), u);
    if (uec == std::errc() && uend == text.data() + text.size()) return u;
  }
  return NumberJson(state.number);
}

// "Dimmer" of "Group:Dimmer" and "Number" of "Number:Power".
std::string_view BaseType(std::string_view item_type) {
  if (item_type.starts_with("Group:")) item_type.remove_prefix(6);
  return item_type.substr(0, item_type.find(':'));
}

// Bytes of the data in a base64 data URI.
std::int64_t DecodedBytes(std::string_view data_uri) {
  const auto comma = data_uri.find(',');
  std::string_view data = comma == std::string_view::npos ? "" : data_uri.substr(comma + 1);
  while (data.ends_with('=')) data.remove_suffix(1);
  return static_cast<std::int64_t>(data.size() * 3 / 4);
}

// Bytes an entry's serialised members take at least, without the unit (which a history
// element may leave out): `"value":V` (or a thing's `"status":".."`), a state, the time, a
// merged object. Computed without serialising.
std::int64_t MembersLowerBound(const Entry& entry) {
  std::int64_t bound = static_cast<std::int64_t>(kTimeMemberBytes);
  if (entry.kind == EntryKind::kThing) return bound + 11;  // "status":""
  const Json& v = entry.value;
  std::size_t value = 1;
  if (v.is_string()) {
    value = v.get_ref<const std::string&>().size() + 2;
  } else if (v.is_null() || v.is_boolean()) {
    value = 4;
  } else if (v.is_object() || v.is_array()) {
    value = 2;
  }
  bound += static_cast<std::int64_t>(8 + value);
  if (!entry.state.empty()) bound += static_cast<std::int64_t>(11 + entry.state.size());
  if (entry.count > 1) bound += 50;  // ,"merged":{"count":N,"since":"<24>"}
  return bound;
}

}  // namespace

std::string_view ToString(EntryKind kind) {
  switch (kind) {
    case EntryKind::kChange:
      return "changes";
    case EntryKind::kSnapshot:
      return "snapshot";
    case EntryKind::kThing:
      return "things";
  }
  return "changes";
}

Json LeftOutValue(std::int64_t bytes, std::string_view mime_type) {
  Json json = Json::object();
  json["bytes"] = bytes;
  if (!mime_type.empty()) json["mimeType"] = Utf8(mime_type);
  return json;
}

EncodedValue EncodeValue(std::string_view item_type, const openhab::State& state) {
  EncodedValue out;
  const std::string_view base = BaseType(item_type);
  switch (state.kind) {
    case StateKind::kNull:
      out.state = "NULL";
      break;
    case StateKind::kUndef:
      out.state = "UNDEF";
      break;
    case StateKind::kOnOff:
      // openHAB's DimmerItem stores ON/OFF as the percents 100/0.
      if (base == "Dimmer") {
        out.value = state.word == openhab::Word::kOn ? 100 : 0;
      } else {
        out.value = openhab::ToCommandText(state);
      }
      break;
    case StateKind::kUpDown:
      // RollershutterItem stores UP/DOWN as 0/100 (percent closed).
      if (base == "Rollershutter") {
        out.value = state.word == openhab::Word::kUp ? 0 : 100;
      } else {
        out.value = openhab::ToCommandText(state);
      }
      break;
    case StateKind::kDecimal:
    case StateKind::kPercent:
      out.value = StateNumber(state);
      break;
    case StateKind::kQuantity: {
      out.value = StateNumber(state);
      Json json = openhab::ToJson(state);
      out.unit = json.value("unit", "");
      break;
    }
    case StateKind::kHsb:
    case StateKind::kPoint: {
      out.value = openhab::ToJson(state);
      out.value.erase("kind");
      break;
    }
    case StateKind::kDateTime:
      if (state.date_time.epoch_ms) {
        out.value = FormatIsoTimeMs(*state.date_time.epoch_ms);
      } else {
        out.value = std::move(openhab::ToJson(state)["value"]);
      }
      break;
    case StateKind::kRaw:
      if (state.text.size() <= kMaxInlineRawBytes) {
        out.value = std::move(openhab::ToJson(state)["value"]);
      } else {
        out.value = LeftOutValue(DecodedBytes(state.text), state.mime_type);
      }
      break;
    case StateKind::kString:
    case StateKind::kStringList:
      out.value = std::move(openhab::ToJson(state)["value"]);
      break;
    default:  // the other words: OPEN, CLOSED, PLAY, REWIND, STOP, ...
      out.value = openhab::ToCommandText(state);
      break;
  }
  return out;
}

Json EncodeThingStatus(std::string_view status, std::string_view detail,
                       std::string_view description) {
  Json json = Json::object();
  json["status"] = Utf8(status);
  if (!detail.empty()) json["detail"] = Utf8(detail);
  if (!description.empty()) json["description"] = Utf8(description);
  return json;
}

std::int64_t MeteredBytes(const azure::TelemetryMessage& message) {
  const auto size = [](const std::string& s) { return static_cast<std::int64_t>(s.size()); };
  return azure::MeteredBytes(message.body, message.properties) + size(message.message_id) +
         size(message.content_type) + size(message.content_encoding) + size(message.component) +
         size(message.creation_time) + size(message.correlation_id);
}

PackOptions PackOptionsFor(const Config& config) {
  PackOptions options;
  options.chunk_bytes = azure::ChunkBytes(config.quota.tier);
  options.target_bytes = options.chunk_bytes;
  for (const auto& [name, value] : config.iothub.properties) {
    options.static_properties.push_back({name, value});
  }
  return options;
}

MessagePacker::MessagePacker(PackOptions options) : options_(std::move(options)) {
  options_.chunk_bytes = std::max<std::int64_t>(1, options_.chunk_bytes);
  std::erase_if(options_.static_properties,
                [](const azure::Property& p) { return p.name == kKindProperty; });
  static_metered_ = azure::MeteredBytes("", options_.static_properties);
}

void MessagePacker::AppendString(std::string_view text) {
  const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
  });
  if (plain) {
    arena_ += '"';
    arena_ += text;
    arena_ += '"';
  } else {
    arena_ += Dump(Json(std::string(text)));  // escapes; invalid UTF-8 becomes U+FFFD
  }
}

MessagePacker::Fragment MessagePacker::Serialise(const Entry& entry, std::size_t index) {
  Fragment f;
  f.entry = index;
  f.pre_at = arena_.size();
  const bool thing = entry.kind == EntryKind::kThing;
  if (thing) {
    // A thing's status members, flattened into its object: status first, then detail and
    // description when present.
    const auto member = [&](const char* name) -> const Json* {
      if (!entry.value.is_object()) return nullptr;
      const auto it = entry.value.find(name);
      return it != entry.value.end() && it->is_string() ? &*it : nullptr;
    };
    const Json* status = member("status");
    arena_ += "\"status\":";
    arena_ += status != nullptr ? Dump(*status) : std::string("\"UNKNOWN\"");
    for (const char* name : {"detail", "description"}) {
      if (const Json* m = member(name)) {
        arena_ += ",\"";
        arena_ += name;
        arena_ += "\":";
        arena_ += Dump(*m);
      }
    }
  } else {
    arena_ += "\"value\":";
    arena_ += Dump(entry.value);
  }
  f.pre_len = arena_.size() - f.pre_at;
  f.unit_at = arena_.size();
  if (!thing) {
    arena_ += ",\"unit\":";
    AppendString(entry.unit);
  }
  f.unit_len = arena_.size() - f.unit_at;
  f.unit_empty = entry.unit.empty() || thing;
  f.post_at = arena_.size();
  if (!thing && !entry.state.empty()) {
    arena_ += ",\"state\":";
    AppendString(entry.state);
  }
  arena_ += ",\"time\":\"";
  AppendIsoTimeMs(arena_, entry.time_ms);
  arena_ += '"';
  if (entry.count > 1) {
    arena_ += ",\"merged\":{\"count\":";
    arena_ += std::to_string(entry.count);
    if (entry.min && std::isfinite(*entry.min)) {
      arena_ += ",\"min\":";
      arena_ += Dump(NumberJson(*entry.min));
    }
    if (entry.max && std::isfinite(*entry.max)) {
      arena_ += ",\"max\":";
      arena_ += Dump(NumberJson(*entry.max));
    }
    arena_ += ",\"since\":\"";
    AppendIsoTimeMs(arena_, entry.first_ms != 0 ? entry.first_ms : entry.time_ms);
    arena_ += "\"}";
  }
  f.post_len = arena_.size() - f.post_at;
  return f;
}

std::size_t MessagePacker::HistoryElementLength(const Fragment& fragment,
                                                std::string_view head_unit,
                                                std::span<const Entry> entries) {
  const bool same_unit = entries[fragment.entry].unit == head_unit;
  return 2 + fragment.pre_len + (same_unit ? 0 : fragment.unit_len) + fragment.post_len;
}

std::size_t MessagePacker::SlotLength(std::size_t key_len, std::size_t type_len,
                                      const Fragment& head, std::size_t history_count,
                                      std::size_t history_len) {
  // "Name":{"type":"T",<head>[,"history":[{..},{..}]]}
  std::size_t length = key_len + 2 + type_len + head.pre_len + head.post_len + 1;
  if (!head.unit_empty) length += head.unit_len;
  if (history_count > 0) length += kHistoryOpen + history_len + (history_count - 1) + 1;
  return length;
}

void MessagePacker::AppendSlot(std::string& body, const Slot& slot,
                               std::span<const Entry> entries) const {
  const auto part = [this, &body](std::size_t at, std::size_t len) {
    body.append(arena_, at, len);
  };
  const Fragment& head = fragments_[slot.fragments.back()];
  const std::string_view head_unit = entries[head.entry].unit;
  part(slot.key_at, slot.key_len);
  body += ":{";
  part(slot.type_at, slot.type_len);
  part(head.pre_at, head.pre_len);
  if (!head.unit_empty) part(head.unit_at, head.unit_len);
  part(head.post_at, head.post_len);
  if (slot.fragments.size() > 1) {
    body += ",\"history\":[";
    for (std::size_t i = 0; i + 1 < slot.fragments.size(); ++i) {
      const Fragment& f = fragments_[slot.fragments[i]];
      if (i > 0) body += ',';
      body += '{';
      part(f.pre_at, f.pre_len);
      if (entries[f.entry].unit != head_unit) part(f.unit_at, f.unit_len);
      part(f.post_at, f.post_len);
      body += '}';
    }
    body += ']';
  }
  body += '}';
}

PackResult MessagePacker::Pack(std::span<const Entry> entries, const MessageHeader& header) {
  PackResult result;
  if (entries.empty()) return result;
  arena_.clear();
  fragments_.clear();
  slots_.clear();
  slot_of_.clear();
  blocked_.clear();

  const EntryKind kind = entries.front().kind;
  const bool things = kind == EntryKind::kThing;
  const std::string_view kind_name = ToString(kind);
  const std::string creation_time = FormatIsoTimeMs(header.created_ms);

  std::string envelope_head = "{\"v\":" + std::to_string(kMessageFormatVersion) + ",\"kind\":\"";
  envelope_head += kind_name;
  envelope_head += "\",\"seq\":" + std::to_string(header.seq);
  envelope_head += things ? ",\"things\":{" : ",\"items\":{";
  constexpr std::string_view kEnvelopeTail = "}}";

  // Everything but the body's slots, as the hub meters it.
  const std::int64_t fixed =
      static_cast<std::int64_t>(header.message_id.size() + kContentType.size() +
                                kContentEncoding.size() + creation_time.size() +
                                kKindProperty.size() + kind_name.size() + envelope_head.size() +
                                kEnvelopeTail.size()) +
      static_metered_;
  constexpr auto kMaxWire = static_cast<std::int64_t>(azure::kMaxTelemetryBytes);
  std::int64_t slots_bytes = 0;  // the slots with the commas between them
  std::int64_t limit = options_.target_bytes;

  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& entry = entries[i];
    const bool first = fragments_.empty();
    const std::int64_t metered = fixed + slots_bytes;
    if (!first && limit - metered < kMinAddedBytes) break;
    const std::string_view key = entry.key;
    if (!first && blocked_.contains(key)) continue;
    if (entry.kind != kind) {
      blocked_.insert(key);
      continue;
    }
    const auto found = slot_of_.find(key);
    const bool new_slot = found == slot_of_.end();
    // Most entries that cannot fit are known without serialising them: what they add is at
    // least their members (a lower bound) and, for a new item, its key and type.
    if (!first) {
      std::int64_t bound = -1;
      if (new_slot) {
        bound = static_cast<std::int64_t>(1 + key.size() + 2 + 3 +
                                          (things ? 0 : 10 + entry.type.size())) +
                MembersLowerBound(entry);
      } else {
        // The earlier head moves into the history (braces and a separator); with the same
        // unit and type nothing else changes.
        const Entry& head = entries[fragments_[slots_[found->second].fragments.back()].entry];
        if (head.unit == entry.unit && head.type == entry.type) {
          bound = MembersLowerBound(entry) + 3;
        }
      }
      if (bound >= 0 && metered + bound > limit) {
        blocked_.insert(key);
        continue;
      }
    }

    const std::size_t arena_mark = arena_.size();
    const Fragment fragment = Serialise(entry, i);
    const auto append_type = [&](std::size_t& at, std::size_t& len) {
      at = arena_.size();
      arena_ += "\"type\":";
      AppendString(entry.type);
      arena_ += ',';
      len = arena_.size() - at;
    };
    // The slot as it would be with this entry as its head.
    std::size_t key_at = 0;
    std::size_t key_len = 0;
    std::size_t type_at = 0;
    std::size_t type_len = 0;
    std::size_t history_count = 0;
    std::size_t history_len = 0;
    std::int64_t grown = 0;
    std::size_t length = 0;
    if (new_slot) {
      key_at = arena_.size();
      AppendString(key);
      key_len = arena_.size() - key_at;
      if (!things) append_type(type_at, type_len);
      length = SlotLength(key_len, type_len, fragment, 0, 0);
      grown = static_cast<std::int64_t>(length) + (slots_.empty() ? 0 : 1);
    } else {
      const Slot& slot = slots_[found->second];
      type_at = slot.type_at;
      type_len = slot.type_len;
      const Fragment& old_head = fragments_[slot.fragments.back()];
      if (!things && entries[old_head.entry].type != entry.type) append_type(type_at, type_len);
      history_count = slot.fragments.size();
      if (entries[old_head.entry].unit == entry.unit) {
        history_len = slot.history_len + HistoryElementLength(old_head, entry.unit, entries);
      } else {
        // History elements carry their unit where it differs from the head's: a new head
        // unit changes that for every element.
        for (const std::size_t f : slot.fragments) {
          history_len += HistoryElementLength(fragments_[f], entry.unit, entries);
        }
      }
      length = SlotLength(slot.key_len, type_len, fragment, history_count, history_len);
      grown = static_cast<std::int64_t>(length) - static_cast<std::int64_t>(slot.length);
    }
    const std::int64_t next = metered + grown;
    if (first) {
      if (next + kSystemNameBytes > kMaxWire) {
        result.oversized_entry = entry.id;
        result.oversized_bytes = next + kSystemNameBytes;
        return result;
      }
      if (next > limit) {
        // Already billed several chunks: the rest of the last one costs nothing.
        limit = azure::BilledMessages(next, options_.chunk_bytes) * options_.chunk_bytes;
      }
    } else if (next > limit || next + kSystemNameBytes > kMaxWire) {
      arena_.resize(arena_mark);
      blocked_.insert(key);
      continue;
    }
    slots_bytes += grown;
    fragments_.push_back(fragment);
    if (new_slot) {
      Slot slot;
      slot.key_at = key_at;
      slot.key_len = key_len;
      slot.type_at = type_at;
      slot.type_len = type_len;
      slot.fragments.push_back(fragments_.size() - 1);
      slot.length = length;
      slot_of_.emplace(key, slots_.size());
      slots_.push_back(std::move(slot));
    } else {
      Slot& slot = slots_[found->second];
      slot.type_at = type_at;
      slot.type_len = type_len;
      slot.fragments.push_back(fragments_.size() - 1);
      slot.history_len = history_len;
      slot.length = length;
    }
  }

  PackedMessage packed;
  packed.kind = kind;
  std::string& body = packed.message.body;
  const auto body_bytes = static_cast<std::size_t>(
      static_cast<std::int64_t>(envelope_head.size() + kEnvelopeTail.size()) + slots_bytes);
  body.reserve(body_bytes);
  body += envelope_head;
  for (std::size_t s = 0; s < slots_.size(); ++s) {
    if (s > 0) body += ',';
    AppendSlot(body, slots_[s], entries);
  }
  body += kEnvelopeTail;
  if (body.size() != body_bytes) {
    std::fprintf(stderr, "message_format: body is %zu bytes, %zu were counted\n", body.size(),
                 body_bytes);
    std::abort();
  }
  packed.entry_ids.reserve(fragments_.size());
  for (const Fragment& f : fragments_) packed.entry_ids.push_back(entries[f.entry].id);

  azure::TelemetryMessage& message = packed.message;
  message.message_id = header.message_id;
  message.content_type = kContentType;
  message.content_encoding = kContentEncoding;
  message.creation_time = creation_time;
  message.properties.reserve(1 + options_.static_properties.size());
  message.properties.push_back({std::string(kKindProperty), std::string(kind_name)});
  message.properties.insert(message.properties.end(), options_.static_properties.begin(),
                            options_.static_properties.end());
  packed.metered_bytes = fixed + slots_bytes;
  packed.billed_messages = azure::BilledMessages(packed.metered_bytes, options_.chunk_bytes);
  result.message = std::move(packed);
  return result;
}

}  // namespace iothub::connector
