// Device twin documents: JSON merge patches with IoT Hub's limits and versioning
// (shared/reference/azure-iothub.md §3 "Twin"). Not thread-safe; owned by the Hub.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace iothub::emulator {

using Json = nlohmann::json;

// One section of a twin: desired or reported properties, or tags.
struct TwinSection {
  Json values = Json::object();
  std::int64_t version = 1;
  std::int64_t last_updated_ms = 0;
};

struct TwinLimits {
  // Measured as IoT Hub does: key lengths plus value sizes (strings by characters, numbers
  // 8 bytes, booleans 4), not as serialized JSON. Tags are limited to 8 KB (kTagLimits).
  std::size_t max_section_bytes = 32UL * 1024;
  std::size_t max_key_bytes = 1024;
  std::size_t max_string_bytes = 4UL * 1024;
  int max_depth = 10;
};

inline const TwinLimits kTagLimits{.max_section_bytes = 8UL * 1024};

// Checks a patch (or a full replacement) before it is applied: an object whose keys obey
// the hub's rules (<= 1 KB, no '.', '$', space or control characters), strings <= 4 KB,
// nesting <= 10 levels below the section (objects and arrays). Errors carry a message fit for the
// 400 answer.
Status ValidateTwinPatch(const Json& patch, const TwinLimits& limits = {});

// Applies a JSON merge patch (RFC 7396: null deletes, objects merge) to `section`, checks the
// resulting size, and on success bumps the version. On error the section is unchanged.
Status ApplyTwinPatch(TwinSection& section, const Json& patch, std::int64_t now_ms,
                      const TwinLimits& limits = {});

// Replaces the section's values wholesale (twin PUT), with the same checks.
Status ReplaceTwinSection(TwinSection& section, const Json& values, std::int64_t now_ms,
                          const TwinLimits& limits = {});

// The section as the hub prints it to services: values plus "$metadata" and "$version".
Json SectionForService(const TwinSection& section);
// The section as a device sees it in a twin GET: values plus "$version".
Json SectionForDevice(const TwinSection& section);

}  // namespace iothub::emulator
