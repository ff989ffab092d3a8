// The iothub-connector command line, run as a real child process.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/openhab_sim_fixture.h"
#include "support/run_command.h"

namespace {

using Output = iothub::testing::CommandOutput;

// Runs iothub-connector with `args` (after `prefix`, e.g. `timeout 3 `); stderr included.
Output Connector(const std::string& args, const std::string& prefix = "") {
  return iothub::testing::RunCommand(prefix + std::string(IOTHUB_BIN_DIR) + "/iothub-connector " +
                                     args + " 2>&1");
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

using iothub::testing::SimProcess;

std::vector<nlohmann::json> JsonLines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("{")) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

std::string Url(const SimProcess& sim) { return "http://127.0.0.1:" + std::to_string(sim.port()); }

// `inspect` against the real openhab-sim with API tokens required.
TEST(ConnectorCli, InspectOncePrintsEveryItemTypedAndThingsForAnAdmin) {
  auto sim = SimProcess::Start(
      {"--token", "oh.admin.t0k3n", "--user-token", "oh.test.token", "--no-implicit-user"});
  ASSERT_TRUE(sim.ok()) << sim.error().message;
  const Output run = Connector("inspect --once --token oh.test.token --openhab " + Url(**sim));
  ASSERT_EQ(run.status, 0) << run.out;
  const auto items = JsonLines(run.out);
  ASSERT_EQ(items.size(), (*sim)->ready()["items"].get<std::size_t>()) << run.out;
  const auto temp = std::find_if(items.begin(), items.end(), [](const auto& item) {
    return item["name"] == "Living_Temperature";
  });
  ASSERT_NE(temp, items.end());
  EXPECT_EQ((*temp)["value"]["kind"], "quantity");
  EXPECT_EQ((*temp)["value"]["unit"], "°C");
  EXPECT_EQ((*temp)["readOnly"], true);
  EXPECT_EQ((*temp)["azureiothub"]["value"], "telemetry");
  EXPECT_NE(run.out.find("openHAB 4.3.0"), std::string::npos) << run.out;
  for (const auto& [name, kind] :
       std::map<std::string, std::string>{{"House_Energy", "quantity"},
                                          {"Living_Color", "hsb"},
                                          {"Home_Location", "point"},
                                          {"Entrance_Doorbell", "datetime"},
                                          {"Living_Player", "playpause"}}) {
    const auto it = std::find_if(items.begin(), items.end(),
                                 [&](const auto& item) { return item["name"] == name; });
    ASSERT_NE(it, items.end()) << name;
    EXPECT_EQ((*it)["value"]["kind"], kind) << name;
  }

  const Output admin = Connector(
      "inspect --once --things --auth header --token oh.admin.t0k3n "
      "--openhab " +
      Url(**sim));
  ASSERT_EQ(admin.status, 0) << admin.out;
  std::size_t things = 0;
  std::size_t links = 0;
  for (const auto& line : JsonLines(admin.out)) {
    things += line.contains("thing") ? 1 : 0;
    links += line.contains("link") ? 1 : 0;
  }
  EXPECT_EQ(things, 4u) << admin.out;
  EXPECT_EQ(links, 5u) << admin.out;
  // A USER token asking for things is told an admin token is needed; inspect fails.
  const Output user =
      Connector("inspect --once --things --token oh.test.token --openhab " + Url(**sim));
  EXPECT_EQ(user.status, 1) << user.out;
  EXPECT_NE(user.out.find("403"), std::string::npos) << user.out;
}

TEST(ConnectorCli, InspectFollowsChangesUntilStopped) {
  const std::string trace = ::testing::TempDir() + "/cli_trace_" + std::to_string(::getpid());
  {
    std::ofstream out(trace);
    out << R"({"openhab-trace":1})"
        << "\n"
        << R"({"t":1.5,"item":"Living_Window","state":"OPEN"})"
        << "\n";
  }
  auto sim = SimProcess::Start({"--trace", trace});
  ASSERT_TRUE(sim.ok()) << sim.error().message;
  // `timeout` sends SIGTERM after 4 s; inspect stops cleanly then (timeout itself exits 124).
  const Output run = Connector("inspect --openhab " + Url(**sim), "timeout -s TERM 4 ");
  std::remove(trace.c_str());
  EXPECT_EQ(run.status, 124) << run.out;
  std::vector<nlohmann::json> changes;
  for (const auto& json : JsonLines(run.out)) {
    if (json.value("event", "") == "changed" && json["name"] == "Living_Window") {
      changes.push_back(json);
    }
  }
  ASSERT_EQ(changes.size(), 1u) << run.out;
  EXPECT_EQ(changes[0]["state"], "OPEN");
  EXPECT_EQ(changes[0]["oldState"], "CLOSED");
  EXPECT_EQ(changes[0]["value"]["kind"], "openclosed");
}

TEST(ConnectorCli, InspectExplainsBadUrlsAndUnreachableServers) {
  const Output bad = Connector("inspect --once --openhab ftp://x");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.out.find("--openhab: the openHAB URL must look like http://HOST[:PORT]"),
            std::string::npos)
      << bad.out;
  const Output down = Connector("inspect --once --openhab http://127.0.0.1:1");
  EXPECT_EQ(down.status, 1);
  EXPECT_NE(down.out.find("cannot reach openHAB at http://127.0.0.1:1"), std::string::npos)
      << down.out;
  auto sim = SimProcess::Start({"--token", "oh.admin.t0k3n"});
  ASSERT_TRUE(sim.ok()) << sim.error().message;
  const Output refused = Connector("inspect --once --token oh.wrong --openhab " + Url(**sim));
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.out.find("Invalid credentials"), std::string::npos) << refused.out;
  EXPECT_EQ(refused.out.find("oh.wrong"), std::string::npos) << "the token is never printed";
}

}  // namespace
