// IoT Hub's pricing tiers and what a client must know of them (shared/reference/azure-iothub.md
// §5): the daily message quota, the metering chunk, the units a hub may have, and which tiers
// lack cloud-to-device, twins and methods. Shared by the emulator (which also knows the
// throttles) and the connector's budget. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "azure/property_bag.h"
#include "common/result.h"

namespace iothub::azure {

// Basic tiers (B1-B3) carry the quotas of S1-S3 but only device-to-cloud telemetry: no
// cloud-to-device messages, twins or direct methods.
enum class Tier { kFree, kB1, kB2, kB3, kS1, kS2, kS3 };

// "free" (also "Free", "F1"), "B1".."B3", "S1".."S3" (either case). The error lists them.
Result<Tier> ParseTier(const std::string& text);
std::string TierName(Tier tier);
bool IsBasicTier(Tier tier);
// Units Azure lets a hub of `tier` have: exactly 1 on Free, 1-200 on sizes 1 and 2, 1-10 on
// size 3. The error says which range applies.
Status CheckUnits(Tier tier, int units);

// Metering chunks (and throttle steps) are 4 KB on paid tiers; Free meters in 0.5 KB chunks.
inline constexpr std::int64_t kFourKilobytes = 4096;
std::int64_t ChunkBytes(Tier tier);
// The hub's daily message quota for all its units: Free 8,000; size 1 400,000, size 2
// 6,000,000, size 3 300,000,000 per unit.
std::int64_t DailyMessages(Tier tier, int units);

// Size of a message as IoT Hub meters it (§5): the body, plus the values (not the names) of
// its system properties ("$.mid", "$.ct", ...), plus the names and values of its application
// properties. The emulator bills with it and the connector packs messages by it.
std::int64_t MeteredBytes(std::string_view body, const PropertyBag& properties);

// Messages an operation of `bytes` is billed as with `chunk_bytes` chunks (§5):
// ceil(bytes / chunk_bytes), at least 1 (an empty message still counts). `chunk_bytes` > 0.
std::int64_t BilledMessages(std::int64_t bytes, std::int64_t chunk_bytes);

struct TierLimits {
  std::int64_t daily_messages = 0;  // for all units together
  std::int64_t chunk_bytes = 0;     // metering chunk
  double d2c_per_second = 0;        // device-to-cloud sends
  double twin_reads_per_second = 0;
  double twin_updates_per_second = 0;
  double connections_per_second = 0;
  double registry_per_minute = 0;  // a bulk request takes one per device in it
  double c2d_per_minute = 0;
  // Direct methods are throttled by request payload in 4 KB steps, not by call count.
  double method_steps_per_second = 0;
};

// Microsoft's "IoT Hub quotas and throttling" table for `tier` with `units` units: the
// emulator enforces it, the connector stays under it.
TierLimits LimitsFor(Tier tier, int units);

}  // namespace iothub::azure
