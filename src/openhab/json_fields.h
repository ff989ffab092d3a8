// Internal to src/openhab: reading lists of openHAB's DTOs from untrusted JSON (the member
// readers are common/json_fields.h). Thread-safe (pure).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json_depth.h"
#include "common/json_fields.h"
#include "common/result.h"

namespace iothub::openhab::detail {

// A list response (`GET /rest/items`, `/rest/things`, `/rest/links`): every entry `parse`
// understands, and the reasons for those it does not. Fails only when the body is not a JSON
// array ("bad_response", naming `what`).
template <typename T, typename Parse>
Result<std::pair<std::vector<T>, std::vector<Error>>> ParseEach(std::string_view body,
                                                                std::string_view what,
                                                                Parse parse) {
  const auto doc = ParseUntrustedJson(body);
  if (!doc || !doc->is_array()) {
    return MakeError("bad_response", "the " + std::string(what) + " is not a JSON array");
  }
  std::pair<std::vector<T>, std::vector<Error>> out;
  out.first.reserve(doc->size());
  for (const auto& entry : *doc) {
    auto parsed = parse(entry);
    if (parsed) {
      out.first.push_back(std::move(parsed).value());
    } else {
      out.second.push_back(parsed.error());
    }
  }
  return out;
}

}  // namespace iothub::openhab::detail
