// The iothub-connector command line, run as a real child process.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/tiny_openhab.h"

namespace {

struct Output {
  int status = -1;
  std::string out;  // stdout and stderr
};

Output Connector(const std::string& args, const std::string& prefix = "") {
  const std::string command =
      prefix + std::string(IOTHUB_BIN_DIR) + "/iothub-connector " + args + " 2>&1";
  Output run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) run.out += buffer.data();
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

TEST(ConnectorCli, SasTokenMatchesTheReferenceVector) {
  // shared/reference/azure-iothub.md §2, last row of the table.
  const Output run = Connector(
      "sas-token --resource myhub.azure-devices.net/devices/dev1 "
      "--key AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= --expiry 1700000000");
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_EQ(run.out,
            "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev1&sig=i%2BYmMcSSZc4Kz"
            "Bi6ejz3l0iL%2B2sN0CE3q6vSm837h2g%3D&se=1700000000\n");
}

TEST(ConnectorCli, SasTokenWithPolicyAndTtl) {
  const Output run = Connector(
      "sas-token --resource myhub.azure-devices.net --key cGFzc3dvcmQ= "
      "--policy iothubowner --ttl 3600");
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_EQ(run.out.rfind("SharedAccessSignature sr=myhub.azure-devices.net&sig=", 0), 0u)
      << run.out;
  EXPECT_NE(run.out.find("&skn=iothubowner"), std::string::npos);
}

TEST(ConnectorCli, SasTokenRejectsBadInputWithoutEchoingTheKey) {
  const Output bad_key = Connector("sas-token --resource r --key 'secret!!' --ttl 60");
  EXPECT_EQ(bad_key.status, 2);
  EXPECT_NE(bad_key.out.find("not valid base64"), std::string::npos) << bad_key.out;
  EXPECT_EQ(bad_key.out.find("secret!!"), std::string::npos) << "the key is never printed";
  const Output no_lifetime = Connector("sas-token --resource r --key cGFzc3dvcmQ=");
  EXPECT_EQ(no_lifetime.status, 2);
  EXPECT_NE(no_lifetime.out.find("--ttl"), std::string::npos);
  const Output both = Connector("sas-token --resource r --key cGFzc3dvcmQ= --ttl 5 --expiry 5");
  EXPECT_NE(both.status, 0);
  const Output none = Connector("");
  EXPECT_NE(none.status, 0);
  EXPECT_NE(none.out.find("subcommand"), std::string::npos) << none.out;
}

}  // namespace

namespace {

using iothub::testing::TinyOpenHab;

// `inspect` against a small openHAB stand-in (tests/support/tiny_openhab.h).
TEST(ConnectorCli, InspectOncePrintsEveryItemTyped) {
  TinyOpenHab openhab;
  const Output run = Connector("inspect --once --token oh.test.token --openhab http://127.0.0.1:" +
                               std::to_string(openhab.port()));
  ASSERT_EQ(run.status, 0) << run.out;
  std::vector<nlohmann::json> items;
  std::istringstream lines(run.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("{")) items.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(items.size(), 3u) << run.out;
  const auto& temp = items[2];
  EXPECT_EQ(temp["name"], "LR_Temp");
  EXPECT_EQ(temp["value"]["kind"], "quantity");
  EXPECT_EQ(temp["value"]["unit"], "°C");
  EXPECT_EQ(temp["readOnly"], true);
  EXPECT_EQ(temp["azureiothub"]["value"], "telemetry");
  EXPECT_NE(run.out.find("openHAB 4.3.0"), std::string::npos) << run.out;
}

TEST(ConnectorCli, InspectFollowsChangesUntilStopped) {
  TinyOpenHab openhab;
  openhab.after_items = [&] { openhab.Change("Lamp", "ON", /*announce=*/true); };
  // `timeout` sends SIGTERM after 3 s; inspect stops cleanly then (timeout itself exits 124).
  const Output run = Connector(
      "inspect --token oh.test.token --openhab http://127.0.0.1:" + std::to_string(openhab.port()),
      "timeout -s TERM 3 ");
  EXPECT_EQ(run.status, 124) << run.out;
  std::vector<nlohmann::json> changes;
  std::istringstream lines(run.out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("{")) continue;
    auto json = nlohmann::json::parse(line);
    if (json.value("event", "") == "changed") changes.push_back(json);
  }
  ASSERT_EQ(changes.size(), 1u) << run.out;
  EXPECT_EQ(changes[0]["name"], "Lamp");
  EXPECT_EQ(changes[0]["state"], "ON");
  EXPECT_EQ(changes[0]["oldState"], "OFF");
  EXPECT_EQ(changes[0]["value"]["kind"], "onoff");
}

TEST(ConnectorCli, InspectExplainsBadUrlsAndUnreachableServers) {
  const Output bad = Connector("inspect --once --openhab ftp://x");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.out.find("--openhab must look like http://HOST[:PORT]"), std::string::npos);
  const Output down = Connector("inspect --once --openhab http://127.0.0.1:1");
  EXPECT_EQ(down.status, 1);
  EXPECT_NE(down.out.find("cannot reach openHAB at http://127.0.0.1:1"), std::string::npos)
      << down.out;
  TinyOpenHab openhab;
  const Output refused = Connector("inspect --once --token oh.wrong --openhab http://127.0.0.1:" +
                                   std::to_string(openhab.port()));
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.out.find("Invalid credentials"), std::string::npos) << refused.out;
}

}  // namespace
