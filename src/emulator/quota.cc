#include "emulator/quota.h"

#include <algorithm>

namespace iothub::emulator {
namespace {
constexpr std::int64_t kDayMs = 86'400'000;
}

Result<Tier> ParseTier(const std::string& text) {
  if (text == "free" || text == "Free" || text == "F1") return Tier::kFree;
  if (text == "S1" || text == "s1") return Tier::kS1;
  if (text == "S2" || text == "s2") return Tier::kS2;
  if (text == "S3" || text == "s3") return Tier::kS3;
  return MakeError("InvalidTier", "unknown tier '" + text + "' (expected free, S1, S2 or S3)");
}

std::string TierName(Tier tier) {
  switch (tier) {
    case Tier::kFree:
      return "free";
    case Tier::kS1:
      return "S1";
    case Tier::kS2:
      return "S2";
    case Tier::kS3:
      return "S3";
  }
  return "?";
}

TierLimits LimitsFor(Tier tier, int units) {
  // Throttles per Microsoft's "IoT Hub quotas and throttling" table; S2/S3 scale per unit.
  const double u = units;
  switch (tier) {
    case Tier::kFree:
      return {8'000, 512, 100, 100, 50, 100, 100, 100, 20};
    case Tier::kS1:
      return {400'000LL * units,
              4096,
              std::max(100.0, 12 * u),
              std::max(100.0, 10 * u),
              std::max(50.0, 5 * u),
              std::max(100.0, 12 * u),
              100 * u,
              100 * u,
              std::max(20.0, 10 * u)};
    case Tier::kS2:
      return {6'000'000LL * units,
              4096,
              std::max(100.0, 120 * u),
              std::max(100.0, 100 * u),
              std::max(50.0, 50 * u),
              std::max(100.0, 120 * u),
              100 * u,
              100 * u,
              std::max(20.0, 10 * u)};
    case Tier::kS3:
      return {300'000'000LL * units,
              4096,
              6000 * u,
              1000 * u,
              500 * u,
              6000 * u,
              5000 * u,
              5000 * u,
              1000 * u};
  }
  return {};
}

bool TokenBucket::TryTake(std::int64_t now_ms) {
  if (last_ms_ >= 0 && now_ms > last_ms_) {
    tokens_ = std::min(burst_, tokens_ + rate_ * double(now_ms - last_ms_) / 1000.0);
  }
  last_ms_ = std::max(last_ms_, now_ms);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

DailyQuota::DailyQuota(Tier tier, int units)
    : tier_(tier), units_(units), limits_(LimitsFor(tier, units)) {}

std::int64_t DailyQuota::MessagesFor(std::int64_t bytes) const {
  return std::max<std::int64_t>(1, (bytes + limits_.chunk_bytes - 1) / limits_.chunk_bytes);
}

void DailyQuota::RollOver(std::int64_t now_ms) {
  const std::int64_t day = now_ms / kDayMs;
  if (day != day_) {
    day_ = day;
    used_ = 0;
  }
}

bool DailyQuota::Charge(std::int64_t messages, std::int64_t now_ms) {
  RollOver(now_ms);
  if (used_ >= limits_.daily_messages) return false;
  used_ += messages;
  return true;
}

bool DailyQuota::Exhausted(std::int64_t now_ms) {
  RollOver(now_ms);
  return used_ >= limits_.daily_messages;
}

std::int64_t DailyQuota::Used(std::int64_t now_ms) {
  RollOver(now_ms);
  return used_;
}

std::int64_t DailyQuota::ResetsAtMs(std::int64_t now_ms) const {
  return (now_ms / kDayMs + 1) * kDayMs;
}

}  // namespace iothub::emulator
