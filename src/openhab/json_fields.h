// Internal to src/openhab: reading openHAB's DTOs from untrusted JSON. Optional members may be
// absent or null; a member of the wrong type is an error (false). Thread-safe (pure).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json_depth.h"
#include "common/result.h"

namespace iothub::openhab::detail {

inline bool ReadString(const nlohmann::json& object, const char* key, std::string& out) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

inline bool ReadStrings(const nlohmann::json& object, const char* key,
                        std::vector<std::string>& out) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_array()) return false;
  for (const auto& v : *it) {
    if (!v.is_string()) return false;
    out.push_back(v.get<std::string>());
  }
  return true;
}

// An object member, kept as it is.
inline bool ReadObject(const nlohmann::json& object, const char* key, nlohmann::json& out) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_object()) return false;
  out = *it;
  return true;
}

inline bool ReadBool(const nlohmann::json& object, const char* key, bool& out) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_boolean()) return false;
  out = it->get<bool>();
  return true;
}

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
