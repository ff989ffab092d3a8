// Items and server facts from the REST API, with bodies shaped as openHAB 3.x–5.x send them
// (shared/reference/openhab.md §1).
#include <gtest/gtest.h>

#include "openhab/item.h"
#include "openhab/json_fields.h"

namespace iothub::openhab {
namespace {

// The example of §1: a quantity item and a group with a function.
constexpr char kItems[] = R"([
 {"link":"http://oh:8080/rest/items/LR_Temp","state":"21.5 °C","stateDescription":{"pattern":"%.1f %unit%","readOnly":true,"options":[]},"unitSymbol":"°C","editable":false,"type":"Number:Temperature","name":"LR_Temp","label":"Living temp","category":"temperature","tags":["Measurement","Temperature"],"groupNames":["gLiving"],
  "metadata":{"azureiothub":{"value":"telemetry","config":{"interval":60}},"semantics":{"value":"Point_Measurement"}}},
 {"members":[{"name":"Lamp1","type":"Switch"}],"groupType":"Switch","function":{"name":"OR","params":["ON","OFF"]},"link":"http://oh:8080/rest/items/gLights","state":"OFF","editable":true,"type":"Group","name":"gLights","tags":[],"groupNames":[]},
 {"type":"Switch","name":"Porch","state":"NULL","lastState":"ON","lastStateUpdate":1717171717000,"lastStateChange":1717171000000},
 {"type":"String","name":"Empty","label":null},
 {"name":"bad name","type":"Switch"},
 {"name":"NoType"},
 {"name":"Weird","type":"Switch","tags":"not a list"},
 42
])";

TEST(ItemTest, ParsesRealItemListsAndSkipsWhatItCannotUse) {
  auto list = ParseItems(kItems);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->items.size(), 4u);
  EXPECT_EQ(list->skipped.size(), 4u);
  const Item& temp = list->items[0];
  EXPECT_EQ(temp.type, "Number:Temperature");
  EXPECT_EQ(temp.label, "Living temp");
  EXPECT_EQ(temp.state, "21.5 °C");
  EXPECT_EQ(temp.unit_symbol, "°C");
  EXPECT_TRUE(temp.read_only);
  EXPECT_EQ(temp.pattern, "%.1f %unit%");
  EXPECT_EQ(temp.tags, (std::vector<std::string>{"Measurement", "Temperature"}));
  EXPECT_EQ(temp.groups, std::vector<std::string>{"gLiving"});
  ASSERT_TRUE(temp.azure.has_value());
  EXPECT_EQ(temp.azure->value, "telemetry");
  EXPECT_EQ(temp.azure->config["interval"], 60);
  EXPECT_TRUE(temp.metadata.contains("semantics"));
  const Item& group = list->items[1];
  EXPECT_TRUE(group.is_group());
  EXPECT_EQ(group.group_type, "Switch");
  EXPECT_EQ(group.function, "OR");
  EXPECT_EQ(group.function_params, (std::vector<std::string>{"ON", "OFF"}));
  EXPECT_EQ(group.members, std::vector<std::string>{"Lamp1"});
  EXPECT_FALSE(group.azure.has_value());
  const Item& porch = list->items[2];
  EXPECT_EQ(porch.last_state_update_ms, 1717171717000);
  EXPECT_EQ(porch.last_state_change_ms, 1717171000000);
  EXPECT_EQ(list->items[3].label, "") << "null label tolerated";
  EXPECT_EQ(list->items[3].state, "NULL") << "a missing state is NULL";
  for (const auto& e : list->skipped) EXPECT_EQ(e.code, "bad_item");
  EXPECT_NE(list->skipped[2].message.find("Weird"), std::string::npos) << "names the item";
}

TEST(ItemTest, BadBodiesAreErrors) {
  for (const char* body : {"", "{}", "not json", "[[[[", "null"}) {
    auto list = ParseItems(body);
    ASSERT_FALSE(list.ok()) << body;
    EXPECT_EQ(list.error().code, "bad_response");
  }
  EXPECT_FALSE(ParseItems(std::string(100'000, '[') + std::string(100'000, ']')).ok());
  // Read entry by entry: a body cut off after whole entries is still no list.
  EXPECT_FALSE(ParseItems(R"([{"name":"A","type":"Switch"},{"name":"B","ty)").ok());
  EXPECT_FALSE(ParseItems(R"([{"name":"A","type":"Switch"}]trailing)").ok());
  // A flood of commas is no list, and reserves no more than a big home's (no allocation of
  // a million entries: this would take gigabytes).
  EXPECT_FALSE(ParseItems("[" + std::string(1'000'000, ',') + "]").ok());
  auto bad_meta =
      ParseItem(Json::parse(R"({"name":"A","type":"Switch","metadata":{"azureiothub":7}})"));
  EXPECT_FALSE(bad_meta.ok());
}

TEST(ServerInfoTest, VersionDecidesFilterSemanticsAndKeepAlive) {
  struct Case {
    const char* body;
    int major, minor;
    FilterSemantics semantics;
    int alive;
  };
  const Case cases[] = {
      {R"({"version":"8","locale":"en_US","runtimeInfo":{"version":"4.3.0","buildString":"Release Build"}})",
       4, 3, FilterSemantics::kRegex, 10},
      {R"({"version":"8","runtimeInfo":{"version":"5.0.1"}})", 5, 0, FilterSemantics::kRegex, 10},
      {R"({"version":"4","runtimeInfo":{"version":"3.4.0.M5"}})", 3, 4, FilterSemantics::kRegex,
       10},
      {R"({"version":"4","runtimeInfo":{"version":"3.3.0"}})", 3, 3, FilterSemantics::kRegex, 120},
      {R"({"version":"4","runtimeInfo":{"version":"3.2.0"}})", 3, 2, FilterSemantics::kPrefix, 0},
      {R"({"version":"3","links":[]})", 0, 0, FilterSemantics::kPrefix, 0},
  };
  for (const auto& c : cases) {
    auto info = ParseServerInfo(c.body);
    ASSERT_TRUE(info.ok()) << c.body;
    EXPECT_EQ(info->major, c.major) << c.body;
    EXPECT_EQ(info->minor, c.minor) << c.body;
    EXPECT_EQ(info->filter_semantics, c.semantics) << c.body;
    EXPECT_EQ(info->alive_interval_s, c.alive) << c.body;
  }
  EXPECT_FALSE(ParseServerInfo("[]").ok());
  EXPECT_FALSE(ParseServerInfo(R"({"version":8})").ok());
}

TEST(ItemTest, ListsAreReadEntryByEntryInOrder) {
  EXPECT_EQ(detail::CountArrayEntries("[]"), 0u);
  EXPECT_EQ(detail::CountArrayEntries(" [ ] "), 0u);
  EXPECT_EQ(detail::CountArrayEntries(R"([{"a":[1,2]},"x,y",3])"), 3u);
  EXPECT_EQ(detail::CountArrayEntries(R"(["a\",b"])"), 1u);
  auto list = ParseItems(
      R"([{"name":"A","type":"Switch","tags":["x","y"]},7,{"name":"B","type":"Number:Power"},)"
      R"([1],{"name":"C","type":"Contact","groupNames":["g"]}])");
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->items.size(), 3u);
  EXPECT_EQ(list->items[0].name, "A");
  EXPECT_EQ(list->items[0].tags, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(list->items[1].name, "B");
  EXPECT_EQ(list->items[2].groups, (std::vector<std::string>{"g"}));
  EXPECT_EQ(list->skipped.size(), 2u) << "the number and the array are not items";
}

}  // namespace
}  // namespace iothub::openhab
