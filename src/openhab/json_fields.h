// Internal to src/openhab: reading lists of openHAB's DTOs from untrusted JSON (the member
// readers are common/json_fields.h). Thread-safe (pure).
#pragma once

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json_depth.h"
#include "common/json_fields.h"
#include "common/result.h"

namespace iothub::openhab::detail {

// The number of entries of the JSON array `text` (commas at the top level plus one, strings
// skipped), for reserving room before the parse. Says nothing about validity.
inline std::size_t CountArrayEntries(std::string_view text) {
  std::size_t commas = 0;
  bool any = false;
  ScanJsonStructure(text, [&](char c, int depth) {
    if (depth != 1) return true;
    if (c == ',') ++commas;
    if (c != ']' && c != ',' && c != ' ' && c != '\t' && c != '\r' && c != '\n') any = true;
    return true;
  });
  return any ? commas + 1 : 0;
}

// A list response (`GET /rest/items`, `/rest/things`, `/rest/links`): every entry `parse`
// understands, and the reasons for those it does not. Fails only when the body is not a JSON
// array ("bad_response", naming `what`). Each entry is handed to `parse` as soon as it is read
// and then dropped, so that a thousand items never stand as one document in memory (that
// took a few megabytes at the peak, and the heap kept them).
template <typename T, typename Parse>
Result<std::pair<std::vector<T>, std::vector<Error>>> ParseEach(std::string_view body,
                                                                std::string_view what,
                                                                Parse parse) {
  const auto bad = [what] {
    return MakeError("bad_response", "the " + std::string(what) + " is not a JSON array");
  };
  const std::size_t first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || body[first] != '[' ||
      !JsonDepthWithin(body, kMaxJsonDepth)) {
    return bad();
  }
  std::pair<std::vector<T>, std::vector<Error>> out;
  // Growing by doubling would hold up to one and a half lists at once; a hostile body of
  // commas reserves no more than a big home's list.
  constexpr std::size_t kMaxReserved = 10'000;
  out.first.reserve(std::min(CountArrayEntries(body), kMaxReserved));
  using Event = nlohmann::json::parse_event_t;
  const auto each = [&](int depth, Event event, nlohmann::json& value) {
    // Depth 1 is an entry of the top-level array; its end is where it is complete.
    if (depth != 1 ||
        (event != Event::object_end && event != Event::array_end && event != Event::value)) {
      return true;
    }
    auto parsed = parse(value);
    if (parsed) {
      out.first.push_back(std::move(parsed).value());
    } else {
      out.second.push_back(parsed.error());
    }
    return false;  // not kept in the document
  };
  const nlohmann::json doc = nlohmann::json::parse(body, each, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return bad();
  return out;
}

}  // namespace iothub::openhab::detail
