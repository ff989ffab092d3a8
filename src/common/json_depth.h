// A guard against hostile JSON: nlohmann's copy, dump and compare recurse per nesting level,
// so a document of 200,000 '[' overflows the stack. Check the text before parsing it.
// Thread-safe (pure function).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace iothub {

// Calls `visit(c, depth)` for each character of `text` outside strings (a string shows as its
// opening '"' alone; escapes honoured), with `depth` the nesting of arrays and objects before
// `c`, until `visit` returns false; returns whether it never did. Says nothing of validity.
template <typename Visit>
bool ScanJsonStructure(std::string_view text, Visit&& visit) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (!visit(c, depth)) return false;
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// True when `text` never nests arrays/objects deeper than `max_depth`.
inline bool JsonDepthWithin(std::string_view text, int max_depth) {
  return ScanJsonStructure(text, [max_depth](char c, int depth) {
    return !((c == '[' || c == '{') && depth + 1 > max_depth);
  });
}

// Deeper than any document IoT Hub accepts (twins allow 10 levels) yet far from the stack.
inline constexpr int kMaxJsonDepth = 64;

// A JSON value as compact text, invalid UTF-8 replaced by U+FFFD: strings that came from a
// device or a user may hold any bytes, and nlohmann's dump() would throw on them.
inline std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A JSON document from untrusted text: nullopt if it is not JSON or nests absurdly deep.
// Never throws.
inline std::optional<nlohmann::json> ParseUntrustedJson(std::string_view text) {
  if (!JsonDepthWithin(text, kMaxJsonDepth)) return std::nullopt;
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return std::nullopt;
  return doc;
}

}  // namespace iothub
