// Things and links as `GET /rest/things` and `GET /rest/links` send them (openhab-core's
// EnrichedThingDTO and EnrichedItemChannelLinkDTO; shared/reference/openhab.md §2), and what
// the parsers do with entries no openHAB would send.
#include <gtest/gtest.h>

#include <string>

#include "openhab/thing.h"

namespace iothub::openhab {
namespace {

// Shapes as openHAB 4.x serialises them, nulls omitted: an MQTT broker bridge (no channels),
// a thing under it, an OFFLINE Hue bridge with properties, a thing whose bridge is offline,
// and an astro thing with trigger channels in a channel group.
constexpr std::string_view kThings = R"([
{"channels":[],"statusInfo":{"status":"ONLINE","statusDetail":"NONE"},"editable":true,
 "label":"Mosquitto","configuration":{"host":"192.168.1.2","port":1883,"secure":false,
 "password":"hunter2"},"properties":{},"UID":"mqtt:broker:mosquitto","thingTypeUID":"mqtt:broker"},
{"bridgeUID":"mqtt:broker:mosquitto","channels":[{"linkedItems":["LR_Temp","LR_Temp_Avg"],
 "uid":"mqtt:topic:mosquitto:sensor1:temp","id":"temp","channelTypeUID":"mqtt:number",
 "itemType":"Number:Temperature","kind":"STATE","label":"Temperature","description":"",
 "defaultTags":[],"properties":{},"configuration":{"stateTopic":"home/lr/temp","unit":"°C"},
 "autoUpdatePolicy":"DEFAULT"},{"linkedItems":[],"uid":"mqtt:topic:mosquitto:sensor1:switch",
 "id":"switch","channelTypeUID":"mqtt:switch","itemType":"Switch","kind":"STATE",
 "label":"Relay","defaultTags":[],"properties":{},"configuration":{}}],
 "statusInfo":{"status":"ONLINE","statusDetail":"NONE"},"editable":true,
 "label":"Living room sensor","location":"Living room","configuration":{},"properties":{},
 "UID":"mqtt:topic:mosquitto:sensor1","thingTypeUID":"mqtt:topic"},
{"channels":[],"statusInfo":{"status":"OFFLINE","statusDetail":"COMMUNICATION_ERROR",
 "description":"Bridge not reachable: Connection refused"},"firmwareStatus":{"status":"UNKNOWN"},
 "editable":false,"label":"Hue Bridge","configuration":{"ipAddress":"192.168.1.20"},
 "properties":{"vendor":"Philips","modelId":"BSB002","serialNumber":"0017882ec1e4",
 "firmwareVersion":"1953188020"},"UID":"hue:bridge:0017882ec1e4","thingTypeUID":"hue:bridge"},
{"bridgeUID":"hue:bridge:0017882ec1e4","channels":[{"linkedItems":["Kitchen_Light"],
 "uid":"hue:0210:0017882ec1e4:1:color","id":"color","channelTypeUID":"system:color",
 "itemType":"Color","kind":"STATE","label":"Color"}],"statusInfo":{"status":"OFFLINE",
 "statusDetail":"BRIDGE_OFFLINE"},"editable":true,"label":"Kitchen bulb","configuration":{"lightId":"1"},
 "properties":{},"UID":"hue:0210:0017882ec1e4:1","thingTypeUID":"hue:0210"},
{"channels":[{"linkedItems":[],"uid":"astro:sun:home:rise#event","id":"rise#event",
 "channelTypeUID":"astro:sunEvent","kind":"TRIGGER","label":"Sunrise event"},
 {"linkedItems":["Sunrise_Time"],"uid":"astro:sun:home:rise#start","id":"rise#start",
 "channelTypeUID":"astro:start","itemType":"DateTime","kind":"STATE","label":"Start time"}],
 "statusInfo":{"status":"ONLINE","statusDetail":"NONE"},"editable":true,"label":"Sun",
 "configuration":{"geolocation":"52.5,13.4","interval":300},"properties":{},
 "UID":"astro:sun:home","thingTypeUID":"astro:sun","semanticEquipmentTag":"WeatherService"}
])";

TEST(ThingTest, RealThingListsParse) {
  const auto list = ParseThings(kThings);
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_TRUE(list->skipped.empty());
  ASSERT_EQ(list->things.size(), 5u);

  const Thing& broker = list->things[0];
  EXPECT_EQ(broker.uid, "mqtt:broker:mosquitto");
  EXPECT_EQ(broker.thing_type_uid, "mqtt:broker");
  EXPECT_EQ(broker.bridge_uid, "");
  EXPECT_EQ(broker.status, "ONLINE");
  EXPECT_TRUE(broker.status_known);
  EXPECT_TRUE(broker.online());
  EXPECT_EQ(broker.status_detail, "NONE");
  EXPECT_EQ(broker.status_description, "");
  EXPECT_TRUE(broker.channels.empty());
  EXPECT_EQ(broker.configuration.at("port"), 1883);
  EXPECT_TRUE(broker.editable);

  const Thing& sensor = list->things[1];
  EXPECT_EQ(sensor.bridge_uid, "mqtt:broker:mosquitto");
  EXPECT_EQ(sensor.location, "Living room");
  ASSERT_EQ(sensor.channels.size(), 2u);
  const Channel& temp = sensor.channels[0];
  EXPECT_EQ(temp.uid, "mqtt:topic:mosquitto:sensor1:temp");
  EXPECT_EQ(temp.id, "temp");
  EXPECT_EQ(temp.channel_type_uid, "mqtt:number");
  EXPECT_EQ(temp.item_type, "Number:Temperature");
  EXPECT_EQ(temp.kind, "STATE");
  EXPECT_EQ(temp.label, "Temperature");
  EXPECT_EQ(temp.linked_items, (std::vector<std::string>{"LR_Temp", "LR_Temp_Avg"}));
  EXPECT_TRUE(sensor.channels[1].linked_items.empty());

  const Thing& hue = list->things[2];
  EXPECT_EQ(hue.status, "OFFLINE");
  EXPECT_FALSE(hue.online());
  EXPECT_EQ(hue.status_detail, "COMMUNICATION_ERROR");
  EXPECT_EQ(hue.status_description, "Bridge not reachable: Connection refused");
  EXPECT_EQ(hue.properties.at("vendor"), "Philips");
  EXPECT_EQ(hue.properties.size(), 4u);
  EXPECT_FALSE(hue.editable);

  const Thing& bulb = list->things[3];
  EXPECT_EQ(bulb.bridge_uid, "hue:bridge:0017882ec1e4");
  EXPECT_EQ(bulb.status_detail, "BRIDGE_OFFLINE");

  const Thing& sun = list->things[4];
  ASSERT_EQ(sun.channels.size(), 2u);
  EXPECT_EQ(sun.channels[0].id, "rise#event");
  EXPECT_EQ(sun.channels[0].kind, "TRIGGER");
  EXPECT_EQ(sun.channels[0].item_type, "");
  EXPECT_EQ(sun.channels[1].linked_items, (std::vector<std::string>{"Sunrise_Time"}));
}

TEST(ThingTest, EveryDefinedStatusIsKnownAndOthersAreKeptButFlagged) {
  for (const char* status :
       {"UNINITIALIZED", "INITIALIZING", "UNKNOWN", "ONLINE", "OFFLINE", "REMOVING", "REMOVED"}) {
    EXPECT_TRUE(IsThingStatus(status)) << status;
  }
  EXPECT_FALSE(IsThingStatus("online"));
  EXPECT_FALSE(IsThingStatus(""));
  const auto list = ParseThings(R"([
    {"UID":"a:b:c","thingTypeUID":"a:b","statusInfo":{"status":"SLEEPING","statusDetail":"NONE"}},
    {"UID":"a:b:d","thingTypeUID":"a:b"},
    {"UID":"a:b:e","thingTypeUID":"a:b","statusInfo":{"status":"UNINITIALIZED",
     "statusDetail":"HANDLER_INITIALIZING_ERROR","description":null}}])");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->things.size(), 3u);
  EXPECT_EQ(list->things[0].status, "SLEEPING");
  EXPECT_FALSE(list->things[0].status_known);
  EXPECT_EQ(list->things[1].status, "");
  EXPECT_FALSE(list->things[1].status_known);
  EXPECT_TRUE(list->things[2].status_known);
  EXPECT_EQ(list->things[2].status_detail, "HANDLER_INITIALIZING_ERROR");
}

TEST(ThingTest, NullAndMissingOptionalFieldsAreTolerated) {
  const auto list = ParseThings(
      R"([{"UID":"zwave:device:ctrl:node5","thingTypeUID":"zwave:fibaro_fgs223","label":null,
           "bridgeUID":null,"location":null,"configuration":null,"properties":null,
           "channels":null,"editable":null,
           "statusInfo":{"status":"ONLINE","statusDetail":"NONE"}}])");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->things.size(), 1u) << list->skipped.at(0).message;
  const Thing& t = list->things[0];
  EXPECT_EQ(t.label, "");
  EXPECT_TRUE(t.configuration.is_object());
  EXPECT_TRUE(t.properties.empty());
  EXPECT_TRUE(t.channels.empty());
}

TEST(ThingTest, UnusableEntriesAreSkippedWithAReason) {
  const auto list = ParseThings(R"([
    42,
    {"thingTypeUID":"a:b"},
    {"UID":"a:b","thingTypeUID":"a:b"},
    {"UID":"a:b:../../x","thingTypeUID":"a:b"},
    {"UID":"a::c","thingTypeUID":"a:b"},
    {"UID":7,"thingTypeUID":"a:b"},
    {"UID":"a:b:no_type"},
    {"UID":"a:b:type_number","thingTypeUID":12},
    {"UID":"a:b:bad_bridge","thingTypeUID":"a:b","bridgeUID":"x y"},
    {"UID":"a:b:bad_label","thingTypeUID":"a:b","label":["x"]},
    {"UID":"a:b:bad_config","thingTypeUID":"a:b","configuration":"host=1"},
    {"UID":"a:b:bad_props","thingTypeUID":"a:b","properties":{"n":5}},
    {"UID":"a:b:bad_status","thingTypeUID":"a:b","statusInfo":{"status":1}},
    {"UID":"a:b:status_text","thingTypeUID":"a:b","statusInfo":"ONLINE"},
    {"UID":"a:b:channels_obj","thingTypeUID":"a:b","channels":{}},
    {"UID":"a:b:channel_uid","thingTypeUID":"a:b","channels":[{"uid":"a:b:channel_uid"}]},
    {"UID":"a:b:channel_num","thingTypeUID":"a:b","channels":[7]},
    {"UID":"a:b:linked","thingTypeUID":"a:b",
     "channels":[{"uid":"a:b:linked:c","linkedItems":["../items/x"]}]},
    {"UID":"a:b:linked2","thingTypeUID":"a:b","channels":[{"uid":"a:b:linked2:c","linkedItems":"x"}]},
    {"UID":"a:b:kind","thingTypeUID":"a:b","channels":[{"uid":"a:b:kind:c","kind":false}]},
    {"UID":"a:b:fine","thingTypeUID":"a:b"}
  ])");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->things.size(), 1u);
  EXPECT_EQ(list->things[0].uid, "a:b:fine");
  ASSERT_EQ(list->skipped.size(), 20u);
  for (const Error& e : list->skipped) {
    EXPECT_EQ(e.code, "bad_thing") << e.message;
    EXPECT_FALSE(e.message.empty());
  }
  EXPECT_EQ(list->skipped[0].message, "a thing entry is not a JSON object");
  EXPECT_EQ(list->skipped[1].message, "a thing has no valid UID");
  // An invalid UID is not echoed; a valid one names the thing.
  EXPECT_EQ(list->skipped[3].message.find(".."), std::string::npos);
  EXPECT_NE(list->skipped[11].message.find("a:b:bad_props"), std::string::npos);
  EXPECT_NE(list->skipped[11].message.find("property 'n'"), std::string::npos);
  EXPECT_NE(list->skipped[17].message.find("linkedItems"), std::string::npos);
}

TEST(ThingTest, BodiesThatAreNotArraysFail) {
  for (const std::string& body :
       {std::string("{}"), std::string("<html>login</html>"), std::string(""),
        std::string(R"({"error":{"message":"Forbidden","http-code":403}})"),
        std::string(300'000, '[')}) {
    const auto things = ParseThings(body);
    ASSERT_FALSE(things.ok()) << body.substr(0, 40);
    EXPECT_EQ(things.error().code, "bad_response");
    const auto links = ParseLinks(body);
    ASSERT_FALSE(links.ok()) << body.substr(0, 40);
    EXPECT_EQ(links.error().code, "bad_response");
  }
  // Deep nesting inside an entry is refused as a whole, never recursed into.
  const std::string deep = R"([{"UID":"a:b:c","thingTypeUID":"a:b","configuration":)" +
                           std::string(100, '[') + std::string(100, ']') + "}]";
  EXPECT_FALSE(ParseThings(deep).ok());
}

TEST(ThingTest, UidSyntax) {
  EXPECT_TRUE(IsThingUid("mqtt:topic:mosquitto:sensor1"));
  EXPECT_TRUE(IsThingUid("astro:sun:home"));
  EXPECT_TRUE(IsThingUid("hue:0210:0017882ec1e4:1"));
  EXPECT_TRUE(IsThingUid("a-b:c_d:E9"));
  EXPECT_FALSE(IsThingUid("astro:sun"));
  EXPECT_FALSE(IsThingUid(""));
  EXPECT_FALSE(IsThingUid("a:b:c:"));
  EXPECT_FALSE(IsThingUid("a:b:c/d"));
  EXPECT_FALSE(IsThingUid("a:b:c d"));
  EXPECT_FALSE(IsThingUid("a:b:c#d"));
  EXPECT_TRUE(IsChannelUid("mqtt:topic:mosquitto:sensor1:temp"));
  EXPECT_TRUE(IsChannelUid("astro:sun:home:rise#event"));
  EXPECT_FALSE(IsChannelUid("astro:sun:home"));
  EXPECT_FALSE(IsChannelUid("astro:sun:home:#event"));
  EXPECT_FALSE(IsChannelUid("astro:sun:home:rise#"));
  EXPECT_FALSE(IsChannelUid("astro:sun:home:a#b#c"));
  EXPECT_FALSE(IsChannelUid("astro:sun#x:home:rise"));
}

TEST(LinkTest, RealLinkListsParse) {
  const auto list = ParseLinks(R"([
    {"channelUID":"mqtt:topic:mosquitto:sensor1:temp","configuration":{"profile":"system:default"},
     "itemName":"LR_Temp","editable":true},
    {"channelUID":"astro:sun:home:rise#start","configuration":{},"itemName":"Sunrise_Time",
     "editable":false},
    {"channelUID":"hue:0210:0017882ec1e4:1:color","configuration":{"profile":"transform:MAP",
     "function":"color.map"},"itemName":"Kitchen_Light"}])");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->skipped.empty());
  ASSERT_EQ(list->links.size(), 3u);
  EXPECT_EQ(list->links[0].channel_uid, "mqtt:topic:mosquitto:sensor1:temp");
  EXPECT_EQ(list->links[0].item_name, "LR_Temp");
  EXPECT_EQ(list->links[0].configuration.at("profile"), "system:default");
  EXPECT_TRUE(list->links[0].editable);
  EXPECT_EQ(list->links[1].channel_uid, "astro:sun:home:rise#start");
  EXPECT_FALSE(list->links[1].editable);
  EXPECT_EQ(list->links[2].configuration.at("function"), "color.map");
  EXPECT_FALSE(list->links[2].editable);
}

TEST(LinkTest, UnusableLinksAreSkippedWithAReason) {
  const auto list = ParseLinks(R"([
    "LR_Temp",
    {"channelUID":"a:b:c:d"},
    {"channelUID":"a:b:c:d","itemName":"bad name"},
    {"channelUID":"a:b:c:d","itemName":"../x"},
    {"channelUID":"a:b:c","itemName":"Short"},
    {"channelUID":5,"itemName":"Num"},
    {"itemName":"NoChannel"},
    {"channelUID":"a:b:c:d","itemName":"Conf","configuration":[1]},
    {"channelUID":"a:b:c:d","itemName":"Edit","editable":"yes"},
    {"channelUID":"a:b:c:d","itemName":"Fine","configuration":null,"unknown":{"x":1}}
  ])");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->links.size(), 1u);
  EXPECT_EQ(list->links[0].item_name, "Fine");
  EXPECT_TRUE(list->links[0].configuration.is_object());
  ASSERT_EQ(list->skipped.size(), 9u);
  for (const Error& e : list->skipped) EXPECT_EQ(e.code, "bad_link") << e.message;
  EXPECT_EQ(list->skipped[2].message.find("bad name"), std::string::npos);
  EXPECT_NE(list->skipped[4].message.find("'Short'"), std::string::npos);
}

}  // namespace
}  // namespace iothub::openhab
