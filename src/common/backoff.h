// Capped exponential backoff with jitter, reset on success: the one retry schedule every
// reconnecting component uses (STYLE.md §8). Not thread-safe; owned by one component.
#pragma once

#include <cstdint>

#include "common/random.h"

namespace iothub {

struct BackoffPolicy {
  std::int64_t initial_ms = 1'000;
  std::int64_t max_ms = 60'000;
  double multiplier = 2.0;
  // Each delay is drawn uniformly from [d * (1 - jitter), d]: "equal jitter" keeps a floor
  // (no reconnect storm of zero delays) while spreading many clients apart.
  double jitter = 0.5;
};

class Backoff {
 public:
  Backoff(BackoffPolicy policy, Random& random) : policy_(policy), random_(random) {}

  // The delay before the next attempt; each call grows the base delay up to the cap.
  std::int64_t NextDelayMs();
  // After a success: the next failure starts from the initial delay again.
  void Reset() { attempts_ = 0; }
  // Raises the floor of the next delays (e.g. after the server said "throttled").
  void AtLeast(std::int64_t ms) { floor_ms_ = ms; }
  int attempts() const { return attempts_; }

 private:
  BackoffPolicy policy_;
  Random& random_;
  int attempts_ = 0;
  std::int64_t floor_ms_ = 0;
};

}  // namespace iothub
