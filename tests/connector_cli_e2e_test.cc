// iothub-connector's commands end to end (issue 10, "Acceptance", "Provisioning", "Running
// it"): the real connector, openhab-sim and iothub-emulator as child processes. Connection
// strings of each kind, a configuration error of each kind, `status` and `check` against a
// running rig, and secrets that must never appear anywhere.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "support/connector_rig.h"
#include "support/run_command.h"

namespace iothub::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr char kS1Budget[] = "[quota]\ntier = \"S1\"\n";

std::vector<std::string> S1Hub() { return {"--tier", "S1"}; }
std::vector<std::string> QuietSim(std::vector<std::string> extra = {}) {
  extra.insert(extra.end(), {"--speed", "0.001"});
  return extra;
}

// Runs `iothub-connector <args>` with stderr joined to stdout; `prefix` e.g. "timeout 5 ".
CommandOutput Connector(const std::string& args, const std::string& prefix = "") {
  return RunCommand(prefix + "'" + std::string(IOTHUB_BIN_DIR) + "/iothub-connector' " + args +
                    " 2>&1");
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  ::chmod(path.c_str(), 0600);
}

bool SnapshotArrived(ConnectorRig& rig, const std::string& device = "") {
  for (const auto& m : rig.Messages(device)) {
    if (m.kind == "snapshot" && m.body["items"].contains("Living_Light")) return true;
  }
  return false;
}

// "+" → "%2B" and so on: a key as a SAS token or URL would carry it.
std::string UrlEncoded(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

// ---- Connection strings ----------------------------------------------------------------

// The old add-on's iothubowner: the device is created (and found, never re-created, at the
// next start), and the log advises a smaller policy.
TEST(ConnectorCliE2e, IothubownerCreatesTheDeviceAndAdvisesASmallerPolicy) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_EQ(rig.service().Request("GET", "/devices/openhab").status, 404);
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return SnapshotArrived(rig, "openhab"); })) << rig.Log();
  const HttpReply device = rig.service().Request("GET", "/devices/openhab");
  ASSERT_EQ(device.status, 200);
  std::string log = rig.Log();
  EXPECT_NE(log.find("created the gateway device 'openhab'"), std::string::npos) << log;
  EXPECT_NE(log.find("iothubowner policy grants far more than the connector needs"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("registryReadWrite"), std::string::npos) << log;
  const json status = rig.Status();
  EXPECT_EQ(status["hub"].value("credential", ""), "policy iothubowner");
  EXPECT_NE(status["connector"]["warnings"].dump().find("registryReadWrite"), std::string::npos);
  // The key is cached in the store, readable by its owner only.
  struct stat cache {};
  ASSERT_EQ(::stat((rig.store_dir() + "/device-key.json").c_str(), &cache), 0);
  EXPECT_EQ(cache.st_mode & 0777, 0600u);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();

  // The next start finds the device: same identity, same key.
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return rig.DeviceStats().value("connects", 0) == 2; })) << rig.Log();
  log = rig.Log();
  EXPECT_NE(log.find("found the gateway device 'openhab'"), std::string::npos) << log;
  const HttpReply again = rig.service().Request("GET", "/devices/openhab");
  EXPECT_EQ(again.body.value("generationId", ""), device.body.value("generationId", ""));
  EXPECT_EQ(again.body["authentication"]["symmetricKey"]["primaryKey"],
            device.body["authentication"]["symmetricKey"]["primaryKey"]);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

TEST(ConnectorCliE2e, RegistryReadWritePolicyWorksWithoutAdvice) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_FALSE(rig.PolicyKey("registryReadWrite").empty());
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig(rig.PolicyConnectionString("registryReadWrite")) +
                                 kS1Budget))
      << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return SnapshotArrived(rig, "openhab"); })) << rig.Log();
  EXPECT_EQ(rig.service().Request("GET", "/devices/openhab").status, 200);
  EXPECT_EQ(rig.Status()["hub"].value("credential", ""), "policy registryReadWrite");
  EXPECT_EQ(rig.Log().find("grants far more"), std::string::npos) << rig.Log();
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// A device connection string needs no registry rights: it is used as it is.
TEST(ConnectorCliE2e, DeviceConnectionStringNeedsNoRegistry) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  const std::string key = rig.service().CreateDevice("home-gateway");
  const std::string connection_string =
      "HostName=" + rig.hub_info().host_name + ";DeviceId=home-gateway;SharedAccessKey=" + key;
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig(connection_string) + kS1Budget)) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return SnapshotArrived(rig, "home-gateway"); })) << rig.Log();
  EXPECT_EQ(rig.Status()["hub"].value("credential", ""), "device");
  EXPECT_EQ(rig.Status()["hub"].value("device_id", ""), "home-gateway");
  EXPECT_EQ(rig.service().Request("GET", "/devices/openhab").status, 404) << "nothing created";
  EXPECT_EQ(rig.Log().find(key), std::string::npos);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// A policy without registry rights cannot provision: a clear fatal error, exit 1.
TEST(ConnectorCliE2e, PolicyWithoutRegistryRightsIsAClearFatalError) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  const std::string key = rig.PolicyKey("service");
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig(rig.PolicyConnectionString("service")) + kS1Budget))
      << rig.error();
  const auto code = rig.WaitConnectorExit(20s);
  ASSERT_TRUE(code.has_value()) << "still running\n" << rig.Log();
  EXPECT_EQ(*code, 1) << rig.Log();
  const std::string log = rig.Log();
  // IoT Hub answers 401 to a policy without the rights as to a wrong key: both are named.
  EXPECT_NE(log.find("the hub refused the policy 'service'"), std::string::npos) << log;
  EXPECT_NE(log.find("lacks the registry read and write rights"), std::string::npos) << log;
  EXPECT_NE(log.find("registryReadWrite"), std::string::npos) << log;
  EXPECT_EQ(log.find(key), std::string::npos) << "the key is never printed";
  EXPECT_TRUE(rig.Messages().empty());
}

// A wrong key, of a policy or of a device: a clear error, a non-zero exit, the key never
// printed.
TEST(ConnectorCliE2e, WrongKeysAreClearErrorsAndNeverPrinted) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  const std::string wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk=";
  const std::string host = rig.hub_info().host_name;
  ASSERT_TRUE(rig.StartConnector(
      rig.BaseConfig("HostName=" + host +
                     ";SharedAccessKeyName=iothubowner;SharedAccessKey=" + wrong) +
      kS1Budget))
      << rig.error();
  auto code = rig.WaitConnectorExit(20s);
  ASSERT_TRUE(code.has_value()) << "still running with a wrong policy key\n" << rig.Log();
  EXPECT_EQ(*code, 1) << rig.Log();
  std::string log = rig.Log();
  EXPECT_NE(log.find("the hub refused the policy 'iothubowner'"), std::string::npos) << log;
  EXPECT_EQ(log.find(wrong), std::string::npos) << "the key is never printed";
  EXPECT_EQ(log.find(UrlEncoded(wrong)), std::string::npos);

  (void)rig.service().CreateDevice("home-gateway");
  std::remove(rig.log_path().c_str());
  ASSERT_TRUE(rig.StartConnector(
      rig.BaseConfig("HostName=" + host + ";DeviceId=home-gateway;SharedAccessKey=" + wrong) +
      kS1Budget))
      << rig.error();
  code = rig.WaitConnectorExit(20s);
  ASSERT_TRUE(code.has_value()) << "still running with a wrong device key\n" << rig.Log();
  EXPECT_EQ(*code, 1) << rig.Log();
  log = rig.Log();
  EXPECT_NE(log.find("the hub refused device 'home-gateway'"), std::string::npos) << log;
  EXPECT_NE(log.find("check the key in [iothub] connection_string"), std::string::npos) << log;
  EXPECT_EQ(log.find(wrong), std::string::npos) << "the key is never printed";
  EXPECT_EQ(log.find(UrlEncoded(wrong)), std::string::npos);
  EXPECT_TRUE(rig.Messages().empty());
}

// ---- Configuration errors ----------------------------------------------------------------

// One bad value of each kind, through the real binary: exit 2, a message naming the file and
// the key, and no secret in the output.
TEST(ConnectorCliE2e, EachKindOfBadValueExitsTwoNamingTheFileAndKey) {
  TempDir dir;
  const std::string secret_key = "U2VjcmV0S2V5VGhhdE11c3ROb3RMZWFrMDEyMzQ1Njc=";
  const std::string token = "oh.e2etoken.NotToBePrinted0123456789";
  const std::string file = dir.path() + "/connector.toml";
  const std::string base =
      "[openhab]\n"
      "url = \"http://127.0.0.1:9\"\n"
      "token = \"" +
      token +
      "\"\n"
      "items = [\"*\"]\n"
      "[iothub]\n"
      "connection_string = \"HostName=hub.invalid;SharedAccessKeyName=iothubowner;"
      "SharedAccessKey=" +
      secret_key +
      "\"\n"
      "mode = \"publish\"\n"
      "[quota]\n"
      "tier = \"S1\"\n"
      "[store]\n"
      "dir = \"" +
      dir.path() +
      "/store\"\n"
      "max_bytes = \"64MiB\"\n"
      "[metrics]\n"
      "listen = \"127.0.0.1:0\"\n"
      "[[item]]\n"
      "match = \"*\"\n"
      "min_interval = \"10s\"\n"
      "deadband = \"5 %\"\n";
  // The base itself is valid: it gets past the configuration (and fails later, or runs).
  WriteFile(file, base);
  const CommandOutput valid = Connector("run --config '" + file + "'", "timeout 3 ");
  EXPECT_NE(valid.status, 2) << valid.out;
  EXPECT_EQ(valid.out.find("configuration errors"), std::string::npos) << valid.out;

  struct Case {
    std::string what;
    std::string line;                   // in the base
    std::string replacement;            // what it becomes
    std::vector<std::string> expected;  // in the message besides the file
  };
  const std::vector<Case> cases = {
      {"bad URL",
       "url = \"http://127.0.0.1:9\"",
       "url = \"ftp://openhab.local\"",
       {"[openhab] url", "http://HOST"}},
      {"bad connection string",
       "SharedAccessKeyName=iothubowner;",
       "",
       {"[iothub] connection_string", "SharedAccessKeyName"}},
      {"unknown key", "items = [\"*\"]", "itmes = [\"*\"]", {"itmes", "did you mean 'items'"}},
      {"bad tier", "tier = \"S1\"", "tier = \"S4\"", {"[quota] tier", "S4"}},
      {"bad duration",
       "min_interval = \"10s\"",
       "min_interval = \"10 parsecs\"",
       {"min_interval", "duration"}},
      {"bad deadband", "deadband = \"5 %\"", "deadband = \"lots\"", {"deadband", "percentage"}},
      {"bad pattern",
       "items = [\"*\"]",
       "items = [\"Living-Light\"]",
       {"[openhab] items", "Living-Light"}},
      {"bad byte size",
       "max_bytes = \"64MiB\"",
       "max_bytes = \"64 potatoes\"",
       {"[store] max_bytes"}},
      {"bad listen address",
       "listen = \"127.0.0.1:0\"",
       "listen = \"127.0.0.1:99999\"",
       {"[metrics] listen"}},
      {"bad mode", "mode = \"publish\"", "mode = \"subscribe\"", {"[iothub] mode"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    std::string toml = base;
    const std::size_t at = toml.find(c.line);
    ASSERT_NE(at, std::string::npos);
    toml.replace(at, c.line.size(), c.replacement);
    WriteFile(file, toml);
    const CommandOutput run = Connector("run --config '" + file + "'", "timeout 20 ");
    EXPECT_EQ(run.status, 2) << run.out;
    EXPECT_NE(run.out.find(file), std::string::npos) << "names the file:\n" << run.out;
    for (const auto& text : c.expected) {
      EXPECT_NE(run.out.find(text), std::string::npos) << text << " in:\n" << run.out;
    }
    EXPECT_EQ(run.out.find(secret_key), std::string::npos) << run.out;
    EXPECT_EQ(run.out.find(token), std::string::npos) << run.out;
    // `check` reads the same configuration the same way.
    const CommandOutput check = Connector("check --config '" + file + "'", "timeout 20 ");
    EXPECT_EQ(check.status, 2) << check.out;
    EXPECT_EQ(check.out.find(secret_key), std::string::npos) << check.out;
  }
  // A flag names itself.
  WriteFile(file, base);
  const CommandOutput flag =
      Connector("run --config '" + file + "' --set quota.tier=S9", "timeout 20 ");
  EXPECT_EQ(flag.status, 2) << flag.out;
  EXPECT_NE(flag.out.find("quota.tier"), std::string::npos) << flag.out;
  EXPECT_EQ(flag.out.find(secret_key), std::string::npos) << flag.out;
}

// ---- status and check ----------------------------------------------------------------

// `check` against the rig lists what would be replicated, exits 0, and sends nothing billable;
// `status` against the running connector prints its key figures.
TEST(ConnectorCliE2e, CheckSendsNothingAndStatusPrintsTheKeyFigures) {
  ConnectorRig rig(S1Hub(), QuietSim());
  ASSERT_TRUE(rig.ok()) << rig.error();
  WriteFile(rig.config_path(), rig.BaseConfig() + kS1Budget);
  const CommandOutput check =
      Connector("check --observe 1 --config '" + rig.config_path() + "'", "timeout 60 ");
  EXPECT_EQ(check.status, 0) << check.out;
  EXPECT_NE(check.out.find("configuration: ok"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("53 items, 47 replicated"), std::string::npos) << check.out;
  for (const char* item : {"Living_Temperature", "Living_Light", "gPower", "Home_Location"}) {
    EXPECT_NE(check.out.find(item), std::string::npos) << item << " in:\n" << check.out;
  }
  EXPECT_EQ(check.out.find("gHome "), std::string::npos) << "a plain group is not replicated";
  EXPECT_NE(check.out.find("does not exist yet"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("check: ok"), std::string::npos) << check.out;
  // With a device connection string it connects and sends nothing.
  const std::string key = rig.service().CreateDevice("checked");
  WriteFile(rig.config_path(), rig.BaseConfig("HostName=" + rig.hub_info().host_name +
                                              ";DeviceId=checked;SharedAccessKey=" + key) +
                                   kS1Budget);
  const CommandOutput device_check = Connector(
      "check --observe 0 --quiet-items --config '" + rig.config_path() + "'", "timeout 60 ");
  EXPECT_EQ(device_check.status, 0) << device_check.out;
  EXPECT_NE(device_check.out.find("device 'checked' connected"), std::string::npos)
      << device_check.out;
  EXPECT_EQ(device_check.out.find(key), std::string::npos);
  // Nothing billable: no telemetry, no twin read, no device created.
  const json quota = rig.Stats()["quota"];
  EXPECT_EQ(quota.value("used", -1), 0) << quota;
  EXPECT_EQ(rig.DeviceStats("checked").value("connects", 0), 1);
  EXPECT_EQ(rig.DeviceStats("checked").value("d2cMessages", -1), 0);
  EXPECT_EQ(rig.service().Request("GET", "/devices/openhab").status, 404);
  EXPECT_TRUE(rig.Messages().empty());

  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + kS1Budget)) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return SnapshotArrived(rig); })) << rig.Log();
  ASSERT_TRUE(WaitUntil([&] {
    const json now = rig.Status();
    return now["telemetry"].value("messages_delivered", 0) >= 2 &&
           now["twin"].value("patches_sent", 0) >= 1;
  }));
  const std::string url = "http://" + rig.metrics_address();
  const CommandOutput status = Connector("status --url " + url, "timeout 20 ");
  EXPECT_EQ(status.status, 0) << status.out;
  for (const char* figure :
       {"iothub-connector", "publish mode", "openHAB", "stream      up", "53 known, 47 selected",
        "IoT Hub", "device openhab", "connected", "Budget", "S1 tier", "Telemetry", "delivered",
        "Outbox", "Twin", "Items"}) {
    EXPECT_NE(status.out.find(figure), std::string::npos) << figure << " in:\n" << status.out;
  }
  const CommandOutput json_status = Connector("status --json --url " + url, "timeout 20 ");
  EXPECT_EQ(json_status.status, 0) << json_status.out;
  const json parsed = json::parse(json_status.out, nullptr, false);
  ASSERT_TRUE(parsed.is_object()) << json_status.out;
  EXPECT_EQ(parsed["hub"].value("session_state", ""), "connected");
  EXPECT_GT(parsed["twin"].value("last_patch_ms", std::int64_t{0}), 0) << parsed["twin"];
  const std::size_t twin_line = status.out.find("\nTwin ");
  ASSERT_NE(twin_line, std::string::npos) << status.out;
  EXPECT_EQ(status.out.substr(twin_line, status.out.find('\n', twin_line + 1) - twin_line)
                .find("last never"),
            std::string::npos)
      << status.out;
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
  // A connector that is not there: a clear error, non-zero.
  const CommandOutput gone = Connector("status --url " + url, "timeout 20 ");
  EXPECT_NE(gone.status, 0) << gone.out;
}

// ---- Secrets ----------------------------------------------------------------------------

// After a full run, a failing run and the commands, none of the secrets appears in the log,
// the status JSON, the metrics, the commands' output or what reached the hub.
TEST(ConnectorCliE2e, SecretsNeverAppear) {
  const std::string token = "oh.admin.SecretsE2eToken0123456789abcdef";
  ConnectorRig rig(S1Hub(), QuietSim({"--token", token}));
  ASSERT_TRUE(rig.ok()) << rig.error();
  const std::string policy_key = rig.PolicyKey("iothubowner");
  const std::string wrong_key = "QW5vdGhlcldyb25nS2V5Rm9yVGhlU2VjcmV0c1Rlc3Q=";
  std::string seen;  // everything the connector said or served

  // A failing run: a wrong key.
  ASSERT_TRUE(rig.StartConnector(
      rig.BaseConfig("HostName=" + rig.hub_info().host_name +
                         ";SharedAccessKeyName=iothubowner;SharedAccessKey=" + wrong_key,
                     "token = \"" + token + "\"\n") +
      kS1Budget))
      << rig.error();
  ASSERT_TRUE(rig.WaitConnectorExit(20s).has_value()) << rig.Log();

  // A full run, with debug logging.
  const std::string config = rig.BaseConfig("", "token = \"" + token + "\"\n") + kS1Budget;
  ASSERT_TRUE(rig.StartConnector(config, {"--log-level", "debug"})) << rig.error();
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& m : rig.Messages()) {
      if (m.kind == "things") return SnapshotArrived(rig);
    }
    return false;
  })) << rig.Log();
  ASSERT_EQ(rig.sim().Post("/sim/items/Living_Light/state", "ON"), 200);
  ASSERT_EQ(rig.sim().Post("/sim/restart?downtime_ms=500"), 200);  // errors and a resync
  ASSERT_TRUE(WaitUntil([&] { return rig.Status()["openhab"].value("resyncs", 0) >= 1; }))
      << rig.Log();
  seen += rig.Status().dump();
  seen += rig.Metrics();
  const std::string url = "http://" + rig.metrics_address();
  seen += Connector("status --url " + url, "timeout 20 ").out;
  seen += Connector("status --json --url " + url, "timeout 20 ").out;
  seen += Connector("check --observe 0 --config '" + rig.config_path() + "'", "timeout 60 ").out;
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
  seen += rig.Log();
  for (const auto& m : rig.Messages()) seen += m.body_text + m.properties.dump();
  seen += rig.Twin().dump();

  // The device's key, as the registry and the store's cache have it.
  const std::string device_key = rig.service()
                                     .Request("GET", "/devices/openhab")
                                     .body["authentication"]["symmetricKey"]
                                     .value("primaryKey", "");
  ASSERT_FALSE(device_key.empty());
  EXPECT_NE(ReadFile(rig.store_dir() + "/device-key.json").find(device_key), std::string::npos);
  ASSERT_GT(seen.size(), 10'000u);
  for (const std::string& secret : {policy_key, wrong_key, device_key, token}) {
    EXPECT_EQ(seen.find(secret), std::string::npos) << "a secret appears: " << secret;
    EXPECT_EQ(seen.find(UrlEncoded(secret)), std::string::npos) << UrlEncoded(secret);
  }
  EXPECT_EQ(seen.find("SharedAccessKey="), std::string::npos);
}

}  // namespace
}  // namespace iothub::testing
