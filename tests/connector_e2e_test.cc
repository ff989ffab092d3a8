// iothub-connector end to end: the real connector between the real openhab-sim and the real
// iothub-emulator, asserted from what the emulator recorded.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "support/connector_rig.h"

namespace iothub::testing {
namespace {

TEST(ConnectorE2e, SnapshotThenChangesReachTheHub) {
  ConnectorRig rig({"--tier", "S1"});
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + "[quota]\ntier = \"S1\"\n")) << rig.error();
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

}  // namespace
}  // namespace iothub::testing
