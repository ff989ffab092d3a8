#include "common/backoff.h"

#include <gtest/gtest.h>

#include <vector>

namespace iothub {
namespace {

TEST(BackoffTest, GrowsExponentiallyToTheCapWithoutJitter) {
  ScriptedRandom random({0.0});  // 0 => the full delay
  Backoff backoff({.initial_ms = 100, .max_ms = 1000, .multiplier = 2.0, .jitter = 0.5}, random);
  std::vector<std::int64_t> delays;
  for (int i = 0; i < 7; ++i) delays.push_back(backoff.NextDelayMs());
  EXPECT_EQ(delays, (std::vector<std::int64_t>{100, 200, 400, 800, 1000, 1000, 1000}));
}

TEST(BackoffTest, JitterDrawsBetweenHalfAndFullDelay) {
  ScriptedRandom random({1.0, 0.5, 0.25});
  Backoff backoff({.initial_ms = 1000, .max_ms = 60'000, .multiplier = 2.0, .jitter = 0.5}, random);
  EXPECT_EQ(backoff.NextDelayMs(), 500);   // 1000 * (1 - 0.5 * 1.0)
  EXPECT_EQ(backoff.NextDelayMs(), 1500);  // 2000 * (1 - 0.5 * 0.5)
  EXPECT_EQ(backoff.NextDelayMs(), 3500);  // 4000 * (1 - 0.5 * 0.25)
}

TEST(BackoffTest, ResetStartsOverAfterSuccess) {
  ScriptedRandom random({0.0});
  Backoff backoff({.initial_ms = 100, .max_ms = 10'000}, random);
  backoff.NextDelayMs();
  backoff.NextDelayMs();
  EXPECT_EQ(backoff.attempts(), 2);
  backoff.Reset();
  EXPECT_EQ(backoff.NextDelayMs(), 100);
}

TEST(BackoffTest, AtLeastRaisesOnlyTheNextDelay) {
  ScriptedRandom random({0.0});
  Backoff backoff({.initial_ms = 100, .max_ms = 10'000}, random);
  backoff.AtLeast(5000);  // e.g. the server answered "throttled"
  EXPECT_EQ(backoff.NextDelayMs(), 5000);
  EXPECT_EQ(backoff.NextDelayMs(), 200);
}

TEST(BackoffTest, ManyClientsSpreadOut) {
  SystemRandom random(42);
  Backoff backoff({.initial_ms = 1000, .max_ms = 1000, .jitter = 0.5}, random);
  std::int64_t low = 1000, high = 0;
  for (int i = 0; i < 1000; ++i) {
    const auto d = backoff.NextDelayMs();
    ASSERT_GE(d, 500);
    ASSERT_LE(d, 1000);
    low = std::min(low, d);
    high = std::max(high, d);
  }
  EXPECT_LT(low, 550);
  EXPECT_GT(high, 950);
}

}  // namespace
}  // namespace iothub
