#include "common/json_merge_patch.h"

namespace iothub {

using Json = nlohmann::json;

void ApplyMergePatch(Json& target, const Json& patch) {
  for (const auto& [key, value] : patch.items()) {
    if (value.is_null()) {
      target.erase(key);
    } else if (value.is_object()) {
      Json& child = target[key];
      if (!child.is_object()) child = Json::object();
      ApplyMergePatch(child, value);
    } else {
      target[key] = value;
    }
  }
}

void ComposeMergePatch(Json& first, const Json& second) {
  for (const auto& [key, value] : second.items()) {
    if (value.is_object() && first.contains(key) && first[key].is_object()) {
      ComposeMergePatch(first[key], value);
    } else {
      first[key] = value;
    }
  }
}

Json MergeDiff(const Json& from, const Json& to) {
  Json patch = Json::object();
  if (from.is_object()) {
    for (const auto& [key, value] : from.items()) {
      if (!to.contains(key)) patch[key] = nullptr;
    }
  }
  for (const auto& [key, value] : to.items()) {
    const bool had = from.is_object() && from.contains(key);
    if (!had) {
      patch[key] = value;
    } else if (from[key] != value) {
      patch[key] = value.is_object() && from[key].is_object() ? MergeDiff(from[key], value) : value;
    }
  }
  return patch;
}

}  // namespace iothub
