#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "openhab/state.h"

namespace iothub::openhab {
namespace {

State Parse(std::string_view item_type, std::string_view text) {
  auto state = ParseState(item_type, text);
  EXPECT_TRUE(state.ok()) << item_type << " " << text << ": "
                          << (state.ok() ? "" : state.error().message);
  return state.ok() ? *state : State{};
}

// The error message, or "" if `text` parsed.
std::string ParseError(std::string_view item_type, std::string_view text) {
  auto state = ParseState(item_type, text);
  if (state.ok()) {
    return "";
  }
  EXPECT_EQ(state.error().code, "bad_state");
  return state.error().message;
}

State Typed(std::string_view type_name, std::string_view value) {
  auto state = ParseTypedValue(type_name, value);
  EXPECT_TRUE(state.ok()) << type_name << " " << value << ": "
                          << (state.ok() ? "" : state.error().message);
  return state.ok() ? *state : State{};
}

std::string Command(std::string_view item_type, const State& state) {
  auto text = CommandFor(item_type, state);
  EXPECT_TRUE(text.ok()) << item_type << ": " << (text.ok() ? "" : text.error().message);
  return text.ok() ? *text : std::string();
}

std::string CommandError(std::string_view item_type, const State& state) {
  auto text = CommandFor(item_type, state);
  if (text.ok()) {
    return "";
  }
  EXPECT_EQ(text.error().code, "bad_command");
  return text.error().message;
}

TEST(OpenhabStateTest, SwitchIsOnOrOff) {
  EXPECT_EQ(Parse("Switch", "ON"), MakeWord(Word::kOn));
  EXPECT_EQ(Parse("Switch", "OFF"), MakeWord(Word::kOff));
  EXPECT_EQ(Parse("Switch", "OFF").kind, StateKind::kOnOff);
  // Enum names are case-sensitive in openHAB.
  EXPECT_NE(ParseError("Switch", "on"), "");
  const std::string error = ParseError("Switch", "MAYBE");
  EXPECT_NE(error.find("Switch"), std::string::npos) << error;
  EXPECT_NE(error.find("\"MAYBE\""), std::string::npos) << error;
  EXPECT_NE(error.find("ON or OFF"), std::string::npos) << error;
}

TEST(OpenhabStateTest, DimmerIsAPercentOrOnOff) {
  const State half = Parse("Dimmer", "42.5");
  EXPECT_EQ(half.kind, StateKind::kPercent);
  EXPECT_DOUBLE_EQ(half.number, 42.5);
  EXPECT_EQ(Parse("Dimmer", "0").number, 0);
  EXPECT_EQ(Parse("Dimmer", "100").number, 100);
  EXPECT_EQ(Parse("Dimmer", "ON"), MakeWord(Word::kOn));
  const std::string error = ParseError("Dimmer", "150");
  EXPECT_NE(error.find("0-100"), std::string::npos) << error;
  EXPECT_NE(ParseError("Dimmer", "-1"), "");
  EXPECT_NE(ParseError("Dimmer", "50 %"), "");
  EXPECT_NE(ParseError("Dimmer", "INCREASE"), "");  // a command, not a state
}

TEST(OpenhabStateTest, RollershutterIsAPercentOrUpDown) {
  EXPECT_EQ(Parse("Rollershutter", "0").kind, StateKind::kPercent);
  EXPECT_EQ(Parse("Rollershutter", "100").number, 100);
  EXPECT_EQ(Parse("Rollershutter", "UP"), MakeWord(Word::kUp));
  EXPECT_EQ(Parse("Rollershutter", "DOWN"), MakeWord(Word::kDown));
  EXPECT_NE(ParseError("Rollershutter", "STOP"), "");  // a command, not a state
}

TEST(OpenhabStateTest, ColorIsHsbOrPercentOrOnOff) {
  const State color = Parse("Color", "120,100,50");
  EXPECT_EQ(color.kind, StateKind::kHsb);
  EXPECT_EQ(color.hsb, (Hsb{120, 100, 50}));
  EXPECT_EQ(Parse("Color", " 359.9 , 50.5 ,100 ").hsb, (Hsb{359.9, 50.5, 100}));
  EXPECT_EQ(Parse("Color", "0,0,0").hsb, (Hsb{0, 0, 0}));
  EXPECT_EQ(Parse("Color", "50").kind, StateKind::kPercent);
  EXPECT_EQ(Parse("Color", "OFF"), MakeWord(Word::kOff));
  // HSBType: 0 <= hue < 360, saturation and brightness 0..100, exactly three parts.
  EXPECT_NE(ParseError("Color", "360,0,0").find("hue"), std::string::npos);
  EXPECT_NE(ParseError("Color", "0,101,0").find("saturation"), std::string::npos);
  EXPECT_NE(ParseError("Color", "0,0,-1").find("brightness"), std::string::npos);
  EXPECT_NE(ParseError("Color", "1,2"), "");
  EXPECT_NE(ParseError("Color", "1,2,3,4"), "");
  EXPECT_NE(ParseError("Color", "a,b,c"), "");
  EXPECT_NE(ParseError("Color", ",,"), "");
}

TEST(OpenhabStateTest, NumberKeepsTheTextOpenhabSent) {
  const State number = Parse("Number", "21.50");
  EXPECT_EQ(number.kind, StateKind::kDecimal);
  EXPECT_DOUBLE_EQ(number.number, 21.5);
  EXPECT_EQ(number.number_text, "21.50");
  EXPECT_EQ(ToCommandText(number), "21.50");
  EXPECT_EQ(Parse("Number", "1e-7").number, 1e-7);
  EXPECT_EQ(ToCommandText(Parse("Number", "1e-7")), "1e-7");
  EXPECT_EQ(Parse("Number", "1.5E+3").number, 1500);
  EXPECT_EQ(Parse("Number", "-0").number_text, "-0");
  EXPECT_EQ(Parse("Number", "+5").number, 5);
  EXPECT_EQ(Parse("Number", ".5").number, 0.5);
  EXPECT_EQ(Parse("Number", "-10E-3").number, -0.01);
  EXPECT_EQ(Parse("Number", "0E-22").number, 0);
  EXPECT_EQ(Parse("Number", "123456789012345678901234567890").number, 1.2345678901234568e29);
}

TEST(OpenhabStateTest, NumberWithDimensionCarriesAUnit) {
  const State temperature = Parse("Number:Temperature", "21.5 °C");
  EXPECT_EQ(temperature.kind, StateKind::kQuantity);
  EXPECT_DOUBLE_EQ(temperature.number, 21.5);
  EXPECT_EQ(temperature.unit, "°C");
  EXPECT_EQ(Parse("Number:Power", "1250 W").unit, "W");
  EXPECT_EQ(Parse("Number:Dimensionless", "65.5 %").unit, "%");
  EXPECT_EQ(Parse("Number:Energy", "3.2 kWh").unit, "kWh");
  EXPECT_EQ(Parse("Number:Acceleration", "9.81 m/s²").unit, "m/s²");
  // Without a unit a dimensioned item's state is still a number.
  EXPECT_EQ(Parse("Number:Temperature", "21.5").kind, StateKind::kDecimal);
  // Some setups give plain Number items a unit.
  EXPECT_EQ(Parse("Number", "21.5 °C").unit, "°C");
}

// Inputs openhab-core's QuantityTypeTest.java (testValidConstructors, testLowerCaseExponents)
// accepts; the unit may follow the number without a space.
TEST(OpenhabStateTest, QuantityFormsOpenhabAccepts) {
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      {"57%", "%"},      {"-2.5°C", "°C"},   {"-0°", "°"},        {"10 dBm", "dBm"},
      {"3 µs", "µs"},    {"3km/h", "km/h"},  {"1084 hPa", "hPa"}, {"-0E-22 m", "m"},
      {"1 /s", "/s"},    {"1/s", "/s"},      {"1Ω·m", "Ω·m"},     {"1.5E2Ω·m", "Ω·m"},
      {"1.1e3m³", "m³"}, {"1.1e3 µm", "µm"}, {"2rad", "rad"},     {"2em", "em"},
  };
  for (const auto& [text, unit] : cases) {
    const State state = Parse("Number:Length", text);
    EXPECT_EQ(state.kind, StateKind::kQuantity) << text;
    EXPECT_EQ(state.unit, unit) << text;
  }
  EXPECT_EQ(Parse("Number", "1.1e3m³").number, 1100);
  EXPECT_EQ(Parse("Number", "-10E3").number, -10000);
}

// QuantityTypeTest.testInvalidConstructors: these are errors in openHAB too.
TEST(OpenhabStateTest, BadNumbersAreErrors) {
  for (const std::string_view text :
       {"abc", "°C", ". °C", "1 2 °C", "123..56 °C", "123 Hello World", "123.123,56 °C", "", " ",
        "NaN", "nan", "inf", "Infinity", "-Infinity", "1,5", "--1", "e5"}) {
    EXPECT_NE(ParseError("Number:Temperature", text), "") << text;
  }
  // Units are not checked against openHAB's unit registry, which would refuse these.
  EXPECT_EQ(Parse("Number", "0x10").unit, "x10");
  EXPECT_EQ(Parse("Number", "1e").unit, "e");
  const std::string error = ParseError("Number", "abc");
  EXPECT_NE(error.find("Number state \"abc\""), std::string::npos) << error;
  EXPECT_NE(error.find("not a number"), std::string::npos) << error;
}

TEST(OpenhabStateTest, RepairsUnitsDecodedAsLatin1) {
  EXPECT_EQ(Parse("Number:Temperature", "22.5 Â°C").unit, "°C");
  EXPECT_EQ(ToCommandText(Parse("Number:Temperature", "22.5 Â°C")), "22.5 °C");
  EXPECT_EQ(Parse("Number:Time", "3 Âµs").unit, "µs");
  EXPECT_EQ(Parse("Number:Acceleration", "9.81 m/sÂ²").unit, "m/s²");
  EXPECT_EQ(Parse("Number:Volume", "7 mÂ³").unit, "m³");
  EXPECT_EQ(Parse("Number:Temperature", "22.5Â°C").unit, "°C");
  // Only those sequences: another `Â` stays, and text outside units is never touched.
  EXPECT_EQ(Parse("Number", "1 Âx").unit, "Âx");
  EXPECT_EQ(Parse("String", "22.5 Â°C").text, "22.5 Â°C");
}

TEST(OpenhabStateTest, ContactIsOpenOrClosed) {
  EXPECT_EQ(Parse("Contact", "OPEN"), MakeWord(Word::kOpen));
  EXPECT_EQ(Parse("Contact", "CLOSED"), MakeWord(Word::kClosed));
  EXPECT_NE(ParseError("Contact", "ON"), "");
}

TEST(OpenhabStateTest, DateTimeInOpenhabsFormat) {
  const State state = Parse("DateTime", "2014-03-30T10:58:47.033+0200");
  ASSERT_EQ(state.kind, StateKind::kDateTime);
  EXPECT_EQ(state.date_time.epoch_ms, 1396177127033 - 7'200'000);
  EXPECT_EQ(state.date_time.offset_minutes, 120);
  EXPECT_EQ(state.date_time.text, "2014-03-30T10:58:47.033+0200");
  EXPECT_EQ(ToCommandText(state), "2014-03-30T10:58:47.033+0200");
  // openHAB 4.x/5.x with its server in +01:00.
  EXPECT_EQ(Parse("DateTime", "2024-01-02T03:04:05.123+0100").date_time.epoch_ms, 1704161045123);
  EXPECT_EQ(Parse("DateTime", "2024-01-02T03:04:05.123456789+0100").date_time.epoch_ms,
            1704161045123);
}

// The inputs of openhab-core's DateTimeTypeTest.java (parserTest): all the same instant,
// 2024-09-05T15:30:00Z.
TEST(OpenhabStateTest, DateTimeVariantsOfDateTimeTypeTest) {
  constexpr std::int64_t kInstant = 1725550200000;
  for (const std::string_view text :
       {"2024-09-05T15:30:00Z", "2024-09-05 15:30Z", "2024-09-05 15:30+0000",
        "2024-09-05 16:30+0100", "2024-09-05T17:30:00.000+0200", "2024-09-05T17:30:00.000+02:00",
        "2024-09-05T17:30+02:00", "2024-09-05T17:30+02:00[Europe/Berlin]"}) {
    const State state = Parse("DateTime", text);
    EXPECT_EQ(state.date_time.epoch_ms, kInstant) << text;
    EXPECT_EQ(ToCommandText(state), text);
  }
  EXPECT_EQ(Parse("DateTime", "2024-09-05T17:30+02:00[Europe/Berlin]").date_time.zone_id,
            "Europe/Berlin");
  EXPECT_EQ(Parse("DateTime", "2024-09-05T17:30+02").date_time.epoch_ms, kInstant);
  EXPECT_EQ(Parse("DateTime", "2024-09-05T15:30Z[UTC]").date_time.epoch_ms, kInstant);
}

// DateTimeTypeTest.java (parameters, epochTest): UTC names, a time alone, a date alone, epoch
// seconds and milliseconds. Where openHAB would use its server's zone (no zone, or a zone name
// such as CET that needs a tz database) the instant is left unknown.
TEST(OpenhabStateTest, DateTimeWithoutOffsetOrAsEpoch) {
  constexpr std::int64_t k20140330105847 = 1396177127000;
  EXPECT_EQ(Parse("DateTime", "2014-03-30T10:58:47UTC").date_time.epoch_ms, k20140330105847);
  EXPECT_EQ(Parse("DateTime", "2014-03-30T10:58:47.000Z").date_time.epoch_ms, k20140330105847);
  EXPECT_EQ(Parse("DateTime", "2014-03-30T12:58:47GMT+02:00").date_time.epoch_ms, k20140330105847);
  EXPECT_EQ(Parse("DateTime", "1396177127").date_time.epoch_ms, k20140330105847);
  EXPECT_EQ(Parse("DateTime", "1396177127000").date_time.epoch_ms, k20140330105847);
  EXPECT_EQ(Parse("DateTime", "0").date_time.epoch_ms, 0);
  EXPECT_EQ(Parse("DateTime", "000000000000").date_time.epoch_ms, 0);
  EXPECT_EQ(Parse("DateTime", "10:58Z").date_time.epoch_ms, (10 * 60 + 58) * 60 * 1000);
  EXPECT_EQ(Parse("DateTime", "2014-03-30Z").date_time.epoch_ms, 1396137600000);

  for (const std::string_view text : {"2014-03-30T10:58:47.23", "2014-03-30T10:58:47", "10:58:47",
                                      "10:58", "2014-03-30", "10:58:47CET", "10:58CET"}) {
    const State state = Parse("DateTime", text);
    EXPECT_EQ(state.kind, StateKind::kDateTime) << text;
    EXPECT_FALSE(state.date_time.epoch_ms) << text;
    EXPECT_EQ(ToCommandText(state), text);
  }
  const State cet = Parse("DateTime", "2014-03-30T10:58:47CET");
  EXPECT_EQ(cet.date_time.zone_id, "CET");
  EXPECT_FALSE(cet.date_time.offset_minutes);
  EXPECT_EQ(ToJson(cet), Json::parse(R"({"kind":"datetime","value":"2014-03-30T10:58:47CET",
                                          "zone":"CET"})"));
}

TEST(OpenhabStateTest, BadDateTimesAreErrors) {
  for (const std::string_view text :
       {"", "yesterday", "2014-13-01T00:00", "2014-02-30T00:00", "2014-03-30T24:00",
        "2014-03-30T10:60", "2014-03-30T10:58:47+1900", "2014-03-30T10:58:47+02:60",
        "2014-03-30T10:58:47.", "2014-03-30T10:58:47.0123456789", "2014-03-30T", "0000-01-01",
        "2014-03-30T10:58:47+02:00[Europe/Berlin", "2014-03-30T10:58:47 CET", "1.5",
        "9999999999999999", "2014-3-30T10:58", "10:5"}) {
    EXPECT_NE(ParseError("DateTime", text), "") << text;
  }
  const std::string error = ParseError("DateTime", "2014-02-30T00:00");
  EXPECT_NE(error.find("day 30"), std::string::npos) << error;
}

TEST(OpenhabStateTest, DateTimeBuiltInCodeFormatsAsOpenhabDoes) {
  const State state = MakeDateTime(1396177127033 - 7'200'000, 120);
  EXPECT_EQ(ToCommandText(state), "2014-03-30T10:58:47.033+0200");
  EXPECT_EQ(ToCommandText(MakeDateTime(-1, -90)), "1969-12-31T22:29:59.999-0130");
  EXPECT_EQ(ToJson(state),
            Json::parse(R"({"kind":"datetime","value":"2014-03-30T10:58:47.033+02:00",
                            "epochMs":1396169927033,"offsetMinutes":120})"));
  // Out-of-range values built in code are clamped, never undefined.
  EXPECT_EQ(ToCommandText(MakeDateTime(std::numeric_limits<std::int64_t>::max(), 100000)),
            "9999-12-31T23:59:59.999+1800");
  EXPECT_EQ(ToCommandText(MakeDateTime(std::numeric_limits<std::int64_t>::min(), 0)),
            "0001-01-01T00:00:00.000+0000");
}

TEST(OpenhabStateTest, StringIsAnyText) {
  EXPECT_EQ(Parse("String", "hello, world"), MakeString("hello, world"));
  EXPECT_EQ(Parse("String", ""), MakeString(""));
  EXPECT_EQ(Parse("String", "ON"), MakeString("ON"));
  EXPECT_EQ(Parse("String", "NULL"), MakeNull());
}

TEST(OpenhabStateTest, LocationIsAPoint) {
  const State point = Parse("Location", "52.5200066,13.4049540");
  EXPECT_EQ(point.kind, StateKind::kPoint);
  EXPECT_EQ(point.point, (Point{52.5200066, 13.404954, std::nullopt}));
  EXPECT_EQ(Parse("Location", " 52.5 , 13.4 , 34 ").point, (Point{52.5, 13.4, 34.0}));
  EXPECT_EQ(ToCommandText(Parse("Location", "52.5,13.4,34")), "52.5,13.4,34");
  EXPECT_EQ(ToCommandText(Parse("Location", "-33.8688,151.2093")), "-33.8688,151.2093");
  for (const std::string_view text : {"", "52.5", "1,2,3,4", "a,b", "52.5,", "52.5;13.4"}) {
    EXPECT_NE(ParseError("Location", text), "") << text;
  }
}

TEST(OpenhabStateTest, PlayerIsPlayPauseOrRewindFastforward) {
  EXPECT_EQ(Parse("Player", "PLAY"), MakeWord(Word::kPlay));
  EXPECT_EQ(Parse("Player", "PAUSE"), MakeWord(Word::kPause));
  EXPECT_EQ(Parse("Player", "REWIND"), MakeWord(Word::kRewind));
  EXPECT_EQ(Parse("Player", "FASTFORWARD"), MakeWord(Word::kFastforward));
  EXPECT_EQ(Parse("Player", "FASTFORWARD").kind, StateKind::kRewindFastforward);
  EXPECT_NE(ParseError("Player", "NEXT"), "");  // a command, not a state
}

TEST(OpenhabStateTest, ImageIsADataUri) {
  const State image = Parse("Image", "data:image/png;base64,iVBORw0KGgo=");
  EXPECT_EQ(image.kind, StateKind::kRaw);
  EXPECT_EQ(image.mime_type, "image/png");
  EXPECT_EQ(ToCommandText(image), "data:image/png;base64,iVBORw0KGgo=");
  EXPECT_EQ(ToJson(image), Json::parse(R"({"kind":"raw","mimeType":"image/png",
                                           "value":"data:image/png;base64,iVBORw0KGgo="})"));
  for (const std::string_view text :
       {"", "image.png", "data:image/png", "data:;base64,AAAA", "data:image/png,AAAA",
        "data:image/png;base64,AA!A", "data:image/png;base64,AA=A"}) {
    EXPECT_NE(ParseError("Image", text), "") << text;
  }
}

TEST(OpenhabStateTest, CallIsAStringListWithEscapedCommas) {
  const State call = Parse("Call", "+4930123,+4940456");
  EXPECT_EQ(call.kind, StateKind::kStringList);
  EXPECT_EQ(call.list, (std::vector<std::string>{"+4930123", "+4940456"}));
  const State escaped = Parse("Call", R"(Smith\, John,+4930123)");
  EXPECT_EQ(escaped.list, (std::vector<std::string>{"Smith, John", "+4930123"}));
  EXPECT_EQ(ToCommandText(escaped), R"(Smith\, John,+4930123)");
  EXPECT_EQ(ToJson(call), Json::parse(R"({"kind":"stringlist","value":["+4930123","+4940456"]})"));
}

TEST(OpenhabStateTest, GroupsParseByTheirBaseType) {
  EXPECT_EQ(Parse("Group:Switch", "ON"), MakeWord(Word::kOn));
  EXPECT_EQ(Parse("Group:Number:Temperature", "21.5 °C").unit, "°C");
  EXPECT_EQ(Parse("Group:Number:Power:SUM", "1250 W").unit, "W");
  EXPECT_EQ(Parse("Group:Switch:OR(ON,OFF)", "OFF"), MakeWord(Word::kOff));
  EXPECT_NE(ParseError("Group:Switch", "MAYBE").find("Group:Switch state"), std::string::npos);
  // No base type: the text as it is.
  EXPECT_EQ(Parse("Group", "ON"), MakeString("ON"));
  EXPECT_EQ(Parse("Group", "UNDEF"), MakeUndef());
}

TEST(OpenhabStateTest, NullAndUndefForEveryType) {
  for (const std::string_view type :
       {"Switch", "Dimmer", "Rollershutter", "Color", "Number", "Number:Temperature", "Contact",
        "DateTime", "String", "Location", "Player", "Image", "Call", "Group", "Group:Switch",
        "SomethingNew", ""}) {
    EXPECT_EQ(Parse(type, "NULL"), MakeNull()) << type;
    EXPECT_EQ(Parse(type, "UNDEF"), MakeUndef()) << type;
  }
  EXPECT_EQ(ToCommandText(MakeNull()), "NULL");
  EXPECT_EQ(ToCommandText(MakeUndef()), "UNDEF");
  EXPECT_EQ(ToJson(MakeNull()), Json::parse(R"({"kind":"null"})"));
  EXPECT_EQ(ToJson(MakeUndef()), Json::parse(R"({"kind":"undef"})"));
}

TEST(OpenhabStateTest, UnknownItemTypesKeepTheText) {
  EXPECT_EQ(Parse("Thermostat", "21.5 °C"), MakeString("21.5 °C"));
  EXPECT_EQ(Parse("", "x"), MakeString("x"));
  EXPECT_EQ(Parse("switch", "ON"), MakeString("ON"));  // item types are case-sensitive
}

TEST(OpenhabStateTest, TolerantParsingFallsBackToString) {
  EXPECT_EQ(ParseStateTolerant("Switch", "MAYBE"), MakeString("MAYBE"));
  EXPECT_EQ(ParseStateTolerant("Number", "n/a"), MakeString("n/a"));
  EXPECT_EQ(ParseStateTolerant("Switch", "ON"), MakeWord(Word::kOn));
  EXPECT_EQ(ParseStateTolerant("Number:Temperature", "22.5 Â°C").unit, "°C");
}

// Each §3 value type name as an event payload carries it, e.g. openhab-core's
// ItemEventFactoryTest.java: {"type":"OnOff","value":"ON"}, {"type":"UnDef","value":"UNDEF"},
// {"type":"Refresh","value":"REFRESH"}.
TEST(OpenhabStateTest, ParsesEveryTypedValue) {
  EXPECT_EQ(Typed("OnOff", "ON"), MakeWord(Word::kOn));
  EXPECT_EQ(Typed("Percent", "50").kind, StateKind::kPercent);
  EXPECT_EQ(Typed("Decimal", "21.5").kind, StateKind::kDecimal);
  EXPECT_EQ(Typed("Quantity", "21.5 °C").unit, "°C");
  EXPECT_EQ(Typed("HSB", "120,100,50").hsb, (Hsb{120, 100, 50}));
  EXPECT_EQ(Typed("Point", "52.5,13.4").point, (Point{52.5, 13.4, std::nullopt}));
  EXPECT_EQ(Typed("DateTime", "2014-03-30T10:58:47.033+0200").date_time.offset_minutes, 120);
  EXPECT_EQ(Typed("String", "hello"), MakeString("hello"));
  EXPECT_EQ(Typed("OpenClosed", "CLOSED"), MakeWord(Word::kClosed));
  EXPECT_EQ(Typed("UpDown", "DOWN"), MakeWord(Word::kDown));
  EXPECT_EQ(Typed("StopMove", "STOP"), MakeWord(Word::kStop));
  EXPECT_EQ(Typed("StopMove", "MOVE"), MakeWord(Word::kMove));
  EXPECT_EQ(Typed("IncreaseDecrease", "INCREASE"), MakeWord(Word::kIncrease));
  EXPECT_EQ(Typed("IncreaseDecrease", "DECREASE"), MakeWord(Word::kDecrease));
  EXPECT_EQ(Typed("PlayPause", "PAUSE"), MakeWord(Word::kPause));
  EXPECT_EQ(Typed("RewindFastforward", "REWIND"), MakeWord(Word::kRewind));
  EXPECT_EQ(Typed("NextPrevious", "NEXT"), MakeWord(Word::kNext));
  EXPECT_EQ(Typed("NextPrevious", "PREVIOUS"), MakeWord(Word::kPrevious));
  EXPECT_EQ(Typed("Raw", "data:image/jpeg;base64,/9j/").mime_type, "image/jpeg");
  EXPECT_EQ(Typed("StringList", "a,b").list, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Typed("Refresh", "REFRESH"), MakeWord(Word::kRefresh));
  EXPECT_EQ(Typed("UnDef", "UNDEF"), MakeUndef());
  EXPECT_EQ(Typed("UnDef", "NULL"), MakeNull());
  // A Quantity without a unit (openHAB's dimensionless ONE) is a plain number.
  EXPECT_EQ(Typed("Quantity", "12").kind, StateKind::kDecimal);
  // Unknown type names are kept as text, as unknown item types are.
  EXPECT_EQ(Typed("Future", "x"), MakeString("x"));

  EXPECT_FALSE(ParseTypedValue("OnOff", "OPEN").ok());
  EXPECT_FALSE(ParseTypedValue("Decimal", "21.5 °C").ok());
  EXPECT_FALSE(ParseTypedValue("Percent", "101").ok());
  EXPECT_FALSE(ParseTypedValue("UnDef", "ON").ok());
  EXPECT_FALSE(ParseTypedValue("Refresh", "refresh").ok());
}

TEST(OpenhabStateTest, TypeNamesRoundTrip) {
  const std::vector<std::pair<std::string_view, std::string_view>> payloads = {
      {"OnOff", "OFF"},
      {"Percent", "42.5"},
      {"Decimal", "-0.001"},
      {"Quantity", "21.5 °C"},
      {"HSB", "120,100,50"},
      {"Point", "52.5,13.4,34"},
      {"DateTime", "2024-01-02T03:04:05.123+0100"},
      {"String", "any text, really"},
      {"OpenClosed", "OPEN"},
      {"UpDown", "UP"},
      {"StopMove", "MOVE"},
      {"IncreaseDecrease", "DECREASE"},
      {"PlayPause", "PLAY"},
      {"RewindFastforward", "FASTFORWARD"},
      {"NextPrevious", "PREVIOUS"},
      {"Raw", "data:image/png;base64,iVBORw0KGgo="},
      {"StringList", R"(a\,b,c)"},
      {"Refresh", "REFRESH"},
      {"UnDef", "NULL"},
      {"UnDef", "UNDEF"},
  };
  for (const auto& [type, value] : payloads) {
    const State state = Typed(type, value);
    EXPECT_EQ(TypeName(state.kind), type) << value;
    EXPECT_EQ(ToCommandText(state), value) << type;
    EXPECT_EQ(Typed(TypeName(state.kind), ToCommandText(state)), state) << type;
  }
}

TEST(OpenhabStateTest, StateTextRoundTripsForEveryItemType) {
  const std::vector<std::pair<std::string_view, std::string_view>> states = {
      {"Switch", "ON"},
      {"Dimmer", "42.5"},
      {"Dimmer", "OFF"},
      {"Rollershutter", "100"},
      {"Rollershutter", "DOWN"},
      {"Color", "359.5,0.5,99.9"},
      {"Number", "21.50"},
      {"Number", "1e-7"},
      {"Number:Temperature", "21.5 °C"},
      {"Number:Power", "1250 W"},
      {"Number:Dimensionless", "65.5 %"},
      {"Contact", "CLOSED"},
      {"DateTime", "2014-03-30T10:58:47.033+0200"},
      {"String", "a text"},
      {"Location", "52.5,13.4"},
      {"Player", "PAUSE"},
      {"Image", "data:image/gif;base64,R0lGODlhAQABAAAAACw="},
      {"Call", "a,b"},
      {"Group:Switch", "OFF"},
      {"Switch", "UNDEF"},
  };
  for (const auto& [type, text] : states) {
    const State state = Parse(type, text);
    EXPECT_EQ(ToCommandText(state), text) << type;
    EXPECT_EQ(Parse(type, ToCommandText(state)), state) << type;
  }
}

TEST(OpenhabStateTest, ValuesBuiltInCodeFormatWithoutExponents) {
  EXPECT_EQ(ToCommandText(MakeDecimal(21.5)), "21.5");
  EXPECT_EQ(ToCommandText(MakeDecimal(1e-7)), "0.0000001");
  EXPECT_EQ(ToCommandText(MakeDecimal(1e21)), "1000000000000000000000");
  EXPECT_EQ(ToCommandText(MakePercent(100)), "100");
  EXPECT_EQ(ToCommandText(MakeQuantity(21.5, "°C")), "21.5 °C");
  EXPECT_EQ(ToCommandText(MakeQuantity(3, "")), "3");
  EXPECT_EQ(ToCommandText(MakeHsb(120, 100, 50)), "120,100,50");
  EXPECT_EQ(ToCommandText(MakePoint(52.5, 13.4)), "52.5,13.4");
  EXPECT_EQ(ToCommandText(MakePoint(52.5, 13.4, 34.25)), "52.5,13.4,34.25");
  EXPECT_EQ(ToCommandText(MakeWord(Word::kFastforward)), "FASTFORWARD");
  EXPECT_EQ(ToCommandText(MakeString("x")), "x");
}

// Per §5 and openhab-core's ACCEPTED_COMMAND_TYPES (every item takes REFRESH).
TEST(OpenhabStateTest, CommandForChecksWhatTheItemTypeAccepts) {
  const State refresh = MakeWord(Word::kRefresh);
  EXPECT_EQ(Command("Switch", MakeWord(Word::kOn)), "ON");
  EXPECT_NE(CommandError("Switch", MakeDecimal(1)), "");

  EXPECT_EQ(Command("Dimmer", MakePercent(42.5)), "42.5");
  EXPECT_EQ(Command("Dimmer", MakeDecimal(50)), "50");
  EXPECT_EQ(Command("Dimmer", MakeWord(Word::kOff)), "OFF");
  EXPECT_EQ(Command("Dimmer", MakeWord(Word::kIncrease)), "INCREASE");
  EXPECT_NE(CommandError("Dimmer", MakeDecimal(150)), "");
  EXPECT_NE(CommandError("Dimmer", MakeWord(Word::kUp)), "");

  EXPECT_EQ(Command("Rollershutter", MakePercent(0)), "0");
  EXPECT_EQ(Command("Rollershutter", MakeWord(Word::kUp)), "UP");
  EXPECT_EQ(Command("Rollershutter", MakeWord(Word::kDown)), "DOWN");
  EXPECT_EQ(Command("Rollershutter", MakeWord(Word::kStop)), "STOP");
  EXPECT_EQ(Command("Rollershutter", MakeWord(Word::kMove)), "MOVE");
  EXPECT_NE(CommandError("Rollershutter", MakeWord(Word::kOn)), "");

  EXPECT_EQ(Command("Color", MakeHsb(120, 100, 50)), "120,100,50");
  EXPECT_EQ(Command("Color", MakePercent(30)), "30");
  EXPECT_EQ(Command("Color", MakeWord(Word::kOn)), "ON");
  EXPECT_EQ(Command("Color", MakeWord(Word::kDecrease)), "DECREASE");
  EXPECT_NE(CommandError("Color", MakeHsb(360, 0, 0)), "");

  EXPECT_EQ(Command("Number:Temperature", MakeQuantity(21.5, "°C")), "21.5 °C");
  EXPECT_EQ(Command("Number:Temperature", MakeDecimal(21.5)), "21.5");
  EXPECT_EQ(Command("Number", Parse("Number", "21.50")), "21.50");
  EXPECT_NE(CommandError("Number:Temperature", MakeWord(Word::kOn)), "");
  EXPECT_NE(CommandError("Number", MakeDecimal(std::numeric_limits<double>::quiet_NaN())), "");

  const std::string contact = CommandError("Contact", MakeWord(Word::kOpen));
  EXPECT_NE(contact.find("Contact"), std::string::npos) << contact;
  EXPECT_NE(contact.find("only REFRESH"), std::string::npos) << contact;
  EXPECT_EQ(Command("Contact", refresh), "REFRESH");

  EXPECT_EQ(Command("DateTime", MakeDateTime(0, 0)), "1970-01-01T00:00:00.000+0000");
  EXPECT_NE(CommandError("DateTime", MakeString("tomorrow")), "");
  EXPECT_EQ(Command("String", MakeString("hello")), "hello");
  EXPECT_EQ(Command("String", MakeWord(Word::kOn)), "ON");
  EXPECT_EQ(Command("Location", MakePoint(52.5, 13.4)), "52.5,13.4");
  EXPECT_NE(CommandError("Location", MakeString("Berlin")), "");
  for (const Word word : {Word::kPlay, Word::kPause, Word::kRewind, Word::kFastforward, Word::kNext,
                          Word::kPrevious}) {
    EXPECT_NE(Command("Player", MakeWord(word)), "");
  }
  EXPECT_NE(CommandError("Player", MakeWord(Word::kStop)), "");
  EXPECT_NE(CommandError("Image", Parse("Image", "data:image/png;base64,AAAA")), "");
  EXPECT_NE(CommandError("Call", Parse("Call", "a,b")), "");

  EXPECT_EQ(Command("Group:Switch", MakeWord(Word::kOff)), "OFF");
  EXPECT_NE(CommandError("Group:Switch", MakeDecimal(3)), "");
  EXPECT_EQ(Command("Group", MakeWord(Word::kOff)), "OFF");
  EXPECT_EQ(Command("SomethingNew", MakeString("x")), "x");

  for (const std::string_view type :
       {"Switch", "Dimmer", "Rollershutter", "Color", "Number", "Contact", "DateTime", "String",
        "Location", "Player", "Image", "Call", "Group", "SomethingNew"}) {
    EXPECT_EQ(Command(type, refresh), "REFRESH") << type;
    EXPECT_NE(CommandError(type, MakeNull()).find("never a command"), std::string::npos) << type;
    EXPECT_NE(CommandError(type, MakeUndef()), "") << type;
  }
  // A value inconsistent with its kind is refused, not sent.
  State broken = MakeWord(Word::kOn);
  broken.word = Word::kOpen;
  EXPECT_NE(CommandError("Switch", broken), "");
}

TEST(OpenhabStateTest, ParseCommandTriesTheItemsCommandTypes) {
  EXPECT_EQ(*ParseCommand("Rollershutter", "STOP"), MakeWord(Word::kStop));
  EXPECT_EQ(*ParseCommand("Rollershutter", "42"), Parse("Rollershutter", "42"));
  EXPECT_EQ(*ParseCommand("Dimmer", "INCREASE"), MakeWord(Word::kIncrease));
  EXPECT_EQ(*ParseCommand("Player", "NEXT"), MakeWord(Word::kNext));
  EXPECT_EQ(*ParseCommand("Contact", "REFRESH"), MakeWord(Word::kRefresh));
  EXPECT_EQ(ParseCommand("Number:Temperature", "21 °C")->unit, "°C");
  // openHAB tries StringType first for String items: REFRESH is text there.
  EXPECT_EQ(*ParseCommand("String", "REFRESH"), MakeString("REFRESH"));
  EXPECT_EQ(*ParseCommand("Group", "ON"), MakeString("ON"));

  auto contact = ParseCommand("Contact", "OPEN");
  ASSERT_FALSE(contact.ok());
  EXPECT_EQ(contact.error().code, "bad_command");
  EXPECT_NE(contact.error().message.find("Contact command \"OPEN\""), std::string::npos)
      << contact.error().message;
  EXPECT_FALSE(ParseCommand("Switch", "NULL").ok());
}

TEST(OpenhabStateTest, JsonShapes) {
  EXPECT_EQ(ToJson(Parse("Number:Temperature", "21.5 °C")),
            Json::parse(R"({"kind":"quantity","value":21.5,"unit":"°C"})"));
  EXPECT_EQ(ToJson(MakeWord(Word::kOn)), Json::parse(R"({"kind":"onoff","value":true})"));
  EXPECT_EQ(ToJson(MakeWord(Word::kOff)), Json::parse(R"({"kind":"onoff","value":false})"));
  EXPECT_EQ(ToJson(MakeWord(Word::kOpen)), Json::parse(R"({"kind":"openclosed","value":"OPEN"})"));
  EXPECT_EQ(ToJson(MakeWord(Word::kRefresh)), Json::parse(R"({"kind":"refresh"})"));
  EXPECT_EQ(ToJson(Parse("Color", "120,100,50")),
            Json::parse(R"({"kind":"hsb","h":120,"s":100,"b":50})"));
  EXPECT_EQ(ToJson(Parse("Dimmer", "50")), Json::parse(R"({"kind":"percent","value":50})"));
  EXPECT_EQ(ToJson(Parse("Number", "1.5")), Json::parse(R"({"kind":"decimal","value":1.5})"));
  EXPECT_EQ(ToJson(Parse("Location", "52.5,13.4,34")),
            Json::parse(R"({"kind":"point","lat":52.5,"lon":13.4,"alt":34})"));
  EXPECT_EQ(ToJson(Parse("String", "hi")), Json::parse(R"({"kind":"string","value":"hi"})"));
  EXPECT_TRUE(ToJson(Parse("Number", "21")).at("value").is_number_integer());
  EXPECT_TRUE(ToJson(Parse("Number", "1e300")).at("value").is_number_float());
  for (StateKind kind = StateKind::kNull; kind <= StateKind::kStringList;
       kind = static_cast<StateKind>(static_cast<int>(kind) + 1)) {
    EXPECT_FALSE(KindName(kind).empty());
    EXPECT_FALSE(TypeName(kind).empty());
  }
}

TEST(OpenhabStateTest, HostileInputNeverCrashes) {
  const std::string huge_digits(100000, '9');
  const std::string long_text(1 << 20, 'x');
  const std::string with_nul("O\0N", 3);
  const std::string invalid_utf8 = "\xff\xfe\xc3";
  const std::vector<std::string> inputs = {"",
                                           " ",
                                           huge_digits,
                                           "1e400",
                                           "-1e400",
                                           "1e-400",
                                           long_text,
                                           with_nul,
                                           invalid_utf8,
                                           "1 \xff",
                                           "," + huge_digits,
                                           std::string(1, '\0'),
                                           "1e99999999999999999999",
                                           std::string(200, ','),
                                           "data:;,",
                                           "2014-03-30T10:58:47.033+0200" + long_text,
                                           "NULL\n",
                                           "9" + huge_digits + ",1,1"};
  for (const std::string_view type :
       {"Switch", "Dimmer", "Rollershutter", "Color", "Number", "Number:Temperature", "Contact",
        "DateTime", "String", "Location", "Player", "Image", "Call", "Group", "Other"}) {
    for (const std::string& input : inputs) {
      const State state = ParseStateTolerant(type, input);
      const std::string text = ToCommandText(state);
      EXPECT_NO_THROW(static_cast<void>(ToJson(state).dump())) << type;
      auto error = ParseState(type, input);
      if (!error.ok()) {
        EXPECT_LT(error.error().message.size(), 400u) << type;
        EXPECT_EQ(error.error().message.find('\0'), std::string::npos) << type;
        EXPECT_NO_THROW(static_cast<void>(Json(error.error().message).dump())) << type;
      }
      static_cast<void>(ParseCommand(type, input));
      static_cast<void>(CommandFor(type, state));
    }
  }
  EXPECT_FALSE(ParseState("Number", "1e400").ok());
  EXPECT_FALSE(ParseState("Number", huge_digits).ok());
  EXPECT_FALSE(ParseState("Switch", with_nul).ok());
  EXPECT_EQ(ToJson(MakeString(invalid_utf8)).at("value"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_FALSE(ParseState("Number", "1 \xff").ok());  // a unit must be UTF-8
}

}  // namespace
}  // namespace iothub::openhab
