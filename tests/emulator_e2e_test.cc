// End-to-end tests of the real iothub-emulator: the launcher, mosquitto with the plugin,
// TLS, the HTTPS API, driven by libmosquitto devices and an HTTPS service client.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "support/emulator_fixture.h"

namespace iothub::testing {
namespace {

class EmulatorE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto started = EmulatorProcess::Start(dir_->path());
    ASSERT_TRUE(started.ok()) << started.error().message;
    emulator_ = std::move(started).value().release();
  }
  static void TearDownTestSuite() {
    delete emulator_;
    delete dir_;
  }
  const EmulatorInfo& info() { return emulator_->info(); }
  // A device id unique to this test.
  std::string Id(const std::string& suffix = "") {
    return std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + suffix;
  }

  static TempDir* dir_;
  static EmulatorProcess* emulator_;
};
TempDir* EmulatorE2E::dir_ = nullptr;
EmulatorProcess* EmulatorE2E::emulator_ = nullptr;

bool TopicStartsWith(const ReceivedMessage& m, const std::string& prefix) {
  return m.topic.rfind(prefix, 0) == 0;
}

TEST_F(EmulatorE2E, ReadyLineDescribesAWorkingHub) {
  EXPECT_EQ(info().host_name, "localhost");
  EXPECT_GT(info().mqtt_port, 0);
  EXPECT_GT(info().https_port, 0);
  EXPECT_NE(info().service_connection_string.find("SharedAccessKeyName=iothubowner"),
            std::string::npos);
  ServiceClient service(info());
  EXPECT_EQ(service.Request("GET", "/devices/?api-version=2021-04-12").status, 200);
}

TEST_F(EmulatorE2E, TelemetryWithPropertiesIsStoredWithHubStamps) {
  ServiceClient service(info());
  const std::string id = Id();
  DeviceClient device(info(), id, service.CreateDevice(id));
  ASSERT_EQ(device.Connect(), 0);
  ASSERT_TRUE(device.Publish(
      "devices/" + id +
          "/messages/events/"
          "%24.mid=m-1&%24.ct=application%2Fjson&%24.ce=utf-8&alert=hot%20%26%20humid",
      R"({"t":21.5})"));
  ASSERT_TRUE(
      device.Publish("devices/" + id + "/messages/events/$.mid=m-2&plain=1", "two", 1, true));
  auto reply = service.Request("GET", "/emulator/messages?deviceId=" + id);
  ASSERT_EQ(reply.status, 200) << reply.text;
  const auto& messages = reply.body["messages"];
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0]["body"], R"({"t":21.5})");
  EXPECT_EQ(messages[0]["properties"]["alert"], "hot & humid");
  EXPECT_EQ(messages[0]["systemProperties"]["message-id"], "m-1");
  EXPECT_EQ(messages[0]["systemProperties"]["content-type"], "application/json");
  EXPECT_EQ(messages[0]["systemProperties"]["content-encoding"], "utf-8");
  EXPECT_EQ(messages[0]["systemProperties"]["iothub-connection-device-id"], id);
  EXPECT_TRUE(messages[0]["systemProperties"].contains("iothub-enqueuedtime"));
  EXPECT_EQ(messages[1]["systemProperties"]["message-id"], "m-2");
  EXPECT_EQ(messages[1]["properties"]["mqtt-retain"], "true");
  // `since` returns only newer messages.
  auto later = service.Request("GET", "/emulator/messages?deviceId=" + id + "&since=" +
                                          std::to_string(messages[0]["seq"].get<int>()));
  ASSERT_EQ(later.body["messages"].size(), 1u);
  EXPECT_EQ(later.body["messages"][0]["body"], "two");
}

TEST_F(EmulatorE2E, WrongKeyUnknownDeviceAndWrongHostAreRefusedWithConnack5) {
  ServiceClient service(info());
  const std::string id = Id();
  const std::string key = service.CreateDevice(id);
  DeviceClient wrong_key(info(), id, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  EXPECT_EQ(wrong_key.Connect(), 5);
  DeviceClient unknown(info(), id + "-nope", key);
  EXPECT_EQ(unknown.Connect(), 5);
  DeviceClient::Options wrong_host;
  wrong_host.username = "otherhub.azure-devices.net/" + id + "/?api-version=2021-04-12";
  DeviceClient other(info(), id, key, wrong_host);
  EXPECT_EQ(other.Connect(), 5);
  DeviceClient::Options garbage;
  garbage.password = "SharedAccessSignature sr=&&&";
  DeviceClient bad_token(info(), id, key, garbage);
  EXPECT_EQ(bad_token.Connect(), 5);
  DeviceClient ok(info(), id, key);
  EXPECT_EQ(ok.Connect(), 0);
}

TEST_F(EmulatorE2E, ForeignTopicsAndQos2CloseTheConnection) {
  ServiceClient service(info());
  const std::string id = Id();
  const std::string key = service.CreateDevice(id);
  // A fresh client per step: libmosquitto would resend an unacknowledged PUBLISH on reconnect.
  {
    DeviceClient device(info(), id, key);
    ASSERT_EQ(device.Connect(), 0);
    EXPECT_EQ(device.Subscribe("$iothub/methods/POST/#", 2), 1)
        << "QoS 2 subscriptions are granted 1";
  }
  {
    DeviceClient device(info(), id, key);
    ASSERT_EQ(device.Connect(), 0);
    EXPECT_FALSE(device.Publish("devices/someone-else/messages/events/", "x"));
    EXPECT_TRUE(device.WaitDisconnected());
  }
  {
    DeviceClient device(info(), id, key);
    ASSERT_EQ(device.Connect(), 0);
    EXPECT_EQ(device.Subscribe("devices/someone-else/messages/devicebound/#"), -1);
    EXPECT_TRUE(device.WaitDisconnected());
  }
  {
    DeviceClient device(info(), id, key);
    ASSERT_EQ(device.Connect(), 0);
    EXPECT_FALSE(device.Publish("devices/" + id + "/messages/events/", "x", 2));
    EXPECT_TRUE(device.WaitDisconnected());
  }
  auto stored = service.Request("GET", "/emulator/messages?deviceId=" + id);
  EXPECT_EQ(stored.body["messages"].size(), 0u);
}

TEST_F(EmulatorE2E, AWillOnAnotherDevicesTopicIsDropped) {
  ServiceClient service(info());
  const std::string victim_id = Id("-victim");
  DeviceClient victim(info(), victim_id, service.CreateDevice(victim_id));
  ASSERT_EQ(victim.Connect(), 0);
  ASSERT_EQ(victim.Subscribe("$iothub/methods/POST/#", 0), 0);
  const std::string id = Id();
  DeviceClient::Options forger;
  forger.will_topic = "$iothub/methods/POST/reboot/?$rid=evil";
  DeviceClient device(info(), id, service.CreateDevice(id), forger);
  ASSERT_EQ(device.Connect(), 0);
  EXPECT_FALSE(device.Publish("not/allowed", "x"));  // closed: the broker sends the will now
  EXPECT_TRUE(device.WaitDisconnected());
  EXPECT_FALSE(victim.WaitMessage([](auto&) { return true; }, 500ms))
      << "a will may only use the device's own telemetry topic";
}

TEST_F(EmulatorE2E, SecondConnectionDropsTheFirst) {
  ServiceClient service(info());
  const std::string id = Id();
  const std::string key = service.CreateDevice(id);
  DeviceClient first(info(), id, key);
  DeviceClient second(info(), id, key);
  ASSERT_EQ(first.Connect(), 0);
  ASSERT_EQ(second.Connect(), 0);
  EXPECT_TRUE(first.WaitDisconnected());
  EXPECT_TRUE(second.connected());
  EXPECT_TRUE(second.Publish("devices/" + id + "/messages/events/", "still here"));
}

TEST_F(EmulatorE2E, TwinGetPatchAndDesiredPush) {
  ServiceClient service(info());
  const std::string id = Id();
  DeviceClient device(info(), id, service.CreateDevice(id));
  ASSERT_EQ(device.Connect(), 0);
  ASSERT_EQ(device.Subscribe("$iothub/twin/res/#", 0), 0);
  ASSERT_EQ(device.Subscribe("$iothub/twin/PATCH/properties/desired/#", 0), 0);
  ASSERT_TRUE(device.Publish("$iothub/twin/PATCH/properties/reported/?$rid=r1",
                             R"({"temp":21,"fw":"1.0"})", 0));
  auto patched =
      device.WaitMessage([](auto& m) { return m.topic.find("$rid=r1") != std::string::npos; });
  ASSERT_TRUE(patched);
  EXPECT_EQ(patched->topic, "$iothub/twin/res/204/?$rid=r1&$version=2");

  auto set = service.Request("PATCH", "/twins/" + id + "?api-version=2021-04-12",
                             Json{{"properties", {{"desired", {{"interval", 5}}}}}});
  ASSERT_EQ(set.status, 200) << set.text;
  EXPECT_EQ(set.body["properties"]["reported"]["temp"], 21);
  auto pushed = device.WaitMessage(
      [](auto& m) { return TopicStartsWith(m, "$iothub/twin/PATCH/properties/desired/"); });
  ASSERT_TRUE(pushed);
  EXPECT_EQ(pushed->topic, "$iothub/twin/PATCH/properties/desired/?$version=2");
  EXPECT_EQ(Json::parse(pushed->payload), (Json{{"interval", 5}, {"$version", 2}}));

  ASSERT_TRUE(device.Publish("$iothub/twin/GET/?$rid=g1", "", 0));
  auto twin =
      device.WaitMessage([](auto& m) { return m.topic.find("$rid=g1") != std::string::npos; });
  ASSERT_TRUE(twin);
  EXPECT_EQ(twin->topic, "$iothub/twin/res/200/?$rid=g1");
  const Json doc = Json::parse(twin->payload);
  EXPECT_EQ(doc["desired"]["interval"], 5);
  EXPECT_EQ(doc["reported"]["fw"], "1.0");

  ASSERT_TRUE(device.Publish("$iothub/twin/PATCH/properties/reported/?$rid=bad", "{not json", 0));
  auto bad =
      device.WaitMessage([](auto& m) { return m.topic.find("$rid=bad") != std::string::npos; });
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->topic, "$iothub/twin/res/400/?$rid=bad");
  EXPECT_TRUE(Json::parse(bad->payload).contains("errorCode"));
}

TEST_F(EmulatorE2E, DirectMethodRoundTripAndOfflineAndTimeout) {
  ServiceClient service(info());
  const std::string id = Id();
  DeviceClient device(info(), id, service.CreateDevice(id));
  auto offline = service.Request("POST", "/twins/" + id + "/methods?api-version=2021-04-12",
                                 Json{{"methodName", "reboot"}, {"responseTimeoutInSeconds", 5}});
  EXPECT_EQ(offline.status, 404);
  EXPECT_NE(offline.text.find("DeviceNotOnline"), std::string::npos) << offline.text;

  ASSERT_EQ(device.Connect(), 0);
  ASSERT_EQ(device.Subscribe("$iothub/methods/POST/#", 0), 0);
  std::atomic<bool> stop{false};
  std::thread responder([&] {
    while (!stop) {
      auto req = device.WaitMessage(
          [](auto& m) { return TopicStartsWith(m, "$iothub/methods/POST/"); }, 200ms);
      if (!req) continue;
      const auto rid = req->topic.substr(req->topic.find("$rid=") + 5);
      if (req->topic.find("/slow/") != std::string::npos) continue;  // never answered
      device.Publish("$iothub/methods/res/201/?$rid=" + rid, R"({"echo":)" + req->payload + "}", 0);
    }
  });
  auto answered = service.Request(
      "POST", "/twins/" + id + "/methods?api-version=2021-04-12",
      Json{{"methodName", "echo"}, {"payload", {{"x", 1}}}, {"responseTimeoutInSeconds", 5}});
  EXPECT_EQ(answered.status, 200) << answered.text;
  EXPECT_EQ(answered.body["status"], 201);
  EXPECT_EQ(answered.body["payload"]["echo"]["x"], 1);
  const auto start = std::chrono::steady_clock::now();
  auto timeout = service.Request("POST", "/twins/" + id + "/methods?api-version=2021-04-12",
                                 Json{{"methodName", "slow"}, {"responseTimeoutInSeconds", 5}});
  EXPECT_EQ(timeout.status, 504) << timeout.text;
  EXPECT_GE(std::chrono::steady_clock::now() - start, 4900ms);
  auto invalid = service.Request("POST", "/twins/" + id + "/methods?api-version=2021-04-12",
                                 Json{{"methodName", "echo"}, {"responseTimeoutInSeconds", 1}});
  EXPECT_EQ(invalid.status, 400);
  stop = true;
  responder.join();
}

TEST_F(EmulatorE2E, CloudToDeviceQueuedWhileOfflineArrivesAfterReconnectWithPersistentSession) {
  ServiceClient service(info());
  const std::string id = Id();
  const std::string key = service.CreateDevice(id);
  {
    DeviceClient device(info(), id, key);
    ASSERT_EQ(device.Connect(), 0);
    ASSERT_EQ(device.Subscribe("devices/" + id + "/messages/devicebound/#", 1), 1);
    auto sent = service.Request(
        "POST", "/emulator/devices/" + id + "/messages",
        Json{{"body", "on"}, {"properties", {{"color", "blue/green"}}}, {"messageId", "c2d-1"}});
    ASSERT_EQ(sent.status, 202) << sent.text;
    auto got = device.WaitMessage(
        [](auto& m) { return m.topic.find("devicebound") != std::string::npos; });
    ASSERT_TRUE(got);
    EXPECT_EQ(got->payload, "on");
    EXPECT_EQ(got->qos, 1);
    EXPECT_NE(got->topic.find("%24.mid=c2d-1"), std::string::npos) << got->topic;
    EXPECT_NE(got->topic.find("color=blue%2Fgreen"), std::string::npos) << got->topic;
    EXPECT_NE(got->topic.find("%24.to=%2Fdevices%2F" + id + "%2Fmessages%2Fdevicebound"),
              std::string::npos);
  }
  ASSERT_EQ(
      service.Request("POST", "/emulator/devices/" + id + "/messages", Json{{"body", "while away"}})
          .status,
      202);
  DeviceClient again(info(), id, key);  // CleanSession=0: no new SUBSCRIBE
  ASSERT_EQ(again.Connect(), 0);
  auto queued = again.WaitMessage([](auto& m) { return m.payload == "while away"; });
  EXPECT_TRUE(queued) << "the queued message arrives on the kept subscription";
}

TEST_F(EmulatorE2E, CloudToDeviceQueueLimitAndSize) {
  ServiceClient service(info());
  const std::string id = Id();
  service.CreateDevice(id);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(service
                  .Request("POST", "/emulator/devices/" + id + "/messages",
                           Json{{"body", std::to_string(i)}})
                  .status,
              202);
  }
  auto full =
      service.Request("POST", "/emulator/devices/" + id + "/messages", Json{{"body", "51"}});
  EXPECT_EQ(full.status, 403);
  EXPECT_NE(full.text.find("DeviceMaximumQueueDepthExceeded"), std::string::npos);
  const std::string other = Id("-big");
  service.CreateDevice(other);
  auto big = service.Request("POST", "/emulator/devices/" + other + "/messages",
                             Json{{"body", std::string(65 * 1024, 'x')}});
  EXPECT_EQ(big.status, 413);
}

TEST_F(EmulatorE2E, ExpiredTokenConnectionIsClosedWhenClockAdvances) {
  ServiceClient service(info());
  const std::string id = Id();
  DeviceClient::Options short_token;
  short_token.token_ttl_s = 120;
  DeviceClient device(info(), id, service.CreateDevice(id), short_token);
  ASSERT_EQ(device.Connect(), 0);
  ASSERT_EQ(service.Request("POST", "/emulator/clock/advance", Json{{"seconds", 121}}).status, 200);
  EXPECT_TRUE(device.WaitDisconnected(3s));
  EXPECT_EQ(device.Connect(), 5) << "the same token is now expired";
}

TEST_F(EmulatorE2E, RegistryRestRulesAndBadBodies) {
  ServiceClient service(info());
  const std::string id = Id();
  auto created = service.Request("PUT", "/devices/" + id, Json{{"deviceId", id}});
  ASSERT_EQ(created.status, 200);
  EXPECT_EQ(created.body["etag"], "MA==");
  EXPECT_EQ(service.Request("PUT", "/devices/" + id, Json{{"deviceId", id}}).status, 409);
  EXPECT_EQ(service
                .Request("PUT", "/devices/" + id, Json{{"deviceId", id}, {"status", "disabled"}},
                         {{"If-Match", "\"nope\""}})
                .status,
            412);
  auto disabled =
      service.Request("PUT", "/devices/" + id, Json{{"deviceId", id}, {"status", "disabled"}},
                      {{"If-Match", "\"*\""}});
  EXPECT_EQ(disabled.status, 200);
  EXPECT_EQ(disabled.body["status"], "disabled");
  EXPECT_EQ(service.Request("PUT", "/devices/bad%20id", Json::object()).status, 400);
  EXPECT_EQ(service.Request("PUT", "/devices/" + std::string(129, 'a'), Json::object()).status,
            400);
  auto malformed = service.Request("PUT", "/devices/" + id + "-x", std::string("{nope"));
  EXPECT_EQ(malformed.status, 400);
  EXPECT_NE(malformed.body.value("Message", "").find("ErrorCode:"), std::string::npos);
  EXPECT_EQ(service.Request("PATCH", "/twins/" + id, std::string("[1,2]")).status, 400);
  auto missing = service.Request("GET", "/devices/" + id + "-missing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body.value("Message", "").rfind("ErrorCode:DeviceNotFound;", 0), 0u);
  EXPECT_EQ(service.Request("DELETE", "/devices/" + id).status, 204);
  EXPECT_EQ(service.Request("GET", "/devices/" + id).status, 404);
}

TEST_F(EmulatorE2E, ServiceAuthorizationAndPolicyRights) {
  ServiceClient service(info());
  EXPECT_EQ(service.Request("GET", "/devices/", std::string(), {{"Authorization", ""}}).status,
            401);
  EXPECT_EQ(
      service
          .Request("GET", "/devices/", std::string(),
                   {{"Authorization",
                     "SharedAccessSignature sr=localhost&sig=abc&se=99999999999&skn=iothubowner"}})
          .status,
      401);
  ServiceClient wrong(info(), "iothubowner", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  EXPECT_EQ(wrong.Request("GET", "/devices/").status, 401);
}

TEST_F(EmulatorE2E, PolicyRightsAreHonoured) {
  ServiceClient owner(info());
  const std::string id = Id();
  owner.CreateDevice(id);
  // Keys of the other built-in policies, from the state dir the launcher wrote.
  std::ifstream in(info().state_dir + "/policies.json");
  const Json policies = Json::parse(in);
  std::map<std::string, std::string> keys;
  for (const auto& p : policies["policies"]) keys[p["name"]] = p["primaryKey"];
  ServiceClient read_only(info(), "registryRead", keys["registryRead"]);
  ServiceClient read_write(info(), "registryReadWrite", keys["registryReadWrite"]);
  ServiceClient service(info(), "service", keys["service"]);
  ServiceClient device_policy(info(), "device", keys["device"]);
  EXPECT_EQ(read_only.Request("GET", "/devices/" + id).status, 200);
  EXPECT_EQ(read_only.Request("PUT", "/devices/" + id + "-ro", Json::object()).status, 401);
  EXPECT_EQ(read_write.Request("PUT", "/devices/" + id + "-rw", Json::object()).status, 200);
  EXPECT_EQ(service.Request("GET", "/devices/" + id).status, 401);
  EXPECT_EQ(service.Request("GET", "/twins/" + id).status, 200);
  EXPECT_EQ(
      service.Request("POST", "/emulator/devices/" + id + "/messages", Json{{"body", "x"}}).status,
      202);
  EXPECT_EQ(read_only.Request("POST", "/emulator/devices/" + id + "/messages", Json{{"body", "x"}})
                .status,
            401);
  EXPECT_EQ(device_policy.Request("GET", "/twins/" + id).status, 401);
}

TEST_F(EmulatorE2E, OversizedTelemetryClosesAndModelIdIsStamped) {
  ServiceClient service(info());
  const std::string id = Id();
  const std::string key = service.CreateDevice(id);
  {
    DeviceClient device(info(), id, key);
    ASSERT_EQ(device.Connect(), 0);
    EXPECT_FALSE(
        device.Publish("devices/" + id + "/messages/events/", std::string(256 * 1024 + 1, 'x')));
    EXPECT_TRUE(device.WaitDisconnected());
  }
  DeviceClient::Options pnp;
  pnp.username =
      "localhost/" + id + "/?api-version=2021-04-12&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1";
  pnp.clean_session = true;
  DeviceClient device(info(), id, key, pnp);
  ASSERT_EQ(device.Connect(), 0);
  ASSERT_TRUE(
      device.Publish("devices/" + id + "/messages/events/", std::string(256 * 1024 - 10, 'y')));
  auto stored = service.Request("GET", "/emulator/messages?deviceId=" + id);
  ASSERT_EQ(stored.body["messages"].size(), 1u);
  EXPECT_EQ(stored.body["messages"][0]["systemProperties"]["dt-dataschema"],
            "dtmi:com:example:Thermostat;1");
  EXPECT_EQ(service.Request("GET", "/twins/" + id).body["modelId"],
            "dtmi:com:example:Thermostat;1");
}

TEST_F(EmulatorE2E, MessageStreamDeliversLiveTelemetry) {
  ServiceClient service(info());
  const std::string id = Id();
  DeviceClient device(info(), id, service.CreateDevice(id));
  ASSERT_EQ(device.Connect(), 0);
  httplib::SSLClient client("127.0.0.1", info().https_port);
  client.set_ca_cert_path(info().ca_file.c_str());
  client.set_read_timeout(10);
  std::string received;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    client.Get(("/emulator/messages/stream?deviceId=" + id).c_str(),
               {{"Authorization", service.Token()}}, [&](const char* data, size_t length) {
                 received.append(data, length);
                 const bool enough = received.find("second") != std::string::npos;
                 if (enough) done = true;
                 return !enough;
               });
    done = true;
  });
  // Publish until the stream has shown both (the stream starts at the newest message).
  for (int i = 0; i < 50 && !done; ++i) {
    device.Publish("devices/" + id + "/messages/events/", i == 0 ? "first" : "second");
    std::this_thread::sleep_for(100ms);  // pacing the producer while the reader connects
  }
  reader.join();
  EXPECT_NE(received.find("data: {"), std::string::npos) << received;
  EXPECT_NE(received.find("\"deviceId\":\"" + id + "\""), std::string::npos);
  EXPECT_NE(received.find("second"), std::string::npos);
}

TEST_F(EmulatorE2E, KickFaultAndRefusedConnections) {
  ServiceClient service(info());
  const std::string id = Id();
  DeviceClient device(info(), id, service.CreateDevice(id));
  ASSERT_EQ(device.Connect(), 0);
  ASSERT_EQ(service.Request("POST", "/emulator/faults/kick", Json{{"deviceId", id}}).status, 200);
  EXPECT_TRUE(device.WaitDisconnected());
  ASSERT_EQ(
      service.Request("POST", "/emulator/faults/refuse-connections", Json{{"seconds", 1.5}}).status,
      200);
  EXPECT_EQ(device.Connect(), -1) << "refused without a CONNACK";
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  int rc = -1;
  while (rc != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);  // polling the server's recovery, bounded by the deadline
    rc = device.Connect();
  }
  EXPECT_EQ(rc, 0);
}

TEST_F(EmulatorE2E, WithheldPubackClosesWithoutAcknowledging) {
  ServiceClient service(info());
  const std::string id = Id();
  DeviceClient device(info(), id, service.CreateDevice(id));
  ASSERT_EQ(device.Connect(), 0);
  ASSERT_EQ(
      service
          .Request("POST", "/emulator/faults/withhold-puback", Json{{"deviceId", id}, {"count", 1}})
          .status,
      200);
  EXPECT_FALSE(device.Publish("devices/" + id + "/messages/events/", "lost"));
  EXPECT_TRUE(device.WaitDisconnected());
  ASSERT_EQ(device.Connect(), 0);
  EXPECT_TRUE(device.Publish("devices/" + id + "/messages/events/", "kept"));
  // The withheld message was not stored; libmosquitto resent it (same packet, DUP) after the
  // reconnect, so each message is stored exactly once.
  ASSERT_TRUE(device.WaitAcks(2, 5s));
  auto stored = service.Request("GET", "/emulator/messages?deviceId=" + id);
  ASSERT_EQ(stored.body["messages"].size(), 2u) << stored.text;
  std::multiset<std::string> bodies;
  for (const auto& m : stored.body["messages"]) bodies.insert(m["body"].get<std::string>());
  EXPECT_EQ(bodies, (std::multiset<std::string>{"kept", "lost"}));
}

// Runs its own emulator: a free-tier hub whose quota is exhausted and then reset at midnight.
TEST(EmulatorQuota, ExhaustedQuotaClosesDevicesAndResetsAtMidnight) {
  TempDir dir;
  auto emulator = EmulatorProcess::Start(dir.path(), {"--tier", "free"});
  ASSERT_TRUE(emulator.ok()) << emulator.error().message;
  const EmulatorInfo& info = (*emulator)->info();
  ServiceClient service(info);
  DeviceClient device(info, "meter", service.CreateDevice("meter"));
  ASSERT_EQ(device.Connect(), 0);
  // 8,000 messages of 0.5 KB chunks: 2,000 messages of 2 KB use the whole day.
  const std::string payload(2048, 'x');
  for (int i = 0; i < 2000; ++i) device.PublishAsync("devices/meter/messages/events/", payload, 1);
  ASSERT_TRUE(device.WaitAcks(2000, 30s));
  auto stats = service.Request("GET", "/emulator/stats");
  EXPECT_EQ(stats.body["quota"]["used"], 8000);
  EXPECT_TRUE(stats.body["quota"]["exhausted"].get<bool>());
  EXPECT_FALSE(device.Publish("devices/meter/messages/events/", "one more"));
  EXPECT_TRUE(device.WaitDisconnected());
  ASSERT_EQ(device.Connect(), 0) << "CONNECT is still accepted";
  EXPECT_FALSE(device.Publish("devices/meter/messages/events/", "one more"))
      << "closed at the first billable operation";
  auto c2d = service.Request("POST", "/emulator/devices/meter/messages", Json{{"body", "x"}});
  EXPECT_EQ(c2d.status, 403);
  EXPECT_NE(c2d.text.find("IotHubQuotaExceeded"), std::string::npos);
  EXPECT_EQ(
      service.Request("PATCH", "/twins/meter", Json{{"properties", {{"desired", {{"x", 1}}}}}})
          .status,
      403);
  EXPECT_EQ(service
                .Request("POST", "/twins/meter/methods",
                         Json{{"methodName", "m"}, {"responseTimeoutInSeconds", 5}})
                .status,
            403);
  EXPECT_EQ(service.Request("PATCH", "/twins/meter", Json{{"tags", {{"x", 1}}}}).status, 403)
      << "tags-only updates are twin updates, billable too";
  EXPECT_EQ(service.Request("GET", "/twins/meter").status, 403) << "so are twin reads";
  // Move the emulator's clock to just past the next 00:00 UTC.
  auto clock = service.Request("GET", "/emulator/clock");
  const std::int64_t now_ms = clock.body["epochMs"];
  const std::int64_t to_midnight_s = (86'400'000 - now_ms % 86'400'000) / 1000 + 1;
  ASSERT_EQ(
      service.Request("POST", "/emulator/clock/advance", Json{{"seconds", to_midnight_s}}).status,
      200);
  DeviceClient::Options later;
  later.token_ttl_s = to_midnight_s + 3600;  // tokens are checked against the emulator's clock
  auto key = service.Request("GET", "/devices/meter")
                 .body["authentication"]["symmetricKey"]["primaryKey"]
                 .get<std::string>();
  DeviceClient next_day(info, "meter", key, later);
  ASSERT_EQ(next_day.Connect(), 0);
  EXPECT_TRUE(next_day.Publish("devices/meter/messages/events/", "new day"));
  EXPECT_EQ(service.Request("GET", "/emulator/stats").body["quota"]["used"], 1);
}

// Registry, keys and twins survive a restart of the emulator on the same state dir.
TEST(EmulatorRestart, StatePersistsAcrossRestarts) {
  TempDir dir;
  std::string key;
  {
    auto emulator = EmulatorProcess::Start(dir.path());
    ASSERT_TRUE(emulator.ok()) << emulator.error().message;
    ServiceClient service((*emulator)->info());
    key = service.CreateDevice("keeper");
    ASSERT_EQ(
        service.Request("PATCH", "/twins/keeper", Json{{"tags", {{"room", "kitchen"}}}}).status,
        200);
    EXPECT_EQ((*emulator)->Stop(), 0);
  }
  auto emulator = EmulatorProcess::Start(dir.path());
  ASSERT_TRUE(emulator.ok()) << emulator.error().message;
  ServiceClient service((*emulator)->info());
  auto twin = service.Request("GET", "/twins/keeper");
  ASSERT_EQ(twin.status, 200);
  EXPECT_EQ(twin.body["tags"]["room"], "kitchen");
  DeviceClient device((*emulator)->info(), "keeper", key);
  EXPECT_EQ(device.Connect(), 0);
}

TEST(EmulatorRestart, BrokerDownFaultRefusesThenRecovers) {
  TempDir dir;
  auto emulator = EmulatorProcess::Start(dir.path());
  ASSERT_TRUE(emulator.ok()) << emulator.error().message;
  const EmulatorInfo& info = (*emulator)->info();
  ServiceClient service(info);
  DeviceClient device(info, "phoenix", service.CreateDevice("phoenix"));
  ASSERT_EQ(device.Connect(), 0);
  ASSERT_EQ(device.Subscribe("devices/phoenix/messages/devicebound/#", 1), 1);
  ASSERT_TRUE(device.Publish("devices/phoenix/messages/events/", "before"));
  const Json used_before = service.Request("GET", "/emulator/stats").body["quota"]["used"];
  ASSERT_EQ(used_before, 1);
  ASSERT_EQ(service.Request("POST", "/emulator/faults/broker-down", Json{{"seconds", 2}}).status,
            202);
  EXPECT_TRUE(device.WaitDisconnected(5s));
  EXPECT_EQ(device.Connect(1s), -1);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  int rc = -1;
  while (rc != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(250ms);  // polling the restart, bounded by the deadline
    rc = device.Connect(2s);
  }
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(service.Request("GET", "/emulator/stats").body["quota"]["used"], used_before)
      << "the day's quota count survives the restart";
  ASSERT_EQ(
      service.Request("POST", "/emulator/devices/phoenix/messages", Json{{"body", "back"}}).status,
      202);
  EXPECT_TRUE(device.WaitMessage([](auto& m) { return m.payload == "back"; }))
      << "the persistent subscription survived the broker restart";
}

}  // namespace
}  // namespace iothub::testing
