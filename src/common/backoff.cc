#include "common/backoff.h"

#include <algorithm>
#include <cmath>

namespace iothub {

std::int64_t Backoff::NextDelayMs() {
  const double base = std::min<double>(
      static_cast<double>(policy_.max_ms),
      static_cast<double>(policy_.initial_ms) * std::pow(policy_.multiplier, attempts_));
  if (base < static_cast<double>(policy_.max_ms)) ++attempts_;  // stop growing at the cap
  const double jittered = base * (1.0 - policy_.jitter * random_.Uniform());
  const auto delay = static_cast<std::int64_t>(std::llround(jittered));
  const std::int64_t floor = floor_ms_;
  floor_ms_ = 0;  // a floor applies to one delay: the next one after the throttling signal
  return std::max(delay, floor);
}

}  // namespace iothub
