// Per-item settings (docs/configuration.md, "Per-item behaviour"): defaults, [[item]] rules in
// order (later wins per field), the azureiothub metadata over the file, and bad metadata
// reported with a fallback to the file's setting.
#include "connector/item_policy.h"

#include <gtest/gtest.h>

#include "support/make_item.h"

namespace iothub::connector {
namespace {

using testing::MakeItem;

openhab::Metadata Meta(std::string value, openhab::Json config = openhab::Json::object()) {
  return openhab::Metadata{std::move(value), std::move(config)};
}

// Applies `metadata` onto a policy the file set up, returning the problems.
std::vector<Error> Apply(const openhab::Metadata& metadata, ItemPolicy& policy) {
  std::vector<Error> problems;
  ApplyMetadata("Meter", metadata, policy, problems);
  return problems;
}

ItemPolicy FromFile() {
  ItemPolicy p;
  p.priority = Priority::kLow;
  p.deadband = Deadband{true, 5, ""};
  p.min_interval_ms = 10'000;
  p.heartbeat_ms = 3'600'000;
  p.send = SendAs::kTelemetry;
  return p;
}

void ExpectFileSettings(const ItemPolicy& p) {
  EXPECT_EQ(p.priority, Priority::kLow);
  ASSERT_TRUE(p.deadband.has_value());
  EXPECT_TRUE(p.deadband->percent);
  EXPECT_DOUBLE_EQ(p.deadband->amount, 5);
  EXPECT_EQ(p.min_interval_ms, 10'000);
  EXPECT_EQ(p.heartbeat_ms, 3'600'000);
  EXPECT_EQ(p.send, SendAs::kTelemetry);
}

TEST(ItemPolicyTest, DefaultsSendBothWithoutFilters) {
  auto resolver = PolicyResolver::Create({});
  ASSERT_TRUE(resolver.ok());
  const ItemMap items;
  const auto resolved = resolver->Resolve(MakeItem("Any", "Switch"), GroupMembership(items));
  EXPECT_EQ(resolved.policy.priority, Priority::kNormal);
  EXPECT_FALSE(resolved.policy.deadband.has_value());
  EXPECT_EQ(resolved.policy.min_interval_ms, 0);
  EXPECT_EQ(resolved.policy.heartbeat_ms, 0);
  EXPECT_EQ(resolved.policy.send, SendAs::kBoth);
  EXPECT_TRUE(resolved.problems.empty());
}

TEST(ItemPolicyTest, LaterRulesWinPerField) {
  std::vector<ItemRule> rules(4);
  rules[0].match = "*";
  rules[0].priority = Priority::kLow;
  rules[0].heartbeat_ms = 3'600'000;
  rules[0].send = SendAs::kTelemetry;
  rules[1].match = "@gMeters";
  rules[1].priority = Priority::kHigh;
  rules[1].deadband = Deadband{false, 10, "W"};
  rules[2].match = "#Temperature";
  rules[2].min_interval_ms = 60'000;
  rules[3].match = "*_Power";
  rules[3].deadband = Deadband{true, 5, ""};
  rules[3].heartbeat_ms = 0;  // set: turns the earlier heartbeat off
  auto resolver = PolicyResolver::Create(rules);
  ASSERT_TRUE(resolver.ok()) << resolver.error().message;

  ItemMap items;
  items.emplace("gHome", MakeItem("gHome", "Group"));
  items.emplace("gMeters", MakeItem("gMeters", "Group", {"gHome"}));
  items.emplace("Main_Power", MakeItem("Main_Power", "Number:Power", {"gMeters"}));
  items.emplace("Main_Energy", MakeItem("Main_Energy", "Number:Energy", {"gMeters"}));
  items.emplace("LR_Temp", MakeItem("LR_Temp", "Number:Temperature", {}, {"Temperature"}));
  const GroupMembership groups(items);

  const ItemPolicy power = resolver->Resolve(items.at("Main_Power"), groups).policy;
  EXPECT_EQ(power.priority, Priority::kHigh) << "rule 2 over rule 1";
  ASSERT_TRUE(power.deadband.has_value());
  EXPECT_TRUE(power.deadband->percent) << "rule 4 over rule 2";
  EXPECT_EQ(power.heartbeat_ms, 0) << "rule 4 over rule 1";
  EXPECT_EQ(power.min_interval_ms, 0) << "no rule set it";
  EXPECT_EQ(power.send, SendAs::kTelemetry) << "rule 1, not overridden";

  const ItemPolicy energy = resolver->Resolve(items.at("Main_Energy"), groups).policy;
  EXPECT_EQ(energy.priority, Priority::kHigh);
  ASSERT_TRUE(energy.deadband.has_value());
  EXPECT_FALSE(energy.deadband->percent);
  EXPECT_EQ(energy.deadband->unit, "W");
  EXPECT_EQ(energy.heartbeat_ms, 3'600'000);

  const ItemPolicy temp = resolver->Resolve(items.at("LR_Temp"), groups).policy;
  EXPECT_EQ(temp.priority, Priority::kLow);
  EXPECT_FALSE(temp.deadband.has_value());
  EXPECT_EQ(temp.min_interval_ms, 60'000);
}

TEST(ItemPolicyTest, MetadataWinsOverTheFile) {
  std::vector<ItemRule> rules(1);
  rules[0].match = "Meter";
  rules[0].priority = Priority::kLow;
  rules[0].deadband = Deadband{true, 5, ""};
  rules[0].min_interval_ms = 10'000;
  rules[0].heartbeat_ms = 3'600'000;
  rules[0].send = SendAs::kTelemetry;
  auto resolver = PolicyResolver::Create(rules);
  ASSERT_TRUE(resolver.ok());
  openhab::Item item = MakeItem("Meter", "Number:Power");
  item.azure = Meta(
      "twin",
      {{"priority", "high"}, {"deadband", "0.5 kW"}, {"min_interval", "2s"}, {"heartbeat", "15m"}});
  const ItemMap items;
  const auto resolved = resolver->Resolve(item, GroupMembership(items));
  EXPECT_TRUE(resolved.problems.empty());
  const ItemPolicy& p = resolved.policy;
  EXPECT_EQ(p.send, SendAs::kTwin);
  EXPECT_EQ(p.priority, Priority::kHigh);
  ASSERT_TRUE(p.deadband.has_value());
  EXPECT_FALSE(p.deadband->percent);
  EXPECT_DOUBLE_EQ(p.deadband->amount, 0.5);
  EXPECT_EQ(p.deadband->unit, "kW");
  EXPECT_EQ(p.min_interval_ms, 2'000);
  EXPECT_EQ(p.heartbeat_ms, 900'000);
}

TEST(ItemPolicyTest, MetadataNumbersAreSecondsOrUnitlessAmounts) {
  ItemPolicy p = FromFile();
  EXPECT_TRUE(
      Apply(Meta("", {{"min_interval", 10}, {"heartbeat", 0.5}, {"deadband", 2}}), p).empty());
  EXPECT_EQ(p.min_interval_ms, 10'000);
  EXPECT_EQ(p.heartbeat_ms, 500);
  ASSERT_TRUE(p.deadband.has_value());
  EXPECT_FALSE(p.deadband->percent);
  EXPECT_DOUBLE_EQ(p.deadband->amount, 2);
  EXPECT_EQ(p.deadband->unit, "");
  EXPECT_EQ(p.send, SendAs::kTelemetry) << "an empty value keeps the file's send mode";
}

TEST(ItemPolicyTest, MetadataValuesIgnoreCaseAndZeroTurnsFiltersOff) {
  ItemPolicy p = FromFile();
  EXPECT_TRUE(
      Apply(
          Meta("NONE",
               {{"priority", "High"}, {"min_interval", "0"}, {"heartbeat", 0}, {"deadband", "0"}}),
          p)
          .empty());
  EXPECT_EQ(p.send, SendAs::kNone);
  EXPECT_EQ(p.priority, Priority::kHigh);
  EXPECT_EQ(p.min_interval_ms, 0);
  EXPECT_EQ(p.heartbeat_ms, 0);
  ASSERT_TRUE(p.deadband.has_value());
  EXPECT_DOUBLE_EQ(p.deadband->amount, 0);
}

TEST(ItemPolicyTest, ReservedKeysAreAcceptedAndIgnored) {
  ItemPolicy p = FromFile();
  EXPECT_TRUE(Apply(Meta("", {{"command", true}, {"device", "meter-1"}}), p).empty());
  EXPECT_TRUE(Apply(Meta("", {{"command", "False"}}), p).empty());
  ExpectFileSettings(p);
  // The command gate reads `command`; a value it cannot use is said with the item's metadata.
  const auto problems = Apply(Meta("", {{"command", "maybe"}}), p);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].message.find("command: expected true or false, got \"maybe\""),
            std::string::npos)
      << problems[0].message;
  ExpectFileSettings(p);
}

TEST(ItemPolicyTest, BadMetadataIsReportedPerKeyAndFallsBackToTheFile) {
  ItemPolicy p = FromFile();
  const auto problems = Apply(Meta("telemtry", {{"priority", "urgent"},
                                                {"deadband", "lots"},
                                                {"min_interval", "-5s"},
                                                {"heartbeat", true},
                                                {"hartbeat", "1h"}}),
                              p);
  ExpectFileSettings(p);
  ASSERT_EQ(problems.size(), 6u);
  // One error per bad key, in the order: value, then config keys (alphabetical, as stored).
  const char* expected[] = {
      "item Meter: azureiothub metadata: value: expected one of \"telemetry\", \"twin\", "
      "\"both\", \"none\" (the send mode) or nothing, got \"telemtry\"; the configuration "
      "file's setting is kept",
      "item Meter: azureiothub metadata: deadband: expected a percentage (\"5 %\") or an amount "
      "with its unit (\"0.5 °C\", \"10 W\"), got \"lots\"",
      "unknown key 'hartbeat' (known: priority, deadband, min_interval, heartbeat",
      "heartbeat: expected a duration (\"500ms\", \"10s\", \"5m\", \"1h\", \"1d\", or seconds), "
      "got true",
      "min_interval: expected a duration",
      "priority: expected one of \"high\", \"normal\", \"low\", got \"urgent\"",
  };
  for (std::size_t i = 0; i < problems.size(); ++i) {
    EXPECT_EQ(problems[i].code, "bad_metadata");
    EXPECT_NE(problems[i].message.find(expected[i]), std::string::npos)
        << "#" << i << ": " << problems[i].message;
  }
}

TEST(ItemPolicyTest, BadMetadataKeepsTheGoodKeys) {
  ItemPolicy p = FromFile();
  const auto problems =
      Apply(Meta("both", {{"priority", "high"}, {"deadband", {1, 2}}, {"heartbeat", -1}}), p);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].message.find("deadband: expected"), std::string::npos);
  EXPECT_NE(problems[0].message.find("got [1,2]"), std::string::npos) << problems[0].message;
  EXPECT_NE(problems[1].message.find("heartbeat: expected"), std::string::npos);
  EXPECT_EQ(p.send, SendAs::kBoth);
  EXPECT_EQ(p.priority, Priority::kHigh);
  EXPECT_TRUE(p.deadband->percent) << "the file's deadband stays";
  EXPECT_EQ(p.heartbeat_ms, 3'600'000) << "the file's heartbeat stays";
}

TEST(ItemPolicyTest, ResolveReportsMetadataProblemsWithTheFileSettings) {
  std::vector<ItemRule> rules(1);
  rules[0].match = "Meter";
  rules[0].heartbeat_ms = 60'000;
  auto resolver = PolicyResolver::Create(rules);
  ASSERT_TRUE(resolver.ok());
  openhab::Item item = MakeItem("Meter", "Number:Power");
  item.azure = Meta("", {{"heartbeat", "often"}});
  const ItemMap items;
  const auto resolved = resolver->Resolve(item, GroupMembership(items));
  ASSERT_EQ(resolved.problems.size(), 1u);
  EXPECT_NE(resolved.problems[0].message.find("item Meter"), std::string::npos);
  EXPECT_EQ(resolved.policy.heartbeat_ms, 60'000);
}

TEST(ItemPolicyTest, BadRuleMatchesAreErrors) {
  std::vector<ItemRule> rules(3);
  rules[0].match = "ok_*";
  rules[1].match = "";
  rules[2].match = "#";
  auto resolver = PolicyResolver::Create(rules);
  ASSERT_FALSE(resolver.ok());
  EXPECT_EQ(resolver.error().code, "bad_pattern");
  EXPECT_NE(resolver.error().message.find("[[item]] #2 match: an empty pattern"), std::string::npos)
      << resolver.error().message;
  EXPECT_NE(resolver.error().message.find("[[item]] #3 match: '#' needs a tag"), std::string::npos)
      << resolver.error().message;
}

}  // namespace
}  // namespace iothub::connector
