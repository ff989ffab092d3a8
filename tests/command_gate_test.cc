// The gate of cloud commands (docs/configuration.md, "Commands"): every item type with a valid
// and an invalid command, units converted and refused, percent bounds, each allowlist rule and
// its precedence, the order of refusals, token buckets over injected time, the bucket map's
// bound, and what each type accepts.
#include "connector/command_gate.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>

#include "support/make_item.h"

namespace iothub::connector {
namespace {

using ::testing::HasSubstr;
using testing::MakeItem;

constexpr std::int64_t kT0 = 1'000'000;

openhab::Item Typed(std::string name, std::string type, std::string unit = "",
                    std::string state = "NULL") {
  openhab::Item item = MakeItem(std::move(name), std::move(type));
  item.unit_symbol = std::move(unit);
  item.state = std::move(state);
  return item;
}

openhab::Item WithCommandMetadata(openhab::Item item, openhab::Json value) {
  openhab::Metadata metadata;
  metadata.config["command"] = std::move(value);
  item.azure = std::move(metadata);
  return item;
}

openhab::Item ReadOnly(openhab::Item item) {
  item.read_only = true;
  return item;
}

ItemMap Map(std::initializer_list<openhab::Item> items) {
  ItemMap map;
  for (const auto& item : items) map.emplace(item.name, item);
  return map;
}

CommandGateOptions Patterns(std::vector<std::string> allow, std::vector<std::string> deny) {
  CommandGateOptions options;
  options.allow = std::move(allow);
  options.deny = std::move(deny);
  return options;
}

CommandGateOptions Limits(double item_rate, int item_burst, double total_rate, int total_burst,
                          std::size_t max_item_buckets = 10'000) {
  CommandGateOptions options;
  options.item_rate = item_rate;
  options.item_burst = item_burst;
  options.total_rate = total_rate;
  options.total_burst = total_burst;
  options.max_item_buckets = max_item_buckets;
  return options;
}

CommandGate Gate(CommandGateOptions options = {}) {
  auto gate = CommandGate::Create(std::move(options));
  EXPECT_TRUE(gate.ok()) << gate.error().message;
  return std::move(gate).value();
}

// One command to the only item of a fresh gate with default options, replicated.
CommandVerdict CheckOne(const openhab::Item& item, std::string_view command) {
  CommandGate gate = Gate();
  return gate.Check(Map({item}), item.name, command, true, kT0);
}

void ExpectSent(const openhab::Item& item, std::string_view command, std::string_view sent) {
  const CommandVerdict v = CheckOne(item, command);
  EXPECT_EQ(v.status, 200) << item.type << " '" << command << "': " << v.message;
  EXPECT_EQ(v.command, sent) << item.type << " '" << command << "'";
  EXPECT_EQ(v.message, "");
}

void ExpectInvalid(const openhab::Item& item, std::string_view command,
                   std::string_view names_valid) {
  const CommandVerdict v = CheckOne(item, command);
  EXPECT_EQ(v.status, 400) << item.type << " '" << command << "'";
  EXPECT_THAT(v.message, HasSubstr(names_valid)) << item.type << " '" << command << "'";
  EXPECT_EQ(v.command, "");
  EXPECT_EQ(v.retry_after_ms, 0);
}

TEST(CommandGateTypesTest, Switch) {
  const openhab::Item lamp = Typed("Lamp", "Switch");
  ExpectSent(lamp, "ON", "ON");
  ExpectSent(lamp, "OFF", "OFF");
  ExpectSent(lamp, "REFRESH", "REFRESH");
  EXPECT_EQ(CheckOne(lamp, "on").message,
            "item 'Lamp': Switch command \"on\" is not valid: expected ON, OFF or REFRESH");
  ExpectInvalid(lamp, "OPEN", "expected ON, OFF or REFRESH");
  ExpectInvalid(lamp, "50", "expected ON, OFF or REFRESH");
}

TEST(CommandGateTypesTest, DimmerPercentBounds) {
  const openhab::Item dimmer = Typed("Dim", "Dimmer");
  ExpectSent(dimmer, "0", "0");
  ExpectSent(dimmer, "100", "100");
  ExpectSent(dimmer, "42.5", "42.5");
  ExpectSent(dimmer, "INCREASE", "INCREASE");
  ExpectSent(dimmer, "ON", "ON");
  ExpectInvalid(dimmer, "-1", "a percent 0-100, ON, OFF, INCREASE, DECREASE or REFRESH");
  ExpectInvalid(dimmer, "101", "out of the percent range 0-100");
  ExpectInvalid(dimmer, "UP", "a percent 0-100, ON, OFF, INCREASE, DECREASE or REFRESH");
}

TEST(CommandGateTypesTest, ColorHsbAndPercentBounds) {
  const openhab::Item color = Typed("Bulb", "Color");
  ExpectSent(color, "120,100,50", "120,100,50");
  ExpectSent(color, "0", "0");
  ExpectSent(color, "100", "100");
  ExpectSent(color, "DECREASE", "DECREASE");
  ExpectInvalid(color, "-1", "hue,saturation,brightness, a percent 0-100, ON, OFF");
  ExpectInvalid(color, "101", "hue,saturation,brightness, a percent 0-100, ON, OFF");
  ExpectInvalid(color, "360,50,50", "hue must be at least 0 and below 360");
  ExpectInvalid(color, "120,101,50", "hue,saturation,brightness");
}

TEST(CommandGateTypesTest, RollershutterPercentBounds) {
  const openhab::Item shutter = Typed("Blind", "Rollershutter");
  ExpectSent(shutter, "UP", "UP");
  ExpectSent(shutter, "STOP", "STOP");
  ExpectSent(shutter, "MOVE", "MOVE");
  ExpectSent(shutter, "0", "0");
  ExpectSent(shutter, "100", "100");
  ExpectInvalid(shutter, "101", "a percent 0-100, UP, DOWN, STOP, MOVE or REFRESH");
  ExpectInvalid(shutter, "-1", "a percent 0-100, UP, DOWN, STOP, MOVE or REFRESH");
  ExpectInvalid(shutter, "ON", "a percent 0-100, UP, DOWN, STOP, MOVE or REFRESH");
}

TEST(CommandGateTypesTest, PlainNumberTakesAnyNumber) {
  const openhab::Item number = Typed("Count", "Number");
  ExpectSent(number, "21.5", "21.5");
  ExpectSent(number, "5 W", "5 W");
  ExpectInvalid(number, "many", "a number, optionally with a unit, or REFRESH");
  ExpectInvalid(number, "ON", "a number, optionally with a unit, or REFRESH");
}

TEST(CommandGateTypesTest, TemperatureConvertsUnits) {
  const openhab::Item setpoint = Typed("Setpoint", "Number:Temperature", "°C", "21 °C");
  ExpectSent(setpoint, "70 °F", "70 °F");
  ExpectSent(setpoint, "294 K", "294 K");
  ExpectSent(setpoint, "21.5 °C", "21.5 °C");
  ExpectSent(setpoint, "21", "21 °C");  // a plain number is in the item's unit
  EXPECT_EQ(CheckOne(setpoint, "5 W").message,
            "item 'Setpoint': Number:Temperature needs a temperature unit such as °C, K or °F; "
            "got 'W'");
  EXPECT_EQ(CheckOne(setpoint, "5 W").status, 400);
  ExpectInvalid(setpoint, "warm", "a number, optionally with a unit");
}

TEST(CommandGateTypesTest, PowerConvertsUnits) {
  const openhab::Item power = Typed("Heater", "Number:Power", "W");
  ExpectSent(power, "1.5 kW", "1.5 kW");
  ExpectSent(power, "1500", "1500 W");
  EXPECT_EQ(CheckOne(power, "3 kWh").message,
            "item 'Heater': Number:Power needs a power unit such as W or kW; got 'kWh'");
  ExpectInvalid(power, "20 °C", "power unit such as W or kW; got '°C'");
}

TEST(CommandGateTypesTest, DimensionlessPercent) {
  const openhab::Item humidity = Typed("Humidity_Target", "Number:Dimensionless", "%");
  ExpectSent(humidity, "55 %", "55 %");
  ExpectSent(humidity, "55", "55 %");
  EXPECT_EQ(CheckOne(humidity, "5 W").message,
            "item 'Humidity_Target': Number:Dimensionless needs a unit convertible to the item's "
            "unit '%'; got 'W'");
}

TEST(CommandGateTypesTest, UnitReferenceFromStateOrDimension) {
  // No unitSymbol (openHAB 3): the state's unit.
  const openhab::Item from_state = Typed("T1", "Number:Temperature", "", "21.5 °C");
  ExpectSent(from_state, "70 °F", "70 °F");
  ExpectSent(from_state, "20", "20 °C");
  ExpectInvalid(from_state, "5 W", "temperature unit such as °C, K or °F; got 'W'");
  // No unit at all: the dimension still knows a temperature, and a plain number goes as is.
  const openhab::Item no_unit = Typed("T2", "Number:Temperature");
  ExpectSent(no_unit, "300 K", "300 K");
  ExpectSent(no_unit, "20", "20");
  ExpectInvalid(no_unit, "5 W", "temperature unit such as °C, K or °F; got 'W'");
  // A dimension outside the table and no unit: nothing to compare with, openHAB decides.
  const openhab::Item unknown = Typed("Lux", "Number:Illuminance");
  ExpectSent(unknown, "5 W", "5 W");
  // ... but with a unit, only that unit (or one convertible to it).
  const openhab::Item lux = Typed("Lux", "Number:Illuminance", "", "300 lx");
  ExpectSent(lux, "20 lx", "20 lx");
  ExpectInvalid(lux, "1 klx", "needs a unit convertible to the item's unit 'lx'; got 'klx'");
  // An item unit outside ConvertQuantity's table in a known dimension: the dimension decides.
  const openhab::Item odd = Typed("T3", "Number:Temperature", "mK");
  ExpectSent(odd, "5 mK", "5 mK");
  ExpectSent(odd, "20 °C", "20 °C");
  ExpectInvalid(odd, "5 W", "temperature unit");
}

TEST(CommandGateTypesTest, StringAndEmptyAndUndefinedStates) {
  const openhab::Item text = Typed("Message", "String");
  ExpectSent(text, "hello world", "hello world");
  ExpectSent(text, "ON", "ON");
  EXPECT_EQ(CheckOne(text, "").message,
            "item 'Message': the command is empty; String accepts <text> (or REFRESH)");
  EXPECT_EQ(CheckOne(text, "NULL").message,
            "item 'Message': NULL is a state, never a command; String accepts <text> (or "
            "REFRESH)");
  ExpectInvalid(text, "UNDEF", "UNDEF is a state, never a command");
  ExpectInvalid(Typed("Lamp", "Switch"), "UNDEF", "Switch accepts ON, OFF (or REFRESH)");
  ExpectInvalid(Typed("Lamp", "Switch"), "", "the command is empty; Switch accepts ON, OFF");
}

TEST(CommandGateTypesTest, ContactImageCallTakeOnlyRefresh) {
  const openhab::Item contact = Typed("Window", "Contact");
  ExpectSent(contact, "REFRESH", "REFRESH");
  ExpectInvalid(contact, "OPEN", "only REFRESH");
  ExpectInvalid(contact, "", "Contact accepts only REFRESH");
  const openhab::Item image = Typed("Snapshot", "Image");
  ExpectSent(image, "REFRESH", "REFRESH");
  ExpectInvalid(image, "data:image/png;base64,AAAA", "expected only REFRESH");
  const openhab::Item call = Typed("LastCall", "Call");
  ExpectSent(call, "REFRESH", "REFRESH");
  ExpectInvalid(call, "0123,4567", "expected only REFRESH");
}

TEST(CommandGateTypesTest, DateTimeLocationPlayer) {
  const openhab::Item alarm = Typed("Alarm", "DateTime");
  ExpectSent(alarm, "2024-03-30T10:58:47+02:00", "2024-03-30T10:58:47+02:00");
  ExpectInvalid(alarm, "tomorrow", "expected a date-time or REFRESH");
  const openhab::Item where = Typed("Where", "Location");
  ExpectSent(where, "52.5,13.4", "52.5,13.4");
  ExpectSent(where, "52.5,13.4,34", "52.5,13.4,34");
  ExpectInvalid(where, "52.5", "latitude,longitude[,altitude] or REFRESH");
  const openhab::Item player = Typed("Radio", "Player");
  ExpectSent(player, "PLAY", "PLAY");
  ExpectSent(player, "NEXT", "NEXT");
  ExpectSent(player, "FASTFORWARD", "FASTFORWARD");
  ExpectInvalid(player, "STOP", "PLAY, PAUSE, REWIND, FASTFORWARD, NEXT, PREVIOUS or REFRESH");
}

TEST(CommandGateTypesTest, TypedGroupByItsBaseType) {
  openhab::Item lights = MakeItem("gLights", "Group");
  lights.group_type = "Switch";
  lights.function = "OR";
  ExpectSent(lights, "ON", "ON");
  EXPECT_EQ(CheckOne(lights, "50").message,
            "item 'gLights': Group:Switch command \"50\" is not valid: expected ON, OFF or "
            "REFRESH");
  openhab::Item power = MakeItem("gPower", "Group");
  power.group_type = "Number:Power";
  power.unit_symbol = "W";
  ExpectSent(power, "2 kW", "2 kW");
  ExpectInvalid(power, "2 °C", "Group:Number:Power needs a power unit such as W or kW");
}

TEST(CommandGateTypesTest, PlainGroupPassesAnyCommandButStates) {
  const openhab::Item all = MakeItem("gAll", "Group");
  ExpectSent(all, "OFF", "OFF");
  ExpectSent(all, "anything", "anything");
  ExpectInvalid(all, "NULL", "NULL is a state, never a command; Group accepts <any>");
  ExpectInvalid(all, "", "the command is empty");
}

TEST(CommandGateAllowTest, DefaultIsReplicatedAndNotReadOnly) {
  const ItemMap items = Map({Typed("Lamp", "Switch"), ReadOnly(Typed("Meter", "Switch"))});
  CommandGate gate = Gate();
  const GroupMembership groups(items);
  const Permission ok = gate.Allowed(items.at("Lamp"), groups, true);
  EXPECT_TRUE(ok.allowed);
  EXPECT_EQ(ok.reason, "it is replicated and not read-only");
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0).status, 200);

  const CommandVerdict hidden = gate.Check(items, "Lamp", "ON", false, kT0);
  EXPECT_EQ(hidden.status, 403);
  EXPECT_EQ(hidden.message,
            "commands to item 'Lamp' are not allowed: it is not replicated (openhab.items, "
            "openhab.exclude); [commands] allow or azureiothub metadata command=true would allow "
            "it");
  const CommandVerdict read_only = gate.Check(items, "Meter", "ON", true, kT0);
  EXPECT_EQ(read_only.status, 403);
  EXPECT_EQ(read_only.message,
            "commands to item 'Meter' are not allowed: it is read-only (its state description "
            "says so); azureiothub metadata command=true would allow it");
}

TEST(CommandGateAllowTest, MetadataTrueAllowsReadOnlyAndNotReplicated) {
  const ItemMap items = Map({
      WithCommandMetadata(ReadOnly(Typed("Meter", "Switch")), true),
      WithCommandMetadata(Typed("Boiler", "Switch"), "TRUE"),
  });
  CommandGate gate = Gate();
  EXPECT_EQ(gate.Check(items, "Meter", "ON", false, kT0).status, 200);
  EXPECT_EQ(gate.Check(items, "Boiler", "ON", false, kT0).status, 200);
  EXPECT_EQ(gate.Allowed(items.at("Meter"), GroupMembership(items), false).reason,
            "its azureiothub metadata says command=true");
}

TEST(CommandGateAllowTest, MetadataFalseRefuses) {
  const ItemMap items = Map({
      WithCommandMetadata(Typed("Lock", "Switch"), false),
      WithCommandMetadata(Typed("Lock2", "Switch"), "False"),
  });
  CommandGate gate = Gate();
  for (const char* name : {"Lock", "Lock2"}) {
    const CommandVerdict v = gate.Check(items, name, "ON", true, kT0);
    EXPECT_EQ(v.status, 403) << name;
    EXPECT_EQ(v.message, fmt::format("commands to item '{}' are not allowed: its azureiothub "
                                     "metadata says command=false",
                                     name));
  }
  // command=false wins over allow, too.
  CommandGate allowing = Gate(Patterns({"Lock*"}, {}));
  EXPECT_EQ(allowing.Check(items, "Lock", "ON", true, kT0).status, 403);
}

TEST(CommandGateAllowTest, DenyWinsOverEverything) {
  const ItemMap items = Map({
      WithCommandMetadata(Typed("FrontDoor_Lock", "Switch"), true),
      Typed("FrontDoor_Light", "Switch"),
      Typed("Porch", "Switch"),
  });
  CommandGate gate = Gate(Patterns({"FrontDoor_*"}, {"FrontDoor_Lock"}));
  const CommandVerdict v = gate.Check(items, "FrontDoor_Lock", "ON", true, kT0);
  EXPECT_EQ(v.status, 403);
  EXPECT_EQ(v.message,
            "commands to item 'FrontDoor_Lock' are not allowed: it matches [commands] deny "
            "pattern 'FrontDoor_Lock'");
  EXPECT_EQ(gate.Check(items, "FrontDoor_Light", "ON", true, kT0).status, 200);
  // Deny is checked before the command: an invalid one to a denied item is still 403.
  EXPECT_EQ(gate.Check(items, "FrontDoor_Lock", "bogus", true, kT0).status, 403);
}

TEST(CommandGateAllowTest, AllowReplacesTheReplicatedRule) {
  // gHome > gLights > LR_Lamp (nested); Porch outside; Meter read-only in gLights.
  const ItemMap items = Map({
      MakeItem("gHome", "Group"),
      MakeItem("gLights", "Group", {"gHome"}),
      MakeItem("LR_Lamp", "Switch", {"gLights"}),
      MakeItem("Porch", "Switch"),
      ReadOnly(MakeItem("Meter", "Switch", {"gLights"})),
      WithCommandMetadata(ReadOnly(MakeItem("Meter2", "Switch", {"gLights"})), true),
      WithCommandMetadata(MakeItem("Heater", "Switch"), true),
  });
  CommandGate gate = Gate(Patterns({"@gHome"}, {}));
  // Not replicated, but allowed by the pattern (through the nested group).
  const CommandVerdict lamp = gate.Check(items, "LR_Lamp", "ON", false, kT0);
  EXPECT_EQ(lamp.status, 200) << lamp.message;
  EXPECT_EQ(gate.Allowed(items.at("LR_Lamp"), GroupMembership(items), false).reason,
            "it matches [commands] allow pattern '@gHome'");
  // Replicated, but allow no longer lets the replicated items in.
  const CommandVerdict porch = gate.Check(items, "Porch", "ON", true, kT0);
  EXPECT_EQ(porch.status, 403);
  EXPECT_EQ(porch.message,
            "commands to item 'Porch' are not allowed: it matches no [commands] allow pattern");
  // Read-only stays refused under allow unless the metadata says command=true.
  const CommandVerdict meter = gate.Check(items, "Meter", "ON", true, kT0);
  EXPECT_EQ(meter.status, 403);
  EXPECT_THAT(meter.message, HasSubstr("it is read-only"));
  EXPECT_EQ(gate.Check(items, "Meter2", "ON", true, kT0).status, 200);
  // Metadata command=true allows outside the allow list, too.
  EXPECT_EQ(gate.Check(items, "Heater", "ON", false, kT0).status, 200);
}

TEST(CommandGateAllowTest, TagPatternsIgnoreCase) {
  const ItemMap items = Map({
      MakeItem("Alarm_Arm", "Switch", {}, {"security"}),
      MakeItem("Lamp", "Switch", {}, {"Lighting"}),
  });
  CommandGate gate = Gate(Patterns({}, {"#Security"}));
  const CommandVerdict v = gate.Check(items, "Alarm_Arm", "ON", true, kT0);
  EXPECT_EQ(v.status, 403);
  EXPECT_THAT(v.message, HasSubstr("deny pattern '#Security'"));
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0).status, 200);
  CommandGate by_tag = Gate(Patterns({"#lighting"}, {}));
  EXPECT_EQ(by_tag.Check(items, "Lamp", "ON", false, kT0).status, 200);
  EXPECT_EQ(by_tag.Check(items, "Alarm_Arm", "ON", true, kT0).status, 403);
}

TEST(CommandGateAllowTest, BadMetadataCountsAsNotSetAndIsReported) {
  const openhab::Item maybe = WithCommandMetadata(Typed("Lamp", "Switch"), "maybe");
  const auto metadata = CommandMetadata(maybe);
  ASSERT_FALSE(metadata.ok());
  EXPECT_EQ(metadata.error().code, "bad_metadata");
  EXPECT_EQ(metadata.error().message,
            "item 'Lamp': azureiothub metadata command=\"maybe\" is not true or false");
  EXPECT_FALSE(CommandMetadata(WithCommandMetadata(Typed("X", "Switch"), 1)).ok());
  EXPECT_FALSE(CommandMetadata(Typed("X", "Switch")).value().has_value());
  EXPECT_EQ(CommandMetadata(WithCommandMetadata(Typed("X", "Switch"), "tRuE")).value(), true);

  const ItemMap items = Map({maybe});
  CommandGate gate = Gate();
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0).status, 200) << "as if not set";
  const CommandVerdict v = gate.Check(items, "Lamp", "ON", false, kT0);
  EXPECT_EQ(v.status, 403);
  EXPECT_THAT(v.message,
              HasSubstr("(item 'Lamp': azureiothub metadata command=\"maybe\" is not true or "
                        "false; ignored)"));
}

TEST(CommandGateAllowTest, CreateNamesBadPatternsAndLimits) {
  const auto patterns = CommandGate::Create(Patterns({"ok", "bad name"}, {"@"}));
  ASSERT_FALSE(patterns.ok());
  EXPECT_EQ(patterns.error().code, "bad_pattern");
  EXPECT_THAT(patterns.error().message, HasSubstr("[commands] allow"));
  EXPECT_THAT(patterns.error().message, HasSubstr("bad name"));
  EXPECT_THAT(patterns.error().message, HasSubstr("[commands] deny"));
  const auto rate = CommandGate::Create(Limits(1, 5, 0, 20));
  ASSERT_FALSE(rate.ok());
  EXPECT_EQ(rate.error().code, "config");
  EXPECT_EQ(rate.error().message,
            "[commands] item_rate and rate must be positive numbers of commands a second; got 1 "
            "and 0");
  EXPECT_FALSE(CommandGate::Create(Limits(1, 0, 10, 20)).ok());
  EXPECT_FALSE(CommandGate::Create(Limits(1, 5, 10, 20, 0)).ok());
}

TEST(CommandGateOrderTest, NotFoundThenForbiddenThenInvalidThenLimited) {
  const ItemMap items = Map({Typed("Lamp", "Switch"), ReadOnly(Typed("Meter", "Switch"))});
  CommandGate gate = Gate();
  const CommandVerdict missing = gate.Check(items, "Nope", "bogus", false, kT0);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.message, "openHAB has no item named 'Nope'");
  EXPECT_EQ(gate.Check(items, "Meter", "bogus", true, kT0).status, 403);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(gate.Check(items, "Lamp", "ON", true, kT0).status, 200);
  EXPECT_EQ(gate.Check(items, "Lamp", "bogus", true, kT0).status, 400) << "400 before 429";
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0).status, 429);
  EXPECT_EQ(gate.bucket_count(), 1u) << "unknown items make no bucket";
}

TEST(CommandGateOrderTest, LongUnknownNamesAreShortened) {
  CommandGate gate = Gate();
  const std::string name(1000, 'x');
  const CommandVerdict v = gate.Check({}, name, "ON", true, kT0);
  EXPECT_EQ(v.status, 404);
  EXPECT_EQ(v.message, "openHAB has no item named '" + std::string(77, 'x') + "...'");
}

TEST(CommandGateOrderTest, RefusedAndInvalidCommandsSpendNoToken) {
  const ItemMap items = Map({Typed("Lamp", "Switch")});
  CommandGate gate = Gate();
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(gate.Check(items, "Lamp", "ON", false, kT0).status, 403);
    ASSERT_EQ(gate.Check(items, "Lamp", "bogus", true, kT0).status, 400);
    ASSERT_EQ(gate.Check(items, "Nope", "ON", true, kT0).status, 404);
  }
  EXPECT_EQ(gate.bucket_count(), 0u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0).status, 200) << i;
  }
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0).status, 429);
}

TEST(CommandGateRateTest, ItemBurstThenRefill) {
  const ItemMap items = Map({Typed("Lamp", "Switch"), Typed("Fan", "Switch")});
  CommandGate gate = Gate();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(gate.Check(items, "Lamp", "ON", true, kT0).status, 200);
  const CommandVerdict limited = gate.Check(items, "Lamp", "ON", true, kT0);
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.retry_after_ms, 1000);
  EXPECT_EQ(limited.message,
            "item 'Lamp' is over its rate limit of 1 command a second (burst 5); retry in 1000 ms");
  EXPECT_EQ(limited.command, "");
  EXPECT_EQ(gate.Check(items, "Fan", "ON", true, kT0).status, 200) << "another item's bucket";

  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0 + 400).retry_after_ms, 600);
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0 + 999).retry_after_ms, 1);
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0 + 1000).status, 200);
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0 + 1000).status, 429);
  // After 10 s the bucket holds its burst again, never more.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0 + 11'000).status, 200) << i;
  }
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0 + 11'000).status, 429);
}

TEST(CommandGateRateTest, OverallLimitAcrossItems) {
  ItemMap items;
  for (int i = 0; i < 30; ++i) {
    const std::string name = fmt::format("Lamp_{}", i);
    items.emplace(name, Typed(name, "Switch"));
  }
  CommandGate gate = Gate();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(gate.Check(items, fmt::format("Lamp_{}", i), "ON", true, kT0).status, 200) << i;
  }
  const CommandVerdict limited = gate.Check(items, "Lamp_20", "ON", true, kT0);
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.retry_after_ms, 100);
  EXPECT_EQ(limited.message,
            "commands are over the overall rate limit of 10 commands a second (burst 20); retry "
            "in 100 ms");
  EXPECT_EQ(gate.Check(items, "Lamp_21", "ON", true, kT0 + 99).status, 429);
  EXPECT_EQ(gate.Check(items, "Lamp_21", "ON", true, kT0 + 100).status, 200);
  // The refused item spent nothing of its own bucket: it has its whole burst.
  EXPECT_EQ(gate.bucket_count(), 21u);
}

TEST(CommandGateRateTest, BothLimitsNamedWithTheLaterRetry) {
  const ItemMap items = Map({Typed("Lamp", "Switch")});
  CommandGate gate = Gate(Limits(0.5, 1, 2, 1));
  ASSERT_EQ(gate.Check(items, "Lamp", "ON", true, kT0).status, 200);
  const CommandVerdict v = gate.Check(items, "Lamp", "ON", true, kT0);
  EXPECT_EQ(v.status, 429);
  EXPECT_EQ(v.retry_after_ms, 2000);
  EXPECT_EQ(v.message,
            "item 'Lamp' is over its rate limit of 0.5 commands a second (burst 1); commands are "
            "over the overall rate limit of 2 commands a second (burst 1); retry in 2000 ms");
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0 + 1999).status, 429);
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0 + 2000).status, 200);
}

TEST(CommandGateRateTest, FractionalRefillNeedsNoExtraWait) {
  const ItemMap items = Map({Typed("Lamp", "Switch")});
  CommandGate gate = Gate(Limits(10, 1, 10, 20));
  std::int64_t now = kT0;
  ASSERT_EQ(gate.Check(items, "Lamp", "ON", true, now).status, 200);
  for (int i = 0; i < 50; ++i) {
    now += 30;
    const CommandVerdict early = gate.Check(items, "Lamp", "ON", true, now);
    ASSERT_EQ(early.status, 429) << i;
    now += early.retry_after_ms;
    ASSERT_EQ(early.retry_after_ms, 70) << i;
    ASSERT_EQ(gate.Check(items, "Lamp", "ON", true, now).status, 200) << i;
  }
}

TEST(CommandGateRateTest, TimeGoingBackCountsAsNone) {
  const ItemMap items = Map({Typed("Lamp", "Switch")});
  CommandGate gate = Gate(Limits(1, 1, 10, 20));
  ASSERT_EQ(gate.Check(items, "Lamp", "ON", true, kT0).status, 200);
  const CommandVerdict v = gate.Check(items, "Lamp", "ON", true, kT0 - 5'000);
  EXPECT_EQ(v.status, 429) << "the step back refilled nothing";
  // The bucket refills from its last use: the token is back at kT0 + 1000.
  EXPECT_EQ(v.retry_after_ms, 6000);
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0 + 999).status, 429);
  EXPECT_EQ(gate.Check(items, "Lamp", "ON", true, kT0 + 1000).status, 200);

  // Nor does a step back drain a bucket: the other four of a burst of five are still there.
  CommandGate burst = Gate();
  ASSERT_EQ(burst.Check(items, "Lamp", "ON", true, kT0).status, 200);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(burst.Check(items, "Lamp", "ON", true, kT0 - 3'000).status, 200) << i;
  }
  EXPECT_EQ(burst.Check(items, "Lamp", "ON", true, kT0 - 3'000).status, 429);
}

TEST(CommandGateRateTest, BucketsStayBoundedOverManyItems) {
  constexpr int kItems = 100'000;
  ItemMap items;
  for (int i = 0; i < kItems; ++i) {
    std::string name = fmt::format("Item_{}", i);
    items.emplace(name, Typed(name, "Switch"));
  }
  CommandGate gate = Gate();
  std::int64_t now = kT0;
  std::size_t most = 0;
  for (int i = 0; i < kItems; ++i) {
    now += 100;  // the overall rate
    const CommandVerdict v = gate.Check(items, fmt::format("Item_{}", i), "ON", true, now);
    ASSERT_EQ(v.status, 200) << i << ": " << v.message;
    most = std::max(most, gate.bucket_count());
  }
  // A bucket is full again 1 s after its command (4 + 1): at most ~10 are not, and the map
  // is swept whenever it reaches 64.
  EXPECT_LE(most, 64u);
  EXPECT_GE(most, 10u);
}

TEST(CommandGateRateTest, CapDropsTheFullestBucket) {
  constexpr int kItems = 1'000;
  ItemMap items;
  for (int i = 0; i < kItems; ++i) {
    std::string name = fmt::format("Item_{}", i);
    items.emplace(name, Typed(name, "Switch"));
  }
  // Buckets refill in 1000 s: none is full again during the test.
  CommandGate gate = Gate(Limits(0.001, 5, 1'000, 10'000, 100));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(gate.Check(items, "Item_0", "ON", true, kT0).status, 200);
  std::size_t most = 0;
  for (int i = 1; i < kItems; ++i) {
    ASSERT_EQ(gate.Check(items, fmt::format("Item_{}", i), "ON", true, kT0 + i).status, 200);
    most = std::max(most, gate.bucket_count());
  }
  EXPECT_EQ(most, 100u);
  // The emptied bucket is the last one the cap would drop: Item_0 is still limited.
  const CommandVerdict v = gate.Check(items, "Item_0", "ON", true, kT0 + kItems);
  EXPECT_EQ(v.status, 429);
  EXPECT_GT(v.retry_after_ms, 0);
}

TEST(AcceptedCommandsTest, EveryType) {
  using V = std::vector<std::string>;
  EXPECT_EQ(AcceptedCommands(Typed("a", "Switch")), (V{"ON", "OFF"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Dimmer")),
            (V{"ON", "OFF", "INCREASE", "DECREASE", "0-100"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Rollershutter")),
            (V{"UP", "DOWN", "STOP", "MOVE", "0-100"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Color")),
            (V{"ON", "OFF", "INCREASE", "DECREASE", "0-100", "H,S,B"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Number")), (V{"<number>"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Number:Temperature", "°C")), (V{"<number> °C"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Number:Power", "", "5 kW")), (V{"<number> kW"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Number:Dimensionless", "%")), (V{"<number> %"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Number:Length")), (V{"<number> <unit>"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Player")),
            (V{"PLAY", "PAUSE", "NEXT", "PREVIOUS", "REWIND", "FASTFORWARD"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "String")), (V{"<text>"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "DateTime")), (V{"<ISO 8601>"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Location")), (V{"<lat>,<lon>[,<alt>]"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Contact")), V{});
  EXPECT_EQ(AcceptedCommands(Typed("a", "Image")), V{});
  EXPECT_EQ(AcceptedCommands(Typed("a", "Call")), V{});
  EXPECT_EQ(AcceptedCommands(Typed("a", "Group")), (V{"<any>"}));
  openhab::Item group = Typed("g", "Group");
  group.group_type = "Dimmer";
  group.function = "MAX";
  EXPECT_EQ(AcceptedCommands(group), (V{"ON", "OFF", "INCREASE", "DECREASE", "0-100"}));
  group.group_type = "Number:Power";
  group.unit_symbol = "W";
  EXPECT_EQ(AcceptedCommands(group), (V{"<number> W"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Group:Switch:OR")), (V{"ON", "OFF"}));
  EXPECT_EQ(AcceptedCommands(Typed("a", "Thermostat")), (V{"<any>"}));
}

}  // namespace
}  // namespace iothub::connector
