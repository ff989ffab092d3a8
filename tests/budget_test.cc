#include "connector/budget.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>

namespace iothub::connector {
namespace {

// 2025-06-01T00:00:00Z, a UTC midnight.
constexpr std::int64_t kDay = 1'748'736'000'000;
constexpr std::int64_t kDayMs = 86'400'000;
constexpr std::int64_t kHour = 3'600'000;

BudgetPolicy Free() { return BudgetPolicy{}; }  // 8,000 a day, reserve 0.1, 512 B chunks
BudgetPolicy S1() {
  return BudgetPolicy{
      .messages = 400'000, .reserve = 0.1, .window_seconds = 86'400, .chunk_bytes = 4096};
}
// A Free-tier hub scaled to a 60 s test window.
BudgetPolicy Minute() {
  return BudgetPolicy{.messages = 100, .reserve = 0.1, .window_seconds = 60, .chunk_bytes = 512};
}

TEST(BudgetTest, WindowsAlignToUtcMidnight) {
  ASSERT_EQ(kDay % kDayMs, 0);
  Budget day(Free());
  EXPECT_EQ(day.WindowStartMs(kDay), kDay);
  EXPECT_EQ(day.WindowStartMs(kDay + 13 * kHour + 5), kDay);
  EXPECT_EQ(day.WindowStartMs(kDay + kDayMs - 1), kDay);
  EXPECT_EQ(day.WindowStartMs(kDay - 1), kDay - kDayMs);
  EXPECT_EQ(day.WindowStartMs(-1), -kDayMs);  // floor, not truncation, before 1970

  for (const std::int64_t seconds : {10, 60, 3600}) {
    BudgetPolicy policy = Free();
    policy.window_seconds = seconds;
    Budget budget(policy);
    const std::int64_t w = seconds * 1000;
    EXPECT_EQ(budget.window_ms(), w);
    // Every window boundary of the day falls on a multiple of W after midnight.
    EXPECT_EQ(budget.WindowStartMs(kDay), kDay) << seconds;
    EXPECT_EQ(budget.WindowStartMs(kDay + w - 1), kDay) << seconds;
    EXPECT_EQ(budget.WindowStartMs(kDay + w), kDay + w) << seconds;
    EXPECT_EQ(budget.WindowStartMs(kDay + 5 * w + w / 2), kDay + 5 * w) << seconds;
    EXPECT_EQ(budget.WindowStartMs(kDay - 1), kDay - w) << seconds;
    EXPECT_EQ(budget.Figures(kDay + 7 * w + 3).window_end_ms, kDay + 8 * w) << seconds;
  }
}

TEST(BudgetTest, SplitsTheBudgetIntoReserveMainAndBurst) {
  Budget free(Free());
  EXPECT_EQ(free.budget(), 8000);
  EXPECT_EQ(free.reserve(), 800);
  EXPECT_EQ(free.main(), 7200);
  EXPECT_EQ(free.burst(), 72);  // 1 % of the main pool

  Budget s1(S1());
  EXPECT_EQ(s1.reserve(), 40'000);
  EXPECT_EQ(s1.main(), 360'000);
  EXPECT_EQ(s1.burst(), 3'600);

  Budget minute(Minute());
  EXPECT_EQ(minute.reserve(), 10);
  EXPECT_EQ(minute.main(), 90);
  EXPECT_EQ(minute.burst(), 2);  // the floor of two

  // 0.29 * 100 is 28.999... in binary: the reserve is rounded, not truncated.
  Budget rounded({.messages = 100, .reserve = 0.29, .window_seconds = 60});
  EXPECT_EQ(rounded.reserve(), 29);
  Budget one({.messages = 1, .reserve = 0.0, .window_seconds = 10});
  EXPECT_EQ(one.main(), 1);
  EXPECT_EQ(one.burst(), 1);  // never more than the main pool
  Budget none({.messages = 0, .reserve = 0.5, .window_seconds = 10});
  EXPECT_EQ(none.main(), 0);
  EXPECT_EQ(none.burst(), 0);
}

TEST(BudgetTest, PolicyFromConfig) {
  Config config;
  BudgetPolicy policy = BudgetPolicyFromConfig(config);
  EXPECT_EQ(policy.messages, 8000);
  EXPECT_DOUBLE_EQ(policy.reserve, 0.1);
  EXPECT_EQ(policy.window_seconds, 86'400);
  EXPECT_EQ(policy.chunk_bytes, 512);

  config.quota.tier = azure::Tier::kS1;
  config.quota.units = 2;
  config.quota.window_seconds = 60;
  policy = BudgetPolicyFromConfig(config);
  EXPECT_EQ(policy.messages, 800'000);
  EXPECT_EQ(policy.window_seconds, 60);
  EXPECT_EQ(policy.chunk_bytes, 4096);

  // Basic tiers: the tier's quota and 4 KB chunks, nothing else differs.
  config.quota.tier = azure::Tier::kB1;
  config.quota.units = 1;
  config.quota.daily_messages = 1000;
  config.quota.reserve = 0.25;
  policy = BudgetPolicyFromConfig(config);
  EXPECT_EQ(policy.messages, 1000);
  EXPECT_DOUBLE_EQ(policy.reserve, 0.25);
  EXPECT_EQ(policy.chunk_bytes, 4096);
}

TEST(BudgetTest, ChunksForMeteredBytes) {
  Budget free(Free());
  EXPECT_EQ(free.ChunksFor(0), 1);
  EXPECT_EQ(free.ChunksFor(1), 1);
  EXPECT_EQ(free.ChunksFor(512), 1);
  EXPECT_EQ(free.ChunksFor(513), 2);
  EXPECT_EQ(free.ChunksFor(1024), 2);
  EXPECT_EQ(free.ChunksFor(1025), 3);
  EXPECT_EQ(free.ChunksFor(1229), 3);  // §5: a 1.2 KB message is 3 messages on Free
  Budget s1(S1());
  EXPECT_EQ(s1.ChunksFor(1229), 1);  // ... and 1 on S1
  EXPECT_EQ(s1.ChunksFor(4097), 2);
}

TEST(BudgetTest, PaceLineAtSeveralElapsedPoints) {
  Budget budget(Free());  // M = 7200 over 86,400 s: one message every 12 s, burst 72
  EXPECT_EQ(budget.PaceAllowed(kDay), 72);
  EXPECT_EQ(budget.PaceAllowed(kDay + 11'999), 72);
  EXPECT_EQ(budget.PaceAllowed(kDay + 12'000), 73);
  EXPECT_EQ(budget.PaceAllowed(kDay + 6 * kHour), 1800 + 72);
  EXPECT_EQ(budget.PaceAllowed(kDay + 12 * kHour), 3600 + 72);
  EXPECT_EQ(budget.PaceAllowed(kDay + kDayMs - 1), 7200);  // capped at M
  EXPECT_EQ(budget.PaceAllowed(kDay + kDayMs), 72);        // the next window

  // A greedy spender, asking every 7 s, never gets ahead of the pace line and still uses
  // the whole main pool by the end of the day.
  std::int64_t used = 0;
  for (std::int64_t t = kDay; t < kDay + kDayMs; t += 7'000) {
    while (budget.CanSpend(1, Pool::kMain, t)) {
      budget.Spend(1, Pool::kMain, t);
      ++used;
    }
    const std::int64_t elapsed = t - kDay;
    ASSERT_LE(used, 7200 * elapsed / kDayMs + 72) << "at " << elapsed << " ms";
    ASSERT_EQ(budget.Figures(t).main_used, used);
  }
  EXPECT_EQ(used, 7200);
  EXPECT_FALSE(budget.CanSpend(1, Pool::kMain, kDay + kDayMs - 1));
}

TEST(BudgetTest, NextAvailableIsExact) {
  Budget budget(Free());
  budget.Spend(72, Pool::kMain, kDay);  // the burst, at once
  EXPECT_FALSE(budget.CanSpend(1, Pool::kMain, kDay));
  EXPECT_EQ(budget.NextAvailableMs(1, Pool::kMain, kDay), kDay + 12'000);
  EXPECT_FALSE(budget.CanSpend(1, Pool::kMain, kDay + 11'999));
  EXPECT_TRUE(budget.CanSpend(1, Pool::kMain, kDay + 12'000));
  EXPECT_EQ(budget.NextAvailableMs(3, Pool::kMain, kDay + 500), kDay + 36'000);
  EXPECT_FALSE(budget.CanSpend(3, Pool::kMain, kDay + 35'999));
  EXPECT_TRUE(budget.CanSpend(3, Pool::kMain, kDay + 36'000));
  // What is allowed now is now.
  EXPECT_EQ(budget.NextAvailableMs(1, Pool::kMain, kDay + 20'000), kDay + 20'000);
  // The reserve is not paced.
  EXPECT_EQ(budget.NextAvailableMs(5, Pool::kReserve, kDay), kDay);

  // The window's main pool spent: the next window, at its start for up to a burst, later on
  // its pace line for more.
  budget.Spend(7200 - 72, Pool::kMain, kDay + 23 * kHour);
  EXPECT_EQ(budget.NextAvailableMs(1, Pool::kMain, kDay + 23 * kHour), kDay + kDayMs);
  EXPECT_EQ(budget.NextAvailableMs(72, Pool::kMain, kDay + 23 * kHour), kDay + kDayMs);
  EXPECT_EQ(budget.NextAvailableMs(74, Pool::kMain, kDay + 23 * kHour), kDay + kDayMs + 24'000);
  // More than a window's main pool: never.
  EXPECT_EQ(budget.NextAvailableMs(7201, Pool::kMain, kDay), kNeverMs);
  EXPECT_EQ(budget.NextAvailableMs(8001, Pool::kReserve, kDay), kNeverMs);
}

TEST(BudgetTest, ReserveIsUnpacedAndBorrowsOnlyUnderThePaceLine) {
  Budget budget(Free());
  // The whole reserve at once, at the window's start, where the main pace line is at 72.
  EXPECT_TRUE(budget.CanSpend(800, Pool::kReserve, kDay));
  budget.Spend(800, Pool::kReserve, kDay);
  // Beyond R it borrows from the main pool, paced as main spending.
  EXPECT_TRUE(budget.CanSpend(72, Pool::kReserve, kDay));
  EXPECT_FALSE(budget.CanSpend(73, Pool::kReserve, kDay));
  budget.Spend(30, Pool::kReserve, kDay);
  BudgetFigures f = budget.Figures(kDay);
  EXPECT_EQ(f.reserve_used, 830);
  EXPECT_EQ(f.borrowed, 30);
  EXPECT_EQ(f.reserve_left, 0);
  EXPECT_EQ(f.main_left, 7200 - 30);
  // What was borrowed is gone from the main pool's pace.
  EXPECT_TRUE(budget.CanSpend(42, Pool::kMain, kDay));
  EXPECT_FALSE(budget.CanSpend(43, Pool::kMain, kDay));
  EXPECT_EQ(budget.ChunksAvailableWithin(0, Pool::kMain, kDay), 42);
  EXPECT_EQ(budget.ChunksAvailableWithin(0, Pool::kReserve, kDay), 42);

  // The main pool never uses the reserve: with the main pool spent and the reserve idle, main
  // spending stops while reserve spending goes on.
  Budget other(Free());
  other.Spend(7200, Pool::kMain, kDay + 23 * kHour);
  EXPECT_FALSE(other.CanSpend(1, Pool::kMain, kDay + 23 * kHour));
  EXPECT_TRUE(other.CanSpend(800, Pool::kReserve, kDay + 23 * kHour));
  EXPECT_FALSE(other.CanSpend(801, Pool::kReserve, kDay + 23 * kHour));  // nothing to borrow
  EXPECT_EQ(other.ChunksAvailableWithin(0, Pool::kReserve, kDay + 23 * kHour), 800);
  EXPECT_EQ(other.ChunksAvailableWithin(0, Pool::kMain, kDay + 23 * kHour), 0);
}

TEST(BudgetTest, ANewWindowResetsTheUsage) {
  Budget budget(Minute());  // B 100 = R 10 + M 90 per 60 s
  const std::int64_t w = 60'000;
  budget.Spend(10, Pool::kReserve, kDay + 1000);
  budget.Spend(90, Pool::kMain, kDay + w - 1);
  EXPECT_EQ(budget.Figures(kDay + w - 1).used, 100);
  EXPECT_EQ(budget.Figures(kDay + w - 1).left, 0);
  EXPECT_FALSE(budget.CanSpend(1, Pool::kReserve, kDay + w - 1));
  EXPECT_FALSE(budget.CanSpend(1, Pool::kMain, kDay + w - 1));

  const BudgetFigures next = budget.Figures(kDay + w);
  EXPECT_EQ(next.window_start_ms, kDay + w);
  EXPECT_EQ(next.used, 0);
  EXPECT_EQ(next.left, 100);
  EXPECT_EQ(next.pace_allowed, 2);
  EXPECT_TRUE(budget.CanSpend(2, Pool::kMain, kDay + w));
  EXPECT_FALSE(budget.CanSpend(3, Pool::kMain, kDay + w));
  EXPECT_TRUE(budget.CanSpend(10, Pool::kReserve, kDay + w));
  budget.Spend(2, Pool::kMain, kDay + w);
  EXPECT_EQ(budget.Figures(kDay + w).main_used, 2);
  // A window skipped entirely also starts from nothing.
  EXPECT_EQ(budget.Figures(kDay + 5 * w).used, 0);
}

TEST(BudgetTest, NeverMoreThanTheBudgetInAWindowUnderRandomSpending) {
  std::mt19937_64 random(20250601);
  for (int round = 0; round < 60; ++round) {
    const std::int64_t seconds = std::vector<std::int64_t>{10, 60, 3600}[round % 3];
    const BudgetPolicy policy{
        .messages = std::uniform_int_distribution<std::int64_t>(0, 400)(random),
        .reserve = std::uniform_real_distribution<double>(0.0, 0.6)(random),
        .window_seconds = seconds,
        .chunk_bytes = 512};
    Budget budget(policy);
    const std::int64_t w = seconds * 1000;
    std::map<std::int64_t, std::int64_t> billed;  // window start -> chunks spent
    std::int64_t now = kDay + std::uniform_int_distribution<std::int64_t>(0, w)(random);
    for (int step = 0; step < 4000; ++step) {
      now += std::uniform_int_distribution<std::int64_t>(0, w / 40)(random);
      const std::int64_t chunks = std::uniform_int_distribution<std::int64_t>(1, 6)(random);
      const Pool pool = random() % 3 == 0 ? Pool::kReserve : Pool::kMain;
      if (random() % 500 == 0) {
        // The daemon restarts: the state goes through its durable text.
        Budget restored(policy);
        ASSERT_TRUE(restored.Restore(budget.Serialize(), now).ok());
        budget = restored;
      }
      if (random() % 700 == 0) budget.HubExhausted(now + w / 3);
      if (budget.CanSpend(chunks, pool, now)) {
        budget.Spend(chunks, pool, now);
        billed[budget.WindowStartMs(now)] += chunks;
      } else {
        const std::int64_t next = budget.NextAvailableMs(chunks, pool, now);
        if (next != kNeverMs) {
          ASSERT_GT(next, now);
          ASSERT_TRUE(budget.CanSpend(chunks, pool, next)) << "round " << round;
          ASSERT_FALSE(budget.CanSpend(chunks, pool, next - 1)) << "round " << round;
        } else {
          ASSERT_GT(chunks, pool == Pool::kMain ? budget.main() : budget.budget());
        }
      }
      const BudgetFigures f = budget.Figures(now);
      const std::int64_t window = budget.WindowStartMs(now);
      ASSERT_EQ(f.used, billed[window]);
      ASSERT_LE(f.used, policy.messages) << "round " << round;                   // property 1
      ASSERT_LE(f.main_used + f.borrowed, f.pace_allowed) << "round " << round;  // property 2
      const std::int64_t elapsed = now - window;
      ASSERT_LE(f.main_used + f.borrowed, budget.main() * elapsed / w + budget.burst());
    }
  }
}

TEST(BudgetTest, ChunksAvailableWithinMatchesAGreedySpender) {
  std::mt19937_64 random(7);
  for (int round = 0; round < 200; ++round) {
    const BudgetPolicy policy{
        .messages = std::uniform_int_distribution<std::int64_t>(1, 300)(random),
        .reserve = std::uniform_real_distribution<double>(0.0, 0.5)(random),
        .window_seconds = 10,
        .chunk_bytes = 512};
    Budget budget(policy);
    const std::int64_t start = kDay + std::uniform_int_distribution<std::int64_t>(0, 9'999)(random);
    budget.Spend(std::uniform_int_distribution<std::int64_t>(1, 40)(random), Pool::kReserve, start);
    budget.Spend(std::uniform_int_distribution<std::int64_t>(1, 40)(random), Pool::kMain, start);
    const Pool pool = round % 2 == 0 ? Pool::kMain : Pool::kReserve;
    const std::int64_t horizon = std::uniform_int_distribution<std::int64_t>(0, 35'000)(random);

    const std::int64_t predicted = budget.ChunksAvailableWithin(horizon, pool, start);
    Budget greedy = budget;
    std::int64_t spent = 0;
    for (std::int64_t t = greedy.NextAvailableMs(1, pool, start); t <= start + horizon;
         t = greedy.NextAvailableMs(1, pool, t)) {
      greedy.Spend(1, pool, t);
      ++spent;
    }
    ASSERT_EQ(predicted, spent) << "round " << round << " horizon " << horizon;
  }
}

TEST(BudgetTest, ChunksAvailableWithinCountsTheNextWindow) {
  Budget budget(Minute());  // M 90, burst 2, per 60 s
  const std::int64_t t = kDay + 59'000;
  // Fresh: all of this window's main pool by its end, then 1 s into the next: floor(90/60)+2.
  EXPECT_EQ(budget.ChunksAvailableWithin(999, Pool::kMain, t), 90);
  EXPECT_EQ(budget.ChunksAvailableWithin(2'000, Pool::kMain, t), 90 + 3);
  // Three whole windows later.
  EXPECT_EQ(budget.ChunksAvailableWithin(1'000 + 3 * 60'000, Pool::kMain, t), 90 + 3 * 90 + 2);
  EXPECT_EQ(budget.ChunksAvailableWithin(2'000, Pool::kReserve, t), 100 + 3 + 10);
  EXPECT_EQ(budget.ChunksAvailableWithin(-1, Pool::kMain, t), 0);
}

TEST(BudgetTest, HubExhaustedBlocksUntilResume) {
  Budget budget(Free());
  const std::int64_t now = kDay + 20 * kHour;
  const std::int64_t midnight = kDay + kDayMs;
  budget.Spend(100, Pool::kMain, now);
  budget.HubExhausted(midnight);
  EXPECT_FALSE(budget.CanSpend(1, Pool::kMain, now));
  EXPECT_FALSE(budget.CanSpend(1, Pool::kReserve, now));
  EXPECT_FALSE(budget.CanSpend(1, Pool::kReserve, midnight - 1));
  EXPECT_EQ(budget.NextAvailableMs(1, Pool::kMain, now), midnight);
  EXPECT_EQ(budget.NextAvailableMs(1, Pool::kReserve, now), midnight);
  EXPECT_EQ(budget.ChunksAvailableWithin(kHour, Pool::kMain, now), 0);
  EXPECT_EQ(budget.ChunksAvailableWithin(4 * kHour, Pool::kMain, now), 72);
  EXPECT_EQ(budget.Figures(now).hub_resume_ms, midnight);
  EXPECT_TRUE(budget.CanSpend(72, Pool::kMain, midnight));
  EXPECT_EQ(budget.Figures(midnight).used, 0);
  EXPECT_EQ(budget.Figures(midnight).hub_resume_ms, 0);

  budget.HubResumed();
  EXPECT_TRUE(budget.CanSpend(1, Pool::kMain, now));
}

TEST(BudgetTest, RestoreKeepsTodaysUsageAndDiscardsAnOldWindow) {
  Budget budget(Free());
  budget.Spend(40, Pool::kMain, kDay + kHour);
  budget.Spend(7, Pool::kReserve, kDay + kHour);
  budget.HubExhausted(kDay + kDayMs);
  const std::string state = budget.Serialize();

  Budget same_day(Free());
  ASSERT_TRUE(same_day.Restore(state, kDay + 2 * kHour).ok());
  BudgetFigures f = same_day.Figures(kDay + 2 * kHour);
  EXPECT_EQ(f.main_used, 40);
  EXPECT_EQ(f.reserve_used, 7);
  EXPECT_EQ(f.hub_resume_ms, kDay + kDayMs);
  EXPECT_EQ(same_day.Serialize(), budget.Serialize());

  Budget next_day(Free());
  ASSERT_TRUE(next_day.Restore(state, kDay + kDayMs + kHour).ok());
  f = next_day.Figures(kDay + kDayMs + kHour);
  EXPECT_EQ(f.window_start_ms, kDay + kDayMs);
  EXPECT_EQ(f.used, 0);
  EXPECT_EQ(f.hub_resume_ms, 0);  // that resume time has passed

  // The clock went back before the stored window: what was spent still counts.
  Budget earlier(Free());
  ASSERT_TRUE(earlier.Restore(state, kDay - kHour).ok());
  f = earlier.Figures(kDay - kHour);
  EXPECT_EQ(f.window_start_ms, kDay - kDayMs);
  EXPECT_EQ(f.main_used, 40);
  EXPECT_EQ(f.hub_resume_ms, 0);  // more than a day ahead: not the session's 00:00 UTC

  // A day's state restored into a 60 s window overlapping it is carried over.
  Budget minute(Minute());
  ASSERT_TRUE(minute.Restore(state, kDay + 2 * kHour).ok());
  EXPECT_EQ(minute.Figures(kDay + 2 * kHour).used, 47);

  // Nothing stored: a first start.
  Budget fresh(Free());
  ASSERT_TRUE(fresh.Restore("", kDay + kHour).ok());
  EXPECT_EQ(fresh.Figures(kDay + kHour).used, 0);
}

TEST(BudgetTest, RestoreFromACorruptStateIsAnErrorAndAssumesThePaceLineSpent) {
  const std::int64_t now = kDay + 6 * kHour;  // pace line 1800 + 72
  for (const std::string& text :
       {std::string("garbage"), std::string("{}"), std::string("[1,2]"),
        std::string(R"({"version":2,"window_ms":86400000,"window_start_ms":0,"main_used":1,)"
                    R"("reserve_used":0,"hub_resume_ms":0})"),
        std::string(R"({"version":1,"window_ms":86400000,"window_start_ms":0,"main_used":-1,)"
                    R"("reserve_used":0,"hub_resume_ms":0})"),
        std::string(R"({"version":1,"window_ms":0,"window_start_ms":0,"main_used":1,)"
                    R"("reserve_used":0,"hub_resume_ms":0})"),
        std::string(R"({"version":1,"window_ms":86400000,"window_start_ms":0,"main_used":"1",)"
                    R"("reserve_used":0,"hub_resume_ms":0})"),
        std::string(R"({"version":1,"window_ms":86400000,"window_start_ms":0,"main_used":1})"),
        std::string(R"({"version":1,"window_ms":86400000,"window_start_ms":0,"main_us)")}) {
    Budget budget(Free());
    const Status status = budget.Restore(text, now);
    ASSERT_FALSE(status.ok()) << text;
    EXPECT_EQ(status.error().code, "BudgetState");
    const BudgetFigures f = budget.Figures(now);
    EXPECT_EQ(f.main_used, 1872) << text;
    EXPECT_EQ(f.reserve_used, 800) << text;
    EXPECT_FALSE(budget.CanSpend(1, Pool::kMain, now));
    EXPECT_FALSE(budget.CanSpend(1, Pool::kReserve, now));
    EXPECT_EQ(budget.NextAvailableMs(1, Pool::kMain, now), now + 12'000);
  }
}

TEST(BudgetTest, ForcedSpendingIsRecordedAndStopsFurtherSpending) {
  Budget budget(Minute());
  budget.Spend(10, Pool::kReserve, kDay);
  budget.Spend(95, Pool::kReserve, kDay);  // e.g. desired notifications the hub sent anyway
  const BudgetFigures f = budget.Figures(kDay);
  EXPECT_EQ(f.used, 105);
  EXPECT_EQ(f.left, 0);
  EXPECT_EQ(f.main_left, 0);
  EXPECT_FALSE(budget.CanSpend(1, Pool::kMain, kDay + 59'999));
  EXPECT_FALSE(budget.CanSpend(1, Pool::kReserve, kDay + 59'999));
  EXPECT_EQ(budget.NextAvailableMs(1, Pool::kMain, kDay), kDay + 60'000);
  EXPECT_EQ(budget.ChunksAvailableWithin(59'999, Pool::kReserve, kDay), 0);

  // The main pool forced past the whole budget leaves nothing for the reserve either.
  Budget over(Minute());
  over.Spend(100, Pool::kMain, kDay);
  EXPECT_EQ(over.Figures(kDay).reserve_left, 10);
  EXPECT_FALSE(over.CanSpend(1, Pool::kReserve, kDay));
  EXPECT_EQ(over.NextAvailableMs(1, Pool::kReserve, kDay), kDay + 60'000);
}

TEST(BudgetTest, ClockGoingBackKeepsWhatWasSpent) {
  Budget budget(Minute());
  const std::int64_t w = 60'000;
  budget.Spend(10, Pool::kReserve, kDay + 2 * w);
  budget.Spend(88, Pool::kMain, kDay + 2 * w + 59'000);
  // The clock steps back two windows: the spending moves into now's window with it.
  const std::int64_t back = kDay + 30'000;
  const BudgetFigures f = budget.Figures(back);
  EXPECT_EQ(f.window_start_ms, kDay);
  EXPECT_EQ(f.used, 98);
  EXPECT_FALSE(budget.CanSpend(1, Pool::kMain, back));
  EXPECT_FALSE(budget.CanSpend(3, Pool::kReserve, back));
  // The first window after the stored one is fresh; those before it carry the usage.
  EXPECT_EQ(budget.NextAvailableMs(2, Pool::kMain, back), kDay + 58'667);       // 88 / 90 of 60 s
  EXPECT_EQ(budget.NextAvailableMs(3, Pool::kMain, back), kDay + 3 * w + 667);  // 60 s / 90
  EXPECT_TRUE(budget.CanSpend(3, Pool::kReserve, kDay + 3 * w));
  EXPECT_EQ(budget.ChunksAvailableWithin(3 * w - 30'000, Pool::kMain, back), 2 + 2 + 2 + 2);
  EXPECT_EQ(budget.ChunksAvailableWithin(2 * w - 30'000, Pool::kMain, back + w), 2 + 2 + 2);
  budget.Spend(1, Pool::kMain, back);
  EXPECT_EQ(budget.Figures(back).main_used, 89);
  EXPECT_EQ(budget.Figures(kDay + 3 * w).used, 0);
}

// The worked examples of docs/budget.md.
TEST(BudgetTest, StalenessBoundFormula) {
  // 140 B of overhead a message: 92 B of properties and 48 B of body envelope
  // (docs/message-format.md, "What a message costs").
  constexpr std::int64_t kOverhead = 140;
  // Free: M 7200 a day, r = 1/12 per s. 60 items of 70 B: k = (512-140)/70 = 5 items a
  // message, m = 12 messages, bound (12 + 1) * 12 s.
  Budget free(Free());
  const std::int64_t noon = kDay + 12 * kHour;
  EXPECT_DOUBLE_EQ(free.StalenessBoundSeconds(60, 70, kOverhead, noon), 156.0);
  // Entries of 100 B: k = 3, m = 20, (20 + 1) * 12 s.
  EXPECT_DOUBLE_EQ(free.StalenessBoundSeconds(60, 100, kOverhead, noon), 252.0);
  // The twin's patches take up to 1/11 of the pace: a round takes 11/10 as long.
  EXPECT_NEAR(free.StalenessBoundSeconds(60, 70, kOverhead, noon, 10.0 / 11.0), 171.6, 1e-9);
  // Less of the window's main pool left than a round needs: first the wait for the next
  // window.
  free.Spend(7200 - 12, Pool::kMain, noon);
  EXPECT_DOUBLE_EQ(free.StalenessBoundSeconds(60, 70, kOverhead, noon), 156.0);
  free.Spend(1, Pool::kMain, noon);
  EXPECT_DOUBLE_EQ(free.StalenessBoundSeconds(60, 70, kOverhead, noon), 12 * 3600.0 + 156.0);
  // The hub exhausted: from its resume time.
  Budget blocked(Free());
  blocked.HubExhausted(kDay + kDayMs);
  EXPECT_DOUBLE_EQ(blocked.StalenessBoundSeconds(60, 70, kOverhead, noon), 12 * 3600.0 + 156.0);

  // S1: k = (4096-140)/70 = 56, m = 2, r = 360000/86400 per s: 3 / r = 0.72 s.
  Budget s1(S1());
  EXPECT_NEAR(s1.StalenessBoundSeconds(60, 70, kOverhead, noon), 0.72, 1e-9);

  // A 60 s window with B = 100: r = 1.5 per s, m = 12: 13 / 1.5 s.
  Budget minute(Minute());
  EXPECT_NEAR(minute.StalenessBoundSeconds(60, 70, kOverhead, noon), 13 / 1.5, 1e-9);

  // An entry larger than a chunk: one a message, each ceil((140 + 600) / 512) = 2 chunks.
  EXPECT_DOUBLE_EQ(Budget(Free()).StalenessBoundSeconds(10, 600, kOverhead, noon), (20 + 2) * 12.0);
  EXPECT_DOUBLE_EQ(Budget(Free()).StalenessBoundSeconds(0, 70, kOverhead, noon), 0.0);
  EXPECT_TRUE(std::isinf(Budget({.messages = 10, .reserve = 0.99, .window_seconds = 60})
                             .StalenessBoundSeconds(1, 70, kOverhead, noon)));
}

}  // namespace
}  // namespace iothub::connector
