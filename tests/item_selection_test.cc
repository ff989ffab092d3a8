// Choosing items (docs/configuration.md): names, globs, @group members through nested groups
// (cycles and unknown groups included), #tags, exclusion, plain groups, and a recompute over
// 10,000 items.
#include "connector/item_selection.h"

#include <gtest/gtest.h>

#include <chrono>
#include <initializer_list>

#include "support/make_item.h"

namespace iothub::connector {
namespace {

using testing::MakeItem;

openhab::Item TypedGroup(std::string name, std::vector<std::string> groups = {}) {
  openhab::Item item = MakeItem(std::move(name), "Group", std::move(groups));
  item.group_type = "Switch";
  item.function = "OR";
  return item;
}

ItemMap Map(std::initializer_list<openhab::Item> items) {
  ItemMap map;
  for (const auto& item : items) map.emplace(item.name, item);
  return map;
}

// A home: gHome > gLiving (plain) > LR_Temp, LR_Lamp; gLights (typed) > LR_Lamp, Porch_Lamp;
// gCycleA <-> gCycleB, with Looped in gCycleB; Orphan in the unknown gGone.
ItemMap Home() {
  return Map({
      MakeItem("gHome", "Group"),
      MakeItem("gLiving", "Group", {"gHome"}),
      TypedGroup("gLights", {"gHome"}),
      MakeItem("LR_Temp", "Number:Temperature", {"gLiving"}, {"Measurement", "Temperature"}),
      MakeItem("LR_Lamp", "Switch", {"gLiving", "gLights"}, {"Switch"}),
      MakeItem("Porch_Lamp", "Switch", {"gLights"}),
      MakeItem("Sensor_1", "Number"),
      MakeItem("Sensor_22", "Number"),
      MakeItem("gCycleA", "Group", {"gCycleB"}),
      MakeItem("gCycleB", "Group", {"gCycleA"}),
      MakeItem("Looped", "String", {"gCycleB"}),
      MakeItem("Orphan", "Contact", {"gGone"}),
  });
}

std::set<std::string> Select(const ItemMap& items, const std::vector<std::string>& include,
                             const std::vector<std::string>& exclude = {}) {
  auto selector = ItemSelector::Create(include, exclude);
  EXPECT_TRUE(selector.ok()) << selector.error().message;
  if (!selector.ok()) return {};
  std::set<std::string> all = selector->SelectAll(items);
  EXPECT_EQ(selector->SelectAll(items, GroupMembership(items)), all);
  // The one-item query agrees with the recompute for every item.
  for (const auto& [name, item] : items) {
    EXPECT_EQ(selector->Selects(item, items), all.contains(name)) << name;
  }
  return all;
}

using Names = std::set<std::string>;

TEST(GlobTest, StarAndQuestionMark) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("*", "anything"));
  EXPECT_TRUE(GlobMatch("Sensor_*", "Sensor_"));
  EXPECT_TRUE(GlobMatch("Sensor_*", "Sensor_12"));
  EXPECT_FALSE(GlobMatch("Sensor_*", "sensor_12")) << "item names are case-sensitive";
  EXPECT_FALSE(GlobMatch("Sensor_*", "MySensor_1"));
  EXPECT_TRUE(GlobMatch("*_Power", "Kitchen_Power"));
  EXPECT_FALSE(GlobMatch("*_Power", "Kitchen_Power2"));
  EXPECT_TRUE(GlobMatch("Sensor_?", "Sensor_1"));
  EXPECT_FALSE(GlobMatch("Sensor_?", "Sensor_22"));
  EXPECT_FALSE(GlobMatch("Sensor_?", "Sensor_"));
  EXPECT_TRUE(GlobMatch("*a*b*c", "xxaybbzc"));
  EXPECT_FALSE(GlobMatch("*a*b*c", "xxaybbzcd"));
  EXPECT_TRUE(GlobMatch("a**b", "ab"));
  EXPECT_TRUE(GlobMatch("LR_Temp", "LR_Temp"));
  EXPECT_FALSE(GlobMatch("LR_Temp", "LR_Temp2"));
  // Backtracking stays linear-ish on a hostile pattern.
  EXPECT_FALSE(GlobMatch("*a*a*a*a*a*a*a*b", std::string(2000, 'a')));
}

TEST(ItemPatternTest, CompilesEachKind) {
  const std::pair<const char*, ItemPattern::Kind> cases[] = {
      {"LR_Temp", ItemPattern::Kind::kName}, {"Sensor_*", ItemPattern::Kind::kGlob},
      {"?", ItemPattern::Kind::kGlob},       {"@gLights", ItemPattern::Kind::kGroup},
      {"@g*", ItemPattern::Kind::kGroup},    {"#Temperature", ItemPattern::Kind::kTag},
      {"#My Tag", ItemPattern::Kind::kTag},
  };
  for (const auto& [text, kind] : cases) {
    auto pattern = ItemPattern::Compile(text);
    ASSERT_TRUE(pattern.ok()) << text << ": " << pattern.error().message;
    EXPECT_EQ(pattern->kind(), kind) << text;
    EXPECT_EQ(pattern->text(), text);
  }
}

TEST(ItemPatternTest, BadPatternsSayWhatWasExpected) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "an empty pattern"},
      {"@", "needs a group name after '@'"},
      {"#", "needs a tag after '#'"},
      {"Bad Name", "'Bad Name' is no item pattern"},
      {"Temp-1", "'Temp-1' is no item pattern"},
      {"@g Lights", "'@g Lights' is no group"},
      {"#Tab\there", "is no tag"},
  };
  for (const auto& [text, message] : cases) {
    auto pattern = ItemPattern::Compile(text);
    ASSERT_FALSE(pattern.ok()) << text;
    EXPECT_EQ(pattern.error().code, "bad_pattern");
    EXPECT_NE(pattern.error().message.find(message), std::string::npos)
        << text << " -> " << pattern.error().message;
  }
}

TEST(ItemSelectorTest, CreateListsEveryBadPatternOfBothLists) {
  auto selector = ItemSelector::Create({"ok", "", "@"}, {"#"});
  ASSERT_FALSE(selector.ok());
  const std::string& m = selector.error().message;
  EXPECT_NE(m.find("openhab.items: an empty pattern"), std::string::npos) << m;
  EXPECT_NE(m.find("openhab.items: '@' needs"), std::string::npos) << m;
  EXPECT_NE(m.find("openhab.exclude: '#' needs"), std::string::npos) << m;
}

TEST(ItemSelectorTest, StarTakesEveryItemButPlainGroups) {
  EXPECT_EQ(Select(Home(), {"*"}), (Names{"LR_Lamp", "LR_Temp", "Looped", "Orphan", "Porch_Lamp",
                                          "Sensor_1", "Sensor_22", "gLights"}))
      << "plain groups (gHome, gLiving, gCycleA/B) carry no state; typed gLights is an item";
}

TEST(ItemSelectorTest, ExactNamesAndGlobs) {
  EXPECT_EQ(Select(Home(), {"LR_Temp"}), Names{"LR_Temp"});
  EXPECT_EQ(Select(Home(), {"Sensor_*"}), (Names{"Sensor_1", "Sensor_22"}));
  EXPECT_EQ(Select(Home(), {"Sensor_?"}), Names{"Sensor_1"});
  EXPECT_EQ(Select(Home(), {"*_Lamp", "LR_Temp"}), (Names{"LR_Lamp", "LR_Temp", "Porch_Lamp"}));
  EXPECT_EQ(Select(Home(), {"gLiving"}), Names{}) << "a plain group, even by name";
  EXPECT_EQ(Select(Home(), {"NoSuchItem"}), Names{});
  EXPECT_EQ(Select(Home(), {}), Names{}) << "no items pattern selects nothing";
}

TEST(ItemSelectorTest, GroupMembersRecursivelyThroughNestedGroups) {
  EXPECT_EQ(Select(Home(), {"@gLiving"}), (Names{"LR_Lamp", "LR_Temp"}));
  EXPECT_EQ(Select(Home(), {"@gLights"}), (Names{"LR_Lamp", "Porch_Lamp"}))
      << "members only: the group itself is not its own member";
  EXPECT_EQ(Select(Home(), {"@gHome"}), (Names{"LR_Lamp", "LR_Temp", "Porch_Lamp", "gLights"}))
      << "through gLiving and gLights; the typed group gLights is a member too";
  EXPECT_EQ(Select(Home(), {"@gLi*"}), (Names{"LR_Lamp", "LR_Temp", "Porch_Lamp"}))
      << "a group glob: members of gLiving or gLights";
}

TEST(ItemSelectorTest, CyclesAndUnknownGroupsEnd) {
  EXPECT_EQ(Select(Home(), {"@gCycleA"}), Names{"Looped"});
  EXPECT_EQ(Select(Home(), {"@gCycleB"}), Names{"Looped"});
  EXPECT_EQ(Select(Home(), {"@gGone"}), Names{"Orphan"})
      << "an item's own group list counts even when the group is not in the mirror";
  EXPECT_EQ(Select(Home(), {"@gMissing"}), Names{});
  // A long cycle with a self-loop and members all along it.
  ItemMap ring;
  for (int i = 0; i < 50; ++i) {
    ring.emplace("g" + std::to_string(i),
                 MakeItem("g" + std::to_string(i), "Group",
                          {"g" + std::to_string((i + 1) % 50), "g" + std::to_string(i)}));
    ring.emplace("m" + std::to_string(i),
                 MakeItem("m" + std::to_string(i), "Switch", {"g" + std::to_string(i)}));
  }
  EXPECT_EQ(Select(ring, {"@g7"}).size(), 50u) << "every g reaches g7 around the ring";
}

TEST(ItemSelectorTest, TagsIgnoreAsciiCaseAsOpenHabDoes) {
  EXPECT_EQ(Select(Home(), {"#Temperature"}), Names{"LR_Temp"});
  EXPECT_EQ(Select(Home(), {"#temperature"}), Names{"LR_Temp"});
  EXPECT_EQ(Select(Home(), {"#Switch"}), Names{"LR_Lamp"});
  EXPECT_EQ(Select(Home(), {"#Temp"}), Names{}) << "a tag is matched whole, never as a prefix";
  EXPECT_EQ(Select(Home(), {"#Temp*"}), Names{}) << "no globs in tags";
}

TEST(ItemSelectorTest, ExcludeWins) {
  EXPECT_EQ(Select(Home(), {"*"}, {"@gLiving", "Sensor_*"}),
            (Names{"Looped", "Orphan", "Porch_Lamp", "gLights"}));
  EXPECT_EQ(Select(Home(), {"@gLights"}, {"LR_Lamp"}), Names{"Porch_Lamp"});
  EXPECT_EQ(Select(Home(), {"LR_Temp"}, {"#temperature"}), Names{});
  EXPECT_EQ(Select(Home(), {"*"}, {"*"}), Names{});
}

TEST(ItemSelectorTest, SaysWhenGroupMembershipMatters) {
  EXPECT_FALSE(ItemSelector::Create({"*"}, {})->uses_groups());
  EXPECT_FALSE(ItemSelector::Create({"*", "@g"}, {})->uses_groups()) << "`*` takes all anyway";
  EXPECT_TRUE(ItemSelector::Create({"@g"}, {})->uses_groups());
  EXPECT_TRUE(ItemSelector::Create({"*"}, {"@g"})->uses_groups());
  EXPECT_FALSE(ItemSelector::Create({"#T", "A*"}, {"B"})->uses_groups());
}

TEST(GroupMembershipTest, ContainsIsTransitive) {
  const ItemMap home = Home();
  const GroupMembership groups(home);
  const openhab::Item& temp = home.at("LR_Temp");
  EXPECT_TRUE(groups.Contains(temp, "gLiving"));
  EXPECT_TRUE(groups.Contains(temp, "gHome"));
  EXPECT_FALSE(groups.Contains(temp, "gLights"));
  EXPECT_FALSE(groups.Contains(temp, "LR_Temp"));
  EXPECT_TRUE(groups.Contains(home.at("Looped"), "gCycleA"));
}

// 10,000 items in 100 rooms under 10 floors, selected by group, glob, tag and exclusion.
TEST(ItemSelectorTest, RecomputesTenThousandItemsQuickly) {
  ItemMap items;
  for (int f = 0; f < 10; ++f) {
    const std::string floor = "gFloor" + std::to_string(f);
    items.emplace(floor, MakeItem(floor, "Group", {"gHome"}));
    for (int r = 0; r < 10; ++r) {
      const std::string room = "gRoom" + std::to_string(f * 10 + r);
      items.emplace(room, MakeItem(room, "Group", {floor}));
    }
  }
  for (int i = 0; i < 10'000; ++i) {
    const std::string name = "Item_" + std::to_string(i);
    std::vector<std::string> tags;
    if (i % 3 == 0) tags.push_back("Temperature");
    items.emplace(name, MakeItem(name, "Number", {"gRoom" + std::to_string(i % 100)}, tags));
  }
  auto selector =
      ItemSelector::Create({"@gHome", "#Temperature", "Item_1*"}, {"@gFloor3", "Item_?7"});
  ASSERT_TRUE(selector.ok()) << selector.error().message;
  const auto start = std::chrono::steady_clock::now();
  std::set<std::string> selected;
  constexpr int kRuns = 10;
  for (int run = 0; run < kRuns; ++run) selected = selector->SelectAll(items);
  const auto per_run = (std::chrono::steady_clock::now() - start) / kRuns;
  // Items in rooms 30-39 are on floor 3, and Item_17, ..., Item_97 are excluded.
  std::size_t expected = 0;
  for (int i = 0; i < 10'000; ++i) {
    const int room = i % 100;
    if (room >= 30 && room < 40) continue;
    if (i >= 10 && i < 100 && i % 10 == 7) continue;
    ++expected;
  }
  EXPECT_EQ(selected.size(), expected);
  EXPECT_FALSE(selected.contains("Item_37"));
  EXPECT_FALSE(selected.contains("Item_30"));
  EXPECT_TRUE(selected.contains("Item_41"));
  const auto ms = std::chrono::duration<double, std::milli>(per_run).count();
  std::printf("SelectAll over %zu items: %.2f ms\n", items.size(), ms);
  // Generous for sanitizer builds; an unbounded or per-pattern walk takes far longer.
  EXPECT_LT(ms, 250.0);
}

}  // namespace
}  // namespace iothub::connector
