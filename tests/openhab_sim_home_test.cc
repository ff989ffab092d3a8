// openhab-sim's home model: the home file, openHAB's item JSON, and the events openHAB's rules
// produce for updates, commands, groups and item changes. Every event the sim renders is
// also read back by the connector's own SSE parser and decoder, so the two cannot drift apart
// unnoticed.
#include <gtest/gtest.h>

#include <set>

#include "openhab/event.h"
#include "openhab/item.h"
#include "openhab/sse_parser.h"
#include "openhab_sim/event_streams.h"
#include "openhab_sim/home.h"

namespace iothub::sim {
namespace {

Json SmallHome() {
  return Json::parse(R"({"openhab-home":1,"items":[
    {"name":"gLights","type":"Group","groupType":"Switch","function":{"name":"OR","params":["ON","OFF"]}},
    {"name":"gTemps","type":"Group","groupType":"Number:Temperature","function":{"name":"AVG"}},
    {"name":"gAll","type":"Group"},
    {"name":"Lamp","type":"Switch","label":"Lamp","groups":["gLights","gAll"],"state":"OFF"},
    {"name":"Spot","type":"Dimmer","groups":["gLights"],"state":"0"},
    {"name":"Shutter","type":"Rollershutter","state":"50"},
    {"name":"Door","type":"Contact","state":"CLOSED"},
    {"name":"T1","type":"Number:Temperature","groups":["gTemps"],"state":"20 °C",
     "stateDescription":{"pattern":"%.1f %unit%","readOnly":true},
     "metadata":{"azureiothub":{"value":"telemetry","config":{"priority":"high"}},"other":{"value":"x"}}},
    {"name":"T2","type":"Number:Temperature","groups":["gTemps"],"state":"22 °C"},
    {"name":"Quiet","type":"Switch","state":"OFF","metadata":{"autoupdate":{"value":"false"}}}
  ],"things":[{"UID":"mqtt:topic:br:s1","thingTypeUID":"mqtt:topic","label":"S1",
    "channels":[{"uid":"mqtt:topic:br:s1:temp","id":"temp","itemType":"Number:Temperature","kind":"STATE"}]}],
  "links":[{"channelUID":"mqtt:topic:br:s1:temp","itemName":"T1"}]})");
}

Home Load(const Json& document, const char* version = "4.3.0") {
  auto home = Home::Parse(document, OpenHabVersion::Parse(version).value());
  EXPECT_TRUE(home.ok()) << home.error().message;
  return std::move(home).value();
}

// "type topic" of each event, decoded by the connector's client from the rendered SSE text.
std::vector<std::string> Decoded(const std::vector<SimEvent>& events) {
  struct Collect final : openhab::SseHandler {
    void OnEvent(openhab::SseEvent&& sse) override {
      auto event = openhab::DecodeEvent(sse);
      out.push_back(event ? event->type + " " + event->topic : "ERROR " + event.error().message);
    }
    void OnError(const Error& error) override { out.push_back("SSE ERROR " + error.message); }
    std::vector<std::string> out;
  } collect;
  openhab::SseParser parser;
  for (const auto& event : events) parser.Feed(RenderSse(event), collect);
  return collect.out;
}

TEST(SimHomeTest, ItemJsonHasOpenHabsShapeAndFieldOrder) {
  Home home = Load(SmallHome());
  ItemView view;
  view.base_url = "http://oh:8080";
  EXPECT_EQ(home.ItemJson(*home.Find("T1"), view).dump(),
            R"({"link":"http://oh:8080/rest/items/T1","state":"20 °C",)"
            R"("stateDescription":{"pattern":"%.1f %unit%","readOnly":true,"options":[]},)"
            R"("unitSymbol":"°C","metadata":{"azureiothub":{"config":{"priority":"high"},)"
            R"("value":"telemetry"},"other":{"config":{},"value":"x"}},"editable":true,)"
            R"("type":"Number:Temperature","name":"T1","tags":[],"groupNames":["gTemps"]})");
  // The group's state is computed from its members at start, as openHAB does.
  EXPECT_EQ(home.ItemJson(*home.Find("gTemps"), view).dump(),
            R"({"members":[],"groupType":"Number:Temperature","function":{"name":"AVG",)"
            R"("params":[]},"link":"http://oh:8080/rest/items/gTemps","state":"21 °C",)"
            R"("unitSymbol":"°C","editable":true,"type":"Group","name":"gTemps","tags":[],)"
            R"("groupNames":[]})");
  view.namespaces = std::set<std::string>{"azureiothub"};
  view.fields = {"name", "metadata"};
  EXPECT_EQ(home.ItemJson(*home.Find("T1"), view).dump(),
            R"({"metadata":{"azureiothub":{"config":{"priority":"high"},"value":"telemetry"}},)"
            R"("name":"T1"})");
  // What the sim serves, the client parses.
  view = ItemView{};
  Json list = Json::array();
  for (const auto& item : home.items())
    list.push_back(Json::parse(home.ItemJson(item, view).dump()));
  auto parsed = openhab::ParseItems(list.dump());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->items.size(), home.items().size());
  EXPECT_TRUE(parsed->skipped.empty());
}

TEST(SimHomeTest, VersionDecidesFields) {
  Home old = Load(SmallHome(), "3.2.0");
  EXPECT_FALSE(old.ItemJson(*old.Find("T1"), {}).contains("unitSymbol"));
  Home v5 = Load(SmallHome(), "5.0.1");
  ASSERT_TRUE(v5.Update("T1", "21 °C", 1'700'000'000'000).ok());
  const auto json = v5.ItemJson(*v5.Find("T1"), {});
  EXPECT_EQ(json["lastState"], "20 °C");
  EXPECT_EQ(json["lastStateUpdate"], 1'700'000'000'000);
  EXPECT_EQ(json["lastStateChange"], 1'700'000'000'000);
  EXPECT_EQ(OpenHabVersion::Parse("3.3").value().alive_interval_s(), 120);
  EXPECT_EQ(OpenHabVersion::Parse("3.4.2").value().alive_interval_s(), 10);
  EXPECT_EQ(OpenHabVersion::Parse("3.2").value().alive_interval_s(), 0);
  EXPECT_FALSE(OpenHabVersion::Parse("3.2").value().regex_filters());
  EXPECT_FALSE(OpenHabVersion::Parse("four").ok());
  EXPECT_FALSE(OpenHabVersion::Parse("4.3.0-SNAPSHOT").ok());
}

TEST(SimHomeTest, UpdateEmitsStateUpdatedAndChangedInOpenHabsOrder) {
  Home home = Load(SmallHome());
  auto events = home.Update("T1", "24", 1000);
  ASSERT_TRUE(events.ok());
  // gAll has no base type: no state, no events.
  EXPECT_EQ(Decoded(*events), (std::vector<std::string>{
                                  "ItemStateEvent openhab/items/T1/state",
                                  "GroupStateUpdatedEvent openhab/items/gTemps/T1/stateupdated",
                                  "GroupItemStateChangedEvent openhab/items/gTemps/T1/statechanged",
                                  "ItemStateUpdatedEvent openhab/items/T1/stateupdated",
                                  "ItemStateChangedEvent openhab/items/T1/statechanged",
                              }));
  // A plain number gets the item's unit; the group's average follows.
  EXPECT_EQ(home.Find("T1")->state, "24 °C");
  EXPECT_EQ(home.Find("gTemps")->state, "23 °C");
  EXPECT_EQ(events->back().payload,
            R"({"type":"Quantity","value":"24 °C","oldType":"Quantity","oldValue":"20 °C"})");
  // The same state again: updated, not changed.
  events = home.Update("T1", "24 °C", 2000);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(Decoded(*events), (std::vector<std::string>{
                                  "ItemStateEvent openhab/items/T1/state",
                                  "GroupStateUpdatedEvent openhab/items/gTemps/T1/stateupdated",
                                  "ItemStateUpdatedEvent openhab/items/T1/stateupdated",
                              }));
  EXPECT_EQ(home.Update("T1", "warm", 0).error().code, "bad_state");
  EXPECT_EQ(home.Update("T1", "warm", 0).error().message, "State could not be parsed: warm");
  EXPECT_EQ(home.Update("Nope", "1", 0).error().message, "Item Nope does not exist!");
  // Before 4.0 there is no ItemStateUpdatedEvent.
  Home old = Load(SmallHome(), "3.4.0");
  EXPECT_EQ(Decoded(old.Update("Door", "OPEN", 0).value()),
            (std::vector<std::string>{"ItemStateEvent openhab/items/Door/state",
                                      "ItemStateChangedEvent openhab/items/Door/statechanged"}));
}

TEST(SimHomeTest, OpenHab5StampsEventsWithThePreviousUpdateAsIsoText) {
  Home home = Load(SmallHome(), "5.0.0");
  ASSERT_TRUE(home.Update("Door", "OPEN", 1'700'000'000'123).ok());
  auto events = home.Update("Door", "CLOSED", 1'700'000'005'000);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(
      events->back().payload,
      R"({"type":"OpenClosed","value":"CLOSED","oldType":"OpenClosed","oldValue":"OPEN",)"
      R"("lastStateUpdate":"2023-11-14T22:13:20.123Z","lastStateChange":"2023-11-14T22:13:20.123Z"})");
}

TEST(SimHomeTest, CommandsAreCheckedThenAutoupdated) {
  Home home = Load(SmallHome());
  auto events = home.Command("Spot", "ON", 0);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(Decoded(*events),
            (std::vector<std::string>{
                "ItemCommandEvent openhab/items/Spot/command",
                "ItemStateEvent openhab/items/Spot/state",
                "GroupStateUpdatedEvent openhab/items/gLights/Spot/stateupdated",
                "GroupItemStateChangedEvent openhab/items/gLights/Spot/statechanged",
                "ItemStateUpdatedEvent openhab/items/Spot/stateupdated",
                "ItemStateChangedEvent openhab/items/Spot/statechanged",
            }));
  EXPECT_EQ(home.Find("Spot")->state, "100");  // a Dimmer turns ON into 100 percent
  EXPECT_EQ(home.Find("gLights")->state, "ON");
  ASSERT_TRUE(home.Command("Shutter", "DOWN", 0).ok());
  EXPECT_EQ(home.Find("Shutter")->state, "100");
  // STOP and REFRESH are commands without a state: only the command event.
  EXPECT_EQ(home.Command("Shutter", "STOP", 0).value().size(), 1U);
  EXPECT_EQ(home.Command("Lamp", "REFRESH", 0).value().size(), 1U);
  // Contacts take no commands; a Switch takes no percent; unknown items are not found.
  EXPECT_EQ(home.Command("Door", "OPEN", 0).error().code, "bad_command");
  EXPECT_EQ(home.Command("Lamp", "50", 0).error().code, "bad_command");
  EXPECT_EQ(home.Command("Lamp", "", 0).error().code, "bad_command");
  EXPECT_EQ(home.Command("Nope", "ON", 0).error().code, "not_found");
  // autoupdate=false: the command goes out, the state stays for the binding to set.
  EXPECT_EQ(home.Command("Quiet", "ON", 0).value().size(), 1U);
  EXPECT_EQ(home.Find("Quiet")->state, "OFF");
  // TOGGLE (the REST API's own word) flips a switch.
  ASSERT_TRUE(home.Command("Lamp", "TOGGLE", 0).ok());
  EXPECT_EQ(home.Find("Lamp")->state, "ON");
}

TEST(SimHomeTest, AutoupdateFollowsLinksAndTheirThings) {
  Json document = SmallHome();
  document["items"].push_back(Json::parse(R"({"name":"Linked","type":"Dimmer","state":"0"})"));
  document["items"].push_back(Json::parse(R"({"name":"Forced","type":"Switch","state":"OFF",
                      "metadata":{"autoupdate":{"value":"true"}}})"));
  document["things"].push_back(Json::parse(R"({"UID":"zwave:device:c:n2","thingTypeUID":"zwave:d",
      "channels":[{"uid":"zwave:device:c:n2:dim","id":"dim"},{"uid":"zwave:device:c:n2:sw","id":"sw"}]})"));
  document["links"].push_back(
      Json::parse(R"({"channelUID":"zwave:device:c:n2:dim","itemName":"Linked"})"));
  document["links"].push_back(
      Json::parse(R"({"channelUID":"zwave:device:c:n2:sw","itemName":"Forced"})"));
  Home home = Load(document);
  // An ONLINE thing: openHAB predicts, then the (obedient) device's binding reports. The
  // state event carries the command as sent; the Dimmer turns ON into 100.
  auto events = home.Command("Linked", "ON", 0);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(Decoded(*events), (std::vector<std::string>{
                                  "ItemCommandEvent openhab/items/Linked/command",
                                  "ItemStatePredictedEvent openhab/items/Linked/statepredicted",
                                  "ItemStateEvent openhab/items/Linked/state",
                                  "ItemStateUpdatedEvent openhab/items/Linked/stateupdated",
                                  "ItemStateChangedEvent openhab/items/Linked/statechanged",
                              }));
  EXPECT_EQ((*events)[1].payload,
            R"({"predictedType":"OnOff","predictedValue":"ON","isConfirmation":false})");
  EXPECT_EQ((*events)[2].payload, R"({"type":"OnOff","value":"ON"})");
  EXPECT_EQ(home.Find("Linked")->state, "100");
  // The thing goes OFFLINE: the prediction confirms the old state and nothing changes.
  ASSERT_TRUE(
      home.SetThingStatus("zwave:device:c:n2", Json::parse(R"({"status":"OFFLINE"})")).ok());
  events = home.Command("Linked", "0", 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2U);
  EXPECT_EQ((*events)[1].payload,
            R"({"predictedType":"Percent","predictedValue":"100","isConfirmation":true})");
  EXPECT_EQ(home.Find("Linked")->state, "100");
  // autoupdate=true in metadata wins over the offline thing.
  ASSERT_TRUE(home.Command("Forced", "ON", 0).ok());
  EXPECT_EQ(home.Find("Forced")->state, "ON");
}

TEST(SimHomeTest, GroupCyclesAndHostilePatternsAreRefused) {
  Json cycle = SmallHome();
  cycle["items"].push_back(Json::parse(R"({"name":"gA","type":"Group","groups":["gB"]})"));
  cycle["items"].push_back(Json::parse(R"({"name":"gB","type":"Group","groups":["gA"]})"));
  auto refused = Home::Parse(cycle, OpenHabVersion{});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("contains itself"), std::string::npos);
  Home home = Load(SmallHome());
  auto self =
      home.Put(ParseSimItem(Json::parse(R"({"name":"gAll","type":"Group","groups":["gAll"]})"), "t")
                   .value());
  ASSERT_FALSE(self.ok());
  EXPECT_EQ(self.error().code, "bad_item");
  EXPECT_NE(home.Find("gAll"), nullptr);  // unchanged
  EXPECT_TRUE(home.Find("gAll")->groups.empty());
  EXPECT_FALSE(ParseSimItem(Json::parse(R"({"name":"gC","type":"Group","groupType":"String",
                                            "function":{"name":"COUNT","params":["(a"]}})"),
                            "t")
                   .ok());
  // A COUNT over a huge state neither crashes nor hangs.
  Json counting = SmallHome();
  counting["items"].push_back(Json::parse(R"({"name":"gN","type":"Group","groupType":"String",
                                              "function":{"name":"COUNT","params":["(a|b)*"]}})"));
  counting["items"].push_back(Json::parse(R"({"name":"S","type":"String","groups":["gN"]})"));
  Home big = Load(counting);
  ASSERT_TRUE(big.Update("S", std::string(1 << 20, 'a'), 0).ok());
  EXPECT_EQ(big.Find("gN")->state, "0");
  ASSERT_TRUE(big.Update("S", "abab", 0).ok());
  EXPECT_EQ(big.Find("gN")->state, "1");
  // Bytes that are not UTF-8 are replaced, not thrown over.
  EXPECT_TRUE(big.Update("S",
                         "22.5 \xB0"
                         "C",
                         0)
                  .ok());
  EXPECT_EQ(Decoded(big.Update("S", "\xFF", 0).value()).size(), 4U);
}

TEST(SimHomeTest, GroupStatesAsOpenHabComputesThem) {
  Json document = SmallHome();
  // A base type without a function is EQUALITY; a member group with a state is one member.
  document["items"].push_back(
      Json::parse(R"({"name":"gSame","type":"Group","groupType":"Switch"})"));
  document["items"].push_back(
      Json::parse(R"({"name":"A","type":"Switch","state":"ON","groups":["gSame"]})"));
  document["items"].push_back(
      Json::parse(R"({"name":"B","type":"Switch","state":"ON","groups":["gSame"]})"));
  document["items"].push_back(Json::parse(R"({"name":"gOuter","type":"Group","groupType":"Number",
      "function":{"name":"AVG"}})"));
  document["items"].push_back(Json::parse(R"({"name":"gInner","type":"Group","groupType":"Number",
      "function":{"name":"AVG"},"groups":["gOuter"]})"));
  document["items"].push_back(
      Json::parse(R"({"name":"N1","type":"Number","state":"0","groups":["gInner"]})"));
  document["items"].push_back(
      Json::parse(R"({"name":"N2","type":"Number","state":"10","groups":["gInner"]})"));
  document["items"].push_back(
      Json::parse(R"({"name":"N3","type":"Number","state":"20","groups":["gOuter"]})"));
  Home home = Load(document);
  EXPECT_EQ(home.Find("gSame")->state, "ON");
  EXPECT_EQ(home.Find("gSame")->function, "EQUALITY");
  EXPECT_EQ(home.ItemJson(*home.Find("gSame"), {})["function"]["name"], "EQUALITY");
  ASSERT_TRUE(home.Update("B", "OFF", 0).ok());
  EXPECT_EQ(home.Find("gSame")->state, "UNDEF");
  EXPECT_EQ(home.Find("gInner")->state, "5");
  EXPECT_EQ(home.Find("gOuter")->state, "12.5");  // AVG(gInner = 5, N3 = 20), not AVG(0, 10, 20)
}

TEST(SimHomeTest, ToggleAsTheRestApiDoes) {
  Home home = Load(SmallHome());
  ASSERT_TRUE(home.Command("Lamp", "toggle", 0).ok());
  EXPECT_EQ(home.Find("Lamp")->state, "ON");
  ASSERT_TRUE(home.Command("Lamp", "Toggle", 0).ok());
  EXPECT_EQ(home.Find("Lamp")->state, "OFF");
  EXPECT_EQ(home.Command("gLights", "TOGGLE", 0).error().code, "bad_command");  // not a group
  EXPECT_EQ(home.Command("Shutter", "TOGGLE", 0).error().code, "bad_command");  // at 50
  ASSERT_TRUE(home.Command("Shutter", "DOWN", 0).ok());
  ASSERT_TRUE(home.Command("Shutter", "TOGGLE", 0).ok());
  EXPECT_EQ(home.Find("Shutter")->state, "0");
}

TEST(SimHomeTest, GroupCommandsReachEveryMember) {
  Home home = Load(SmallHome());
  auto events = home.Command("gLights", "ON", 0);
  ASSERT_TRUE(events.ok());
  const auto decoded = Decoded(*events);
  EXPECT_EQ(decoded.front(), "ItemCommandEvent openhab/items/gLights/command");
  EXPECT_NE(
      std::find(decoded.begin(), decoded.end(), "ItemCommandEvent openhab/items/Lamp/command"),
      decoded.end());
  EXPECT_NE(
      std::find(decoded.begin(), decoded.end(), "ItemCommandEvent openhab/items/Spot/command"),
      decoded.end());
  EXPECT_EQ(home.Find("Lamp")->state, "ON");
  EXPECT_EQ(home.Find("Spot")->state, "100");
  EXPECT_EQ(home.Find("gLights")->state, "ON");
  ASSERT_TRUE(home.Command("gLights", "OFF", 0).ok());
  EXPECT_EQ(home.Find("gLights")->state, "OFF");
}

TEST(SimHomeTest, ItemsAddedChangedRemovedAndThingStatus) {
  Home home = Load(SmallHome());
  auto added =
      home.Put(ParseSimItem(Json::parse(R"({"name":"Fan","type":"Switch"})"), "t").value());
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(Decoded(*added), std::vector<std::string>{"ItemAddedEvent openhab/items/Fan/added"});
  auto updated = home.Put(
      ParseSimItem(Json::parse(R"({"name":"Fan","type":"Switch","label":"Fan"})"), "t").value());
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(Decoded(*updated),
            std::vector<std::string>{"ItemUpdatedEvent openhab/items/Fan/updated"});
  EXPECT_EQ(updated->front().payload,
            R"([{"type":"Switch","name":"Fan","label":"Fan","tags":[],"groupNames":[]},)"
            R"({"type":"Switch","name":"Fan","tags":[],"groupNames":[]}])");
  auto removed = home.Remove("Lamp");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(Decoded(*removed),
            std::vector<std::string>{"ItemRemovedEvent openhab/items/Lamp/removed"});
  EXPECT_EQ(home.Find("Lamp"), nullptr);
  EXPECT_EQ(home.Remove("Lamp").error().code, "not_found");
  auto status = home.SetThingStatus(
      "mqtt:topic:br:s1",
      Json::parse(R"({"status":"OFFLINE","statusDetail":"COMMUNICATION_ERROR"})"));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(Decoded(*status),
            (std::vector<std::string>{
                "ThingStatusInfoEvent openhab/things/mqtt:topic:br:s1/status",
                "ThingStatusInfoChangedEvent openhab/things/mqtt:topic:br:s1/statuschanged"}));
  EXPECT_EQ(
      home.SetThingStatus("mqtt:topic:br:s1", Json::parse(R"({"status":"SLEEPY"})")).error().code,
      "bad_status");
  const auto things = home.ThingsJson();
  EXPECT_EQ(things[0]["channels"][0]["linkedItems"], OrderedJson::parse(R"(["T1"])"));
  EXPECT_EQ(things[0]["statusInfo"]["status"], "OFFLINE");
}

TEST(SimHomeTest, HomeFileErrorsNameTheEntry) {
  const auto error = [](const char* text) {
    auto home = Home::Parse(Json::parse(text), OpenHabVersion{});
    return home.ok() ? std::string("ok") : home.error().message;
  };
  EXPECT_EQ(error(R"({"items":[]})"),
            "home: \"openhab-home\": 1 is missing (the only format version so far)");
  EXPECT_EQ(error(R"({"openhab-home":1,"items":[{"name":"1x","type":"Switch"}]})"),
            "items[0]: '1x' is no item name ([a-zA-Z_][a-zA-Z0-9_]*)");
  EXPECT_NE(error(R"({"openhab-home":1,"items":[{"name":"A","type":"Lamp"}]})")
                .find("items[0] (A): unknown type 'Lamp'"),
            std::string::npos);
  EXPECT_NE(error(R"({"openhab-home":1,"items":[{"name":"A","type":"Switch","state":"50"}]})")
                .find("items[0] (A): "),
            std::string::npos);
  EXPECT_EQ(error(R"({"openhab-home":1,"items":[{"name":"A","type":"Switch","groups":["gX"]}]})"),
            "A: group 'gX' is not a Group item of this home");
  EXPECT_EQ(error(R"({"openhab-home":1,"items":[{"name":"A","type":"Switch"},
                                                 {"name":"A","type":"Switch"}]})"),
            "items[1]: 'A' is defined twice");
  EXPECT_EQ(error(R"({"openhab-home":1,"items":[{"name":"g","type":"Group","groupType":"Switch",
                      "function":{"name":"OR"}}]})"),
            "items[0] (g): OR needs two params (active, passive state)");
  EXPECT_EQ(error(R"({"openhab-home":1,"things":[{"label":"x"}]})"),
            "things[0]: a thing needs 'UID' and 'thingTypeUID' strings");
}

TEST(SimHomeTest, DemoHomeLoadsAndEveryItemParsesInTheClient) {
  auto home = Home::Load(IOTHUB_SOURCE_DIR "/data/demo-home.json", OpenHabVersion{});
  ASSERT_TRUE(home.ok()) << home.error().message;
  EXPECT_GE(home->items().size(), 30U);
  EXPECT_EQ(home->Find("gLights")->state, "OFF");
  Json list = Json::array();
  for (const auto& item : home->items()) {
    list.push_back(Json::parse(home->ItemJson(item, {}).dump()));
  }
  auto parsed = openhab::ParseItems(list.dump());
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->skipped.empty());
}

TEST(SimHomeTest, StreamsFilterDropAndStall) {
  EventStreams streams;
  auto all =
      streams.Open(openhab::TopicFilter::Parse("", openhab::FilterSemantics::kRegex).value());
  auto doors = streams.Open(
      openhab::TopicFilter::Parse("openhab/items/Door/*", openhab::FilterSemantics::kRegex)
          .value());
  const SimEvent lamp{"openhab/items/Lamp/statechanged", "ItemStateChangedEvent", "{}"};
  const SimEvent door{"openhab/items/Door/statechanged", "ItemStateChangedEvent", "{}"};
  streams.Publish({lamp, door});
  EXPECT_EQ(all->Next(0).value(), RenderSse(lamp) + RenderSse(door));
  EXPECT_EQ(doors->Next(0).value(), RenderSse(door));
  streams.SetStalled(true);
  streams.Publish({door});
  streams.PublishAlive(10);
  EXPECT_EQ(doors->Next(0).value(), "");
  streams.SetStalled(false);
  streams.PublishAlive(10);
  EXPECT_EQ(doors->Next(0).value(), "event: alive\ndata: {\"type\":\"ALIVE\",\"interval\":10}\n\n");
  EXPECT_EQ(streams.stats().open, 2U);
  streams.DropAll();
  EXPECT_FALSE(all->Next(0).has_value());
  EXPECT_EQ(streams.stats().open, 0U);
  EXPECT_EQ(streams.stats().published, 3U);
}

}  // namespace
}  // namespace iothub::sim
