// SSE framing and openHAB event decoding, with payloads as openHAB sends them (shapes from
// shared/reference/openhab.md §3 and openhab-core's ItemEventFactoryTest.java).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "openhab/event.h"
#include "openhab/event_reference.h"
#include "openhab/json_scan.h"
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

// Lines ended by LF, CR and CRLF in one stream, many lines per chunk: every chunking reads
// the same events as byte-by-byte feeding.
TEST(SseParserTest, MixedLineEndsReadTheSameInEveryChunking) {
  std::string stream;
  const char* const ends[] = {"\n", "\r", "\r\n"};
  for (int i = 0; i < 60; ++i) {
    const char* end = ends[i % 3];
    // A blank line: after a CR, an LF would only complete a CRLF.
    const char* blank = end == ends[1] ? ends[1 + (i / 3) % 2] : ends[(i / 3) % 3];
    stream += fmt::format("event: e{}{}data: {}{}data: x{}{}{}", i, end, i, ends[(i + 1) % 3], i,
                          end, blank);
    if (i % 7 == 0) stream += fmt::format(": comment {}{}", i, end);
  }
  const auto read = [&](std::size_t size) {
    SseParser parser;
    Collector c;
    for (std::size_t at = 0; at < stream.size(); at += size) {
      parser.Feed(std::string_view(stream).substr(at, size), c);
    }
    return c;
  };
  const Collector bytewise = read(1);
  ASSERT_EQ(bytewise.events.size(), 60u);
  EXPECT_EQ(bytewise.events[4].event, "e4");
  EXPECT_EQ(bytewise.events[4].data, "4\nx4");
  EXPECT_EQ(bytewise.comments.size(), 9u);
  for (std::size_t size = 2; size <= stream.size(); size += size < 64 ? 1 : 97) {
    const Collector c = read(size);
    ASSERT_EQ(c.events.size(), bytewise.events.size()) << "chunk size " << size;
    for (std::size_t i = 0; i < c.events.size(); ++i) {
      EXPECT_EQ(c.events[i].event, bytewise.events[i].event) << "chunk size " << size;
      EXPECT_EQ(c.events[i].data, bytewise.events[i].data) << "chunk size " << size;
    }
    EXPECT_EQ(c.comments, bytewise.comments) << "chunk size " << size;
  }
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

// openHAB 5 stamps state events with ZonedDateTime text (AbstractEventFactory's adapter).
TEST(EventTest, OpenHab5StampsAreZonedDateTimeText) {
  const Json payload = {{"type", "OnOff"},
                        {"value", "ON"},
                        {"oldType", "OnOff"},
                        {"oldValue", "OFF"},
                        {"lastStateUpdate", "2025-06-01T12:00:00.123+02:00[Europe/Berlin]"},
                        {"lastStateChange", "2025-06-01T09:59:59Z"}};
  SseEvent sse;
  sse.data = Json{{"topic", "openhab/items/Lamp/statechanged"},
                  {"payload", payload.dump()},
                  {"type", "ItemStateChangedEvent"}}
                 .dump();
  auto e = DecodeEvent(sse);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->last_state_update_ms, 1'748'772'000'123);
  EXPECT_EQ(e->last_state_change_ms, 1'748'771'999'000);
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

// The differential test of DecodeEvent's fast path (json_scan.h) against the reference
// decoder: the same Event, or the same Error, for every input below.

// `a` and `b` are equal and of the same JSON types throughout (nlohmann's == would let an
// unsigned 5 equal a signed 5).
bool SameJson(const Json& a, const Json& b) {
  if (a.type() != b.type() || a.size() != b.size()) return false;
  if (a.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      const auto other = b.find(it.key());
      if (other == b.end() || !SameJson(*it, *other)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!SameJson(a[i], b[i])) return false;
    }
    return true;
  }
  return a == b;
}

// Printable in a failure message, whatever the bytes.
std::string Show(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, 300)) {
    const auto b = static_cast<unsigned char>(c);
    out += b >= 0x20 && b < 0x7F ? std::string(1, c) : fmt::format("\\x{:02x}", b);
  }
  return text.size() > 300 ? out + "..." : out;
}

// All the bytes of a string literal, NULs included.
template <std::size_t N>
std::string Bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

// A JSON string literal of `text`, bytes >= 0x80 passed through as they are (valid UTF-8 or
// not, which nlohmann's dump would refuse).
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string RawEnvelope(std::string_view topic, std::string_view payload, std::string_view type) {
  return fmt::format(R"({{"topic":{},"payload":{},"type":{}}})", Quote(topic), Quote(payload),
                     Quote(type));
}

// The scanner either declines or reads `text` exactly as nlohmann does. Returns whether it
// read it.
bool ExpectScannerAgrees(const std::string& text) {
  std::vector<FlatMember> members;
  if (!ScanFlatObject(text, members)) return false;
  const Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(parsed.is_discarded()) << "scanned what nlohmann refuses: " << Show(text);
  EXPECT_TRUE(SameJson(FlatObjectToJson(std::move(members)), parsed)) << Show(text);
  return true;
}

void ExpectSameDecoding(const std::string& data, const std::string& event_type = "message") {
  SseEvent sse;
  sse.event = event_type;
  sse.data = data;
  const auto fast = DecodeEvent(sse);
  const auto reference = DecodeEventReference(sse);
  ASSERT_EQ(fast.ok(), reference.ok()) << Show(data);
  if (!reference.ok()) {
    EXPECT_EQ(fast.error().code, reference.error().code) << Show(data);
    EXPECT_EQ(fast.error().message, reference.error().message) << Show(data);
    return;
  }
  const Event& a = *fast;
  const Event& b = *reference;
  EXPECT_EQ(a.kind, b.kind) << Show(data);
  EXPECT_EQ(a.type, b.type) << Show(data);
  EXPECT_EQ(a.topic, b.topic) << Show(data);
  EXPECT_EQ(a.item, b.item) << Show(data);
  EXPECT_EQ(a.member, b.member) << Show(data);
  EXPECT_EQ(a.value_type, b.value_type) << Show(data);
  EXPECT_EQ(a.value, b.value) << Show(data);
  EXPECT_EQ(a.old_value_type, b.old_value_type) << Show(data);
  EXPECT_EQ(a.old_value, b.old_value) << Show(data);
  EXPECT_EQ(a.last_state_update_ms, b.last_state_update_ms) << Show(data);
  EXPECT_EQ(a.last_state_change_ms, b.last_state_change_ms) << Show(data);
  EXPECT_TRUE(SameJson(a.item_json, b.item_json)) << Show(data);
  EXPECT_TRUE(SameJson(a.old_item_json, b.old_item_json)) << Show(data);
  EXPECT_EQ(a.thing_uid, b.thing_uid) << Show(data);
  EXPECT_EQ(a.thing_status, b.thing_status) << Show(data);
  EXPECT_EQ(a.old_thing_status, b.old_thing_status) << Show(data);
  EXPECT_EQ(a.alive_interval_s, b.alive_interval_s) << Show(data);
  EXPECT_TRUE(SameJson(a.payload, b.payload)) << Show(data);
}

// Payloads as openHAB sends them (ItemEventFactory, ThingEventFactory, ...), as JSON text:
// flat ones the scanner must read, then others it must leave to nlohmann.
const std::vector<std::string> kFlatPayloads = {
    R"({"type":"Quantity","value":"21.5 °C","oldType":"Quantity","oldValue":"21 °C"})",
    R"({"type":"Decimal","value":"3","oldType":"Decimal","oldValue":"2","lastStateUpdate":1718000000000,"lastStateChange":1717999999000})",
    R"({"type":"OnOff","value":"OFF"})",
    R"({"type":"Refresh","value":"REFRESH"})",
    R"({"type":"HSB","value":"120,100,50","oldType":"HSB","oldValue":"0,0,0"})",
    R"({"type":"Point","value":"52.5,13.4,34"})",
    R"({"type":"DateTime","value":"2014-03-30T10:58:47.033+0200"})",
    R"({"type":"Raw","value":"data:image/png;base64,iVBORw0KGgo="})",
    R"({"type":"UnDef","value":"UNDEF","oldType":"UnDef","oldValue":"NULL"})",
    R"({"type":"StringList","value":"a\\,b,c"})",
    R"({"type":"Percent","value":"100","oldType":"Percent","oldValue":"0"})",
    R"({"type":"String","value":"T\u00fcr \"offen\"\n\t\u00fcber\\ \/ \b\f\r"})",
    R"({"type":"String","value":"\u00e9\u20AC\ud83d\ude00 \uD834\uDD1E \u0041 \u0000 \u001f \u007f"})",
    R"({"type":"String","value":"漢字 ✓ 😀 é"})",
    R"({"type":"String","value":""})",
    R"({"type":"OnOff","value":null})",
    R"({"type":"OnOff","value":"ON","oldType":null,"oldValue":null})",
    R"({"type":"Decimal","value":21})",
    R"({"type":"Decimal","value":"21","lastStateUpdate":-5,"lastStateChange":-0})",
    R"({"type":"Decimal","value":"0","lastStateUpdate":0,"lastStateChange":123456789012345678})",
    R"({"type":"OnOff","value":true})",
    R"({"type":"OnOff","value":"ON","oldType":false})",
    R"({"oldValue":"OFF","value":"ON","oldType":"OnOff","type":"OnOff"})",
    " \t\r\n{ \"type\" : \"OnOff\" ,\n \"value\"\t:\r\"ON\" } \n",
    R"({"type":"OnOff","value":"ON","extra":"x","n":1,"b":true,"z":null})",
    R"({"type":"OnOff","value":"ON","value":"OFF"})",
    R"({"type":"OnOff","type":null,"value":"ON"})",
    R"({"\u0074ype":"OnOff","val\u0075e":"ON"})",
    R"({"type":"Switch","name":"Lamp","label":"Lamp","category":"lightbulb"})",
    R"({"predictedType":"OnOff","predictedValue":"OFF","isConfirmation":false})",
    R"({"event":"START","channel":"astro:sun:local:rise#event"})",
    R"({"status":"RUNNING","statusDetail":"NONE"})",
    "{}",
};
const std::vector<std::string> kOtherPayloads = {
    "",
    "[]",
    R"({"type":"Switch","name":"Lamp","label":"Lamp","tags":["Lighting"],"groupNames":["gAll"]})",
    R"([{"type":"Switch","name":"Lamp","tags":[]},{"type":"Dimmer","name":"Lamp","tags":[]}])",
    R"([{"status":"ONLINE","statusDetail":"NONE"},{"status":"OFFLINE","statusDetail":"COMMUNICATION_ERROR","description":"timeout"}])",
    R"([{"status":"ONLINE"},{"status":7}])",
    R"({"type":"OnOff","value":"ON","x":{"a":1}})",
    R"({"type":"OnOff","value":"ON","x":[1]})",
    R"({"type":"Decimal","value":"1","lastStateUpdate":1234567890123456789})",
    R"({"type":"Decimal","value":"1","lastStateUpdate":99999999999999999999})",
    R"({"type":"Decimal","value":"1","lastStateUpdate":1.5})",
    R"({"type":"Decimal","value":"1","lastStateUpdate":1e3})",
    R"({"type":"Decimal","value":"1","lastStateUpdate":01})",
    R"({"type":"Decimal","value":"1","lastStateUpdate":-})",
    R"({"type":"OnOff","value":"ON",})",
    R"({"type":"OnOff" "value":"ON"})",
    R"({'type':'OnOff'})",
    R"({"type":"OnOff","value":"ON"} x)",
    R"({"type":"OnOff","value":"ON"}{})",
    "\xEF\xBB\xBF{\"type\":\"OnOff\",\"value\":\"ON\"}",
    "{\"type\":\"String\",\"value\":\"\\x\"}",
    "{\"type\":\"String\",\"value\":\"\\u12\"}",
    "{\"type\":\"String\",\"value\":\"\\u12g4\"}",
    "{\"type\":\"String\",\"value\":\"\\uD800\"}",
    "{\"type\":\"String\",\"value\":\"\\uDC00\\uD800\"}",
    "{\"type\":\"String\",\"value\":\"\\uD800\\u0041\"}",
    "{\"type\":\"String\",\"value\":\"\\uD800\\n\"}",
    "{\"type\":\"String\",\"value\":\"\\uD800x\"}",
    "{\"type\":\"String\",\"value\":\"\x80\"}",
    "{\"type\":\"String\",\"value\":\"\xC0\x80\"}",
    "{\"type\":\"String\",\"value\":\"\xC3\"}",
    "{\"type\":\"String\",\"value\":\"\xE2\x82\"}",
    "{\"type\":\"String\",\"value\":\"\xE0\x80\x80\"}",
    "{\"type\":\"String\",\"value\":\"\xED\xA0\x80\"}",
    "{\"type\":\"String\",\"value\":\"\xF0\x80\x80\x80\"}",
    "{\"type\":\"String\",\"value\":\"\xF4\x90\x80\x80\"}",
    "{\"type\":\"String\",\"value\":\"\xF5\x80\x80\x80\"}",
    "{\"type\":\"String\",\"value\":\"\xFF\"}",
    Bytes("{\"type\":\"String\",\"value\":\"a\0b\"}"),
    "{\"type\":\"String\",\"value\":\"tab\there\"}",
    "{\"type\":\"String\",\"value\":\"unterminated",
    std::string(10'000, '[') + std::string(10'000, ']'),
    "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}",
    "{\"a\":" + std::string(10'000, '{'),
};

struct EventCase {
  std::string topic;
  std::string type;
};
const std::vector<EventCase> kEventCases = {
    {"openhab/items/LR_Temp/statechanged", "ItemStateChangedEvent"},
    {"openhab/items/Lamp/state", "ItemStateEvent"},
    {"openhab/items/Lamp/stateupdated", "ItemStateUpdatedEvent"},
    {"openhab/items/Lamp/command", "ItemCommandEvent"},
    {"openhab/items/gAll/Lamp/statechanged", "GroupItemStateChangedEvent"},
    {"openhab/items/Lamp/added", "ItemAddedEvent"},
    {"openhab/items/Lamp/removed", "ItemRemovedEvent"},
    {"openhab/items/Lamp/updated", "ItemUpdatedEvent"},
    {"openhab/things/mqtt:topic:br:s1/statuschanged", "ThingStatusInfoChangedEvent"},
    {"openhab/items/Lamp/statepredicted", "ItemStatePredictedEvent"},
    {"openhab/channels/astro:sun:local:rise#event/triggered", "ChannelTriggeredEvent"},
    {"openhab/rules/r1/state", "RuleStatusInfoEvent"},
    {"openhab/items/9bad/state", "ItemStateEvent"},
    {"openhab/items/Lamp", "ItemStateEvent"},
};

// Envelopes around `payload` (JSON text) in the shapes a server or a proxy might produce.
std::vector<std::string> EnvelopeVariants(const EventCase& c, const std::string& payload) {
  const std::string t = Quote(c.topic);
  const std::string p = Quote(payload);
  const std::string y = Quote(c.type);
  return {
      RawEnvelope(c.topic, payload, c.type),
      fmt::format(R"({{"type":{},"topic":{},"payload":{}}})", y, t, p),
      fmt::format(R"({{"payload":{},"type":{},"topic":{}}})", p, y, t),
      fmt::format(R"({{"topic":{},"type":{},"payload":{}}})", t, y, p),
      fmt::format(" {{\n \"topic\" : {} ,\r\n\t\"payload\":{} , \"type\":\n{} }}\n", t, p, y),
      fmt::format(R"({{"source":"org.openhab.core","topic":{},"payload":{},"type":{},"n":1}})", t,
                  p, y),
  };
}

TEST(EventDifferentialTest, FastPathAgreesWithTheReferenceOnEveryEventType) {
  int scanned = 0;
  for (const auto& c : kEventCases) {
    for (const auto& payload : kFlatPayloads) {
      EXPECT_TRUE(ExpectScannerAgrees(payload))
          << "a flat payload the scanner declined: " << Show(payload);
      for (const auto& data : EnvelopeVariants(c, payload)) {
        EXPECT_TRUE(ExpectScannerAgrees(data)) << Show(data);
        ExpectSameDecoding(data);
        ++scanned;
      }
    }
    for (const auto& payload : kOtherPayloads) {
      EXPECT_FALSE(ExpectScannerAgrees(payload)) << "not flat, yet scanned: " << Show(payload);
      for (const auto& data : EnvelopeVariants(c, payload)) ExpectSameDecoding(data);
    }
  }
  EXPECT_GT(scanned, 1000);
}

TEST(EventDifferentialTest, OdditiesOfTheEnvelope) {
  const std::string payload = R"({"type":"OnOff","value":"ON"})";
  const std::string p = Quote(payload);
  const std::vector<std::string> cases = {
      // Escaped slashes and \u escapes in topic, type and keys.
      R"({"topic":"openhab\/items\/Lamp\/state","payload":)" + p + R"(,"type":"ItemStateEvent"})",
      R"({"\u0074opic":"\u006fpenhab/items/Lamp/state","payload":)" + p +
          R"(,"type":"Item\u0053tateEvent"})",
      // Nulls, duplicates, missing members, members of other types.
      R"({"topic":"openhab/items/Lamp/state","payload":null,"type":"ItemStateEvent"})",
      R"({"topic":null,"payload":)" + p + R"(,"type":"ItemStateEvent"})",
      R"({"topic":"openhab/items/Lamp/state","payload":)" + p + R"(,"type":null})",
      R"({"topic":"openhab/items/Lamp/state","type":"ItemStateEvent"})",
      R"({"topic":"openhab/items/Lamp/state","payload":)" + p +
          R"(,"type":"ItemStateEvent","topic":"openhab/items/Other/state"})",
      R"({"topic":"openhab/items/Lamp/state","payload":)" + p +
          R"(,"type":"ItemStateEvent","topic":null})",
      R"({"topic":7,"payload":)" + p +
          R"(,"type":"ItemStateEvent","topic":"openhab/items/L/state"})",
      R"({"topic":"openhab/items/Lamp/state","payload":)" + p + R"(,"type":true})",
      R"({"topic":"openhab/items/Lamp/state","payload":7,"type":"ItemStateEvent"})",
      R"({"topic":"openhab/items/Lamp/state","payload":{"type":"OnOff","value":"ON"},"type":"ItemStateEvent"})",
      R"({"topic":"","payload":)" + p + R"(,"type":"ItemStateEvent"})",
      R"({"topic":"openhab/items/Lamp/state","payload":)" + p + R"(,"type":""})",
      R"({"topic":"openhab/items/Lamp/state","payload":"","type":"ItemStateEvent"})",
      R"({"topic":"openhab/items/Lamp/state","payload":"","type":"SomethingNew"})",
      // Not an envelope at all.
      "",
      " ",
      "null",
      "[1,2]",
      "\"text\"",
      "{}",
      "{",
      "}",
      "not json",
      "\xEF\xBB\xBF" + RawEnvelope("openhab/items/Lamp/state", payload, "ItemStateEvent"),
      RawEnvelope("openhab/items/Lamp/state", payload, "ItemStateEvent") + "x",
      RawEnvelope("openhab/items/Lamp/state", payload, "ItemStateEvent") + " \n",
      "{\"topic\":\"openhab/items/L\xC3\xA4mp/state\",\"payload\":" + p +
          ",\"type\":\"ItemStateEvent\"}",
      "{\"topic\":\"openhab/items/L\xE4mp/state\",\"payload\":" + p +
          ",\"type\":\"ItemStateEvent\"}",
      R"({"a":)" + std::string(100'000, '[') + std::string(100'000, ']') + "}",
      std::string(100'000, '{'),
  };
  for (const auto& data : cases) {
    ExpectScannerAgrees(data);
    ExpectSameDecoding(data);
  }
  for (const std::string alive :
       {R"({"type":"ALIVE","interval":10})", R"({"type":"ALIVE"})", R"({"interval":"x"})", "[]"}) {
    ExpectSameDecoding(alive, "alive");
  }
}

// Every prefix, every byte deleted, and every byte replaced by a character that matters to
// the grammar, in the envelope and in the payload inside it.
TEST(EventDifferentialTest, TruncatedAndMutatedInputs) {
  const std::vector<std::pair<EventCase, std::string>> seeds = {
      {kEventCases[0], kFlatPayloads[1]},  {kEventCases[1], kFlatPayloads[12]},
      {kEventCases[4], kFlatPayloads[11]}, {kEventCases[5], kOtherPayloads[2]},
      {kEventCases[8], kOtherPayloads[4]},
  };
  const std::string replacements = Bytes("\"\\{}[],: 0-9.eu\x80\xC3\xED\x01\0");
  const auto mutations = [&](const std::string& text) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      out.push_back(text.substr(0, i));
      out.push_back(text.substr(0, i) + text.substr(i + 1));
      for (const char r : replacements) {
        std::string changed = text;
        changed[i] = r;
        out.push_back(std::move(changed));
      }
    }
    return out;
  };
  for (const auto& [c, payload] : seeds) {
    for (const auto& data : mutations(RawEnvelope(c.topic, payload, c.type))) {
      ExpectScannerAgrees(data);
      ExpectSameDecoding(data);
    }
    for (const auto& mutated : mutations(payload)) {
      ExpectScannerAgrees(mutated);
      ExpectSameDecoding(RawEnvelope(c.topic, mutated, c.type));
    }
    if (HasFailure()) return;  // one broken seed says enough
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
