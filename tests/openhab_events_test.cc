// SSE framing and openHAB event decoding, with payloads as openHAB sends them (shapes from
// shared/reference/openhab.md §3 and openhab-core's ItemEventFactoryTest.java).
#include <gtest/gtest.h>

#include <vector>

#include "openhab/event.h"
#include "openhab/sse_parser.h"
#include "openhab/topic_filter.h"

namespace iothub::openhab {
namespace {

struct Collector final : SseHandler {
  void OnEvent(SseEvent&& e) override { events.push_back(std::move(e)); }
  void OnError(const Error& e) override { errors.push_back(e.code); }
  void OnComment(std::string_view text) override { comments.emplace_back(text); }
  std::vector<SseEvent> events;
  std::vector<std::string> errors;
  std::vector<std::string> comments;
};

// The stream openHAB 4 sends: a state change (double-encoded payload) and a keep-alive.
constexpr char kStream[] =
    "event: message\n"
    "data: {\"topic\":\"openhab/items/LR_Temp/statechanged\",\"payload\":\"{\\\"type\\\":"
    "\\\"Quantity\\\",\\\"value\\\":\\\"21.5 °C\\\",\\\"oldType\\\":\\\"Quantity\\\","
    "\\\"oldValue\\\":\\\"21 °C\\\"}\",\"type\":\"ItemStateChangedEvent\"}\n"
    "\n"
    "event: alive\n"
    "data: {\"type\":\"ALIVE\",\"interval\":10}\n"
    "\n";

TEST(SseParserTest, ParsesOpenHabsStreamInEveryChunking) {
  const std::string stream = kStream;
  for (std::size_t size = 1; size <= stream.size(); ++size) {
    SseParser parser;
    Collector c;
    for (std::size_t at = 0; at < stream.size(); at += size) {
      parser.Feed(std::string_view(stream).substr(at, size), c);
    }
    ASSERT_EQ(c.events.size(), 2u) << "chunk size " << size;
    EXPECT_EQ(c.events[0].event, "message");
    EXPECT_EQ(c.events[1].event, "alive");
    EXPECT_EQ(c.events[1].data, R"({"type":"ALIVE","interval":10})");
  }
}

TEST(SseParserTest, HandlesCrLfCrAndCrLfSplitAcrossChunks) {
  SseParser parser;
  Collector c;
  parser.Feed("data: a\r", c);
  parser.Feed("\ndata: b\r\r", c);  // CR line ends; the second CR is the blank line
  parser.Feed("data: c\r\n\r\n", c);
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[0].data, "a\nb");
  EXPECT_EQ(c.events[1].data, "c");
}

TEST(SseParserTest, FollowsTheSpecificationForFieldsAndComments) {
  SseParser parser;
  Collector c;
  parser.Feed(
      "\xEF\xBB\xBF: keep-alive\n"
      "data\n"      // no colon: empty value
      "data:x\n"    // no space after the colon
      "data:  y\n"  // only one leading space is removed
      "id: 7\n"
      "retry: 1500\n"
      "unknown: ignored\n"
      "\n"
      "event: lonely\n"  // no data: nothing is dispatched
      "\n"
      "data: after\n"
      "\n",
      c);
  ASSERT_EQ(c.comments, std::vector<std::string>{" keep-alive"});
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[0].data, "\nx\n y");
  EXPECT_EQ(c.events[0].id, "7");
  EXPECT_EQ(c.events[0].retry_ms, 1500);
  EXPECT_EQ(c.events[1].event, "message") << "the event type does not carry over";
  EXPECT_EQ(c.events[1].id, "7") << "the last event id does";
}

TEST(SseParserTest, OverlongLinesAndEventsAreSkippedNotBuffered) {
  SseParser parser(SseLimits{64, 128});
  Collector c;
  parser.Feed("data: " + std::string(100, 'x'), c);
  parser.Feed(std::string(1000, 'x') + "\n\n", c);
  for (int i = 0; i < 5; ++i) parser.Feed("data: " + std::string(40, 'y') + "\n", c);
  parser.Feed("\ndata: fine\n\n", c);
  EXPECT_EQ(c.errors, (std::vector<std::string>{"line_too_long", "event_too_large"}));
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].data, "fine");
}

Result<Event> Decode(const std::string& data, const std::string& event = "message") {
  SseEvent sse;
  sse.event = event;
  sse.data = data;
  return DecodeEvent(sse);
}

std::string Envelope(const std::string& topic, const std::string& payload,
                     const std::string& type) {
  return Json{{"topic", topic}, {"payload", payload}, {"type", type}}.dump();
}

TEST(EventTest, StateChangedWithItsDoubleEncodedPayload) {
  SseParser parser;
  Collector c;
  parser.Feed(kStream, c);
  auto e = DecodeEvent(c.events[0]);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->kind, EventKind::kItemStateChanged);
  EXPECT_EQ(e->item, "LR_Temp");
  EXPECT_EQ(e->value_type, "Quantity");
  EXPECT_EQ(e->value, "21.5 °C");
  EXPECT_EQ(e->old_value, "21 °C");
  auto alive = DecodeEvent(c.events[1]);
  ASSERT_TRUE(alive.ok());
  EXPECT_EQ(alive->kind, EventKind::kAlive);
  EXPECT_EQ(alive->alive_interval_s, 10);
}

TEST(EventTest, EveryItemEventType) {
  const std::string state = R"({"type":"OnOff","value":"OFF"})";
  const std::string changed =
      R"({"type":"OnOff", "value": "ON", "oldType":"OnOff", "oldValue": "OFF"})";
  struct Case {
    std::string topic, payload, type;
    EventKind kind;
  };
  const std::vector<Case> cases = {
      {"openhab/items/Lamp/state", state, "ItemStateEvent", EventKind::kItemState},
      {"openhab/items/Lamp/stateupdated", state, "ItemStateUpdatedEvent",
       EventKind::kItemStateUpdated},
      {"openhab/items/Lamp/statechanged", changed, "ItemStateChangedEvent",
       EventKind::kItemStateChanged},
      {"openhab/items/Lamp/command", R"({"type":"Refresh", "value": "REFRESH"})",
       "ItemCommandEvent", EventKind::kItemCommand},
      {"openhab/items/GroupA/Lamp/statechanged", changed, "GroupItemStateChangedEvent",
       EventKind::kGroupStateChanged},
  };
  for (const auto& k : cases) {
    auto e = Decode(Envelope(k.topic, k.payload, k.type));
    ASSERT_TRUE(e.ok()) << k.type << ": " << e.error().message;
    EXPECT_EQ(e->kind, k.kind) << k.type;
  }
  auto group = Decode(
      Envelope("openhab/items/GroupA/Lamp/statechanged", changed, "GroupItemStateChangedEvent"));
  EXPECT_EQ(group->item, "GroupA");
  EXPECT_EQ(group->member, "Lamp");
  EXPECT_EQ(group->old_value, "OFF");
}

TEST(EventTest, ItemLifecycleAndThingStatus) {
  const Json item = {{"type", "Switch"}, {"name", "Lamp"}, {"label", ""}, {"tags", Json::array()}};
  auto added = Decode(Envelope("openhab/items/Lamp/added", item.dump(), "ItemAddedEvent"));
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->item_json["type"], "Switch");
  auto updated = Decode(
      Envelope("openhab/items/Lamp/updated", Json::array({item, item}).dump(), "ItemUpdatedEvent"));
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->old_item_json["name"], "Lamp");
  auto thing = Decode(Envelope(
      "openhab/things/mqtt:topic:br:s1/statuschanged",
      R"([{"status":"OFFLINE","statusDetail":"COMMUNICATION_ERROR"},{"status":"ONLINE","statusDetail":"NONE"}])",
      "ThingStatusInfoChangedEvent"));
  ASSERT_TRUE(thing.ok()) << thing.error().message;
  EXPECT_EQ(thing->thing_uid, "mqtt:topic:br:s1");
  EXPECT_EQ(thing->thing_status, "OFFLINE");
  EXPECT_EQ(thing->old_thing_status, "ONLINE");
}

TEST(EventTest, UnknownTypesAreKeptAsOther) {
  auto e = Decode(
      Envelope("openhab/items/Lamp/statepredicted",
               R"({"predictedType":"OnOff","predictedValue":"OFF","isConfirmation":"false"})",
               "ItemStatePredictedEvent"));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, EventKind::kOther);
  EXPECT_EQ(e->payload["predictedValue"], "OFF");
}

TEST(EventTest, MalformedEventsAreErrorsNeverCrashes) {
  const std::vector<std::string> bad = {
      "",
      "not json",
      "[1,2]",
      R"({"topic":"openhab/items/Lamp/state","type":"ItemStateEvent"})",  // no payload
      Envelope("openhab/items/Lamp/state", "{not json", "ItemStateEvent"),
      Envelope("openhab/items/Lamp/state", "[]", "ItemStateEvent"),
      Envelope("openhab/items/Lamp/state", R"({"type":1,"value":"x"})", "ItemStateEvent"),
      Envelope("openhab/items/9bad/state", R"({"type":"OnOff","value":"ON"})", "ItemStateEvent"),
      Envelope("openhab/items/Lamp", R"({"type":"OnOff","value":"ON"})", "ItemStateEvent"),
      Envelope("openhab/items/Lamp/updated", "[{}]", "ItemUpdatedEvent"),
      Envelope("openhab/things/x/statuschanged", "[{}, {}]", "ThingStatusInfoChangedEvent"),
      Envelope("openhab/items/Lamp/state", std::string(10'000, '[') + std::string(10'000, ']'),
               "ItemStateEvent"),
      R"({"topic":7,"payload":"{}","type":"ItemStateEvent"})",
  };
  for (const auto& data : bad) {
    auto e = Decode(data);
    ASSERT_FALSE(e.ok()) << data.substr(0, 80);
    EXPECT_EQ(e.error().code, "bad_event");
  }
}

TEST(EventTest, ItemNames) {
  EXPECT_TRUE(IsItemName("LR_Temp"));
  EXPECT_TRUE(IsItemName("_x9"));
  EXPECT_FALSE(IsItemName(""));
  EXPECT_FALSE(IsItemName("9x"));
  EXPECT_FALSE(IsItemName("a-b"));
  EXPECT_FALSE(IsItemName("a/b"));
}

}  // namespace
}  // namespace iothub::openhab

namespace iothub::openhab {
namespace {

TEST(TopicFilterTest, RegexSemanticsMatchWholeTopicsAndStarSpansSlashes) {
  auto f =
      TopicFilter::Parse("openhab/items/*/statechanged, openhab/things/*", FilterSemantics::kRegex);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->Matches("openhab/items/Lamp/statechanged"));
  EXPECT_TRUE(f->Matches("openhab/items/gAll/Lamp/statechanged")) << "'*' spans '/' (§3)";
  EXPECT_FALSE(f->Matches("openhab/items/Lamp/statechanged/x"));
  EXPECT_FALSE(f->Matches("openhab/items/Lamp/command"));
  EXPECT_TRUE(f->Matches("openhab/things/a:b:c/statuschanged"));
  EXPECT_FALSE(f->Matches("xopenhab/things/a"));
  EXPECT_TRUE(TopicFilter::Parse("", FilterSemantics::kRegex)->Matches("anything"));
}

TEST(TopicFilterTest, InvalidCharactersAreRefusedAsOpenHabDoes) {
  for (const char* bad : {"openhab/items/(.*)", "a.b", "x$", "a|b", "[ab]", "a+"}) {
    auto f = TopicFilter::Parse(bad, FilterSemantics::kRegex);
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_EQ(f.error().code, "bad_filter");
  }
  EXPECT_TRUE(TopicFilter::Parse("openhab/items/a-b_c:d/*", FilterSemantics::kRegex).ok());
}

TEST(TopicFilterTest, PrefixSemanticsOfOldServers) {
  auto f = TopicFilter::Parse("openhab/items/", FilterSemantics::kPrefix);
  EXPECT_TRUE(f->Matches("openhab/items/Lamp/state"));
  EXPECT_FALSE(f->Matches("openhab/things/x/statuschanged"));
}

TEST(TopicFilterTest, TheClientsFilterSelectsTheSameTopicsUnderBothSemantics) {
  const std::vector<std::string> wanted = {
      "openhab/items/Lamp/statechanged", "openhab/items/g/Lamp/statechanged",
      "openhab/items/Lamp/added", "openhab/things/a:b:c/statuschanged"};
  const std::vector<std::string> unwanted = {"openhab/inbox/x/added", "openhab/rules/r/state",
                                             "openhab/channels/c/triggered"};
  for (auto semantics : {FilterSemantics::kRegex, FilterSemantics::kPrefix}) {
    auto f = TopicFilter::Parse(ClientTopicFilter(), semantics);
    ASSERT_TRUE(f.ok());
    for (const auto& t : wanted) EXPECT_TRUE(f->Matches(t)) << t;
    for (const auto& t : unwanted) EXPECT_FALSE(f->Matches(t)) << t;
  }
}

}  // namespace
}  // namespace iothub::openhab
