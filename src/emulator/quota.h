// IoT Hub's tiers, daily message quota, metering and throttles (shared/reference/azure-iothub.md
// §5; the rules as implemented are tabled in docs/emulator-api.md). Not thread-safe; owned by
// the Hub.
#pragma once

#include <cstdint>
#include <string>

#include "azure/tier.h"
#include "common/result.h"

namespace iothub::emulator {

// The tiers are the client library's (azure/tier.h); the emulator adds their throttles.
using azure::BilledMessages;
using azure::CheckUnits;
using azure::IsBasicTier;
using azure::kFourKilobytes;
using azure::MeteredBytes;
using azure::ParseTier;
using azure::Tier;
using azure::TierName;

// What a device's twin request gets once the day's quota is gone (§5): reports differ, so
// both are available (`--quota-twin-answer`).
enum class QuotaTwinAnswer {
  kClose,   // no answer, the connection is closed (as for telemetry)
  kStatus,  // `$iothub/twin/res/403/?$rid=..` with error 403002; the connection stays
};

Result<QuotaTwinAnswer> ParseQuotaTwinAnswer(const std::string& text);  // "close" | "403"
std::string QuotaTwinAnswerName(QuotaTwinAnswer answer);

// The throttles and quotas of a tier (azure/tier.h).
using azure::LimitsFor;
using azure::TierLimits;

// 4 KB throttle steps of a payload: ceil(bytes / 4096), at least 1.
std::int64_t ThrottleSteps(std::int64_t bytes);

// A token bucket: `rate` tokens per second, burst of `burst`. Times in ms of any monotonic
// or wall clock (the caller's).
class TokenBucket {
 public:
  TokenBucket(double rate_per_second, double burst)
      : rate_(rate_per_second), burst_(burst), tokens_(burst) {}
  // Takes `count` tokens if all of them are there; otherwise takes none.
  bool TryTake(std::int64_t now_ms, double count = 1.0);

 private:
  double rate_;
  double burst_;
  double tokens_;
  std::int64_t last_ms_ = -1;
};

// Counts billable operations against the day's quota; the day is the UTC day of the
// emulator's clock, so advancing the clock past midnight resets it.
class DailyQuota {
 public:
  DailyQuota(Tier tier, int units);

  // Messages a payload of `bytes` counts as: ceil(bytes / chunk), at least 1.
  std::int64_t MessagesFor(std::int64_t bytes) const;
  // Charges `messages` if the quota allows it (rolling the day over first); false once
  // exhausted. A charge that would cross the quota is still taken (the hub stops after).
  bool Charge(std::int64_t messages, std::int64_t now_ms);
  bool Exhausted(std::int64_t now_ms);
  std::int64_t Used(std::int64_t now_ms);
  std::int64_t Total() const { return limits_.daily_messages; }
  std::int64_t ChunkBytes() const { return limits_.chunk_bytes; }
  std::int64_t ResetsAtMs(std::int64_t now_ms) const;
  // The count as it stands, and a way to carry it over a broker restart.
  std::int64_t day() const { return day_; }
  std::int64_t used() const { return used_; }
  void Restore(std::int64_t day, std::int64_t used) {
    day_ = day;
    used_ = used;
  }
  const TierLimits& Limits() const { return limits_; }
  Tier tier() const { return tier_; }
  int units() const { return units_; }

 private:
  void RollOver(std::int64_t now_ms);

  Tier tier_;
  int units_;
  TierLimits limits_;
  std::int64_t day_ = -1;
  std::int64_t used_ = 0;
};

}  // namespace iothub::emulator
