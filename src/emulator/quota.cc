#include "emulator/quota.h"

#include <algorithm>

namespace iothub::emulator {
namespace {
constexpr std::int64_t kDayMs = 86'400'000;
}

Result<QuotaTwinAnswer> ParseQuotaTwinAnswer(const std::string& text) {
  if (text == "close") return QuotaTwinAnswer::kClose;
  if (text == "403") return QuotaTwinAnswer::kStatus;
  return MakeError("InvalidQuotaTwinAnswer",
                   "unknown quota twin answer '" + text + "' (expected close or 403)");
}

std::string QuotaTwinAnswerName(QuotaTwinAnswer answer) {
  return answer == QuotaTwinAnswer::kStatus ? "403" : "close";
}

std::int64_t ThrottleSteps(std::int64_t bytes) { return BilledMessages(bytes, kFourKilobytes); }

bool TokenBucket::TryTake(std::int64_t now_ms, double count) {
  if (last_ms_ >= 0 && now_ms > last_ms_) {
    tokens_ = std::min(burst_, tokens_ + rate_ * double(now_ms - last_ms_) / 1000.0);
  }
  last_ms_ = std::max(last_ms_, now_ms);
  if (tokens_ < count) return false;
  tokens_ -= count;
  return true;
}

DailyQuota::DailyQuota(Tier tier, int units)
    : tier_(tier), units_(units), limits_(LimitsFor(tier, units)) {}

std::int64_t DailyQuota::MessagesFor(std::int64_t bytes) const {
  return BilledMessages(bytes, limits_.chunk_bytes);
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
