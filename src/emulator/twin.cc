#include "emulator/twin.h"

#include "common/clock.h"
#include "common/json_merge_patch.h"

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
    if (depth + 1 > limits.max_depth) {
      return Invalid("twin document exceeds the maximum nesting depth of " +
                     std::to_string(limits.max_depth));
    }
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

// Characters of a UTF-8 string, not counting C0/C1 control characters (Microsoft's rule).
std::size_t CountedLength(const std::string& text) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    if (c < 0x20 || c == 0x7F) continue;
    if (c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xA0) {
      continue;  // U+0080..U+009F
    }
    ++count;
  }
  return count;
}

// IoT Hub's twin size: per property, the key's length plus the value's size (strings by
// characters, numbers 8 bytes, booleans 4, objects recursively). Arrays count their elements.
std::size_t TwinSize(const Json& value) {
  if (value.is_object()) {
    std::size_t size = 0;
    for (const auto& [key, member] : value.items()) size += CountedLength(key) + TwinSize(member);
    return size;
  }
  if (value.is_array()) {
    std::size_t size = 0;
    for (const auto& element : value) size += TwinSize(element);
    return size;
  }
  if (value.is_string()) return CountedLength(value.get_ref<const std::string&>());
  if (value.is_number()) return 8;
  if (value.is_boolean()) return 4;
  return 0;
}

Status CheckSize(const Json& values, const TwinLimits& limits) {
  const std::size_t size = TwinSize(values);
  if (size > limits.max_section_bytes) {
    return Invalid("twin section would be " + std::to_string(size) + " bytes, over the " +
                   std::to_string(limits.max_section_bytes) + " byte limit");
  }
  return Ok{};
}

}  // namespace

Status ValidateTwinPatch(const Json& patch, const TwinLimits& limits) {
  if (!patch.is_object()) return Invalid("twin patch must be a JSON object");
  return ValidateObject(patch, limits, 0);
}

Status ApplyTwinPatch(TwinSection& section, const Json& patch, std::int64_t now_ms,
                      const TwinLimits& limits) {
  Status valid = ValidateTwinPatch(patch, limits);
  if (!valid) return valid;
  Json next = section.values;
  ApplyMergePatch(next, patch);
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
