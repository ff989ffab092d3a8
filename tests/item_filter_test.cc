// Per-item sending decisions (docs/configuration.md, "What the filters do"): deadbands in
// percent and in units (converted, or not comparable), duplicates, min_interval holding the
// latest change and releasing it on time, heartbeats, and how they interact. Time is given.
#include "connector/item_filter.h"

#include <gtest/gtest.h>

namespace iothub::connector {
namespace {

using Verdict = ItemFilter::Verdict;
using Reason = ItemFilter::Reason;

Entry Num(const std::string& key, double value, std::string unit = "") {
  Entry e;
  e.key = key;
  e.type = "Number";
  e.value = value;
  e.unit = std::move(unit);
  return e;
}

Entry Text(const std::string& key, const std::string& value) {
  Entry e;
  e.key = key;
  e.type = "String";
  e.value = value;
  return e;
}

Entry Undefined(const std::string& key, const std::string& state) {
  Entry e;
  e.key = key;
  e.type = "Number";
  e.state = state;
  return e;
}

ItemPolicy WithDeadband(Deadband band) {
  ItemPolicy p;
  p.deadband = std::move(band);
  return p;
}

ItemPolicy Timing(std::int64_t min_interval_ms, std::int64_t heartbeat_ms) {
  ItemPolicy p;
  p.min_interval_ms = min_interval_ms;
  p.heartbeat_ms = heartbeat_ms;
  return p;
}

// The verdicts for a series of values of one item, one ms apart.
std::vector<Verdict> Verdicts(ItemFilter& filter, const std::vector<Entry>& entries) {
  std::vector<Verdict> out;
  std::int64_t now = 1'000;
  out.reserve(entries.size());
  for (const Entry& e : entries) out.push_back(filter.OnChange(e, now++).verdict);
  return out;
}

TEST(UnitConversionTest, ScalesAndTemperatureOffsets) {
  EXPECT_DOUBLE_EQ(*ConvertQuantity(1.5, "kW", "W"), 1500);
  EXPECT_DOUBLE_EQ(*ConvertQuantity(2, "MWh", "kWh"), 2000);
  EXPECT_DOUBLE_EQ(*ConvertQuantity(1, "kWh", "J"), 3.6e6);
  EXPECT_DOUBLE_EQ(*ConvertQuantity(1500, "m", "km"), 1.5);
  EXPECT_DOUBLE_EQ(*ConvertQuantity(250, "g", "kg"), 0.25);
  EXPECT_DOUBLE_EQ(*ConvertQuantity(1013, "hPa", "mbar"), 1013);
  EXPECT_NEAR(*ConvertQuantity(20, "°C", "K"), 293.15, 1e-9);
  EXPECT_NEAR(*ConvertQuantity(212, "°F", "°C"), 100, 1e-9);
  EXPECT_NEAR(*ConvertQuantity(36, "km/h", "m/s"), 10, 1e-9);
  EXPECT_DOUBLE_EQ(*ConvertQuantity(7, "lx", "lx"), 7) << "identical units need no table";
  EXPECT_FALSE(ConvertQuantity(1, "W", "Wh").has_value()) << "different dimensions";
  EXPECT_FALSE(ConvertQuantity(1, "W", "").has_value());
  EXPECT_FALSE(ConvertQuantity(1, "lx", "klx").has_value()) << "not in the table";
  EXPECT_FALSE(ConvertQuantity(1, "%", "").has_value());
}

TEST(UnitConversionTest, DifferencesHaveNoOffset) {
  EXPECT_NEAR(*ConvertDifference(0.5, "K", "°C"), 0.5, 1e-12);
  EXPECT_NEAR(*ConvertDifference(9, "°F", "°C"), 5, 1e-12);
  EXPECT_NEAR(*ConvertDifference(0.1, "kW", "W"), 100, 1e-9);
  EXPECT_FALSE(ConvertDifference(1, "°C", "W").has_value());
}

TEST(ItemFilterTest, FirstChangeIsSentAndDuplicatesAreNot) {
  ItemFilter filter;
  EXPECT_EQ(Verdicts(filter, {Text("S", "a"), Text("S", "a"), Text("S", "b"), Text("S", "a")}),
            (std::vector{Verdict::kSend, Verdict::kSuppress, Verdict::kSend, Verdict::kSend}));
  EXPECT_EQ(filter.Counters("S")->duplicates, 1);
  EXPECT_EQ(filter.Counters("S")->deadband, 0);
  // NULL and UNDEF are both a null value; the state tells them apart.
  EXPECT_EQ(
      Verdicts(filter, {Undefined("N", "NULL"), Undefined("N", "UNDEF"), Undefined("N", "UNDEF")}),
      (std::vector{Verdict::kSend, Verdict::kSend, Verdict::kSuppress}));
  // Same number, other unit: not a duplicate.
  EXPECT_EQ(Verdicts(filter, {Num("Q", 1, "kW"), Num("Q", 1, "W")}),
            (std::vector{Verdict::kSend, Verdict::kSend}));
}

TEST(ItemFilterTest, PercentDeadbandIsRelativeToTheLastSentValue) {
  ItemFilter filter;
  filter.Configure("P", WithDeadband({true, 5, ""}));
  // Sent 100; 104 is inside 5 %; 105 reaches it; then relative to 105: 109 inside (5.25).
  EXPECT_EQ(Verdicts(filter, {Num("P", 100, "W"), Num("P", 104, "W"), Num("P", 96, "W"),
                              Num("P", 105, "W"), Num("P", 109, "W"), Num("P", 110.5, "W")}),
            (std::vector{Verdict::kSend, Verdict::kSuppress, Verdict::kSuppress, Verdict::kSend,
                         Verdict::kSuppress, Verdict::kSend}));
  EXPECT_EQ(filter.Counters("P")->deadband, 3);
  // From zero every change counts.
  filter.Configure("Z", WithDeadband({true, 50, ""}));
  EXPECT_EQ(Verdicts(filter, {Num("Z", 0), Num("Z", 0.001), Num("Z", 0.001)}),
            (std::vector{Verdict::kSend, Verdict::kSend, Verdict::kSuppress}));
  // Negative values: relative to |last sent|.
  filter.Configure("M", WithDeadband({true, 10, ""}));
  EXPECT_EQ(Verdicts(filter, {Num("M", -20), Num("M", -21.9), Num("M", -18.1), Num("M", -22)}),
            (std::vector{Verdict::kSend, Verdict::kSuppress, Verdict::kSuppress, Verdict::kSend}));
}

TEST(ItemFilterTest, AbsoluteDeadbandSuppressesSlowDriftAgainstTheLastSent) {
  ItemFilter filter;
  filter.Configure("T", WithDeadband({false, 0.5, "°C"}));
  // Creeping by 0.2: each step is small, but the distance from 20.0 (last sent) grows.
  EXPECT_EQ(Verdicts(filter, {Num("T", 20.0, "°C"), Num("T", 20.2, "°C"), Num("T", 20.4, "°C"),
                              Num("T", 20.6, "°C"), Num("T", 20.3, "°C"), Num("T", 20.1, "°C")}),
            (std::vector{Verdict::kSend, Verdict::kSuppress, Verdict::kSuppress, Verdict::kSend,
                         Verdict::kSuppress, Verdict::kSend}));
  // Exactly the deadband is sent, even where floating point makes it 0.4999999999999.
  ItemFilter exact;
  exact.Configure("T", WithDeadband({false, 0.5, "°C"}));
  EXPECT_EQ(Verdicts(exact, {Num("T", 1.8, "°C"), Num("T", 2.3, "°C")}),
            (std::vector{Verdict::kSend, Verdict::kSend}));
  EXPECT_LT(2.3 - 1.8, 0.5) << "the case this guards against";
}

TEST(ItemFilterTest, AbsoluteDeadbandConvertsUnits) {
  ItemFilter filter;
  filter.Configure("W", WithDeadband({false, 0.1, "kW"}));  // 100 W
  EXPECT_EQ(Verdicts(filter, {Num("W", 1000, "W"), Num("W", 1099, "W"), Num("W", 1100, "W")}),
            (std::vector{Verdict::kSend, Verdict::kSuppress, Verdict::kSend}));
  filter.Configure("K", WithDeadband({false, 1, "K"}));  // a difference: 1 K is 1 °C
  EXPECT_EQ(Verdicts(filter, {Num("K", 20, "°C"), Num("K", 20.9, "°C"), Num("K", 21, "°C")}),
            (std::vector{Verdict::kSend, Verdict::kSuppress, Verdict::kSend}));
  filter.Configure("F", WithDeadband({false, 1.8, "°F"}));  // 1 °C
  EXPECT_EQ(Verdicts(filter, {Num("F", 20, "°C"), Num("F", 20.9, "°C"), Num("F", 21.1, "°C")}),
            (std::vector{Verdict::kSend, Verdict::kSuppress, Verdict::kSend}));
  // The item's unit changes (W to kW) between sends: compared in the new unit.
  filter.Configure("U", WithDeadband({false, 50, "W"}));
  EXPECT_EQ(Verdicts(filter, {Num("U", 1000, "W"), Num("U", 1.04, "kW"), Num("U", 1.06, "kW")}),
            (std::vector{Verdict::kSend, Verdict::kSuppress, Verdict::kSend}));
  // A deadband without unit is in the value's own unit.
  filter.Configure("N", WithDeadband({false, 2, ""}));
  EXPECT_EQ(Verdicts(filter, {Num("N", 10, "kWh"), Num("N", 11.9, "kWh"), Num("N", 12, "kWh")}),
            (std::vector{Verdict::kSend, Verdict::kSuppress, Verdict::kSend}));
}

TEST(ItemFilterTest, IncomparableUnitsAndNonNumbersAreNeverInsideADeadband) {
  ItemFilter filter;
  filter.Configure("X", WithDeadband({false, 100, "W"}));
  EXPECT_EQ(Verdicts(filter, {Num("X", 5, "kWh"), Num("X", 5.01, "kWh")}),
            (std::vector{Verdict::kSend, Verdict::kSend}))
      << "W cannot measure kWh";
  EXPECT_EQ(Verdicts(filter, {Num("Y", 5), Num("Y", 5.01)}),
            (std::vector{Verdict::kSend, Verdict::kSend}))
      << "Y is not configured: no deadband";
  filter.Configure("L", WithDeadband({false, 10, "lx"}));
  EXPECT_EQ(Verdicts(filter, {Num("L", 5, "klx"), Num("L", 5.001, "klx")}),
            (std::vector{Verdict::kSend, Verdict::kSend}))
      << "klx is not in the table";
  filter.Configure("U", WithDeadband({false, 10, "W"}));
  EXPECT_EQ(Verdicts(filter, {Num("U", 100, "W"), Num("U", 0.1, "lx")}),
            (std::vector{Verdict::kSend, Verdict::kSend}))
      << "the last sent value's unit cannot be compared";
  filter.Configure("S", WithDeadband({true, 50, ""}));
  EXPECT_EQ(Verdicts(filter, {Text("S", "10"), Text("S", "11"), Num("S", 11),
                              Undefined("S", "UNDEF"), Num("S", 11)}),
            (std::vector{Verdict::kSend, Verdict::kSend, Verdict::kSend, Verdict::kSend,
                         Verdict::kSend}));
  EXPECT_EQ(filter.Totals().deadband, 0);
}

TEST(ItemFilterTest, MinIntervalHoldsTheLatestAndReleasesItOnTime) {
  ItemFilter filter;
  filter.Configure("M", Timing(10'000, 0));
  EXPECT_EQ(filter.OnChange(Num("M", 1), 1'000).verdict, Verdict::kSend);
  EXPECT_FALSE(filter.NextDueMs().has_value()) << "nothing held, no heartbeat";
  const auto held = filter.OnChange(Num("M", 2), 3'000);
  EXPECT_EQ(held.verdict, Verdict::kHold);
  EXPECT_EQ(held.until_ms, 11'000);
  EXPECT_EQ(filter.OnChange(Num("M", 3), 5'000).until_ms, 11'000) << "latest wins, same due";
  EXPECT_EQ(filter.NextDueMs(), 11'000);
  EXPECT_TRUE(filter.TakeDue(10'999).empty());
  auto due = filter.TakeDue(11'000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].reason, Reason::kReleased);
  EXPECT_EQ(due[0].entry.value, 3);
  EXPECT_FALSE(filter.NextDueMs().has_value()) << "released; nothing else due";
  EXPECT_TRUE(filter.TakeDue(100'000).empty()) << "released once";
  // The release was a send: the next interval counts from it.
  EXPECT_EQ(filter.OnChange(Num("M", 4), 20'000).until_ms, 21'000);
  EXPECT_EQ(filter.OnChange(Num("M", 5), 20'500).verdict, Verdict::kHold)
      << "still held: nothing released yet";
  due = filter.TakeDue(25'000);
  ASSERT_EQ(due.size(), 1u) << "released even though changes stopped, late caller included";
  EXPECT_EQ(due[0].entry.value, 5);
  EXPECT_EQ(filter.OnChange(Num("M", 6), 35'000).verdict, Verdict::kSend)
      << "10 s after the release at 25 s";
  const FilterCounters& c = *filter.Counters("M");
  EXPECT_EQ(c.held, 4);
  EXPECT_EQ(c.superseded, 2);
  EXPECT_EQ(c.released, 2);
}

TEST(ItemFilterTest, AHoldIsCancelledWhenTheStateReturnsToWhatWasSent) {
  ItemFilter filter;
  ItemPolicy p = Timing(10'000, 0);
  p.deadband = Deadband{false, 1, ""};
  filter.Configure("M", p);
  EXPECT_EQ(filter.OnChange(Num("M", 20), 0).verdict, Verdict::kSend);
  EXPECT_EQ(filter.OnChange(Num("M", 25), 1'000).verdict, Verdict::kHold);
  EXPECT_EQ(filter.OnChange(Num("M", 20.5), 2'000).verdict, Verdict::kSuppress)
      << "the latest state is inside the deadband of what was sent";
  EXPECT_FALSE(filter.NextDueMs().has_value());
  EXPECT_TRUE(filter.TakeDue(20'000).empty());
  EXPECT_EQ(filter.Counters("M")->superseded, 1);
  EXPECT_EQ(filter.Counters("M")->deadband, 1);
}

TEST(ItemFilterTest, HeartbeatResendsAnUnchangedStateOnTime) {
  ItemFilter filter;
  filter.Configure("H", Timing(0, 60'000));
  EXPECT_FALSE(filter.NextDueMs().has_value()) << "nothing to repeat before a first send";
  EXPECT_EQ(filter.OnChange(Text("H", "ON"), 1'000).verdict, Verdict::kSend);
  EXPECT_EQ(filter.NextDueMs(), 61'000);
  EXPECT_TRUE(filter.TakeDue(60'999).empty());
  auto due = filter.TakeDue(61'000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].reason, Reason::kHeartbeat);
  EXPECT_EQ(due[0].entry.value, "ON");
  EXPECT_EQ(filter.NextDueMs(), 121'000);
  // A change sent meanwhile moves the heartbeat.
  EXPECT_EQ(filter.OnChange(Text("H", "OFF"), 100'000).verdict, Verdict::kSend);
  EXPECT_EQ(filter.NextDueMs(), 160'000);
  // A late caller gets one heartbeat, not one per missed period.
  due = filter.TakeDue(500'000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].entry.value, "OFF");
  EXPECT_EQ(filter.NextDueMs(), 560'000);
  EXPECT_EQ(filter.Counters("H")->heartbeats, 2);
}

TEST(ItemFilterTest, SuppressedChangesDoNotResetTheHeartbeatAndItSendsTheLatest) {
  ItemFilter filter;
  ItemPolicy p = Timing(0, 60'000);
  p.deadband = Deadband{false, 1, "°C"};
  filter.Configure("T", p);
  EXPECT_EQ(filter.OnChange(Num("T", 20, "°C"), 0).verdict, Verdict::kSend);
  EXPECT_EQ(filter.OnChange(Num("T", 20.4, "°C"), 30'000).verdict, Verdict::kSuppress);
  EXPECT_EQ(filter.OnChange(Num("T", 20.4, "°C"), 40'000).verdict, Verdict::kSuppress);
  EXPECT_EQ(filter.NextDueMs(), 60'000) << "suppressed changes are no sends";
  auto due = filter.TakeDue(60'000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].entry.value, 20.4) << "the latest state, not the last sent one";
  EXPECT_EQ(filter.OnChange(Num("T", 21.2, "°C"), 61'000).verdict, Verdict::kSuppress)
      << "the heartbeat's 20.4 is the new reference";
  EXPECT_EQ(filter.Counters("T")->deadband, 3) << "20.4 twice: both inside 20's deadband";
  EXPECT_EQ(filter.Counters("T")->duplicates, 0);
  EXPECT_EQ(filter.Counters("T")->heartbeats, 1);
}

TEST(ItemFilterTest, HeartbeatIsNeverMoreOftenThanMinInterval) {
  ItemFilter filter;
  filter.Configure("H", Timing(30'000, 10'000));
  EXPECT_EQ(filter.OnChange(Num("H", 1), 0).verdict, Verdict::kSend);
  EXPECT_EQ(filter.NextDueMs(), 30'000);
}

TEST(ItemFilterTest, DueComesInTimeOrderAcrossItems) {
  ItemFilter filter;
  filter.Configure("A", Timing(0, 5'000));
  filter.Configure("B", Timing(10'000, 0));
  filter.Configure("C", Timing(0, 3'000));
  EXPECT_EQ(filter.OnChange(Num("A", 1), 0).verdict, Verdict::kSend);
  EXPECT_EQ(filter.OnChange(Num("B", 1), 0).verdict, Verdict::kSend);
  EXPECT_EQ(filter.OnChange(Num("B", 2), 1'000).verdict, Verdict::kHold);
  EXPECT_EQ(filter.OnChange(Num("C", 1), 1'000).verdict, Verdict::kSend);
  EXPECT_EQ(filter.NextDueMs(), 4'000);
  const auto due = filter.TakeDue(10'000);
  std::vector<std::pair<std::string, Reason>> got;
  got.reserve(due.size());
  for (const auto& d : due) got.emplace_back(d.entry.key, d.reason);
  EXPECT_EQ(got,
            (std::vector<std::pair<std::string, Reason>>{
                {"C", Reason::kHeartbeat}, {"A", Reason::kHeartbeat}, {"B", Reason::kReleased}}));
  EXPECT_EQ(filter.NextDueMs(), 13'000) << "C again, 3 s after 10 s";
}

TEST(ItemFilterTest, SentFromASnapshotIsTheNewReferenceAndDropsAHold) {
  ItemFilter filter;
  ItemPolicy p = Timing(10'000, 60'000);
  p.deadband = Deadband{false, 1, ""};
  filter.Configure("S", p);
  filter.Sent(Num("S", 10), 0);
  EXPECT_EQ(filter.NextDueMs(), 60'000);
  EXPECT_EQ(filter.OnChange(Num("S", 10.5), 20'000).verdict, Verdict::kSuppress);
  EXPECT_EQ(filter.OnChange(Num("S", 12), 21'000).verdict, Verdict::kSend);
  EXPECT_EQ(filter.OnChange(Num("S", 14), 22'000).verdict, Verdict::kHold);
  filter.Sent(Num("S", 14), 23'000);  // a resync snapshot carried the latest state
  EXPECT_EQ(filter.NextDueMs(), 83'000) << "hold dropped, heartbeat from the snapshot";
  EXPECT_TRUE(filter.TakeDue(82'999).empty());
  EXPECT_EQ(filter.Counters("S")->superseded, 1) << "the held change was not sent as such";
  EXPECT_EQ(filter.Counters("S")->released, 0);
}

TEST(ItemFilterTest, AChangeAfterTheIntervalGoesInsteadOfTheHeldOne) {
  ItemFilter filter;
  filter.Configure("M", Timing(10'000, 0));
  EXPECT_EQ(filter.OnChange(Num("M", 1), 0).verdict, Verdict::kSend);
  EXPECT_EQ(filter.OnChange(Num("M", 2), 1'000).verdict, Verdict::kHold);
  // The caller has not taken the due release yet when a newer change comes.
  EXPECT_EQ(filter.OnChange(Num("M", 3), 10'000).verdict, Verdict::kSend);
  EXPECT_TRUE(filter.TakeDue(10'000).empty()) << "2 is not sent after 3";
  EXPECT_FALSE(filter.NextDueMs().has_value());
  EXPECT_EQ(filter.Counters("M")->superseded, 1);
  EXPECT_EQ(filter.Counters("M")->released, 0);
}

TEST(ItemFilterTest, ReconfigureKeepsStateAndForgetDropsIt) {
  ItemFilter filter;
  filter.Configure("R", Timing(60'000, 0));
  EXPECT_EQ(filter.OnChange(Num("R", 1), 0).verdict, Verdict::kSend);
  EXPECT_EQ(filter.OnChange(Num("R", 2), 1'000).until_ms, 60'000);
  filter.Configure("R", Timing(5'000, 0));  // a reload shortens the interval
  EXPECT_EQ(filter.NextDueMs(), 5'000);
  filter.Configure("R", Timing(0, 0));  // or removes it: due at once
  const auto due = filter.TakeDue(2'000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].entry.value, 2);
  EXPECT_EQ(filter.OnChange(Num("R", 2), 3'000).verdict, Verdict::kSuppress) << "state kept";

  EXPECT_EQ(filter.OnChange(Num("R", 3), 4'000).verdict, Verdict::kSend);
  filter.Configure("R", Timing(10'000, 0));
  EXPECT_EQ(filter.OnChange(Num("R", 4), 5'000).verdict, Verdict::kHold);
  filter.Forget("R");
  EXPECT_EQ(filter.Counters("R"), nullptr);
  EXPECT_FALSE(filter.NextDueMs().has_value()) << "the held change went with it";
  EXPECT_EQ(filter.size(), 0u);
  EXPECT_EQ(filter.OnChange(Num("R", 4), 6'000).verdict, Verdict::kSend) << "known afresh";
}

TEST(ItemFilterTest, TotalsSumEveryItem) {
  ItemFilter filter;
  filter.Configure("A", WithDeadband({false, 1, ""}));
  filter.Configure("B", Timing(1'000, 0));
  (void)Verdicts(filter, {Num("A", 1), Num("A", 1.5), Num("A", 1)});
  EXPECT_EQ(filter.OnChange(Num("B", 1), 0).verdict, Verdict::kSend);
  EXPECT_EQ(filter.OnChange(Num("B", 2), 1).verdict, Verdict::kHold);
  const FilterCounters t = filter.Totals();
  EXPECT_EQ(t.deadband, 1);
  EXPECT_EQ(t.duplicates, 1);
  EXPECT_EQ(t.held, 1);
  EXPECT_EQ(t.released, 0);
}

}  // namespace
}  // namespace iothub::connector
