#include "emulator/quota.h"

#include <gtest/gtest.h>

namespace iothub::emulator {
namespace {

constexpr std::int64_t kDayMs = 86'400'000;
// 2023-11-14T22:13:20Z; the next UTC midnight is 1'700'006'400'000.
constexpr std::int64_t kNow = 1'700'000'000'000;
constexpr std::int64_t kMidnight = 1'700'006'400'000;

// ---- tiers ----

TEST(TierTest, ParsesKnownNames) {
  EXPECT_EQ(*ParseTier("free"), Tier::kFree);
  EXPECT_EQ(*ParseTier("Free"), Tier::kFree);
  EXPECT_EQ(*ParseTier("F1"), Tier::kFree);
  EXPECT_EQ(*ParseTier("S1"), Tier::kS1);
  EXPECT_EQ(*ParseTier("s2"), Tier::kS2);
  EXPECT_EQ(*ParseTier("S3"), Tier::kS3);
  EXPECT_EQ(*ParseTier("B1"), Tier::kB1);
  EXPECT_EQ(*ParseTier("b3"), Tier::kB3);
}

TEST(TierTest, RejectsUnknownNamesWithAMessage) {
  auto tier = ParseTier("B4");
  ASSERT_FALSE(tier.ok());
  EXPECT_EQ(tier.error().code, "InvalidTier");
  EXPECT_NE(tier.error().message.find("'B4'"), std::string::npos) << tier.error().message;
  EXPECT_FALSE(ParseTier("").ok());
  EXPECT_FALSE(ParseTier("S4").ok());
}

TEST(TierTest, NamesRoundTrip) {
  for (Tier t : {Tier::kFree, Tier::kB1, Tier::kB2, Tier::kB3, Tier::kS1, Tier::kS2, Tier::kS3}) {
    EXPECT_EQ(*ParseTier(TierName(t)), t);
  }
  EXPECT_EQ(TierName(Tier::kFree), "free");
}

TEST(TierTest, DailyMessagesAndChunksPerTier) {
  EXPECT_EQ(LimitsFor(Tier::kFree, 1).daily_messages, 8'000);
  EXPECT_EQ(LimitsFor(Tier::kFree, 1).chunk_bytes, 512);
  EXPECT_EQ(LimitsFor(Tier::kFree, 3).daily_messages, 8'000);  // one unit only
  EXPECT_EQ(LimitsFor(Tier::kS1, 1).daily_messages, 400'000);
  EXPECT_EQ(LimitsFor(Tier::kS1, 2).daily_messages, 800'000);
  EXPECT_EQ(LimitsFor(Tier::kS1, 1).chunk_bytes, 4096);
  EXPECT_EQ(LimitsFor(Tier::kS2, 1).daily_messages, 6'000'000);
  EXPECT_EQ(LimitsFor(Tier::kS3, 2).daily_messages, 600'000'000);
}

TEST(TierTest, ThrottlesFromReference) {
  const TierLimits free = LimitsFor(Tier::kFree, 1);
  EXPECT_EQ(free.d2c_per_second, 100);
  EXPECT_EQ(free.twin_reads_per_second, 100);
  EXPECT_EQ(free.twin_updates_per_second, 50);
  EXPECT_EQ(free.connections_per_second, 100);
  EXPECT_EQ(free.registry_per_minute, 100);
  EXPECT_EQ(free.c2d_per_minute, 100);
  const TierLimits s1 = LimitsFor(Tier::kS1, 1);
  EXPECT_EQ(s1.twin_updates_per_second, 50);
  EXPECT_EQ(s1.registry_per_minute, 100);
  EXPECT_EQ(s1.c2d_per_minute, 100);
  // S1 scales the per-unit rates only past the floors.
  EXPECT_EQ(LimitsFor(Tier::kS1, 20).d2c_per_second, 240);
}

// ---- TokenBucket ----

TEST(TokenBucketTest, StartsFullAndEmptiesAfterBurst) {
  TokenBucket bucket(4, 3);
  EXPECT_TRUE(bucket.TryTake(1000));
  EXPECT_TRUE(bucket.TryTake(1000));
  EXPECT_TRUE(bucket.TryTake(1000));
  EXPECT_FALSE(bucket.TryTake(1000));
}

TEST(TokenBucketTest, RefillsAtTheRate) {
  TokenBucket bucket(4, 1);  // one token per 250 ms
  EXPECT_TRUE(bucket.TryTake(1000));
  EXPECT_FALSE(bucket.TryTake(1125));  // half a token
  EXPECT_FALSE(bucket.TryTake(1249));
  EXPECT_TRUE(bucket.TryTake(1250));
  EXPECT_FALSE(bucket.TryTake(1250));
}

TEST(TokenBucketTest, RefillIsCappedAtBurst) {
  TokenBucket bucket(4, 2);
  EXPECT_TRUE(bucket.TryTake(0));
  EXPECT_TRUE(bucket.TryTake(0));
  // An hour idle still gives only the burst.
  EXPECT_TRUE(bucket.TryTake(3'600'000));
  EXPECT_TRUE(bucket.TryTake(3'600'000));
  EXPECT_FALSE(bucket.TryTake(3'600'000));
}

TEST(TokenBucketTest, TimeGoingBackwardsAddsNothing) {
  TokenBucket bucket(4, 1);
  EXPECT_TRUE(bucket.TryTake(10'000));
  EXPECT_FALSE(bucket.TryTake(5'000));
  // Refill is measured from the latest time seen, not the earlier one.
  EXPECT_FALSE(bucket.TryTake(10'125));
  EXPECT_TRUE(bucket.TryTake(10'250));
}

TEST(TokenBucketTest, TakesSeveralTokensAllOrNothing) {
  TokenBucket bucket(10, 10);
  EXPECT_TRUE(bucket.TryTake(0, 7));
  EXPECT_FALSE(bucket.TryTake(0, 4));  // three left: nothing is taken
  EXPECT_TRUE(bucket.TryTake(0, 3));
  EXPECT_FALSE(bucket.TryTake(0, 1));
  EXPECT_FALSE(bucket.TryTake(0, 11));
  EXPECT_FALSE(bucket.TryTake(10'000, 11));  // more than the burst never fits
  EXPECT_TRUE(bucket.TryTake(10'000, 10));
}

TEST(TokenBucketTest, FractionalRatePerMinute) {
  TokenBucket bucket(100.0 / 60.0, 100);  // registry: 100 per minute
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(bucket.TryTake(0)) << i;
  EXPECT_FALSE(bucket.TryTake(0));
  EXPECT_FALSE(bucket.TryTake(590));
  EXPECT_TRUE(bucket.TryTake(601));
}

// ---- DailyQuota metering ----

TEST(DailyQuotaTest, FreeTierMetersHalfKilobyteChunks) {
  DailyQuota quota(Tier::kFree, 1);
  EXPECT_EQ(quota.ChunkBytes(), 512);
  EXPECT_EQ(quota.MessagesFor(0), 1);
  EXPECT_EQ(quota.MessagesFor(1), 1);
  EXPECT_EQ(quota.MessagesFor(512), 1);
  EXPECT_EQ(quota.MessagesFor(513), 2);
  EXPECT_EQ(quota.MessagesFor(1024), 2);
  EXPECT_EQ(quota.MessagesFor(1025), 3);
  EXPECT_EQ(quota.MessagesFor(1200), 3);  // §5: a 1.2 KB message is 3 on Free
  EXPECT_EQ(quota.MessagesFor(256 * 1024), 512);
}

TEST(DailyQuotaTest, PaidTiersMeterFourKilobyteChunks) {
  DailyQuota quota(Tier::kS1, 1);
  EXPECT_EQ(quota.MessagesFor(1200), 1);  // §5: 1 on S1
  EXPECT_EQ(quota.MessagesFor(4096), 1);
  EXPECT_EQ(quota.MessagesFor(4097), 2);
  EXPECT_EQ(DailyQuota(Tier::kS3, 1).MessagesFor(8192), 2);
}

TEST(DailyQuotaTest, ChargesUntilExhausted) {
  DailyQuota quota(Tier::kFree, 1);
  EXPECT_EQ(quota.Total(), 8'000);
  EXPECT_TRUE(quota.Charge(7'999, kNow));
  EXPECT_EQ(quota.Used(kNow), 7'999);
  EXPECT_FALSE(quota.Exhausted(kNow));
  EXPECT_TRUE(quota.Charge(1, kNow));
  EXPECT_EQ(quota.Used(kNow), 8'000);
  EXPECT_TRUE(quota.Exhausted(kNow));
  EXPECT_FALSE(quota.Charge(1, kNow));
  EXPECT_EQ(quota.Used(kNow), 8'000);  // a refused charge is not counted
}

TEST(DailyQuotaTest, AChargeCrossingTheQuotaIsTakenThenTheHubStops) {
  DailyQuota quota(Tier::kFree, 1);
  EXPECT_TRUE(quota.Charge(7'999, kNow));
  EXPECT_TRUE(quota.Charge(3, kNow));
  EXPECT_EQ(quota.Used(kNow), 8'002);
  EXPECT_TRUE(quota.Exhausted(kNow));
  EXPECT_FALSE(quota.Charge(1, kNow));
}

TEST(DailyQuotaTest, ResetsAtUtcMidnight) {
  DailyQuota quota(Tier::kFree, 1);
  EXPECT_TRUE(quota.Charge(8'000, kNow));
  EXPECT_TRUE(quota.Exhausted(kMidnight - 1));
  EXPECT_EQ(quota.ResetsAtMs(kNow), kMidnight);
  EXPECT_EQ(quota.ResetsAtMs(kMidnight - 1), kMidnight);
  EXPECT_FALSE(quota.Exhausted(kMidnight));
  EXPECT_EQ(quota.Used(kMidnight), 0);
  EXPECT_EQ(quota.ResetsAtMs(kMidnight), kMidnight + kDayMs);
  EXPECT_TRUE(quota.Charge(5, kMidnight + 1));
  EXPECT_EQ(quota.Used(kMidnight + 1), 5);
}

TEST(DailyQuotaTest, ADayLaterIsANewDayEvenAtTheSameHour) {
  DailyQuota quota(Tier::kFree, 1);
  EXPECT_TRUE(quota.Charge(100, kNow));
  EXPECT_EQ(quota.Used(kNow + kDayMs), 0);
  EXPECT_TRUE(quota.Charge(7, kNow + kDayMs));
  EXPECT_EQ(quota.Used(kNow + kDayMs), 7);
}

TEST(DailyQuotaTest, ReportsTierAndUnits) {
  DailyQuota quota(Tier::kS2, 3);
  EXPECT_EQ(quota.tier(), Tier::kS2);
  EXPECT_EQ(quota.units(), 3);
  EXPECT_EQ(quota.Total(), 18'000'000);
  EXPECT_EQ(quota.Limits().chunk_bytes, 4096);
}

}  // namespace
}  // namespace iothub::emulator
