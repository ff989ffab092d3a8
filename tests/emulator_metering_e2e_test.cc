// End-to-end tests of what the real iothub-emulator bills, throttles and refuses (§5):
// tiers and units at start-up, a basic hub, the quota twin answer, bulk registry throttling.
// The unit-level rules are in hub_metering_test.cc.
#include <gtest/gtest.h>

#include <string>

#include "support/emulator_fixture.h"
#include "support/run_command.h"

namespace iothub::testing {
namespace {

std::string Emulator() { return std::string(IOTHUB_BIN_DIR) + "/iothub-emulator"; }

// Runs the emulator with `flags`, expecting it to refuse to start.
CommandOutput RefusedStart(const std::string& flags) {
  TempDir dir;
  return RunCommand(Emulator() + " --state-dir " + dir.path() + " --mqtt-port 0 --https-port 0 " +
                    flags + " 2>&1");
}

TEST(EmulatorTiers, UnitsOutsideTheTiersRangeAreAStartUpError) {
  const CommandOutput free2 = RefusedStart("--tier free --units 2");
  EXPECT_EQ(free2.status, 1);
  EXPECT_NE(free2.out.find("--units: tier free allows exactly 1 unit, not 2"), std::string::npos)
      << free2.out;
  const CommandOutput s3 = RefusedStart("--tier S3 --units 11");
  EXPECT_EQ(s3.status, 1);
  EXPECT_NE(s3.out.find("tier S3 allows 1 to 10 units, not 11"), std::string::npos) << s3.out;
  const CommandOutput b2 = RefusedStart("--tier B2 --units 201");
  EXPECT_NE(b2.out.find("tier B2 allows 1 to 200 units, not 201"), std::string::npos) << b2.out;
  const CommandOutput tier = RefusedStart("--tier P1");
  EXPECT_EQ(tier.status, 1);
  EXPECT_NE(tier.out.find("expected free, B1, B2, B3, S1, S2 or S3"), std::string::npos)
      << tier.out;
  const CommandOutput answer = RefusedStart("--quota-twin-answer timeout");
  EXPECT_EQ(answer.status, 1);
  EXPECT_NE(answer.out.find("--quota-twin-answer: unknown quota twin answer 'timeout'"),
            std::string::npos)
      << answer.out;
}

TEST(EmulatorTiers, ABasicHubTakesTelemetryAndRefusesTheRest) {
  TempDir dir;
  auto emulator = EmulatorProcess::Start(dir.path(), {"--tier", "B1", "--units", "200"});
  ASSERT_TRUE(emulator.ok()) << emulator.error().message;
  const EmulatorInfo& info = (*emulator)->info();
  ServiceClient service(info);
  DeviceClient device(info, "sensor", service.CreateDevice("sensor"));
  ASSERT_EQ(device.Connect(), 0);
  EXPECT_TRUE(device.Publish("devices/sensor/messages/events/", R"({"t":21})"));
  const Json stats = service.Request("GET", "/emulator/stats").body;
  EXPECT_EQ(stats["tier"], "B1");
  EXPECT_EQ(stats["quota"]["dailyMessages"], 400'000LL * 200);
  EXPECT_EQ(stats["quota"]["used"], 1);
  for (const auto& [method, path, body] :
       {std::tuple<std::string, std::string, Json>{"GET", "/twins/sensor", Json()},
        {"PATCH", "/twins/sensor", Json{{"tags", {{"a", 1}}}}},
        {"POST", "/twins/sensor/methods", Json{{"methodName", "m"}}},
        {"POST", "/emulator/devices/sensor/messages", Json{{"body", "x"}}}}) {
    const HttpReply r =
        body.is_null() ? service.Request(method, path) : service.Request(method, path, body);
    EXPECT_EQ(r.status, 403) << method << " " << path << ": " << r.text;
    EXPECT_NE(r.text.find("ErrorCode:OperationNotAvailableInCurrentTier"), std::string::npos)
        << r.text;
    EXPECT_EQ(r.body.value("errorCode", 0), 403010);
  }
  // A device that uses its twin on a basic hub is disconnected.
  device.Publish("$iothub/twin/GET/?$rid=1", "", 0);
  EXPECT_TRUE(device.WaitDisconnected());
}

TEST(EmulatorQuota, TwinRequestsAreAnswered403WhenAsked) {
  TempDir dir;
  auto emulator =
      EmulatorProcess::Start(dir.path(), {"--tier", "free", "--quota-twin-answer", "403"});
  ASSERT_TRUE(emulator.ok()) << emulator.error().message;
  const EmulatorInfo& info = (*emulator)->info();
  ServiceClient service(info);
  DeviceClient device(info, "meter", service.CreateDevice("meter"));
  ASSERT_EQ(device.Connect(), 0);
  ASSERT_EQ(device.Subscribe("$iothub/twin/res/#"), 1);
  const std::string payload(2048, 'x');  // 4 messages each: 2,000 use the day's 8,000
  for (int i = 0; i < 2000; ++i) device.PublishAsync("devices/meter/messages/events/", payload, 1);
  ASSERT_TRUE(device.WaitAcks(2000, 30s));
  ASSERT_TRUE(service.Request("GET", "/emulator/stats").body["quota"]["exhausted"].get<bool>());
  ASSERT_TRUE(device.Publish("$iothub/twin/GET/?$rid=42", "", 0));
  auto answer = device.WaitMessage(
      [](const ReceivedMessage& m) { return m.topic.rfind("$iothub/twin/res/", 0) == 0; });
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->topic, "$iothub/twin/res/403/?$rid=42");
  EXPECT_EQ(Json::parse(answer->payload)["errorCode"], 403002);
  EXPECT_TRUE(device.connected());
  // Telemetry still gets no PUBACK and a closed connection.
  EXPECT_FALSE(device.Publish("devices/meter/messages/events/", "one more"));
  EXPECT_TRUE(device.WaitDisconnected());
  EXPECT_EQ(service.Request("GET", "/emulator/stats").body["quota"]["used"], 8000);
}

TEST(EmulatorRegistry, BulkRequestsAreThrottledByTheirDevices) {
  TempDir dir;
  auto emulator = EmulatorProcess::Start(dir.path());  // S1, one unit: 100 operations a minute
  ASSERT_TRUE(emulator.ok()) << emulator.error().message;
  ServiceClient service((*emulator)->info());
  auto bulk = [&](int first, int count) {
    Json entries = Json::array();
    for (int i = first; i < first + count; ++i) {
      entries.push_back({{"id", "bulk-" + std::to_string(i)}, {"importMode", "create"}});
    }
    return service.Request("POST", "/devices", entries);
  };
  EXPECT_EQ(bulk(0, 60).status, 200);
  const HttpReply throttled = bulk(60, 60);  // 40 tokens left
  EXPECT_EQ(throttled.status, 429) << throttled.text;
  EXPECT_NE(throttled.text.find("ThrottlingException"), std::string::npos);
  EXPECT_EQ(service.Request("GET", "/devices/bulk-0").status, 200);
  EXPECT_EQ(bulk(60, 39).status, 200);
  EXPECT_EQ(service.Request("GET", "/devices/bulk-0").status, 429);
}

}  // namespace
}  // namespace iothub::testing
