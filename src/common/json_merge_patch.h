// JSON Merge Patch (RFC 7396), as IoT Hub uses it for twins: null deletes a member, objects
// merge member by member, anything else replaces. Thread-safe (pure functions).
#pragma once

#include <nlohmann/json.hpp>

namespace iothub {

// Applies `patch` to `target`.
void ApplyMergePatch(nlohmann::json& target, const nlohmann::json& patch);
// Turns `first` into one patch with the effect of `first` then `second` (a null in `second`
// stays a deletion rather than vanishing).
void ComposeMergePatch(nlohmann::json& first, const nlohmann::json& second);
// The patch that turns `from` into `to` (members removed become null).
nlohmann::json MergeDiff(const nlohmann::json& from, const nlohmann::json& to);

}  // namespace iothub
