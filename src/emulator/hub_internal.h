// Internal to the Hub's source files (hub*.cc): helpers more than one of them needs.
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>

namespace iothub::emulator::detail {

// A fresh 256-bit symmetric key, base64.
std::string NewKey();

// IoT Hub prints never-set times as the .NET minimum.
std::string TimeOrMin(std::int64_t ms);

// Whether an `If-Match` header lets a write through to a record with `etag`: absent, `*`, or
// the etag itself, each quoted or not.
bool IfMatchAccepts(const std::string& if_match, const std::string& etag);

}  // namespace iothub::emulator::detail
