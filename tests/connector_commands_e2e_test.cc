// Commands from the cloud end to end (issue 11, docs/commands.md): the real connector between
// the real openhab-sim and the real iothub-emulator; direct methods are invoked through the
// emulator's service API, what reached openHAB is read from openhab-sim's command log, and
// every command's audit line from the connector's store.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "connector/audit_log.h"
#include "support/connector_rig.h"
#include "support/message_schema.h"

namespace iothub::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr char kS1Budget[] = "[quota]\ntier = \"S1\"\n";
const std::vector<std::string> kCommandMode = {"--mode", "publish-command"};

// The demo home with its meters slowed 1000-fold: only what a test changes changes.
std::vector<std::string> QuietSim() { return {"--speed", "0.001"}; }

// Invokes direct method `name` on the connector's device; the emulator's answer
// ({"status":..,"payload":..}, or its own error).
HttpReply Invoke(ConnectorRig& rig, const std::string& name, const json& payload,
                 int timeout_s = 15) {
  return rig.service().Request(
      "POST", "/twins/openhab/methods",
      json{{"methodName", name}, {"payload", payload}, {"responseTimeoutInSeconds", timeout_s}});
}

// The commands openhab-sim received: [{"item","command","at"}].
json SimCommands(ConnectorRig& rig) { return rig.sim().GetJson("/sim/commands"); }

bool SimGot(ConnectorRig& rig, const std::string& item, const std::string& command) {
  for (const auto& c : SimCommands(rig)) {
    if (c.value("item", "") == item && c.value("command", "") == command) return true;
  }
  return false;
}

std::string SimState(ConnectorRig& rig, const std::string& item) {
  auto res = rig.sim().http().Get("/rest/items/" + item + "/state");
  return res ? res->body : "";
}

// Starts the connector and waits until its device answers methods (its first snapshot is in).
void Start(ConnectorRig& rig, const std::string& extra_toml = "",
           const std::vector<std::string>& args = kCommandMode) {
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget + extra_toml, args)) << rig.error();
  ASSERT_TRUE(WaitUntil([&] {
    const json status = rig.Status();
    return status.is_object() && status["hub"].value("session_state", "") == "connected" &&
           status["openhab"].value("items_selected", 0) > 0;
  })) << rig.Log();
}

std::vector<connector::AuditRecord> Audit(ConnectorRig& rig) {
  auto file = connector::AuditLog::ReadFile(rig.store_dir() + "/audit.jsonl");
  return file ? file->records : std::vector<connector::AuditRecord>{};
}

TEST(ConnectorCommandsE2e, PublishModeAnswersEveryMethod405AndSendsNothing) {
  ConnectorRig rig({"--tier", "S1"}, QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  Start(rig, "", {});
  const HttpReply reply = Invoke(rig, "command", json{{"item", "Living_Light"}, {"command", "ON"}});
  ASSERT_EQ(reply.status, 200) << reply.text;
  EXPECT_EQ(reply.body["status"], 405) << reply.text;
  EXPECT_NE(reply.body["payload"].value("message", "").find("publish-command"), std::string::npos)
      << reply.text;
  EXPECT_EQ(Invoke(rig, "items", nullptr).body["status"], 405);
  EXPECT_TRUE(SimCommands(rig).empty()) << SimCommands(rig).dump();
  const auto audit = Audit(rig);
  ASSERT_EQ(audit.size(), 1u) << "the command is audited; the items call is no command";
  EXPECT_EQ(audit[0].status, 405);
  EXPECT_EQ(audit[0].path, "method");
  EXPECT_EQ(audit[0].item, "Living_Light");
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

TEST(ConnectorCommandsE2e, CommandMethodSwitchesALightAndWaitsForItsState) {
  ConnectorRig rig({"--tier", "S1"}, QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  Start(rig);
  ASSERT_EQ(SimState(rig, "Living_Light"), "OFF");
  HttpReply reply =
      Invoke(rig, "command", json{{"item", "Living_Light"}, {"command", "ON"}, {"wait", 5}});
  ASSERT_EQ(reply.status, 200) << reply.text;
  EXPECT_EQ(reply.body["status"], 200) << reply.text;
  EXPECT_EQ(reply.body["payload"]["message"], "the state is now ON") << reply.text;
  EXPECT_TRUE(SimGot(rig, "Living_Light", "ON")) << SimCommands(rig).dump();
  EXPECT_EQ(SimState(rig, "Living_Light"), "ON");
  // Without wait: 200 once openHAB accepted. A number is a command too, and a quantity in
  // another unit of the same dimension is accepted and sent as given.
  reply = Invoke(rig, "command", json{{"item", "Living_Dimmer"}, {"command", 40}});
  EXPECT_EQ(reply.body["status"], 200) << reply.text;
  EXPECT_TRUE(SimGot(rig, "Living_Dimmer", "40")) << SimCommands(rig).dump();
  reply =
      Invoke(rig, "command", json{{"item", "Heating_Setpoint"}, {"command", "70 °F"}, {"wait", 5}});
  EXPECT_EQ(reply.body["status"], 200) << reply.text;
  // The audit file: one line per command, mode 0600, with latency.
  const auto audit = Audit(rig);
  ASSERT_EQ(audit.size(), 3u);
  EXPECT_EQ(audit[0].command, "ON");
  EXPECT_EQ(audit[0].status, 200);
  EXPECT_GE(audit[0].latency_ms, 0);
  struct stat st {};
  ASSERT_EQ(::stat((rig.store_dir() + "/audit.jsonl").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

TEST(ConnectorCommandsE2e, RefusedCommandsNeverReachOpenHab) {
  ConnectorRig rig({"--tier", "S1"}, QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  Start(rig, "\n[commands]\ndeny = [\"Bathroom_*\"]\nitem_burst = 2\nitem_rate = 0.01\n");
  struct Case {
    json payload;
    int status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{{"item", "Living_Light"}, {"command", "BRIGHT"}}, 400, "ON"},
      {{{"item", "Living_Dimmer"}, {"command", "101"}}, 400, "100"},
      {{{"item", "Heating_Setpoint"}, {"command", "20 W"}}, 400, "°C"},
      {{{"item", "No_Such_Item"}, {"command", "ON"}}, 404, "No_Such_Item"},
      {{{"item", "Living_TV_Power"}, {"command", "100 W"}}, 403, "read-only"},
      {{{"item", "Bathroom_Light"}, {"command", "ON"}}, 403, "Bathroom_*"},
      {{{"command", "ON"}}, 400, "item"},
      {{{"item", "Living_Light"}}, 400, "command"},
      {{{"item", "Living_Light"}, {"command", "ON"}, {"wait", 1000}}, 400, "wait"},
  };
  for (const auto& c : cases) {
    const HttpReply reply = Invoke(rig, "command", c.payload);
    ASSERT_EQ(reply.status, 200) << reply.text;
    EXPECT_EQ(reply.body["status"], c.status) << c.payload.dump() << " → " << reply.text;
    EXPECT_NE(reply.body["payload"].value("message", "").find(c.says), std::string::npos)
        << c.payload.dump() << " → " << reply.text;
  }
  EXPECT_EQ(Invoke(rig, "reboot", nullptr).body["status"], 501);
  EXPECT_TRUE(SimCommands(rig).empty()) << SimCommands(rig).dump();
  // The item's burst is 2: the third command in a row is refused with a time to retry.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(
        Invoke(rig, "command", json{{"item", "Kitchen_Light"}, {"command", "ON"}}).body["status"],
        200);
  }
  const HttpReply limited =
      Invoke(rig, "command", json{{"item", "Kitchen_Light"}, {"command", "OFF"}});
  EXPECT_EQ(limited.body["status"], 429) << limited.text;
  EXPECT_GT(limited.body["payload"].value("retryAfterMs", 0), 0) << limited.text;
  EXPECT_FALSE(SimGot(rig, "Kitchen_Light", "OFF"));
  // Every command is audited with its outcome.
  const auto audit = Audit(rig);
  EXPECT_EQ(audit.size(), cases.size() + 3) << "each command once, the unknown method not";
  EXPECT_EQ(audit.back().status, 429);
  // ... and counted in the status and the metrics, by path and status.
  const json status = rig.Status();
  EXPECT_EQ(status["commands"].value("mode", ""), "publish-command");
  std::map<int, std::int64_t> counts;
  for (const auto& c : status["commands"]["counts"]) {
    if (c.value("path", "") == "method") counts[c.value("status", 0)] = c.value("count", 0);
  }
  EXPECT_EQ(counts[429], 1) << status["commands"].dump();
  EXPECT_EQ(counts[403], 2) << status["commands"].dump();
  EXPECT_EQ(counts[200], 2) << status["commands"].dump();
  EXPECT_NE(rig.Metrics().find("iothub_connector_commands_total{path=\"method\",status=\"429\"} 1"),
            std::string::npos)
      << rig.Metrics();
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

TEST(ConnectorCommandsE2e, StateAndItemsMethodsDescribeTheReplicatedHome) {
  ConnectorRig rig({"--tier", "S1"}, QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  Start(rig, "", {"--mode", "publish-command", "--set", "openhab.exclude=[\"Presence\"]"});
  HttpReply reply = Invoke(rig, "state", json{{"item", "Heating_Setpoint"}});
  ASSERT_EQ(reply.body["status"], 200) << reply.text;
  const json state = reply.body["payload"];
  EXPECT_EQ(state["type"], "Number:Temperature");
  EXPECT_TRUE(state["value"].is_number()) << state.dump();
  EXPECT_EQ(state["unit"], "°C");
  // What is not replicated stays at home.
  EXPECT_EQ(Invoke(rig, "state", json{{"item", "Presence"}}).body["status"], 403);
  EXPECT_EQ(Invoke(rig, "state", json{{"item", "Nope"}}).body["status"], 404);
  EXPECT_EQ(Invoke(rig, "state", json{{"thing", "x"}}).body["status"], 400);

  reply = Invoke(rig, "items", nullptr);
  ASSERT_EQ(reply.body["status"], 200) << reply.text;
  std::map<std::string, json> items;
  for (const auto& item : reply.body["payload"]["items"]) items[item["name"]] = item;
  ASSERT_TRUE(items.count("Living_Light")) << reply.text;
  EXPECT_EQ(items.count("Presence"), 0u);
  EXPECT_EQ(items["Living_Light"]["commands"], true);
  EXPECT_EQ(items["Living_Light"]["accepts"], (json{"ON", "OFF"}));
  EXPECT_EQ(items["Living_TV_Power"]["commands"], false) << "read-only";
  EXPECT_EQ(items["Living_Window"]["accepts"], json::array()) << "a Contact takes no command";
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

TEST(ConnectorCommandsE2e, AnOpenHabThatRefusesGets502WithItsAnswer) {
  ConnectorRig rig({"--tier", "S1"}, QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  Start(rig);
  ASSERT_EQ(rig.sim().Post("/sim/fail?status=500&path=/rest/items/Living_Light&count=1"), 200);
  const HttpReply reply = Invoke(rig, "command", json{{"item", "Living_Light"}, {"command", "ON"}});
  EXPECT_EQ(reply.body["status"], 502) << reply.text;
  const std::string message = reply.body["payload"].value("message", "");
  EXPECT_NE(message.find("openHAB answered 500"), std::string::npos) << reply.text;
  EXPECT_NE(message.find("simulated failure"), std::string::npos) << "openHAB's own words";
  EXPECT_EQ(SimState(rig, "Living_Light"), "OFF");
  // The next one goes through.
  const HttpReply next = Invoke(rig, "command", json{{"item", "Living_Light"}, {"command", "ON"}});
  EXPECT_EQ(next.body["status"], 200) << next.text << "\n" << rig.Log();
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

TEST(ConnectorCommandsE2e, AnOpenHabThatDoesNotAnswerGets504) {
  ConnectorRig rig({"--tier", "S1"}, QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  Start(rig, "\n[commands]\ntimeout = \"1s\"\n");
  ASSERT_EQ(rig.sim().Post("/sim/delay?ms=3000&path=/rest/items/Living_Light"), 200);
  const auto started = std::chrono::steady_clock::now();
  const HttpReply reply = Invoke(rig, "command", json{{"item", "Living_Light"}, {"command", "ON"}});
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(reply.body["status"], 504) << reply.text;
  EXPECT_LT(took, 2500ms) << "answered at the command timeout, not when openHAB answered";
  ASSERT_EQ(rig.sim().Post("/sim/delay?ms=0&path=/rest/items/Living_Light"), 200);
  // openHAB took it in the end: the 504 said it might.
  EXPECT_TRUE(WaitUntil([&] { return SimGot(rig, "Living_Light", "ON"); }, 10s));
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// Sends a cloud-to-device message to the connector's device through the emulator.
int SendC2d(ConnectorRig& rig, const std::string& id, const std::string& body,
            const json& properties = json::object()) {
  return rig.service()
      .Request("POST", "/emulator/devices/openhab/messages",
               json{{"body", body}, {"messageId", id}, {"properties", properties}})
      .status;
}

// The command-result message answering cloud-to-device message `id`, once it is in.
std::optional<HubMessage> ResultFor(ConnectorRig& rig, const std::string& id) {
  for (const auto& m : rig.Messages()) {
    if (m.kind == "command-result" && m.system_properties.value("correlation-id", "") == id) {
      return m;
    }
  }
  return std::nullopt;
}

TEST(ConnectorCommandsE2e, CloudToDeviceCommandsAreAnsweredWithACorrelatedResult) {
  ConnectorRig rig({"--tier", "S1"}, QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  Start(rig, "\n[commands]\ndeny = [\"Kitchen_*\"]\n");
  // A JSON body; a text body with the item as a property; and refusals of each kind.
  ASSERT_EQ(SendC2d(rig, "c2d-json", R"({"item":"Living_Light","command":"ON"})"), 202);
  ASSERT_EQ(SendC2d(rig, "c2d-text", "UP\n", json{{"item", "Living_Shutter"}}), 202);
  ASSERT_EQ(SendC2d(rig, "c2d-denied", R"({"item":"Kitchen_Light","command":"ON"})"), 202);
  ASSERT_EQ(SendC2d(rig, "c2d-invalid", R"({"item":"Living_Dimmer","command":"LOUDER"})"), 202);
  ASSERT_EQ(SendC2d(rig, "c2d-nothing", "ON"), 202);
  const std::map<std::string, int> expected = {{"c2d-json", 200},
                                               {"c2d-text", 200},
                                               {"c2d-denied", 403},
                                               {"c2d-invalid", 400},
                                               {"c2d-nothing", 400}};
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& [id, status] : expected) {
      if (!ResultFor(rig, id)) return false;
    }
    return true;
  })) << rig.Log();
  for (const auto& [id, status] : expected) {
    const HubMessage m = *ResultFor(rig, id);
    EXPECT_EQ(m.body.value("status", 0), status) << id << ": " << m.body_text;
    EXPECT_EQ(m.body.value("correlationId", ""), id);
    EXPECT_EQ(m.properties.value("kind", ""), "command-result");
    EXPECT_EQ(m.system_properties.value("content-type", ""), "application/json")
        << m.system_properties.dump();
  }
  std::vector<std::string> bodies;
  for (const auto& [id, status] : expected) bodies.push_back(ResultFor(rig, id)->body_text);
  EXPECT_TRUE(ValidateMessages(bodies));
  EXPECT_TRUE(SimGot(rig, "Living_Light", "ON"));
  EXPECT_TRUE(SimGot(rig, "Living_Shutter", "UP"));
  EXPECT_FALSE(SimGot(rig, "Kitchen_Light", "ON"));
  EXPECT_FALSE(SimGot(rig, "Living_Dimmer", "LOUDER"));
  // Audited under their path.
  int c2d = 0;
  for (const auto& r : Audit(rig)) c2d += r.path == "c2d" ? 1 : 0;
  EXPECT_EQ(c2d, 5);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

TEST(ConnectorCommandsE2e, PublishModeLeavesCloudToDeviceMessagesAtTheHub) {
  ConnectorRig rig({"--tier", "S1"}, QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  Start(rig, "", {});
  ASSERT_EQ(SendC2d(rig, "left-alone", R"({"item":"Living_Light","command":"ON"})"), 202);
  // A method's round trip on the same connection: a subscribed device would have been sent
  // the message before this request.
  EXPECT_EQ(Invoke(rig, "items", nullptr).body["status"], 405);
  EXPECT_FALSE(ResultFor(rig, "left-alone"));
  EXPECT_TRUE(SimCommands(rig).empty());
  // Still queued for the device at the hub (its sender's feedback will say it expired).
  const json stats = rig.Stats();
  EXPECT_EQ(stats["devices"]["openhab"].value("c2dQueued", -1), 1) << stats["devices"].dump();
  EXPECT_EQ(stats["devices"]["openhab"].value("c2dDelivered", -1), 0) << stats["devices"].dump();
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

}  // namespace
}  // namespace iothub::testing
