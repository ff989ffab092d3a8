#include "azure/tier.h"

#include <algorithm>

namespace iothub::azure {

Result<Tier> ParseTier(const std::string& text) {
  if (text == "free" || text == "Free" || text == "F1" || text == "f1") return Tier::kFree;
  if (text == "B1" || text == "b1") return Tier::kB1;
  if (text == "B2" || text == "b2") return Tier::kB2;
  if (text == "B3" || text == "b3") return Tier::kB3;
  if (text == "S1" || text == "s1") return Tier::kS1;
  if (text == "S2" || text == "s2") return Tier::kS2;
  if (text == "S3" || text == "s3") return Tier::kS3;
  return MakeError("InvalidTier",
                   "unknown tier '" + text + "' (expected free, B1, B2, B3, S1, S2 or S3)");
}

std::string TierName(Tier tier) {
  switch (tier) {
    case Tier::kFree:
      return "free";
    case Tier::kB1:
      return "B1";
    case Tier::kB2:
      return "B2";
    case Tier::kB3:
      return "B3";
    case Tier::kS1:
      return "S1";
    case Tier::kS2:
      return "S2";
    case Tier::kS3:
      return "S3";
  }
  return "?";
}

bool IsBasicTier(Tier tier) { return tier == Tier::kB1 || tier == Tier::kB2 || tier == Tier::kB3; }

Status CheckUnits(Tier tier, int units) {
  // Azure's scaling page: a free hub is one unit; sizes 1 and 2 scale to 200 units, size 3
  // to 10.
  const int max = tier == Tier::kFree ? 1 : (tier == Tier::kS3 || tier == Tier::kB3) ? 10 : 200;
  if (units >= 1 && units <= max) return Ok{};
  const std::string allowed =
      max == 1 ? "exactly 1 unit" : "1 to " + std::to_string(max) + " units";
  return MakeError("InvalidUnits", "tier " + TierName(tier) + " allows " + allowed + ", not " +
                                       std::to_string(units));
}

std::int64_t ChunkBytes(Tier tier) { return tier == Tier::kFree ? 512 : kFourKilobytes; }

std::int64_t DailyMessages(Tier tier, int units) {
  switch (tier) {
    case Tier::kFree:
      return 8'000;
    case Tier::kB1:
    case Tier::kS1:
      return 400'000LL * units;
    case Tier::kB2:
    case Tier::kS2:
      return 6'000'000LL * units;
    case Tier::kB3:
    case Tier::kS3:
      return 300'000'000LL * units;
  }
  return 0;
}

std::int64_t MeteredBytes(std::string_view body, const PropertyBag& properties) {
  auto size = static_cast<std::int64_t>(body.size());
  for (const auto& p : properties) {
    if (!IsSystemProperty(p.name)) size += static_cast<std::int64_t>(p.name.size());
    if (p.value) size += static_cast<std::int64_t>(p.value->size());
  }
  return size;
}

std::int64_t BilledMessages(std::int64_t bytes, std::int64_t chunk_bytes) {
  return std::max<std::int64_t>(1, (bytes + chunk_bytes - 1) / chunk_bytes);
}

TierLimits LimitsFor(Tier tier, int units) {
  // Microsoft's "IoT Hub quotas and throttling" table. Twin throttles are flat on Free/S1,
  // have a floor on S2 and scale per unit on S3; direct methods are KB/s per unit in 4 KB
  // steps (160 KB/s = 40 steps, 480 KB/s = 120, 24 MB/s = 6144).
  const double u = units;
  switch (tier) {
    case Tier::kFree:
      return {DailyMessages(tier, units), ChunkBytes(tier), 100, 100, 50, 100, 100, 100, 40};
    case Tier::kB1:
    case Tier::kS1:
      return {DailyMessages(tier, units),
              ChunkBytes(tier),
              std::max(100.0, 12 * u),
              100,
              50,
              std::max(100.0, 12 * u),
              100 * u,
              100 * u,
              40 * u};
    case Tier::kB2:
    case Tier::kS2:
      return {DailyMessages(tier, units),
              ChunkBytes(tier),
              120 * u,
              std::max(100.0, 10 * u),
              std::max(50.0, 5 * u),
              120 * u,
              100 * u,
              100 * u,
              120 * u};
    case Tier::kB3:
    case Tier::kS3:
      return {DailyMessages(tier, units),
              ChunkBytes(tier),
              6000 * u,
              500 * u,
              250 * u,
              6000 * u,
              5000 * u,
              5000 * u,
              6144 * u};
  }
  return {};
}

}  // namespace iothub::azure
