// Unit tests of the telemetry format (docs/message-format.md): typed values from real openHAB
// state texts, and the packer's rules (one kind per message, send order kept, an item's
// changes never reordered, the metering chunk filled and never exceeded, at least one entry,
// oversized entries reported). Sizes are recomputed here from the published metering rule,
// and every body produced is validated against docs/message-format.schema.json.
#include "connector/message_format.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "azure/tier.h"
#include "common/clock.h"
#include "openhab/state.h"
#include "support/message_schema.h"

namespace iothub::connector {
namespace {

using iothub::testing::ValidateMessages;

constexpr std::int64_t kT0 = 1'796'212'800'123;  // 2026-12-02T12:00:00.123Z
constexpr std::int64_t kFree = 512;
constexpr std::int64_t kPaid = 4096;

// Every body the running test packed; its fixture validates them against the schema.
std::vector<std::string>& AllBodies() {
  static std::vector<std::string> bodies;
  return bodies;
}

class SchemaChecked : public ::testing::Test {
 protected:
  void SetUp() override { AllBodies().clear(); }
  void TearDown() override {
    if (!AllBodies().empty()) {
      EXPECT_TRUE(ValidateMessages(AllBodies()));
    }
    AllBodies().clear();
  }
};
using PackTest = SchemaChecked;
using EncodeValueTest = SchemaChecked;

// The hub's rule (shared/reference/azure-iothub.md §5), from the message's fields: the body,
// the values of the system properties, the names and values of the application properties.
std::int64_t HubMetered(const azure::TelemetryMessage& m) {
  std::size_t size = m.body.size() + m.message_id.size() + m.content_type.size() +
                     m.content_encoding.size() + m.component.size() + m.creation_time.size();
  for (const auto& p : m.properties) size += p.name.size() + (p.value ? p.value->size() : 0);
  return static_cast<std::int64_t>(size);
}

std::int64_t Chunks(std::int64_t bytes, std::int64_t chunk) {
  return bytes <= 0 ? 1 : (bytes + chunk - 1) / chunk;
}

EncodedValue Encode(std::string_view type, std::string_view text) {
  auto state = openhab::ParseState(type, text);
  EXPECT_TRUE(state.ok()) << type << " " << text;
  return EncodeValue(type, state.ok() ? *state : openhab::State{});
}

Entry Change(std::int64_t id, std::string key, std::string type, std::string_view text,
             std::int64_t time_ms = kT0, EntryKind kind = EntryKind::kChange) {
  Entry e;
  e.id = id;
  e.kind = kind;
  e.key = std::move(key);
  e.type = std::move(type);
  EncodedValue v = Encode(e.type, text);
  e.value = std::move(v.value);
  e.unit = std::move(v.unit);
  e.state = std::move(v.state);
  e.time_ms = time_ms;
  return e;
}

Entry ThingEntry(std::int64_t id, std::string uid, std::string_view status, std::string_view detail,
                 std::string_view description = {}, std::int64_t time_ms = kT0) {
  Entry e;
  e.id = id;
  e.kind = EntryKind::kThing;
  e.key = std::move(uid);
  e.value = EncodeThingStatus(status, detail, description);
  e.time_ms = time_ms;
  return e;
}

MessageHeader Header(std::int64_t seq = 1) {
  return {"3f2a1c9e-8b7d-4e6f-a5c4-1b2d3e4f5a6b", seq, kT0 + 5};
}

PackOptions Options(std::int64_t chunk, azure::PropertyBag statics = {}) {
  PackOptions o;
  o.target_bytes = chunk;
  o.chunk_bytes = chunk;
  o.static_properties = std::move(statics);
  return o;
}

// Packs, checks what every message must satisfy, and keeps the body for the schema check.
PackedMessage PackOk(MessagePacker& packer, const std::vector<Entry>& entries,
                     std::int64_t seq = 1) {
  PackResult r = packer.Pack(entries, Header(seq));
  EXPECT_TRUE(r.message.has_value());
  EXPECT_FALSE(r.oversized_entry.has_value());
  if (!r.message) return {};
  const PackedMessage& m = *r.message;
  EXPECT_EQ(m.metered_bytes, HubMetered(m.message));
  EXPECT_EQ(MeteredBytes(m.message), HubMetered(m.message));
  EXPECT_EQ(m.billed_messages, Chunks(m.metered_bytes, packer.options().chunk_bytes));
  EXPECT_TRUE(azure::CheckTelemetry("openhab", m.message).ok());
  EXPECT_FALSE(m.entry_ids.empty());
  AllBodies().push_back(m.message.body);
  return std::move(*r.message);
}

Json Body(const PackedMessage& m) { return Json::parse(m.message.body); }

// ---------------------------------------------------------------------------------------
// Metering, shared with the emulator.

TEST(MeteringTest, BilledMessagesIsCeilingAndAtLeastOne) {
  EXPECT_EQ(azure::BilledMessages(0, kFree), 1);
  EXPECT_EQ(azure::BilledMessages(1, kFree), 1);
  EXPECT_EQ(azure::BilledMessages(512, kFree), 1);
  EXPECT_EQ(azure::BilledMessages(513, kFree), 2);
  EXPECT_EQ(azure::BilledMessages(1200, kFree), 3);  // the pricing page's example
  EXPECT_EQ(azure::BilledMessages(1200, kPaid), 1);
  EXPECT_EQ(azure::BilledMessages(4097, kPaid), 2);
}

TEST(MeteringTest, MessageCountsSystemValuesAndApplicationNamesAndValues) {
  azure::TelemetryMessage m;
  m.body = "{\"a\":1}";
  m.message_id = "mid-1";
  m.content_type = "application/json";
  m.content_encoding = "utf-8";
  m.creation_time = "2026-12-02T12:00:00.123Z";
  m.component = "thermostat";
  m.properties = {{"kind", "changes"}, {"flag", std::nullopt}};
  EXPECT_EQ(MeteredBytes(m), 7 + 5 + 16 + 5 + 24 + 10 + 4 + 7 + 4);
  EXPECT_EQ(MeteredBytes(azure::TelemetryMessage{}), 0);
  // The function the emulator bills with, given the bag the session sends.
  const azure::PropertyBag bag = {{"$.mid", "mid-1"},      {"$.ct", "application/json"},
                                  {"$.ce", "utf-8"},       {"$.ctime", "2026-12-02T12:00:00.123Z"},
                                  {"$.sub", "thermostat"}, {"kind", "changes"},
                                  {"flag", std::nullopt}};
  EXPECT_EQ(azure::MeteredBytes(m.body, bag), MeteredBytes(m));
}

TEST(MessageFormatTest, KindNames) {
  EXPECT_EQ(ToString(EntryKind::kChange), "changes");
  EXPECT_EQ(ToString(EntryKind::kSnapshot), "snapshot");
  EXPECT_EQ(ToString(EntryKind::kThing), "things");
}

TEST(MessageFormatTest, TimesAreUtcWithMilliseconds) {
  EXPECT_EQ(FormatIsoTimeMs(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTimeMs(kT0), "2026-12-02T12:00:00.123Z");
  EXPECT_EQ(FormatIsoTimeMs(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatIsoTimeMs(951'782'400'000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTimeMs(-300'000'000'000'000), "0001-01-01T00:00:00.000Z");  // clamped
  EXPECT_EQ(FormatIsoTimeMs(300'000'000'000'000), "9999-12-31T23:59:59.999Z");
  std::mt19937_64 random(7);
  for (int i = 0; i < 1000; ++i) {
    const auto ms = static_cast<std::int64_t>(random() % 4'000'000'000'000ULL);
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    ASSERT_EQ(FormatIsoTimeMs(ms),
              fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                          tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000))
        << ms;
  }
}

// ---------------------------------------------------------------------------------------
// Typed values.

struct ValueCase {
  std::string type;
  std::string text;   // what openHAB sends
  std::string value;  // the value's JSON
  std::string unit;   // expected unit
  std::string state;  // expected state
};

std::vector<ValueCase> ValueCases() {
  const std::string big_image =
      "data:image/jpeg;base64," + std::string(2000, 'A');  // 1500 bytes decoded
  return {
      {"Switch", "ON", R"("ON")", "", ""},
      {"Switch", "OFF", R"("OFF")", "", ""},
      {"Group:Switch:OR(ON,OFF)", "ON", R"("ON")", "", ""},
      {"Contact", "OPEN", R"("OPEN")", "", ""},
      {"Contact", "CLOSED", R"("CLOSED")", "", ""},
      {"Dimmer", "42", "42", "", ""},
      {"Dimmer", "12.5", "12.5", "", ""},
      {"Dimmer", "ON", "100", "", ""},
      {"Dimmer", "OFF", "0", "", ""},
      {"Group:Dimmer", "ON", "100", "", ""},
      {"Rollershutter", "35", "35", "", ""},
      {"Rollershutter", "UP", "0", "", ""},
      {"Rollershutter", "DOWN", "100", "", ""},
      {"Number", "21.5", "21.5", "", ""},
      {"Number", "21.50", "21.5", "", ""},
      {"Number", "130", "130", "", ""},
      {"Number", "-7", "-7", "", ""},
      {"Number", "+3", "3", "", ""},
      {"Number", "1E-7", "1e-07", "", ""},
      {"Number", "1E3", "1000", "", ""},
      {"Number", "9223372036854775807", "9223372036854775807", "", ""},
      {"Number", "18446744073709551615", "18446744073709551615", "", ""},
      {"Number", "123456789012345678901234", "1.2345678901234569e+23", "", ""},
      {"Number", "5 W", "5", "W", ""},
      {"Number:Temperature", "21.5 °C", "21.5", "°C", ""},
      {"Number:Temperature",
       "21.5 \xc3\x82\xc2\xb0"
       "C",
       "21.5", "°C", ""},  // mojibake repaired
      {"Number:Temperature", "-3.25 °F", "-3.25", "°F", ""},
      {"Number:Temperature", "21.5", "21.5", "", ""},
      {"Number:Power", "130 W", "130", "W", ""},
      {"Number:Energy", "1234.567 kWh", "1234.567", "kWh", ""},
      {"Number:Dimensionless", "45 %", "45", "%", ""},
      {"Number:Speed", "3.6 m/s", "3.6", "m/s", ""},
      {"Group:Number:Power:SUM", "1520.5 W", "1520.5", "W", ""},
      {"Color", "120,100,50", R"({"b":50,"h":120,"s":100})", "", ""},
      {"Color", "359.5,0,100", R"({"b":100,"h":359.5,"s":0})", "", ""},
      {"Color", "ON", R"("ON")", "", ""},
      {"Location", "52.5200,13.4050", R"({"lat":52.52,"lon":13.405})", "", ""},
      {"Location", "52.52,13.405,34.5", R"({"alt":34.5,"lat":52.52,"lon":13.405})", "", ""},
      {"DateTime", "2014-03-30T10:58:47.033+0200", R"("2014-03-30T08:58:47.033Z")", "", ""},
      {"DateTime", "2026-12-02T13:00:00.123456789+01:00[Europe/Berlin]",
       R"("2026-12-02T12:00:00.123Z")", "", ""},
      {"DateTime", "1960-05-01T00:00:00Z", R"("1960-05-01T00:00:00.000Z")", "", ""},
      {"DateTime", "2026-06-01T12:00:00", R"("2026-06-01T12:00:00")", "", ""},  // no zone
      {"DateTime", "2026-06-01T12:00:00CET", R"("2026-06-01T12:00:00CET")", "", ""},
      {"String", "hello", R"("hello")", "", ""},
      {"String", "", R"("")", "", ""},
      {"String", "line\n\"quoted\" ünïcödé", R"("line\n\"quoted\" ünïcödé")", "", ""},
      {"String", "bad \xff byte", "\"bad \xef\xbf\xbd byte\"", "", ""},
      {"Player", "PLAY", R"("PLAY")", "", ""},
      {"Player", "PAUSE", R"("PAUSE")", "", ""},
      {"Player", "REWIND", R"("REWIND")", "", ""},
      {"Player", "FASTFORWARD", R"("FASTFORWARD")", "", ""},
      {"Image", "data:image/png;base64,iVBORw0KGgo=", R"("data:image/png;base64,iVBORw0KGgo=")", "",
       ""},
      {"Image", big_image, R"({"bytes":1500,"mimeType":"image/jpeg"})", "", ""},
      {"Call", "+4930123,+4940456", R"(["+4930123","+4940456"])", "", ""},
      {"Call", "a\\,b,c", R"(["a,b","c"])", "", ""},
      {"Switch", "NULL", "null", "", "NULL"},
      {"Number:Temperature", "UNDEF", "null", "", "UNDEF"},
      {"Color", "NULL", "null", "", "NULL"},
      {"DateTime", "UNDEF", "null", "", "UNDEF"},
      {"Image", "NULL", "null", "", "NULL"},
      {"Group", "anything", R"("anything")", "", ""},
      {"UnknownType", "x,y", R"("x,y")", "", ""},
  };
}

TEST_F(EncodeValueTest, EveryItemTypeAndStateKind) {
  for (const ValueCase& c : ValueCases()) {
    SCOPED_TRACE(c.type + " " + c.text.substr(0, 60));
    const EncodedValue v = Encode(c.type, c.text);
    EXPECT_EQ(v.value.dump(), c.value);
    EXPECT_EQ(v.unit, c.unit);
    EXPECT_EQ(v.state, c.state);
  }
}

TEST_F(EncodeValueTest, IntegersAreJsonIntegers) {
  EXPECT_TRUE(Encode("Number:Power", "130 W").value.is_number_integer());
  EXPECT_TRUE(Encode("Number", "1E3").value.is_number_integer());
  EXPECT_TRUE(Encode("Number", "21.5").value.is_number_float());
  EXPECT_TRUE(Encode("Dimmer", "100").value.is_number_integer());
  // Values built in code (no received text) too.
  EXPECT_EQ(EncodeValue("Number:Power", openhab::MakeQuantity(42, "W")).value.dump(), "42");
  EXPECT_EQ(EncodeValue("Number", openhab::MakeDecimal(0.1)).value.dump(), "0.1");
}

TEST_F(EncodeValueTest, CommandOnlyWordsAreTheirWords) {
  EXPECT_EQ(EncodeValue("Rollershutter", openhab::MakeWord(openhab::Word::kStop)).value, "STOP");
  EXPECT_EQ(EncodeValue("Player", openhab::MakeWord(openhab::Word::kNext)).value, "NEXT");
  EXPECT_EQ(EncodeValue("Switch", openhab::MakeWord(openhab::Word::kRefresh)).value, "REFRESH");
}

TEST_F(EncodeValueTest, ImagesUpToTheLimitTravelInline) {
  const std::string prefix = "data:image/png;base64,";
  const std::string at_limit = prefix + std::string(kMaxInlineRawBytes - prefix.size(), 'A');
  EXPECT_EQ(Encode("Image", at_limit).value, at_limit);
  const std::string over = at_limit + "AAAA";
  EXPECT_EQ(Encode("Image", over).value.dump(),
            R"({"bytes":)" + std::to_string((over.size() - prefix.size()) * 3 / 4) +
                R"(,"mimeType":"image/png"})");
}

TEST_F(EncodeValueTest, ThingStatus) {
  EXPECT_EQ(EncodeThingStatus("OFFLINE", "COMMUNICATION_ERROR", "no route").dump(),
            R"({"description":"no route","detail":"COMMUNICATION_ERROR","status":"OFFLINE"})");
  EXPECT_EQ(EncodeThingStatus("ONLINE", "NONE", "").dump(),
            R"({"detail":"NONE","status":"ONLINE"})");
  EXPECT_EQ(EncodeThingStatus("ONLINE", "", "").dump(), R"({"status":"ONLINE"})");
  // Always serialisable, whatever bytes openHAB sent.
  EXPECT_EQ(EncodeThingStatus("OFFLINE", "NONE", "\xff").dump(),
            "{\"description\":\"\xef\xbf\xbd\",\"detail\":\"NONE\",\"status\":\"OFFLINE\"}");
}

TEST_F(EncodeValueTest, EveryValueMakesASchemaValidMessage) {
  MessagePacker packer(Options(kPaid));
  std::int64_t id = 0;
  for (const ValueCase& c : ValueCases()) {
    const PackedMessage m = PackOk(packer, {Change(++id, "Item_1", c.type, c.text)});
    const Json body = Body(m);
    EXPECT_EQ(body["items"]["Item_1"]["value"].dump(), c.value);
    EXPECT_EQ(body["items"]["Item_1"]["type"], c.type);
  }
  EXPECT_EQ(AllBodies().size(), ValueCases().size());  // validated by the fixture
}

// ---------------------------------------------------------------------------------------
// The message.

TEST_F(PackTest, OneChangeIsAWellFormedMessage) {
  MessagePacker packer(Options(kFree));
  const PackedMessage m =
      PackOk(packer, {Change(7, "Kitchen_Temp", "Number:Temperature", "21.5 °C")}, 42);
  EXPECT_EQ(
      m.message.body,
      R"({"v":1,"kind":"changes","seq":42,"items":{"Kitchen_Temp":{"type":)"
      R"("Number:Temperature","value":21.5,"unit":"°C","time":"2026-12-02T12:00:00.123Z"}}})");
  EXPECT_EQ(m.message.message_id, Header().message_id);
  EXPECT_EQ(m.message.content_type, "application/json");
  EXPECT_EQ(m.message.content_encoding, "utf-8");
  EXPECT_EQ(m.message.creation_time, "2026-12-02T12:00:00.128Z");
  EXPECT_EQ(m.message.component, "");
  EXPECT_EQ(m.message.properties, (azure::PropertyBag{{"kind", "changes"}}));
  EXPECT_EQ(m.kind, EntryKind::kChange);
  EXPECT_EQ(m.entry_ids, (std::vector<std::int64_t>{7}));
  EXPECT_EQ(m.billed_messages, 1);
}

TEST_F(PackTest, NoEntriesNoMessage) {
  MessagePacker packer(Options(kFree));
  const PackResult r = packer.Pack({}, Header());
  EXPECT_FALSE(r.message);
  EXPECT_FALSE(r.oversized_entry);
}

TEST_F(PackTest, KindsAreNeverMixed) {
  MessagePacker packer(Options(kPaid));
  const std::vector<Entry> entries = {
      Change(1, "A", "Switch", "ON"),
      Change(2, "B", "Switch", "ON", kT0, EntryKind::kSnapshot),
      Change(3, "C", "Switch", "OFF"),
      ThingEntry(4, "zwave:device:ctrl:node5", "OFFLINE", "COMMUNICATION_ERROR"),
      Change(5, "B", "Switch", "OFF", kT0 + 1),  // B's snapshot goes first: not here
      Change(6, "D", "Number", "1"),
  };
  const PackedMessage changes = PackOk(packer, entries);
  EXPECT_EQ(changes.entry_ids, (std::vector<std::int64_t>{1, 3, 6}));
  EXPECT_EQ(Body(changes)["kind"], "changes");
  EXPECT_EQ(changes.message.properties[0], (azure::Property{"kind", "changes"}));

  const std::vector<Entry> rest = {entries[1], entries[3], entries[4]};
  const PackedMessage snapshot = PackOk(packer, rest);
  EXPECT_EQ(snapshot.entry_ids, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(Body(snapshot)["kind"], "snapshot");
  EXPECT_TRUE(Body(snapshot)["items"].contains("B"));

  const PackedMessage things = PackOk(packer, {entries[3], entries[4]});
  EXPECT_EQ(things.entry_ids, (std::vector<std::int64_t>{4}));
  EXPECT_EQ(things.message.properties[0], (azure::Property{"kind", "things"}));
  EXPECT_EQ(
      things.message.body,
      R"({"v":1,"kind":"things","seq":1,"things":{"zwave:device:ctrl:node5":)"
      R"({"status":"OFFLINE","detail":"COMMUNICATION_ERROR","time":"2026-12-02T12:00:00.123Z"}}})");
}

TEST_F(PackTest, SendOrderIsKept) {
  MessagePacker packer(Options(kPaid));
  std::vector<Entry> entries;
  for (int i = 0; i < 10; ++i) {
    entries.push_back(Change(100 - i, "Item_" + std::to_string(9 - i), "Switch", "ON"));
  }
  const PackedMessage m = PackOk(packer, entries);
  std::vector<std::int64_t> expected;
  for (const Entry& e : entries) expected.push_back(e.id);
  EXPECT_EQ(m.entry_ids, expected);
  // The body lists items in the order they were first given.
  EXPECT_LT(m.message.body.find("\"Item_9\""), m.message.body.find("\"Item_0\""));
}

TEST_F(PackTest, FillsTheChunkAndNeverExceedsIt) {
  for (const std::int64_t chunk : {kFree, kPaid}) {
    SCOPED_TRACE(chunk);
    MessagePacker packer(Options(chunk));
    std::vector<Entry> entries;
    for (int i = 0; i < 400; ++i) {
      entries.push_back(Change(i + 1, "Sensor_" + std::to_string(i), "Number:Temperature",
                               std::to_string(20 + i % 7) + ".25 °C", kT0 + i));
    }
    const PackedMessage m = PackOk(packer, entries);
    EXPECT_LE(m.metered_bytes, chunk);
    EXPECT_EQ(m.billed_messages, 1);
    ASSERT_LT(m.entry_ids.size(), entries.size());
    // Full: one more entry would have crossed the chunk.
    const std::size_t taken = m.entry_ids.size();
    std::vector<Entry> one_more(entries.begin(), entries.begin() + taken + 1);
    MessagePacker unbounded(Options(1 << 20));
    const PackedMessage bigger = PackOk(unbounded, one_more);
    EXPECT_EQ(bigger.entry_ids.size(), taken + 1);
    EXPECT_GT(bigger.metered_bytes, chunk);
  }
}

TEST_F(PackTest, AnItemsChangesTravelAsAHistoryInOrder) {
  MessagePacker packer(Options(kPaid));
  const std::vector<Entry> entries = {
      Change(1, "Meter_Power", "Number:Power", "120 W", kT0),
      Change(2, "Hall_Motion", "Switch", "ON", kT0 + 10),
      Change(3, "Meter_Power", "Number:Power", "125 W", kT0 + 1000),
      Change(4, "Meter_Power", "Number:Power", "0.13 kW", kT0 + 2000),
      Change(5, "Meter_Power", "Number:Power", "130 W", kT0 + 3000),
      Change(6, "Meter_Power", "Number:Power", "UNDEF", kT0 + 4000),
      Change(7, "Meter_Power", "Number:Power", "131 W", kT0 + 5000),
  };
  const PackedMessage m = PackOk(packer, entries);
  EXPECT_EQ(m.entry_ids, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7}));
  const Json item = Body(m)["items"]["Meter_Power"];
  EXPECT_EQ(item["value"], 131);
  EXPECT_EQ(item["unit"], "W");
  EXPECT_EQ(item["time"], FormatIsoTimeMs(kT0 + 5000));
  // Oldest first; a unit is written only where it differs from the latest one.
  EXPECT_NE(m.message.body.find(
                R"("Meter_Power":{"type":"Number:Power","value":131,"unit":"W",)"
                R"("time":"2026-12-02T12:00:05.123Z","history":[)"
                R"({"value":120,"time":"2026-12-02T12:00:00.123Z"},)"
                R"({"value":125,"time":"2026-12-02T12:00:01.123Z"},)"
                R"({"value":0.13,"unit":"kW","time":"2026-12-02T12:00:02.123Z"},)"
                R"({"value":130,"time":"2026-12-02T12:00:03.123Z"},)"
                R"({"value":null,"unit":"","state":"UNDEF","time":"2026-12-02T12:00:04.123Z"}]})"),
            std::string::npos)
      << m.message.body;
  EXPECT_EQ(Body(m)["items"]["Hall_Motion"]["value"], "ON");
  EXPECT_FALSE(Body(m)["items"]["Hall_Motion"].contains("history"));
}

TEST_F(PackTest, AChangeOfUnitRewritesTheHistorysUnits) {
  MessagePacker packer(Options(kPaid));
  const PackedMessage m = PackOk(packer, {Change(1, "T", "Number:Temperature", "20 °C", kT0),
                                          Change(2, "T", "Number:Temperature", "21 °C", kT0 + 1),
                                          Change(3, "T", "Number:Temperature", "70 °F", kT0 + 2),
                                          Change(4, "T", "Number:Temperature", "71 °F", kT0 + 3)});
  const Json item = Body(m)["items"]["T"];
  EXPECT_EQ(item["unit"], "°F");
  EXPECT_EQ(item["history"][0]["unit"], "°C");
  EXPECT_EQ(item["history"][1]["unit"], "°C");
  EXPECT_FALSE(item["history"][2].contains("unit"));
}

TEST_F(PackTest, TheLatestEntrysTypeIsWritten) {
  MessagePacker packer(Options(kPaid));
  const PackedMessage m = PackOk(packer, {Change(1, "Power", "Number", "20", kT0),
                                          Change(2, "Power", "Number:Power", "21 W", kT0 + 1)});
  EXPECT_EQ(Body(m)["items"]["Power"]["type"], "Number:Power");
  EXPECT_EQ(Body(m)["items"]["Power"]["history"][0]["unit"], "");
}

TEST_F(PackTest, AnItemsLaterChangeNeverOvertakesAnEarlierOne) {
  MessagePacker packer(Options(kFree));
  Entry big = Change(2, "Note", "String", std::string(300, 'n'), kT0 + 1);
  const std::vector<Entry> entries = {
      Change(1, "A", "Switch", "ON", kT0),
      Change(10, "Note", "String", "x", kT0),     // fits
      big,                                        // does not fit after A and the first note
      Change(3, "Note", "String", "y", kT0 + 2),  // would fit, but must wait for `big`
      Change(4, "B", "Switch", "OFF", kT0 + 3),
  };
  const PackedMessage m = PackOk(packer, entries);
  EXPECT_EQ(m.entry_ids, (std::vector<std::int64_t>{1, 10, 4}));
  EXPECT_EQ(Body(m)["items"]["Note"]["value"], "x");
}

TEST_F(PackTest, MergedEntriesSayWhatTheyStandFor) {
  MessagePacker packer(Options(kFree));
  Entry merged = Change(1, "Meter_Power", "Number:Power", "130 W", kT0);
  merged.count = 57;
  merged.first_ms = kT0 - 60'000;
  merged.min = 12.5;
  merged.max = 2400;
  Entry motion = Change(2, "Hall_Motion", "Switch", "OFF", kT0);
  motion.count = 9;  // no min/max for words; since defaults to the entry's time
  const PackedMessage m = PackOk(packer, {merged, motion});
  const std::string& body = m.message.body;
  EXPECT_NE(body.find(R"(,"merged":{"count":57,"min":12.5,"max":2400,)"
                      R"("since":"2026-12-02T11:59:00.123Z"}})"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find(R"(,"merged":{"count":9,"since":"2026-12-02T12:00:00.123Z"}})"),
            std::string::npos)
      << body;
  EXPECT_FALSE(
      Body(PackOk(packer, {Change(3, "X", "Switch", "ON")}))["items"]["X"].contains("merged"));
}

TEST_F(PackTest, AtLeastOneEntryAndTheLastPaidChunkIsFilled) {
  MessagePacker packer(Options(kFree));
  std::vector<Entry> entries = {Change(1, "Note", "String", std::string(1000, 'n'))};
  for (int i = 0; i < 40; ++i) {
    entries.push_back(Change(i + 2, "S" + std::to_string(i), "Number:Power", "5 W", kT0 + i));
  }
  const PackedMessage m = PackOk(packer, entries);
  EXPECT_GT(m.metered_bytes, 1024);
  EXPECT_LE(m.metered_bytes, 1536);
  EXPECT_EQ(m.billed_messages, 3);
  EXPECT_GT(m.entry_ids.size(), 2U);  // the rest of the third chunk is used
  EXPECT_EQ(m.entry_ids.front(), 1);

  // A lone entry over the chunk is still sent.
  const PackedMessage alone = PackOk(packer, {entries[0]});
  EXPECT_EQ(alone.entry_ids, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(alone.billed_messages, Chunks(alone.metered_bytes, kFree));
}

TEST_F(PackTest, AnEntryTooLargeForIotHubIsReported) {
  MessagePacker packer(Options(kFree));
  Entry huge = Change(9, "Log", "String", std::string(300 * 1024, 'x'));
  const std::vector<Entry> entries = {huge, Change(10, "A", "Switch", "ON")};
  const PackResult r = packer.Pack(entries, Header());
  EXPECT_FALSE(r.message);
  ASSERT_TRUE(r.oversized_entry);
  EXPECT_EQ(*r.oversized_entry, 9);
  EXPECT_GT(r.oversized_bytes, 256 * 1024);

  // Behind another entry it only does not fit; first, it is reported.
  const PackedMessage first = PackOk(packer, {entries[1], huge});
  EXPECT_EQ(first.entry_ids, (std::vector<std::int64_t>{10}));

  // What the caller does: leave the value out, then it packs.
  huge.value = LeftOutValue(static_cast<std::int64_t>(huge.value.get<std::string>().size()));
  const PackedMessage replaced = PackOk(packer, {huge});
  EXPECT_EQ(Body(replaced)["items"]["Log"]["value"].dump(), R"({"bytes":307200})");

  // Just under the limit still goes, billed as the hub bills it.
  Entry large = Change(11, "Log", "String", std::string(255 * 1024, 'x'));
  const PackedMessage m = PackOk(packer, {large});
  EXPECT_EQ(m.billed_messages, Chunks(m.metered_bytes, kFree));
  EXPECT_GT(m.billed_messages, 500);
}

TEST_F(PackTest, StaticPropertiesAreSentAndMetered) {
  const azure::PropertyBag statics = {{"Table", "OpenhabRaw"},
                                      {"Format", "json"},
                                      {"IngestionMappingReference", "OpenhabMapping"},
                                      {"kind", "ignored"},
                                      {"flag", std::nullopt}};
  MessagePacker plain(Options(kFree));
  MessagePacker with(Options(kFree, statics));
  std::vector<Entry> entries;
  for (int i = 0; i < 30; ++i) {
    entries.push_back(Change(i + 1, "P" + std::to_string(i), "Number:Power", "5 W", kT0 + i));
  }
  const PackedMessage a = PackOk(plain, entries);
  const PackedMessage b = PackOk(with, entries);
  EXPECT_EQ(b.message.properties,
            (azure::PropertyBag{{"kind", "changes"},
                                {"Table", "OpenhabRaw"},
                                {"Format", "json"},
                                {"IngestionMappingReference", "OpenhabMapping"},
                                {"flag", std::nullopt}}));
  EXPECT_LE(b.metered_bytes, kFree);
  // The properties take room: what fit without them fits with them only if there was room.
  const auto statics_bytes = static_cast<std::int64_t>(
      std::string("TableOpenhabRawFormatjsonIngestionMappingReferenceOpenhabMappingflag").size());
  if (a.metered_bytes + statics_bytes > kFree) {
    EXPECT_LT(b.entry_ids.size(), a.entry_ids.size());
  } else {
    EXPECT_EQ(b.entry_ids.size(), a.entry_ids.size());
  }
  // One entry alone: the static properties' names and values are exactly the difference.
  const PackedMessage one_a = PackOk(plain, {entries[0]});
  const PackedMessage one_b = PackOk(with, {entries[0]});
  EXPECT_EQ(one_b.metered_bytes - one_a.metered_bytes, statics_bytes);
}

TEST_F(PackTest, OptionsForConfig) {
  Config config;
  config.quota.tier = azure::Tier::kS1;
  config.iothub.properties = {{"Table", "T"}};
  const PackOptions o = PackOptionsFor(config);
  EXPECT_EQ(o.chunk_bytes, 4096);
  EXPECT_EQ(o.target_bytes, 4096);
  EXPECT_EQ(o.static_properties, (azure::PropertyBag{{"Table", "T"}}));
  config.quota.tier = azure::Tier::kFree;
  EXPECT_EQ(PackOptionsFor(config).chunk_bytes, 512);
}

TEST_F(PackTest, ThingsCarryTheirStatusHistory) {
  MessagePacker packer(Options(kPaid));
  const PackedMessage m = PackOk(
      packer,
      {ThingEntry(1, "mqtt:topic:broker:sensor1", "ONLINE", "NONE", "", kT0),
       ThingEntry(2, "hue:bridge:b1", "OFFLINE", "COMMUNICATION_ERROR", "timeout", kT0),
       ThingEntry(3, "mqtt:topic:broker:sensor1", "OFFLINE", "BRIDGE_OFFLINE", "", kT0 + 1000)});
  const Json things = Body(m)["things"];
  EXPECT_EQ(things["mqtt:topic:broker:sensor1"].dump(),
            R"({"detail":"BRIDGE_OFFLINE","history":[{"detail":"NONE","status":"ONLINE",)"
            R"("time":"2026-12-02T12:00:00.123Z"}],"status":"OFFLINE",)"
            R"("time":"2026-12-02T12:00:01.123Z"})");
  EXPECT_EQ(things["hue:bridge:b1"]["description"], "timeout");
}

// ---------------------------------------------------------------------------------------
// Random entries through an outbox-like loop: pack, drop what was taken, repeat.

Entry RandomEntry(std::mt19937_64& random, std::int64_t id, std::int64_t time_ms) {
  static const std::vector<ValueCase> cases = ValueCases();
  const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(random() % n); };
  Entry e;
  const std::size_t roll = pick(20);
  if (roll == 0) {
    static const std::vector<std::string> statuses = {"ONLINE", "OFFLINE", "UNKNOWN",
                                                      "INITIALIZING"};
    e = ThingEntry(id, "binding:type:thing" + std::to_string(pick(5)), statuses[pick(4)],
                   pick(2) == 0 ? "NONE" : "COMMUNICATION_ERROR",
                   pick(3) == 0 ? "lost \"contact\"" : "", time_ms);
  } else {
    const ValueCase& c = cases[pick(cases.size())];
    std::string key = "Item_" + std::to_string(pick(25)) + "_" + c.type;
    std::replace_if(
        key.begin(), key.end(), [](char ch) { return std::isalnum(ch) == 0; }, '_');
    e = Change(id, std::move(key), c.type, c.text, time_ms,
               roll < 4 ? EntryKind::kSnapshot : EntryKind::kChange);
  }
  e.priority = static_cast<Priority>(pick(3));
  if (pick(6) == 0) {
    e.count = 2 + static_cast<std::int64_t>(pick(100));
    e.first_ms = time_ms - 1000 * static_cast<std::int64_t>(pick(3600));
    if (e.value.is_number()) {
      e.min = e.value.get<double>() - 1;
      e.max = e.value.get<double>() + 0.5;
    }
  }
  return e;
}

TEST_F(PackTest, RandomEntriesKeepEveryRule) {
  std::mt19937_64 random(20261202);
  for (int round = 0; round < 40; ++round) {
    const std::int64_t chunk = round % 2 == 0 ? kFree : kPaid;
    MessagePacker packer(Options(
        chunk, round % 3 == 0 ? azure::PropertyBag{{"Table", "Raw"}} : azure::PropertyBag{}));
    std::vector<Entry> pending;
    const int count = 1 + static_cast<int>(random() % 300);
    for (int i = 0; i < count; ++i) pending.push_back(RandomEntry(random, i + 1, kT0 + i * 7));
    // Send order: priority, then age (the outbox's).
    std::stable_sort(pending.begin(), pending.end(),
                     [](const Entry& a, const Entry& b) { return a.priority < b.priority; });
    std::map<std::string, std::vector<std::int64_t>> order_of_key;  // ids in send order
    for (const Entry& e : pending) order_of_key[e.key].push_back(e.id);
    std::map<std::string, std::vector<std::int64_t>> sent_of_key;
    std::int64_t seq = 0;
    while (!pending.empty()) {
      const PackedMessage m = PackOk(packer, pending, ++seq);
      ASSERT_FALSE(m.entry_ids.empty());
      EXPECT_EQ(m.entry_ids.front(), pending.front().id);
      if (m.billed_messages > 1) {
        // Only an entry that alone exceeds the chunk makes a message of several, and the
        // others fill what it paid for without adding a chunk.
        const PackResult alone = packer.Pack({&pending.front(), 1}, Header(seq));
        ASSERT_TRUE(alone.message);
        EXPECT_GT(alone.message->metered_bytes, chunk);
        EXPECT_EQ(alone.message->billed_messages, m.billed_messages);
      }
      const Json body = Body(m);
      EXPECT_EQ(body["seq"], seq);
      std::map<std::int64_t, const Entry*> by_id;
      for (const Entry& e : pending) by_id[e.id] = &e;
      std::map<std::string, const Entry*> latest;
      for (const std::int64_t id : m.entry_ids) {
        const Entry& e = *by_id.at(id);
        EXPECT_EQ(e.kind, m.kind);
        sent_of_key[e.key].push_back(id);
        latest[e.key] = &e;
      }
      // `$body.items.X.value` is the newest state the message carries for X.
      const Json& group = body[m.kind == EntryKind::kThing ? "things" : "items"];
      EXPECT_EQ(group.size(), latest.size());
      for (const auto& [key, e] : latest) {
        if (m.kind == EntryKind::kThing) {
          EXPECT_EQ(group[key]["status"], e->value["status"]);
        } else {
          EXPECT_EQ(group[key]["value"], e->value);
        }
      }
      std::erase_if(pending, [&](const Entry& e) {
        return std::find(m.entry_ids.begin(), m.entry_ids.end(), e.id) != m.entry_ids.end();
      });
    }
    EXPECT_EQ(sent_of_key, order_of_key);  // each entry once, every item's in order
  }
  EXPECT_GT(AllBodies().size(), 100U);  // validated by the fixture
}

TEST_F(PackTest, SchemaRejectsWhatTheFormatNeverWrites) {
  // The validator is live: each of these breaks one rule of the schema.
  const std::vector<std::string> bad = {
      R"({"v":2,"kind":"changes","seq":1,"items":{"A":{"type":"Switch","value":"ON","time":"2026-12-02T12:00:00.123Z"}}})",
      R"({"v":1,"kind":"changes","seq":1,"things":{"a:b:c":{"status":"ONLINE","time":"2026-12-02T12:00:00.123Z"}}})",
      R"({"v":1,"kind":"changes","seq":1,"items":{"A":{"type":"Switch","value":"on","time":"2026-12-02T12:00:00.123Z"}}})",
      R"({"v":1,"kind":"changes","seq":1,"items":{"A":{"type":"Number:Power","value":"5 W","time":"2026-12-02T12:00:00.123Z"}}})",
      R"({"v":1,"kind":"changes","seq":1,"items":{"A":{"type":"Switch","value":"ON","time":"2026-12-02 12:00"}}})",
      R"({"v":1,"kind":"changes","seq":1,"items":{"A":{"type":"Switch","value":"ON","state":"NULL","time":"2026-12-02T12:00:00.123Z"}}})",
      R"({"v":1,"kind":"changes","seq":1,"items":{"A":{"type":"Switch","value":"ON","time":"2026-12-02T12:00:00.123Z","extra":1}}})",
      R"({"v":1,"kind":"changes","seq":1,"items":{}})",
  };
  for (const std::string& body : bad) EXPECT_FALSE(ValidateMessages({body})) << body;
  EXPECT_TRUE(ValidateMessages(
      {R"({"v":1,"kind":"changes","seq":1,"items":{"A":{"type":"Switch","value":"ON","time":"2026-12-02T12:00:00.123Z"}}})"}));
}

}  // namespace
}  // namespace iothub::connector
