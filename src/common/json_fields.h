// Reading members of untrusted JSON objects without exceptions. Each reader leaves `out`
// untouched when the member is absent or null, and returns false when it is present with the
// wrong type (the caller turns that into its own error answer). A non-object `object` has no
// members. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace iothub::json {

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
  std::vector<std::string> values;
  values.reserve(it->size());
  for (const auto& v : *it) {
    if (!v.is_string()) return false;
    values.push_back(v.get<std::string>());
  }
  out.insert(out.end(), values.begin(), values.end());
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

// An integer member (a JSON number without a fraction that fits in 64 bits).
inline bool ReadInt(const nlohmann::json& object, const char* key, std::int64_t& out) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (it->is_number_integer() &&
      !(it->is_number_unsigned() && it->get<std::uint64_t>() > INT64_MAX)) {
    out = it->get<std::int64_t>();
    return true;
  }
  return false;
}

// Any number member.
inline bool ReadNumber(const nlohmann::json& object, const char* key, double& out) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_number()) return false;
  out = it->get<double>();
  return true;
}

}  // namespace iothub::json
