#include "emulator/twin.h"

#include "common/clock.h"

namespace iothub::emulator {
namespace {

Status Invalid(std::string message) { return MakeError("ArgumentInvalid", std::move(message)); }

Status ValidateValue(const Json& value, const TwinLimits& limits, int depth);

Status ValidateObject(const Json& object, const TwinLimits& limits, int depth) {
  if (depth > limits.max_depth) {
    return Invalid("twin document exceeds the maximum nesting depth of " +
                   std::to_string(limits.max_depth));
  }
  for (const auto& [key, value] : object.items()) {
    if (key.empty()) return Invalid("twin property names must not be empty");
    if (key.size() > limits.max_key_bytes) {
      return Invalid("twin property name longer than " + std::to_string(limits.max_key_bytes) +
                     " bytes");
    }
    for (unsigned char c : key) {
      if (c == '.' || c == '$' || c == ' ' || c < 0x20 || c == 0x7F) {
        return Invalid("twin property name '" + key.substr(0, 64) +
                       "' contains a character IoT Hub does not allow ('.', '$', space or a "
                       "control character)");
      }
    }
    Status status = ValidateValue(value, limits, depth);
    if (!status) return status;
  }
  return Ok{};
}

Status ValidateValue(const Json& value, const TwinLimits& limits, int depth) {
  if (value.is_object()) return ValidateObject(value, limits, depth + 1);
  if (value.is_array()) {
    for (const auto& element : value) {
      Status status = ValidateValue(element, limits, depth + 1);
      if (!status) return status;
    }
  }
  if (value.is_string() && value.get_ref<const std::string&>().size() > limits.max_string_bytes) {
    return Invalid("twin string value longer than " + std::to_string(limits.max_string_bytes) +
                   " bytes");
  }
  return Ok{};
}

void MergePatch(Json& target, const Json& patch) {
  for (const auto& [key, value] : patch.items()) {
    if (value.is_null()) {
      target.erase(key);
    } else if (value.is_object()) {
      Json& child = target[key];
      if (!child.is_object()) child = Json::object();
      MergePatch(child, value);
    } else {
      target[key] = value;
    }
  }
}

Status CheckSize(const Json& values, const TwinLimits& limits) {
  const std::size_t size = values.dump().size();
  if (size > limits.max_section_bytes) {
    return Invalid("twin section would be " + std::to_string(size) + " bytes, over the " +
                   std::to_string(limits.max_section_bytes) + " byte limit");
  }
  return Ok{};
}

}  // namespace

Status ValidateTwinPatch(const Json& patch, const TwinLimits& limits) {
  if (!patch.is_object()) return Invalid("twin patch must be a JSON object");
  return ValidateObject(patch, limits, 1);
}

Status ApplyTwinPatch(TwinSection& section, const Json& patch, std::int64_t now_ms,
                      const TwinLimits& limits) {
  Status valid = ValidateTwinPatch(patch, limits);
  if (!valid) return valid;
  Json next = section.values;
  MergePatch(next, patch);
  Status sized = CheckSize(next, limits);
  if (!sized) return sized;
  section.values = std::move(next);
  ++section.version;
  section.last_updated_ms = now_ms;
  return Ok{};
}

Status ReplaceTwinSection(TwinSection& section, const Json& values, std::int64_t now_ms,
                          const TwinLimits& limits) {
  Status valid = ValidateTwinPatch(values, limits);
  if (!valid) return valid;
  Status sized = CheckSize(values, limits);
  if (!sized) return sized;
  section.values = values;
  ++section.version;
  section.last_updated_ms = now_ms;
  return Ok{};
}

Json SectionForService(const TwinSection& section) {
  Json out = section.values;
  Json metadata = Json::object();
  const std::string updated = FormatIsoTime(section.last_updated_ms);
  metadata["$lastUpdated"] = updated;
  for (const auto& [key, value] : section.values.items()) {
    metadata[key] = {{"$lastUpdated", updated}};
  }
  out["$metadata"] = std::move(metadata);
  out["$version"] = section.version;
  return out;
}

Json SectionForDevice(const TwinSection& section) {
  Json out = section.values;
  out["$version"] = section.version;
  return out;
}

}  // namespace iothub::emulator
