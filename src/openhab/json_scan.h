// A scanner for flat JSON objects, the shape of openHAB's event envelopes and state payloads
// (shared/reference/openhab.md §3): `{"key":scalar,...}` whose values are strings, integers,
// true, false or null. It is the fast path in front of nlohmann's parser, not a replacement:
// it answers only when it is sure to read the text exactly as nlohmann::json::parse would
// (same strings after unescaping, same integer types), and otherwise says "not mine" so that
// the caller parses the text in full. Internal to the openHAB client. Thread-safe (pure).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace iothub::openhab {

// A member's value. nlohmann reads a non-negative integer as unsigned and a negative one as
// signed; the kinds keep that distinction so that the Json built from them is the same.
struct FlatValue {
  enum class Kind { kNull, kFalse, kTrue, kUnsigned, kInteger, kString };
  Kind kind = Kind::kNull;
  std::uint64_t unsigned_value = 0;  // kUnsigned
  std::int64_t integer_value = 0;    // kInteger
  std::string text;                  // kString, unescaped (valid UTF-8)
};

struct FlatMember {
  std::string key;  // unescaped
  FlatValue value;
};

// True when `text` is one JSON object, optionally surrounded by JSON whitespace, whose member
// values are all strings, integers of at most 18 digits, true, false or null; `members` (cleared
// first) then holds them in document order, duplicate keys included. False for everything
// else, valid or not: nested values, fractions and exponents, longer integers, a byte order
// mark, invalid escapes or UTF-8, trailing text. On false `members` is unspecified.
bool ScanFlatObject(std::string_view text, std::vector<FlatMember>& members);

// The object nlohmann::json::parse builds from the same text: the last of duplicate keys wins.
nlohmann::json FlatObjectToJson(std::vector<FlatMember>&& members);

}  // namespace iothub::openhab
