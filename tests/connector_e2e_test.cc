// iothub-connector end to end: the real connector between the real openhab-sim and the real
// iothub-emulator, asserted from what the emulator recorded (issue 10, "Acceptance"). Every
// test runs an S1 hub with an S1 budget, so the budget never holds anything back here (the
// budget has its own tests).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/connector_rig.h"
#include "support/message_schema.h"

namespace iothub::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr char kS1Budget[] = "[quota]\ntier = \"S1\"\n";
// A 1x1 PNG, well under the 1 KiB an image is sent inline up to.
constexpr char kSmallPng[] =
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDw"
    "AChwGA60e6kgAAAABJRU5ErkJggg==";
constexpr char kOtherPng[] = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAYAAAA=";

std::vector<std::string> S1Hub() { return {"--tier", "S1"}; }
// The demo home with its meters slowed 1000-fold: only what a test changes changes.
std::vector<std::string> QuietSim(std::vector<std::string> extra = {}) {
  extra.insert(extra.end(), {"--speed", "0.001"});
  return extra;
}

int AddItem(ConnectorRig& rig, const json& item) {
  return rig.sim().Post("/sim/items", item.dump(), "application/json");
}
int SetState(ConnectorRig& rig, const std::string& item, const std::string& state) {
  return rig.sim().Post("/sim/items/" + item + "/state", state);
}

// True once the hub has an observation of `item` of `kind` ("": any) with `value`.
bool Arrived(ConnectorRig& rig, const std::string& item, const json& value,
             const std::string& kind = "changes") {
  for (const auto& o : ItemObservations(rig.Messages(), item)) {
    if ((kind.empty() || o.kind == kind) && o.value == value) return true;
  }
  return false;
}

// Every item any message carries.
std::set<std::string> ItemsIn(const std::vector<HubMessage>& messages) {
  std::set<std::string> names;
  for (const auto& m : messages) {
    if (!m.body.is_object() || !m.body.contains("items")) continue;
    for (const auto& [name, item] : m.body["items"].items()) names.insert(name);
  }
  return names;
}

json Reported(ConnectorRig& rig) {
  const json twin = rig.Twin();
  if (!twin.is_object() || !twin.contains("properties")) return json::object();
  return twin["properties"].value("reported", json::object());
}
// The reported item (null when the twin does not have it) and its value (null likewise).
json ReportedItem(ConnectorRig& rig, const std::string& name) {
  const json reported = Reported(rig);
  if (!reported.contains("items") || !reported["items"].contains(name)) return nullptr;
  return reported["items"][name];
}
json ReportedValue(ConnectorRig& rig, const std::string& name) {
  const json item = ReportedItem(rig, name);
  return item.is_object() ? item.value("value", json()) : json();
}

std::size_t Occurrences(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

std::int64_t StatusNumber(ConnectorRig& rig, const std::string& section, const std::string& key) {
  const json status = rig.Status();
  if (!status.is_object() || !status.contains(section)) return -1;
  return status[section].value(key, std::int64_t{-1});
}

// Message-level facts every run must hold: properties as docs/message-format.md lists them,
// unique message ids, increasing sequence numbers, and bodies valid against the schema.
void ExpectWellFormed(const std::vector<HubMessage>& messages) {
  std::set<std::string> ids;
  std::int64_t last_seq = -1;
  for (const auto& m : messages) {
    EXPECT_TRUE(ids.insert(m.message_id).second) << "duplicate message id " << m.message_id;
    ASSERT_TRUE(m.body.is_object()) << m.body_text;
    EXPECT_EQ(m.body.value("kind", ""), m.kind) << m.body_text;
    EXPECT_EQ(m.system_properties.value("content-type", ""), "application/json");
    EXPECT_EQ(m.system_properties.value("content-encoding", ""), "utf-8");
    EXPECT_NE(m.system_properties.value("iothub-creation-time-utc", ""), "");
    const std::int64_t seq = m.body.value("seq", std::int64_t{-1});
    EXPECT_GT(seq, last_seq) << m.body_text;
    last_seq = seq;
  }
  EXPECT_TRUE(ValidateMessages(ConnectorRig::Bodies(messages)));
}

TEST(ConnectorE2e, SnapshotThenChangesReachTheHub) {
  ConnectorRig rig(S1Hub());
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();
  // The snapshot: every replicated item of the demo home, typed.
  ASSERT_TRUE(WaitUntil([&] {
    const auto latest = rig.LatestValues(rig.Messages());
    return latest.count("Living_Temperature") != 0 && latest.count("Living_Light") != 0;
  })) << rig.Log();
  auto messages = rig.Messages();
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages.front().kind, "snapshot");
  EXPECT_EQ(messages.front().body["v"], 1);
  EXPECT_EQ(messages.front().system_properties["content-type"], "application/json");
  EXPECT_EQ(messages.front().system_properties["content-encoding"], "utf-8");
  EXPECT_FALSE(messages.front().system_properties.value("iothub-creation-time-utc", "").empty());
  const auto& temperature = messages.front().body["items"]["Living_Temperature"];
  EXPECT_TRUE(temperature["value"].is_number()) << temperature;
  EXPECT_EQ(temperature["unit"], "°C");
  EXPECT_EQ(temperature["type"], "Number:Temperature");

  // A change made in openHAB arrives as a change, typed.
  ASSERT_EQ(rig.sim().Post("/sim/items/Living_Temperature/state", "23.25 °C"), 200);
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& m : rig.Messages()) {
      if (m.kind == "changes" && m.body["items"].contains("Living_Temperature") &&
          m.body["items"]["Living_Temperature"]["value"] == 23.25) {
        return true;
      }
    }
    return false;
  })) << rig.Log();
  // Message ids are unique.
  std::set<std::string> ids;
  for (const auto& m : rig.Messages()) EXPECT_TRUE(ids.insert(m.message_id).second) << m.message_id;
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// Issue 10 acceptance: "snapshot and changes of every item type reach the hub typed and
// schema-valid" — each type's value as the table of docs/message-format.md gives it.
TEST(ConnectorE2e, EveryItemTypeReachesTheHubTypedAndSchemaValid) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  // The types the demo home lacks: images (inline and too large), a call, a plain number,
  // and an item never set.
  const std::string big_image = "data:image/jpeg;base64," + std::string(4000, 'A');  // 3000 B
  ASSERT_EQ(AddItem(rig, {{"name", "Door_Camera"}, {"type", "Image"}, {"state", kSmallPng}}), 200);
  ASSERT_EQ(AddItem(rig, {{"name", "Yard_Camera"}, {"type", "Image"}, {"state", big_image}}), 200);
  ASSERT_EQ(
      AddItem(rig, {{"name", "Phone_Call"}, {"type", "Call"}, {"state", "+4930123,+4940456"}}),
      200);
  ASSERT_EQ(AddItem(rig, {{"name", "Plain_Counter"}, {"type", "Number"}, {"state", "42"}}), 200);
  ASSERT_EQ(AddItem(rig, {{"name", "Never_Set"}, {"type", "Number:Power"}}), 200);
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();

  struct Expected {
    std::string item;
    std::string type;
    json value;  // null with `state`; a string "number" for any number
    std::string unit;
    std::string state;
  };
  const json kAnyNumber = "<number>";
  const std::vector<Expected> snapshot = {
      {"Living_Light", "Switch", "OFF", "", ""},
      {"Living_Dimmer", "Dimmer", 40, "", ""},
      {"Living_Color", "Color", {{"h", 30}, {"s", 80}, {"b", 0}}, "", ""},
      {"Living_Shutter", "Rollershutter", 0, "", ""},
      {"Living_Window", "Contact", "CLOSED", "", ""},
      {"Living_Player", "Player", "PAUSE", "", ""},
      {"Living_Temperature", "Number:Temperature", kAnyNumber, "°C", ""},
      {"Living_Humidity", "Number:Dimensionless", kAnyNumber, "%", ""},
      {"House_Power", "Number:Power", kAnyNumber, "W", ""},
      {"House_Energy", "Number:Energy", kAnyNumber, "kWh", ""},
      {"Heating_Setpoint", "Number:Temperature", 21, "°C", ""},
      {"Plain_Counter", "Number", 42, "", ""},
      {"Alarm_Message", "String", "Disarmed", "", ""},
      {"Entrance_Doorbell", "DateTime", "2026-11-26T08:15:00.000Z", "", ""},
      {"Home_Location", "Location", {{"lat", 52.52}, {"lon", 13.405}, {"alt", 34}}, "", ""},
      {"Door_Camera", "Image", kSmallPng, "", ""},
      {"Yard_Camera", "Image", {{"bytes", 3000}, {"mimeType", "image/jpeg"}}, "", ""},
      {"Phone_Call", "Call", {"+4930123", "+4940456"}, "", ""},
      {"Never_Set", "Number:Power", nullptr, "", "NULL"},
      // Typed groups, typed by their base type, named as openHAB gives them.
      {"gLights", "Group:Switch:OR", "OFF", "", ""},
      {"gWindows", "Group:Contact:OR", "CLOSED", "", ""},
      {"gTemperatures", "Group:Number:Temperature:AVG", kAnyNumber, "°C", ""},
      {"gPower", "Group:Number:Power:SUM", kAnyNumber, "W", ""},
      // Living_Shutter 0 and Bedroom_Shutter 100 are not equal.
      {"gShutters", "Group:Rollershutter:EQUALITY", nullptr, "", "UNDEF"},
  };
  const auto snapshot_entry = [&](const std::string& item) -> json {
    for (const auto& m : rig.Messages()) {
      if (m.kind == "snapshot" && m.body["items"].contains(item)) return m.body["items"][item];
    }
    return nullptr;
  };
  ASSERT_TRUE(WaitUntil([&] {
    const auto names = ItemsIn(rig.Messages());
    return std::all_of(snapshot.begin(), snapshot.end(),
                       [&](const Expected& e) { return names.count(e.item) != 0; });
  })) << rig.Log();
  for (const auto& e : snapshot) {
    SCOPED_TRACE(e.item);
    const json entry = snapshot_entry(e.item);
    ASSERT_TRUE(entry.is_object());
    EXPECT_EQ(entry.value("type", ""), e.type) << entry;
    if (e.value == kAnyNumber) {
      EXPECT_TRUE(entry["value"].is_number()) << entry;
    } else {
      EXPECT_EQ(entry["value"], e.value) << entry;
    }
    EXPECT_EQ(entry.value("unit", ""), e.unit) << entry;
    EXPECT_EQ(entry.value("state", ""), e.state) << entry;
    EXPECT_EQ(entry.value("time", "").size(), 24u) << entry;  // 2026-12-02T12:00:00.123Z
  }
  // Plain groups have no state and are never replicated.
  EXPECT_EQ(ItemsIn(rig.Messages()).count("gHome"), 0u);
  EXPECT_EQ(ItemsIn(rig.Messages()).count("gLiving"), 0u);

  // One change of each type, made in openHAB, arrives as a change, typed.
  struct Change {
    std::string item;
    std::string text;  // as openHAB (a binding) sets it
    json value;
    std::string unit;
    std::string state;
  };
  const std::vector<Change> changes = {
      {"Living_Light", "ON", "ON", "", ""},
      {"Living_Dimmer", "70", 70, "", ""},
      {"Living_Color", "120,100,50", {{"h", 120}, {"s", 100}, {"b", 50}}, "", ""},
      {"Living_Shutter", "35", 35, "", ""},
      {"Living_Window", "OPEN", "OPEN", "", ""},
      {"Living_Player", "PLAY", "PLAY", "", ""},
      {"Living_Temperature", "23.25 °C", 23.25, "°C", ""},
      {"Living_Humidity", "51.5 %", 51.5, "%", ""},
      {"Heating_Setpoint", "70 °F", 70, "°F", ""},  // openHAB may report another unit
      {"Plain_Counter", "43", 43, "", ""},
      {"Alarm_Message", "Armed (away) ✓", "Armed (away) ✓", "", ""},
      {"Entrance_Doorbell", "2026-12-02T10:00:00.000+0100", "2026-12-02T09:00:00.000Z", "", ""},
      {"Home_Location", "48.1374,11.5755", {{"lat", 48.1374}, {"lon", 11.5755}}, "", ""},
      {"Door_Camera", kOtherPng, kOtherPng, "", ""},
      {"Phone_Call", "+491,+492", {"+491", "+492"}, "", ""},
      {"Never_Set", "UNDEF", nullptr, "", "UNDEF"},
  };
  for (const auto& c : changes) ASSERT_EQ(SetState(rig, c.item, c.text), 200) << c.item;
  const auto change_of = [](const std::vector<HubMessage>& messages, const std::string& item,
                            const json& value,
                            const std::string& state) -> std::optional<Observation> {
    for (const auto& o : ItemObservations(messages, item)) {
      if (o.kind == "changes" && o.value == value && o.state == state) return o;
    }
    return std::nullopt;
  };
  ASSERT_TRUE(WaitUntil([&] {
    const auto messages = rig.Messages();
    return std::all_of(changes.begin(), changes.end(),
                       [&](const Change& c) {
                         return change_of(messages, c.item, c.value, c.state).has_value();
                       }) &&
           change_of(messages, "gLights", "ON", "").has_value() &&
           change_of(messages, "gWindows", "OPEN", "").has_value();
  })) << rig.Log();
  const auto messages = rig.Messages();
  for (const auto& c : changes) {
    SCOPED_TRACE(c.item);
    const auto o = change_of(messages, c.item, c.value, c.state);
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->unit, c.unit);
  }
  ExpectWellFormed(messages);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// Things' status is replicated with an administrator's token: at start every thing, then
// each status change, as "things" messages and in the twin's reported `things`.
TEST(ConnectorE2e, ThingsStatusWithAnAdminToken) {
  const std::string token = "oh.admin.e2eThingsToken0123456789";
  ConnectorRig rig(S1Hub(), QuietSim({"--token", token}));
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig("", "token = \"" + token + "\"\n") + kS1Budget))
      << rig.error();
  const std::string climate = "mqtt:topic:home:living_climate";
  const auto things_of = [&](const std::vector<HubMessage>& messages) {
    std::vector<std::pair<std::string, json>> out;
    for (const auto& m : messages) {
      if (m.kind != "things") continue;
      for (const auto& [uid, thing] : m.body["things"].items()) out.emplace_back(uid, thing);
    }
    return out;
  };
  ASSERT_TRUE(WaitUntil([&] { return things_of(rig.Messages()).size() >= 4; })) << rig.Log();
  {
    std::map<std::string, json> first;
    for (const auto& [uid, thing] : things_of(rig.Messages())) first.emplace(uid, thing);
    ASSERT_EQ(first.size(), 4u);
    EXPECT_EQ(first[climate]["status"], "ONLINE");
    EXPECT_EQ(first["hue:0210:bridge:living_color"]["status"], "OFFLINE");
    EXPECT_EQ(first["hue:0210:bridge:living_color"]["detail"], "COMMUNICATION_ERROR");
    EXPECT_EQ(first["hue:0210:bridge:living_color"]["description"],
              "Bridge reports light as not reachable");
  }

  ASSERT_EQ(rig.sim().Post("/sim/things/" + climate + "/status",
                           R"({"status":"OFFLINE","statusDetail":"COMMUNICATION_ERROR",)"
                           R"("description":"Sensor battery empty"})",
                           "application/json"),
            200);
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& [uid, thing] : things_of(rig.Messages())) {
      if (uid == climate && thing["status"] == "OFFLINE") return true;
    }
    return false;
  })) << rig.Log();
  for (const auto& [uid, thing] : things_of(rig.Messages())) {
    if (uid != climate || thing["status"] != "OFFLINE") continue;
    EXPECT_EQ(thing["detail"], "COMMUNICATION_ERROR");
    EXPECT_EQ(thing["description"], "Sensor battery empty");
  }
  ASSERT_TRUE(WaitUntil([&] {
    const json reported = Reported(rig);
    return reported.contains("things") && reported["things"].contains(climate) &&
           reported["things"][climate].value("status", "") == "OFFLINE";
  })) << Reported(rig).dump();
  EXPECT_EQ(Reported(rig)["things"][climate].value("description", ""), "Sensor battery empty");
  EXPECT_EQ(Reported(rig)["things"].size(), 4u);
  EXPECT_EQ(rig.Status()["things"].value("known", 0), 4) << rig.Status()["things"];
  ExpectWellFormed(rig.Messages());
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
  EXPECT_EQ(rig.Log().find(token), std::string::npos) << "the token is never logged";
}

// Without an administrator's token nothing of things is sent, and the log says why, once.
TEST(ConnectorE2e, ThingsNeedAnAdminTokenAndTheLogSaysSoOnce) {
  ConnectorRig rig(S1Hub(), QuietSim({"--token", "oh.admin.e2eSomeoneElsesToken012345"}));
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return ItemsIn(rig.Messages()).count("Living_Light") != 0; }))
      << rig.Log();
  ASSERT_EQ(rig.sim().Post("/sim/things/mqtt:topic:home:living_climate/status",
                           R"({"status":"OFFLINE","statusDetail":"COMMUNICATION_ERROR"})",
                           "application/json"),
            200);
  // A resync reads things again: the log still says it once.
  ASSERT_EQ(rig.sim().Post("/sim/streams/drop"), 200);
  ASSERT_TRUE(WaitUntil([&] { return StatusNumber(rig, "openhab", "resyncs") >= 1; })) << rig.Log();
  // Changes made after both arrive, so both were processed by then.
  ASSERT_EQ(SetState(rig, "Living_Light", "ON"), 200);
  ASSERT_TRUE(WaitUntil([&] { return Arrived(rig, "Living_Light", "ON"); })) << rig.Log();
  for (const auto& m : rig.Messages()) {
    EXPECT_NE(m.kind, "things") << m.body_text;
    EXPECT_FALSE(m.body.contains("things")) << m.body_text;
  }
  EXPECT_FALSE(Reported(rig).contains("things")) << Reported(rig).dump();
  EXPECT_EQ(rig.Status()["openhab"].value("admin", true), false);
  const std::string log = rig.Log();
  EXPECT_EQ(Occurrences(log, "things' status is not replicated"), 1u) << log;
  EXPECT_NE(log.find("administrator's API token"), std::string::npos) << log;
  ExpectWellFormed(rig.Messages());
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// openhab.items / exclude with names, globs, @group (recursively) and #tag: exactly the
// selected items reach the hub, in telemetry and in the twin.
TEST(ConnectorE2e, SelectionSendsExactlyTheSelectedItems) {
  ConnectorRig rig(S1Hub());  // the meters run: their changes must not leak either
  ASSERT_TRUE(rig.ok()) << rig.error();
  // A group nested in gEntrance, with a member: @gEntrance reaches it through gOutside.
  ASSERT_EQ(AddItem(rig, {{"name", "gOutside"}, {"type", "Group"}, {"groups", {"gEntrance"}}}),
            200);
  ASSERT_EQ(AddItem(rig, {{"name", "Garden_Light"},
                          {"type", "Switch"},
                          {"groups", {"gOutside"}},
                          {"state", "OFF"}}),
            200);
  ASSERT_TRUE(rig.StartConnector(
      rig.BaseConfig(
          "",
          "items = [\"Living_*\", \"@gBathroom\", \"@gEntrance\", \"#temperature\", \"Presence\"]\n"
          "exclude = [\"Living_Player\", \"*_Humidity\", \"@gWindows\"]\n") +
      kS1Budget))
      << rig.error();
  const std::set<std::string> expected = {
      // Living_*, less Living_Player, Living_Humidity and Living_Window (in gWindows)
      "Living_Light", "Living_Dimmer", "Living_Color", "Living_Shutter", "Living_Temperature",
      "Living_TV_Power", "Living_Seat_Pressure",
      // @gBathroom, less Bathroom_Humidity
      "Bathroom_Light", "Bathroom_Temperature", "Bathroom_Cabinet_Magnetic", "Bathroom_Basin_PIR",
      "Bathroom_Toilet_Flush", "Bathroom_Shower_PIR",
      // @gEntrance, recursively (gOutside itself is a plain group)
      "Entrance_Light", "Entrance_Doorbell", "Entrance_Maindoor_Magnetic", "Garden_Light",
      // #temperature, in any case (the typed group gTemperatures carries the tag)
      "Kitchen_Temperature", "Bedroom_Temperature", "Outdoor_Temperature", "Heating_Setpoint",
      "gTemperatures",
      // a name
      "Presence"};
  ASSERT_TRUE(WaitUntil([&] { return ItemsIn(rig.Messages()).size() >= expected.size(); }))
      << rig.Log();
  // Changes of selected and unselected items; the last one marks the end.
  for (const auto& item : {"Kitchen_Light", "Living_Player", "Living_Window", "Kitchen_Humidity"}) {
    ASSERT_EQ(SetState(rig, item,
                       std::string(item) == "Living_Player"      ? "PLAY"
                       : std::string(item) == "Living_Window"    ? "OPEN"
                       : std::string(item) == "Kitchen_Humidity" ? "61 %"
                                                                 : "ON"),
              200);
  }
  ASSERT_EQ(SetState(rig, "Garden_Light", "ON"), 200);
  ASSERT_TRUE(WaitUntil([&] { return Arrived(rig, "Garden_Light", "ON"); })) << rig.Log();
  const auto messages = rig.Messages();
  EXPECT_EQ(ItemsIn(messages), expected);
  EXPECT_EQ(StatusNumber(rig, "openhab", "items_selected"),
            static_cast<std::int64_t>(expected.size()));
  ASSERT_TRUE(WaitUntil([&] {
    const json reported = Reported(rig);
    return reported.contains("items") && reported["items"].contains("Garden_Light") &&
           reported["items"]["Garden_Light"]["value"] == "ON";
  })) << Reported(rig).dump();
  for (const auto& [name, item] : Reported(rig)["items"].items()) {
    if (name.front() == '$') continue;
    EXPECT_EQ(expected.count(name), 1u) << name << " is in the twin but not selected";
  }
  ExpectWellFormed(messages);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// The gap between consecutive observations, by the hub's enqueued time.
std::vector<std::int64_t> Gaps(const std::vector<Observation>& observations) {
  std::vector<std::int64_t> gaps;
  for (std::size_t i = 1; i < observations.size(); ++i) {
    gaps.push_back(observations[i].enqueued_ms - observations[i - 1].enqueued_ms);
  }
  return gaps;
}

// [[item]] rules and the item's `azureiothub` metadata (which wins over the file): deadband,
// min_interval and heartbeat (docs/configuration.md, "What the filters do").
TEST(ConnectorE2e, DeadbandMinIntervalAndHeartbeatByRuleAndByMetadata) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  const auto metadata = [](const std::string& value, const json& config) {
    return json{{"azureiothub", {{"value", value}, {"config", config}}}};
  };
  ASSERT_EQ(
      AddItem(rig, {{"name", "Rule_Deadband"}, {"type", "Number:Temperature"}, {"state", "20 °C"}}),
      200);
  ASSERT_EQ(AddItem(rig, {{"name", "Rule_Interval"}, {"type", "Number"}, {"state", "0"}}), 200);
  ASSERT_EQ(AddItem(rig, {{"name", "Rule_Heartbeat"}, {"type", "Switch"}, {"state", "OFF"}}), 200);
  ASSERT_EQ(AddItem(rig, {{"name", "Meta_Deadband"},
                          {"type", "Number:Power"},
                          {"state", "100 W"},
                          {"metadata", metadata("telemetry", {{"deadband", "10 W"}})}}),
            200);
  ASSERT_EQ(AddItem(rig, {{"name", "Meta_Interval"},
                          {"type", "Number"},
                          {"state", "0"},
                          {"metadata", metadata("", {{"min_interval", "2s"}})}}),
            200);
  ASSERT_EQ(AddItem(rig, {{"name", "Meta_Heartbeat"},
                          {"type", "Switch"},
                          {"state", "OFF"},
                          {"metadata", metadata("", {{"heartbeat", 2}})}}),  // seconds
            200);
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget +
                                 "[[item]]\nmatch = \"Rule_Deadband\"\ndeadband = \"0.5 °C\"\n"
                                 "[[item]]\nmatch = \"Rule_Interval\"\nmin_interval = \"2s\"\n"
                                 "[[item]]\nmatch = \"Rule_Heartbeat\"\nheartbeat = \"2s\"\n"
                                 // The metadata's 10 W wins over this for Meta_Deadband.
                                 "[[item]]\nmatch = \"Meta_*\"\ndeadband = \"0.001\"\n"))
      << rig.error();
  ASSERT_TRUE(WaitUntil([&] {
    const auto names = ItemsIn(rig.Messages());
    return names.count("Rule_Deadband") != 0 && names.count("Meta_Heartbeat") != 0;
  })) << rig.Log();

  // Deadband: 0.5 °C from the last value sent (20), then from 20.6.
  for (const char* v : {"20.2 °C", "20.4 °C", "20.6 °C", "20.9 °C", "21.1 °C"}) {
    ASSERT_EQ(SetState(rig, "Rule_Deadband", v), 200);
  }
  for (const char* v : {"105 W", "111 W", "115 W", "125 W"}) {
    ASSERT_EQ(SetState(rig, "Meta_Deadband", v), 200);
  }
  // Minimum interval: five changes in a burst; the latest must arrive.
  for (const char* v : {"1", "2", "3", "4", "5"}) {
    ASSERT_EQ(SetState(rig, "Rule_Interval", v), 200);
    ASSERT_EQ(SetState(rig, "Meta_Interval", v), 200);
  }
  ASSERT_TRUE(WaitUntil(
      [&] {
        const auto messages = rig.Messages();
        const auto has = [&](const std::string& item, const json& value) {
          const auto values = ValuesOf(ItemObservations(messages, item), "changes");
          return std::find(values.begin(), values.end(), value) != values.end();
        };
        return has("Rule_Deadband", 21.1) && has("Meta_Deadband", 125) && has("Rule_Interval", 5) &&
               has("Meta_Interval", 5) &&
               ItemObservations(messages, "Rule_Heartbeat").size() >= 3 &&
               ItemObservations(messages, "Meta_Heartbeat").size() >= 3;
      },
      30s))
      << rig.Log();
  const auto messages = rig.Messages();
  EXPECT_EQ(ValuesOf(ItemObservations(messages, "Rule_Deadband"), "changes"),
            (std::vector<json>{20.6, 21.1}));
  EXPECT_EQ(ValuesOf(ItemObservations(messages, "Meta_Deadband"), "changes"),
            (std::vector<json>{111, 125}))
      << "the metadata's deadband wins over the file's";
  for (const std::string item : {"Rule_Interval", "Meta_Interval"}) {
    SCOPED_TRACE(item);
    const auto seen = ItemObservations(messages, item);  // the snapshot, then changes
    ASSERT_GE(seen.size(), 2u);
    EXPECT_EQ(seen.back().value, 5) << "the latest state arrives";
    EXPECT_LE(seen.size(), 3u);
    // At most one per interval (the hub's clock; a little slack for the send path).
    for (const std::int64_t gap : Gaps(seen)) EXPECT_GE(gap, 1'700);
  }
  for (const std::string item : {"Rule_Heartbeat", "Meta_Heartbeat"}) {
    SCOPED_TRACE(item);
    const auto seen = ItemObservations(messages, item);
    for (const auto& o : seen) EXPECT_EQ(o.value, "OFF") << "resent unchanged";
    for (const std::int64_t gap : Gaps(seen)) {
      EXPECT_GE(gap, 1'700);
      EXPECT_LE(gap, 4'000);
    }
  }
  ExpectWellFormed(messages);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// send = "twin": the state is in the reported properties and never in telemetry; "none":
// nowhere. By rule and by metadata (which wins over a rule).
TEST(ConnectorE2e, SendTwinAndNoneByRuleAndByMetadata) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  const auto send_as = [](const std::string& value) {
    return json{{"azureiothub", {{"value", value}, {"config", json::object()}}}};
  };
  ASSERT_EQ(AddItem(rig, {{"name", "Rule_Twin"}, {"type", "Switch"}, {"state", "OFF"}}), 200);
  ASSERT_EQ(AddItem(rig, {{"name", "Rule_None"}, {"type", "String"}, {"state", "private"}}), 200);
  ASSERT_EQ(AddItem(rig, {{"name", "Meta_Twin"},
                          {"type", "Switch"},
                          {"state", "OFF"},
                          {"metadata", send_as("twin")}}),
            200);
  ASSERT_EQ(AddItem(rig, {{"name", "Meta_None"},
                          {"type", "String"},
                          {"state", "private"},
                          {"metadata", send_as("none")}}),
            200);
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget +
                                 "[[item]]\nmatch = \"Rule_Twin\"\nsend = \"twin\"\n"
                                 "[[item]]\nmatch = \"Rule_None\"\nsend = \"none\"\n"
                                 // The metadata wins over this.
                                 "[[item]]\nmatch = \"Meta_*\"\nsend = \"both\"\n"))
      << rig.error();
  ASSERT_TRUE(WaitUntil([&] {
    return ReportedItem(rig, "Rule_Twin").is_object() &&
           ReportedItem(rig, "Meta_Twin").is_object() &&
           ItemsIn(rig.Messages()).count("Living_Light") != 0;
  })) << rig.Log();
  EXPECT_EQ(ReportedItem(rig, "Rule_Twin")["value"], "OFF");
  ASSERT_EQ(SetState(rig, "Rule_Twin", "ON"), 200);
  ASSERT_EQ(SetState(rig, "Meta_Twin", "ON"), 200);
  ASSERT_EQ(SetState(rig, "Rule_None", "still private"), 200);
  ASSERT_EQ(SetState(rig, "Meta_None", "still private"), 200);
  ASSERT_EQ(SetState(rig, "Living_Light", "ON"), 200);  // marks the end
  ASSERT_TRUE(WaitUntil([&] {
    return Arrived(rig, "Living_Light", "ON") && ReportedValue(rig, "Rule_Twin") == "ON" &&
           ReportedValue(rig, "Meta_Twin") == "ON";
  })) << rig.Log()
      << Reported(rig).dump();
  const auto messages = rig.Messages();
  const auto in_telemetry = ItemsIn(messages);
  for (const auto* item : {"Rule_Twin", "Meta_Twin", "Rule_None", "Meta_None"}) {
    EXPECT_EQ(in_telemetry.count(item), 0u) << item << " is in telemetry";
  }
  EXPECT_TRUE(ReportedItem(rig, "Rule_None").is_null());
  EXPECT_TRUE(ReportedItem(rig, "Meta_None").is_null());
  EXPECT_EQ(Reported(rig).dump().find("private"), std::string::npos);
  for (const auto& m : messages) EXPECT_EQ(m.body_text.find("private"), std::string::npos);
  ExpectWellFormed(messages);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// openHAB's item events carry no metadata (ItemDTO): the `azureiothub` metadata of an item
// added while the connector runs must be read before anything of the item is sent, and an
// item's metadata must survive an ItemUpdatedEvent (a renamed label).
TEST(ConnectorE2e, MetadataHoldsForItemsAddedOrUpdatedWhileRunning) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return ItemsIn(rig.Messages()).count("Living_Light") != 0; }))
      << rig.Log();
  const auto send_as = [](const std::string& value) {
    return json{{"azureiothub", {{"value", value}, {"config", json::object()}}}};
  };
  ASSERT_EQ(
      AddItem(rig, {{"name", "Late_None"}, {"type", "String"}, {"metadata", send_as("none")}}),
      200);
  ASSERT_EQ(
      AddItem(rig, {{"name", "Late_Twin"}, {"type", "Switch"}, {"metadata", send_as("twin")}}),
      200);
  ASSERT_EQ(AddItem(rig, {{"name", "Late_Plain"}, {"type", "Switch"}}), 200);
  // The demo home's Living_Temperature is telemetry only (its metadata); a new label.
  ASSERT_EQ(AddItem(rig, {{"name", "Living_Temperature"},
                          {"type", "Number:Temperature"},
                          {"label", "Living room (renamed)"},
                          {"groups", {"gLiving", "gTemperatures"}},
                          {"tags", {"Measurement", "Temperature"}},
                          {"metadata", send_as("telemetry")}}),
            200);
  ASSERT_EQ(SetState(rig, "Late_None", "private"), 200);
  ASSERT_EQ(SetState(rig, "Late_Twin", "ON"), 200);
  ASSERT_EQ(SetState(rig, "Late_Plain", "ON"), 200);
  ASSERT_EQ(SetState(rig, "Living_Temperature", "24.5 °C"), 200);
  ASSERT_EQ(SetState(rig, "Living_Light", "ON"), 200);  // marks the end
  ASSERT_TRUE(WaitUntil([&] {
    return Arrived(rig, "Living_Light", "ON") && Arrived(rig, "Late_Plain", "ON", "") &&
           Arrived(rig, "Living_Temperature", 24.5) && ReportedValue(rig, "Late_Twin") == "ON" &&
           ReportedValue(rig, "Late_Plain") == "ON";
  })) << rig.Log()
      << Reported(rig).dump();
  const auto in_telemetry = ItemsIn(rig.Messages());
  EXPECT_EQ(in_telemetry.count("Late_None"), 0u);
  EXPECT_EQ(in_telemetry.count("Late_Twin"), 0u);
  EXPECT_TRUE(ReportedItem(rig, "Late_None").is_null());
  EXPECT_TRUE(ReportedItem(rig, "Living_Temperature").is_null())
      << "the update dropped Living_Temperature's metadata";
  for (const auto& m : rig.Messages()) EXPECT_EQ(m.body_text.find("private"), std::string::npos);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// The twin's reported properties mirror each replicated item's current state.
TEST(ConnectorE2e, TwinMirrorsTheCurrentStates) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return ReportedItem(rig, "Living_Light").is_object(); }))
      << rig.Log();
  EXPECT_EQ(ReportedItem(rig, "Living_Light")["value"], "OFF");
  EXPECT_EQ(ReportedItem(rig, "Living_Light")["type"], "Switch");
  ASSERT_EQ(SetState(rig, "Living_Light", "ON"), 200);
  ASSERT_EQ(SetState(rig, "Living_Dimmer", "70"), 200);
  ASSERT_EQ(SetState(rig, "Heating_Setpoint", "22.5 °C"), 200);
  ASSERT_EQ(SetState(rig, "Alarm_Message", "Armed"), 200);
  ASSERT_TRUE(WaitUntil([&] {
    const json items = Reported(rig).value("items", json::object());
    const auto value = [&](const char* name) {
      return items.contains(name) ? items[name].value("value", json()) : json();
    };
    return value("Living_Light") == "ON" && value("Living_Dimmer") == 70 &&
           value("Heating_Setpoint") == 22.5 && value("Alarm_Message") == "Armed";
  })) << Reported(rig).dump();
  EXPECT_EQ(ReportedItem(rig, "Heating_Setpoint")["unit"], "°C");
  // The connector's own facts.
  const json reported = Reported(rig);
  ASSERT_TRUE(reported.contains("connector")) << reported.dump();
  EXPECT_EQ(reported["connector"].value("mode", ""), "publish");
  EXPECT_FALSE(reported["connector"].value("version", "").empty());
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// Past IoT Hub's 32 KB of reported properties, items are left out, named in the log and
// counted in the status and the metrics, rather than failing.
TEST(ConnectorE2e, TwinStaysWithin32KilobytesAndSaysWhatWasLeftOut) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  constexpr int kLong = 40;  // 40 states of 1,000 characters: 40 KB
  const auto long_name = [](int i) { return fmt::format("Long_Text_{:02}", i); };
  for (int i = 0; i < kLong; ++i) {
    ASSERT_EQ(AddItem(rig, {{"name", long_name(i)},
                            {"type", "String"},
                            {"state", fmt::format("{:02}", i) + std::string(998, 'x')}}),
              200);
  }
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();
  // Every item's telemetry goes as usual.
  ASSERT_TRUE(WaitUntil([&] {
    const auto names = ItemsIn(rig.Messages());
    for (int i = 0; i < kLong; ++i) {
      if (names.count(long_name(i)) == 0) return false;
    }
    return true;
  })) << rig.Log();
  ASSERT_TRUE(WaitUntil([&] {
    return StatusNumber(rig, "twin", "items_left_out") > 0 &&
           ReportedItem(rig, "Living_Light").is_object();
  })) << rig.Log();
  // Let the twin settle: the status's patch count stops moving once everything is reported.
  std::int64_t patches = -1;
  ASSERT_TRUE(WaitUntil([&] {
    const std::int64_t now = StatusNumber(rig, "twin", "patches_sent");
    const bool settled = now == patches && now > 0;
    patches = now;
    return settled;
  }));
  json reported = Reported(rig);
  reported.erase("$metadata");
  reported.erase("$version");
  EXPECT_LT(reported.dump().size(), 32u * 1024) << "the reported document stays within 32 KB";
  std::vector<std::string> left_out;
  for (int i = 0; i < kLong; ++i) {
    if (!reported["items"].contains(long_name(i))) left_out.push_back(long_name(i));
  }
  ASSERT_FALSE(left_out.empty());
  EXPECT_LT(left_out.size(), static_cast<std::size_t>(kLong)) << "what fits is mirrored";
  const std::string log = rig.Log();
  for (const auto& name : left_out) {
    EXPECT_EQ(Occurrences(log, "'" + name + "' is left out"), 1u) << name << "\n" << log;
  }
  EXPECT_EQ(StatusNumber(rig, "twin", "items_left_out"),
            static_cast<std::int64_t>(left_out.size()));
  EXPECT_NE(
      rig.Metrics().find(fmt::format("iothub_connector_twin_items_left_out {}", left_out.size())),
      std::string::npos)
      << rig.Metrics();
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// What "once" means across a resync (docs/message-format.md): a change openHAB made while the
// connector could not see it arrives exactly once as a change (found by the resync), and the
// resync's snapshot carries every item once more, so each item appears in snapshots exactly
// once per synchronisation (the first and each resync), and nothing else repeats.
void ExpectOnceAcrossResyncs(ConnectorRig& rig, const std::vector<HubMessage>& messages,
                             const std::map<std::string, std::vector<json>>& changes) {
  const std::int64_t resyncs = StatusNumber(rig, "openhab", "resyncs");
  ASSERT_GE(resyncs, 1);
  for (const auto& [item, values] : changes) {
    SCOPED_TRACE(item);
    const auto seen = ItemObservations(messages, item);
    EXPECT_EQ(ValuesOf(seen, "changes"), values);
    EXPECT_EQ(ValuesOf(seen, "snapshot").size(), static_cast<std::size_t>(1 + resyncs));
  }
  // Items nobody changed: in each snapshot once, never as a change.
  for (const std::string item : {"Alarm_Message", "Living_Dimmer", "Home_Location"}) {
    SCOPED_TRACE(item);
    const auto seen = ItemObservations(messages, item);
    EXPECT_TRUE(ValuesOf(seen, "changes").empty());
    EXPECT_EQ(ValuesOf(seen, "snapshot").size(), static_cast<std::size_t>(1 + resyncs));
  }
}

TEST(ConnectorE2e, ChangesMadeWhileOpenHabRestartsArriveOnce) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return ItemsIn(rig.Messages()).count("Living_Light") != 0; }))
      << rig.Log();
  ASSERT_EQ(SetState(rig, "Living_Light", "ON"), 200);
  ASSERT_TRUE(WaitUntil([&] { return Arrived(rig, "Living_Light", "ON"); })) << rig.Log();
  // The restart reloads the home: Living_Light is OFF again. While openHAB is down (its REST
  // API answers 503), a binding sets Kitchen_Light.
  ASSERT_EQ(rig.sim().Post("/sim/restart?downtime_ms=1500"), 200);
  ASSERT_EQ(SetState(rig, "Kitchen_Light", "ON"), 200);
  ASSERT_TRUE(WaitUntil([&] {
    return StatusNumber(rig, "openhab", "resyncs") >= 1 && Arrived(rig, "Living_Light", "OFF") &&
           Arrived(rig, "Kitchen_Light", "ON");
  })) << rig.Log();
  // The stream works again, and a later change marks the end.
  ASSERT_EQ(SetState(rig, "Entrance_Light", "ON"), 200);
  ASSERT_TRUE(WaitUntil([&] { return Arrived(rig, "Entrance_Light", "ON"); })) << rig.Log();
  const auto messages = rig.Messages();
  ExpectOnceAcrossResyncs(
      rig, messages,
      {{"Living_Light", {"ON", "OFF"}}, {"Kitchen_Light", {"ON"}}, {"Entrance_Light", {"ON"}}});
  ExpectWellFormed(messages);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

TEST(ConnectorE2e, ChangesMadeWhileTheStreamStalledArriveOnce) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return ItemsIn(rig.Messages()).count("Living_Light") != 0; }))
      << rig.Log();
  // A hung proxy: the stream stays open and carries nothing, keep-alives included.
  ASSERT_EQ(rig.sim().Post("/sim/streams/stall"), 200);
  ASSERT_EQ(SetState(rig, "Living_Light", "ON"), 200);
  ASSERT_EQ(SetState(rig, "Kitchen_Window", "OPEN"), 200);
  // The connector notices the silence (openHAB's 10 s keep-alive plus a margin), reconnects
  // and resynchronises from the REST API.
  ASSERT_TRUE(WaitUntil([&] { return StatusNumber(rig, "openhab", "resyncs") >= 1; }, 30s))
      << rig.Log();
  ASSERT_EQ(rig.sim().Post("/sim/streams/stall?stalled=false"), 200);
  ASSERT_TRUE(WaitUntil([&] {
    return Arrived(rig, "Living_Light", "ON") && Arrived(rig, "Kitchen_Window", "OPEN");
  })) << rig.Log();
  ASSERT_EQ(SetState(rig, "Entrance_Light", "ON"), 200);
  ASSERT_TRUE(WaitUntil([&] { return Arrived(rig, "Entrance_Light", "ON"); })) << rig.Log();
  const auto messages = rig.Messages();
  ExpectOnceAcrossResyncs(
      rig, messages,
      {{"Living_Light", {"ON"}}, {"Kitchen_Window", {"OPEN"}}, {"Entrance_Light", {"ON"}}});
  ExpectWellFormed(messages);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// SIGTERM sends what is accepted and exits 0, leaving nothing in the outbox.
TEST(ConnectorE2e, SigtermFlushesAndExitsZero) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return ItemsIn(rig.Messages()).count("Living_Light") != 0; }))
      << rig.Log();
  // A burst of changes, and SIGTERM as soon as the connector has read them.
  const std::int64_t accepted_before = StatusNumber(rig, "outbox", "accepted");
  ASSERT_EQ(rig.sim().Post("/sim/burst?count=2000"), 200);
  ASSERT_TRUE(WaitUntil([&] { return StatusNumber(rig, "outbox", "accepted") > accepted_before; }));
  rig.SignalConnector(SIGTERM);
  const auto code = rig.WaitConnectorExit(15s);
  ASSERT_TRUE(code.has_value()) << "still running after SIGTERM\n" << rig.Log();
  EXPECT_EQ(*code, 0) << rig.Log();
  const std::string log = rig.Log();
  EXPECT_NE(log.find("stopped; 0 entries and 0 unacknowledged messages wait in the outbox"),
            std::string::npos)
      << log;
  // A restart has nothing to resend: every message id the hub holds is unique.
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();
  ASSERT_TRUE(WaitUntil([&] {
    return ValuesOf(ItemObservations(rig.Messages(), "Living_Light"), "snapshot").size() == 2;
  })) << rig.Log();
  ASSERT_EQ(SetState(rig, "Living_Light", "ON"), 200);
  ASSERT_TRUE(WaitUntil([&] { return Arrived(rig, "Living_Light", "ON"); })) << rig.Log();
  EXPECT_EQ(StatusNumber(rig, "telemetry", "messages_resent"), 0);
  ExpectWellFormed(rig.Messages());
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// SIGHUP reloads the item selection without dropping the hub connection.
TEST(ConnectorE2e, SighupReloadsTheSelectionWithoutReconnecting) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  const auto config = [&](const std::string& openhab_keys) {
    return rig.BaseConfig("", openhab_keys) + kS1Budget;
  };
  ASSERT_TRUE(rig.StartConnector(config("items = [\"Living_*\"]\n"))) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return ItemsIn(rig.Messages()).count("Living_Light") != 0; }))
      << rig.Log();
  ASSERT_EQ(rig.DeviceStats().value("connects", 0), 1);
  // Not selected yet: this change is not sent.
  ASSERT_EQ(SetState(rig, "Kitchen_Light", "ON"), 200);
  ASSERT_EQ(SetState(rig, "Living_Dimmer", "55"), 200);
  ASSERT_TRUE(WaitUntil([&] { return Arrived(rig, "Living_Dimmer", 55); })) << rig.Log();
  EXPECT_EQ(ItemsIn(rig.Messages()).count("Kitchen_Light"), 0u);

  // A file with errors is refused; the running settings stay.
  {
    std::ofstream out(rig.config_path());
    out << config("items = [\"Living-*\"]\n");
  }
  rig.SignalConnector(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] {
    return rig.Log().find("the running settings stay") != std::string::npos;
  })) << rig.Log();
  // Now Kitchen_Light is selected and Living_Dimmer excluded.
  {
    std::ofstream out(rig.config_path());
    out << config("items = [\"Living_*\", \"Kitchen_Light\"]\nexclude = [\"Living_Dimmer\"]\n");
  }
  rig.SignalConnector(SIGHUP);
  // The newly selected item's current state arrives (a snapshot of it), then its changes.
  ASSERT_TRUE(WaitUntil([&] { return Arrived(rig, "Kitchen_Light", "ON", "snapshot"); }))
      << rig.Log();
  ASSERT_EQ(SetState(rig, "Kitchen_Light", "OFF"), 200);
  ASSERT_EQ(SetState(rig, "Living_Dimmer", "65"), 200);
  ASSERT_EQ(SetState(rig, "Living_Light", "ON"), 200);  // marks the end
  ASSERT_TRUE(WaitUntil([&] {
    return Arrived(rig, "Kitchen_Light", "OFF") && Arrived(rig, "Living_Light", "ON");
  })) << rig.Log();
  EXPECT_FALSE(Arrived(rig, "Living_Dimmer", 65)) << "deselected by the reload";
  EXPECT_EQ(rig.DeviceStats().value("connects", 0), 1) << "the reload kept the connection";
  EXPECT_EQ(StatusNumber(rig, "hub", "connects"), 1);
  EXPECT_EQ(StatusNumber(rig, "openhab", "items_selected"), 10);  // 10 Living_*, less one, and one
  ExpectWellFormed(rig.Messages());
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

}  // namespace
}  // namespace iothub::testing
