// Unit tests of the Hub's device protocol, twins, methods, cloud-to-device messages and
// registry, driven directly through the rig of support/hub_rig.h.
#include "emulator/hub.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "azure/property_bag.h"
#include "azure/sas_token.h"
#include "common/crypto.h"
#include "common/url.h"
#include "support/hub_rig.h"

namespace iothub::emulator {
namespace {

// ===================================== OnConnect =====================================

TEST_F(HubTest, AcceptsDeviceTokenSignedWithPrimaryKey) {
  const std::string key = CreateDevice("dev1");
  EXPECT_FALSE(Connected("dev1"));
  EXPECT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  EXPECT_TRUE(Connected("dev1"));
  EXPECT_EQ(Stats()["devices"]["dev1"]["connects"], 1);
  EXPECT_EQ(Stats()["devices"]["dev1"]["connected"], true);
}

TEST_F(HubTest, AcceptsDeviceTokenSignedWithSecondaryKey) {
  CreateDevice("dev1");
  EXPECT_EQ(Connect(Conn(0), "dev1", SecondaryKey("dev1")), AuthOutcome::kAccepted);
}

TEST_F(HubTest, AcceptsUsernameVariants) {
  const std::string key = CreateDevice("dev1");
  const std::string token = DeviceToken("dev1", key);
  for (const std::string& username :
       {std::string(kHost) + "/dev1/?api-version=2019-10-01",
        std::string(kHost) + "/dev1/?api-version=2020-09-30&DeviceClientType=c%2F1.0",
        std::string(kHost) + "/dev1/?DeviceClientType=x&api-version=2021-04-12",
        std::string(kHost) + "/dev1/", std::string(kHost) + "/dev1",
        std::string("MyHub.Azure-Devices.NET/dev1/?api-version=2021-04-12")}) {
    EXPECT_EQ(hub().OnConnect(Conn(0), "dev1", username, token, false), AuthOutcome::kAccepted)
        << username;
  }
}

TEST_F(HubTest, RefusesMalformedUsernames) {
  const std::string key = CreateDevice("dev1");
  CreateDevice("dev2");
  const std::string token = DeviceToken("dev1", key);
  const std::string h = kHost;
  const std::vector<std::string> usernames = {
      "",
      h,
      h + "/",
      h + "//?api-version=2021-04-12",
      "/dev1/?api-version=2021-04-12",
      "otherhub.azure-devices.net/dev1/?api-version=2021-04-12",
      h + ".evil.com/dev1/?api-version=2021-04-12",
      h + "/dev2/?api-version=2021-04-12",
      h + "/DEV1/?api-version=2021-04-12",
      h + "/dev1/mod1/?api-version=2021-04-12",
      h + "/dev1/mod1/extra/?api-version=2021-04-12"};
  for (const std::string& username : usernames) {
    EXPECT_EQ(hub().OnConnect(Conn(0), "dev1", username, token, false), AuthOutcome::kNotAuthorized)
        << "'" << username << "'";
  }
  EXPECT_FALSE(Connected("dev1"));
}

TEST_F(HubTest, RefusesClientIdThatIsNotTheDeviceId) {
  const std::string key = CreateDevice("dev1");
  CreateDevice("dev2");
  const std::string token = DeviceToken("dev1", key);
  EXPECT_EQ(hub().OnConnect(Conn(0), "dev2", Username("dev1"), token, false),
            AuthOutcome::kNotAuthorized);
  EXPECT_EQ(hub().OnConnect(Conn(0), "dev1/mod1", std::string(kHost) + "/dev1/mod1/?api-version=x",
                            token, false),
            AuthOutcome::kNotAuthorized);
  EXPECT_FALSE(Connected("dev1"));
  EXPECT_FALSE(Connected("dev2"));
}

TEST_F(HubTest, RefusesMalformedTokens) {
  const std::string key = CreateDevice("dev1");
  const std::string good = DeviceToken("dev1", key);
  for (const std::string& token :
       {std::string(""), std::string("garbage"), good.substr(std::string("Shared").size()),
        std::string("SharedAccessSignature sr=") + kHost +
            "%2Fdevices%2Fdev1&se=" + std::to_string(NowS() + 60),
        std::string("SharedAccessSignature sr=") + kHost + "%2Fdevices%2Fdev1&sig=abc&se=soon",
        good.substr(0, good.size() - 1) + "x"}) {
    EXPECT_EQ(hub().OnConnect(Conn(0), "dev1", Username("dev1"), token, false),
              AuthOutcome::kNotAuthorized)
        << token;
  }
  EXPECT_EQ(Stats()["devices"]["dev1"]["refusedConnects"], 6);
}

TEST_F(HubTest, RefusesExpiredTokens) {
  const std::string key = CreateDevice("dev1");
  auto connect_with_expiry = [&](std::int64_t se) {
    return hub().OnConnect(Conn(0), "dev1", Username("dev1"), DeviceToken("dev1", key, se), false);
  };
  EXPECT_EQ(connect_with_expiry(NowS() - 3600), AuthOutcome::kNotAuthorized);
  EXPECT_EQ(connect_with_expiry(NowS()), AuthOutcome::kNotAuthorized);
  EXPECT_EQ(connect_with_expiry(NowS() + 1), AuthOutcome::kAccepted);
}

TEST_F(HubTest, RefusesWronglySignedTokens) {
  const std::string key = CreateDevice("dev1");
  const std::string other_key = CreateDevice("dev2");
  auto connect = [&](const std::string& token) {
    return hub().OnConnect(Conn(0), "dev1", Username("dev1"), token, false);
  };
  // Another device's key, over this device's resource.
  EXPECT_EQ(connect(DeviceToken("dev1", other_key)), AuthOutcome::kNotAuthorized);
  // This device's key, over another device's resource.
  EXPECT_EQ(connect(DeviceToken("dev2", key)), AuthOutcome::kNotAuthorized);
  // The right key over another hub's resource.
  EXPECT_EQ(
      connect(*azure::MakeSasToken("otherhub.azure-devices.net/devices/dev1", key, NowS() + 60)),
      AuthOutcome::kNotAuthorized);
  // A random key.
  EXPECT_EQ(connect(DeviceToken("dev1", Base64Encode(std::string(32, 'z')))),
            AuthOutcome::kNotAuthorized);
  // A device key presented as a policy token.
  EXPECT_EQ(connect(*azure::MakeSasToken(kHost, key, NowS() + 60, "device")),
            AuthOutcome::kNotAuthorized);
  // The signature covers `se`: a later expiry with the old signature fails.
  const std::string token = DeviceToken("dev1", key, NowS() + 60);
  std::string tampered = token;
  tampered.replace(tampered.find("&se=") + 4, std::string::npos, std::to_string(NowS() + 9999));
  EXPECT_EQ(connect(tampered), AuthOutcome::kNotAuthorized);
  EXPECT_EQ(connect(token), AuthOutcome::kAccepted);
}

TEST_F(HubTest, AcceptsResourceEncodedInEitherCaseOrRaw) {
  const std::string key = CreateDevice("dev1");
  const std::int64_t se = NowS() + 600;
  const std::string h = kHost;
  for (const std::string& sr : {h + "%2Fdevices%2Fdev1", h + "%2fdevices%2fdev1",
                                h + "%2Fdevices%2Fdev1%2F", h + "/devices/dev1"}) {
    EXPECT_EQ(hub().OnConnect(Conn(0), "dev1", Username("dev1"), HandToken(sr, key, se), false),
              AuthOutcome::kAccepted)
        << sr;
  }
  // A signature computed over the other case's text does not verify.
  const std::string upper = HandToken(h + "%2Fdevices%2Fdev1", key, se);
  std::string swapped = upper;
  for (std::size_t at; (at = swapped.find("%2F")) != std::string::npos;)
    swapped.replace(at, 3, "%2f");
  EXPECT_EQ(hub().OnConnect(Conn(0), "dev1", Username("dev1"), swapped, false),
            AuthOutcome::kNotAuthorized);
}

TEST_F(HubTest, AcceptsFieldsInAnyOrder) {
  const std::string key = CreateDevice("dev1");
  const std::int64_t se = NowS() + 600;
  const std::string sr = std::string(kHost) + "%2Fdevices%2Fdev1";
  const std::string sig = UrlEncode(*azure::SignString(key, sr + "\n" + std::to_string(se)));
  const std::string token =
      "SharedAccessSignature se=" + std::to_string(se) + "&sig=" + sig + "&sr=" + sr;
  EXPECT_EQ(hub().OnConnect(Conn(0), "dev1", Username("dev1"), token, false),
            AuthOutcome::kAccepted);
}

TEST_F(HubTest, PolicyTokensNeedDeviceConnect) {
  CreateDevice("dev1");
  const std::int64_t se = NowS() + 600;
  const std::string device_resource = std::string(kHost) + "/devices/dev1";
  auto connect = [&](const std::string& token) {
    return hub().OnConnect(Conn(0), "dev1", Username("dev1"), token, false);
  };
  EXPECT_EQ(connect(*azure::MakeSasToken(kHost, kDevicePolicyKey, se, "device")),
            AuthOutcome::kAccepted);
  EXPECT_EQ(connect(*azure::MakeSasToken(device_resource, kDevicePolicyKey, se, "device")),
            AuthOutcome::kAccepted);
  EXPECT_EQ(connect(*azure::MakeSasToken(kHost, kDevicePolicyKey2, se, "device")),
            AuthOutcome::kAccepted);
  EXPECT_EQ(connect(*azure::MakeSasToken(kHost, kOwnerKey, se, "iothubowner")),
            AuthOutcome::kAccepted);
  EXPECT_EQ(connect(*azure::MakeSasToken(kHost, kRegistryReadKey, se, "registryRead")),
            AuthOutcome::kNotAuthorized);
  EXPECT_EQ(connect(*azure::MakeSasToken(kHost, kServiceKey, se, "service")),
            AuthOutcome::kNotAuthorized);
  EXPECT_EQ(connect(*azure::MakeSasToken(kHost, kOwnerKey, se, "device")),
            AuthOutcome::kNotAuthorized);  // the owner's key under the device policy's name
  EXPECT_EQ(connect(*azure::MakeSasToken(kHost, kDevicePolicyKey, se, "nosuchpolicy")),
            AuthOutcome::kNotAuthorized);
  EXPECT_EQ(
      connect(*azure::MakeSasToken("otherhub.azure-devices.net", kDevicePolicyKey, se, "device")),
      AuthOutcome::kNotAuthorized);
  EXPECT_EQ(connect(*azure::MakeSasToken(kHost, kDevicePolicyKey, NowS(), "device")),
            AuthOutcome::kNotAuthorized);
  CreateDevice("dev2");  // a policy token scoped to another device does not fit this one
  EXPECT_EQ(connect(*azure::MakeSasToken(std::string(kHost) + "/devices/dev2", kDevicePolicyKey, se,
                                         "device")),
            AuthOutcome::kNotAuthorized);
}

TEST_F(HubTest, PolicyTokenConnectionsAreStampedWithHubScope) {
  CreateDevice("dev1");
  ASSERT_EQ(
      hub().OnConnect(Conn(0), "dev1", Username("dev1"),
                      *azure::MakeSasToken(kHost, kDevicePolicyKey, NowS() + 600, "device"), false),
      AuthOutcome::kAccepted);
  ASSERT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), "x"), PublishVerdict::kAccept);
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), 1u);
  const std::string method = stored[0].system_properties["iothub-connection-auth-method"];
  EXPECT_NE(method.find(R"("scope":"hub")"), std::string::npos) << method;
}

// The reference (§3) gives CONNACK 3 for a disabled device; mosquitto's basic-auth hook can
// only answer 5 (or close), so the hub answers kNotAuthorized.
TEST_F(HubTest, RefusesUnknownAndDisabledDevices) {
  const std::string key = CreateDevice("dev1", Json{{"status", "disabled"}});
  EXPECT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kNotAuthorized);
  EXPECT_EQ(Stats()["devices"]["dev1"]["refusedConnects"], 1);
  EXPECT_EQ(Connect(Conn(0), "ghost", key), AuthOutcome::kNotAuthorized);
  EXPECT_FALSE(Stats()["devices"].contains("ghost"));
  // Enabling it again lets the same key in.
  ASSERT_EQ(hub().PutDevice("dev1", Json{{"status", "enabled"}}, "*").status, 200);
  EXPECT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
}

TEST_F(HubTest, RefusesDevicesWithoutSasAuthentication) {
  const Json x509 = {{"authentication",
                      {{"type", "selfSigned"},
                       {"x509Thumbprint", {{"primaryThumbprint", std::string(40, 'A')}}}}}};
  ASSERT_EQ(hub().PutDevice("cert1", x509, "").status, 200);
  const std::string any_key = Base64Encode(std::string(32, 'k'));
  EXPECT_EQ(Connect(Conn(0), "cert1", any_key), AuthOutcome::kNotAuthorized);
}

TEST_F(HubTest, ConnectionRefusalFaultLastsItsWindow) {
  const std::string key = CreateDevice("dev1");
  const ServiceReply fault = hub().Fault("refuse-connections", Json{{"seconds", 5}});
  EXPECT_EQ(fault.status, 200);
  EXPECT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kUnavailable);
  steady_.Advance(4999);
  EXPECT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kUnavailable);
  steady_.Advance(1);
  EXPECT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
}

TEST_F(HubTest, ConnectionsAreThrottledPerSecond) {
  const std::string key = CreateDevice("dev1");
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(Connect(Conn(i % 4), "dev1", key), AuthOutcome::kAccepted) << i;
  }
  EXPECT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kUnavailable);
  EXPECT_EQ(Stats()["throttled"], 1);
  steady_.Advance(10);  // 100 per second: one more after 10 ms
  EXPECT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
}

TEST_F(HubTest, InvalidUtf8ModelIdDoesNotThrow) {
  const std::string key = CreateDevice("dev1");
  AuthOutcome outcome = AuthOutcome::kUnavailable;
  EXPECT_NO_THROW(outcome = Connect(Conn(0), "dev1", key, false, "&model-id=dtmi%FF%FE"));
  EXPECT_EQ(outcome, AuthOutcome::kNotAuthorized);
}

// ===================================== OnSubscribe =====================================

TEST_F(HubTest, SubscribeAllowsTheDeviceTopics) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  for (const char* filter : {"devices/dev1/messages/devicebound/#",
                             "devices/+/messages/devicebound/#", "$iothub/twin/res/#",
                             "$iothub/twin/PATCH/properties/desired/#", "$iothub/methods/POST/#"}) {
    EXPECT_TRUE(hub().OnSubscribe(Conn(0), "dev1", filter)) << filter;
  }
}

TEST_F(HubTest, SubscribeRefusesForeignFilters) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  for (const char* filter : {"devices/dev2/messages/devicebound/#", "devices/#", "#", "$iothub/#",
                             "$SYS/#", "devices/dev1/messages/events/#"}) {
    EXPECT_FALSE(hub().OnSubscribe(Conn(0), "dev1", filter)) << filter;
  }
  EXPECT_EQ(Stats()["devices"]["dev1"]["closedByHub"], 6);
}

TEST_F(HubTest, SubscribeFromAReplacedOrUnknownConnectionIsRefused) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_EQ(Connect(Conn(1), "dev1", key), AuthOutcome::kAccepted);
  EXPECT_FALSE(hub().OnSubscribe(Conn(0), "dev1", "$iothub/twin/res/#"));
  EXPECT_TRUE(hub().OnSubscribe(Conn(1), "dev1", "$iothub/twin/res/#"));
  EXPECT_FALSE(hub().OnSubscribe(Conn(2), "ghost", "$iothub/twin/res/#"));
}

// ===================================== OnPublish =====================================

TEST_F(HubTest, ForeignTopicsCloseTheConnection) {
  const std::string key = CreateDevice("dev1");
  CreateDevice("dev2");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  for (const char* topic : {"devices/dev2/messages/events/", "devices/dev1/messages/devicebound/",
                            "$iothub/methods/POST/m/?$rid=1", "$iothub/twin/GET/", "a/b",
                            "$iothub/twin/res/200/?$rid=1"}) {
    EXPECT_EQ(Pub(Conn(0), "dev1", topic, "x"), PublishVerdict::kClose) << topic;
  }
  EXPECT_TRUE(Stored().empty());
  EXPECT_EQ(Stats()["devices"]["dev1"]["closedByHub"], 6);
}

TEST_F(HubTest, PublishWithoutASessionCloses) {
  const std::string key = CreateDevice("dev1");
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), "x"), PublishVerdict::kClose);
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  EXPECT_EQ(Pub(Conn(1), "dev1", Telemetry("dev1"), "x"), PublishVerdict::kClose);
  EXPECT_TRUE(Stored().empty());
}

TEST_F(HubTest, TelemetryLandsInTheStoreWithProperties) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  wall_.Advance(1234);
  const std::string topic = Telemetry(
      "dev1",
      "%24.mid=mid-1&%24.ct=application%2Fjson&%24.ce=utf-8&%24.cid=corr&alert=hot%20%26%20humid");
  ASSERT_EQ(Pub(Conn(0), "dev1", topic, R"({"t":21})"), PublishVerdict::kAccept);
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), 1u);
  const StoredMessage& m = stored[0];
  EXPECT_EQ(m.seq, 1u);
  EXPECT_EQ(m.device_id, "dev1");
  EXPECT_EQ(m.body, R"({"t":21})");
  EXPECT_EQ(m.enqueued_ms, kWallStart + 1234);
  EXPECT_EQ(m.properties, (Json{{"alert", "hot & humid"}}));
  EXPECT_EQ(m.system_properties["message-id"], "mid-1");
  EXPECT_EQ(m.system_properties["correlation-id"], "corr");
  EXPECT_EQ(m.system_properties["content-type"], "application/json");
  EXPECT_EQ(m.system_properties["content-encoding"], "utf-8");
  EXPECT_EQ(m.system_properties["iothub-connection-device-id"], "dev1");
  EXPECT_EQ(m.system_properties["iothub-enqueuedtime"], "2023-11-14T22:13:21.2340000Z");
  EXPECT_EQ(m.system_properties["iothub-message-source"], "Telemetry");
  EXPECT_EQ(m.system_properties["iothub-connection-auth-generation-id"],
            hub().GetDevice("dev1").body["generationId"]);
  const std::string method = m.system_properties["iothub-connection-auth-method"];
  EXPECT_NE(method.find(R"("scope":"device")"), std::string::npos) << method;
  EXPECT_NE(method.find(R"("type":"sas")"), std::string::npos) << method;
  EXPECT_FALSE(m.system_properties.contains("dt-dataschema"));
  EXPECT_FALSE(m.properties.contains("mqtt-retain"));
  EXPECT_EQ(Stats()["devices"]["dev1"]["d2cMessages"], 1);
  EXPECT_EQ(Stats()["devices"]["dev1"]["d2cBytes"], 8);
}

TEST_F(HubTest, RawDollarBagEqualsEncodedBag) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1", "$.mid=m2&$.sub=thermostat1&flag&empty="), ""),
            PublishVerdict::kAccept);
  ASSERT_EQ(
      Pub(Conn(0), "dev1", Telemetry("dev1", "%24.mid=m2&%24.sub=thermostat1&flag&empty="), ""),
      PublishVerdict::kAccept);
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), 2u);
  for (const auto& m : stored) {
    EXPECT_EQ(m.system_properties["message-id"], "m2");
    EXPECT_EQ(m.system_properties["dt-subject"], "thermostat1");
    EXPECT_EQ(m.properties, (Json{{"flag", nullptr}, {"empty", ""}}));
  }
}

TEST_F(HubTest, CreationTimeAndSchemaAreSystemProperties) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_EQ(Pub(Conn(0), "dev1",
                Telemetry("dev1", "%24.ctime=2023-11-14T22%3A13%3A20.000Z&%24.schema=v1"), "{}"),
            PublishVerdict::kAccept);
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].system_properties["iothub-creation-time-utc"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(stored[0].system_properties["message-schema"], "v1");
  EXPECT_EQ(stored[0].properties, Json::object());
}

TEST_F(HubTest, TelemetryWithoutTrailingSlashOrBag) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  EXPECT_EQ(Pub(Conn(0), "dev1", "devices/dev1/messages/events", "a"), PublishVerdict::kAccept);
  EXPECT_EQ(Pub(Conn(0), "dev1", "devices/dev1/messages/events/", "b"), PublishVerdict::kAccept);
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].properties, Json::object());
  EXPECT_EQ(stored[1].body, "b");
}

TEST_F(HubTest, MalformedPropertyBagCloses) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1", "a=%zz"), "x"), PublishVerdict::kClose);
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1", "=v"), "x"), PublishVerdict::kClose);
  EXPECT_TRUE(Stored().empty());
}

TEST_F(HubTest, ModelIdFromUsernameIsStampedAsDataSchema) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key, false,
                    "&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1&DeviceClientType=x"),
            AuthOutcome::kAccepted);
  ASSERT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), "1"), PublishVerdict::kAccept);
  EXPECT_EQ(hub().GetTwin("dev1").body["modelId"], "dtmi:com:example:Thermostat;1");
  // Reconnecting without a model id forgets it.
  ASSERT_EQ(Connect(Conn(1), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_EQ(Pub(Conn(1), "dev1", Telemetry("dev1"), "2"), PublishVerdict::kAccept);
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].system_properties["dt-dataschema"], "dtmi:com:example:Thermostat;1");
  EXPECT_FALSE(stored[1].system_properties.contains("dt-dataschema"));
  EXPECT_EQ(hub().GetTwin("dev1").body["modelId"], "");
}

TEST_F(HubTest, RetainBecomesAnApplicationProperty) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1", "a=1"), "x", true), PublishVerdict::kAccept);
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].properties, (Json{{"a", "1"}, {"mqtt-retain", "true"}}));
  EXPECT_TRUE(broker_.published.empty());  // nothing is kept or echoed
}

TEST_F(HubTest, TelemetrySizeLimitCountsBodyAndProperties) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  constexpr std::size_t kMax = 256 * 1024;
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), std::string(kMax, 'x')),
            PublishVerdict::kAccept);
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1", "ab=cd"), std::string(kMax - 4, 'x')),
            PublishVerdict::kAccept);
  EXPECT_EQ(Stored().size(), 2u);
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), std::string(kMax + 1, 'x')),
            PublishVerdict::kClose);
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1", "ab=cde"), std::string(kMax - 4, 'x')),
            PublishVerdict::kClose);
  EXPECT_EQ(Stored().size(), 2u);
  EXPECT_EQ(Stats()["devices"]["dev1"]["closedByHub"], 2);
}

TEST_F(HubTest, WithheldPubacksCloseTheConnection) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_EQ(hub().Fault("withhold-puback", Json{{"deviceId", "dev1"}, {"count", 2}}).status, 200);
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), "1"), PublishVerdict::kClose);
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), "2"), PublishVerdict::kClose);
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), "3"), PublishVerdict::kAccept);
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].body, "3");
}

// ===================================== twin =====================================

TEST_F(HubTest, TwinGetAnswersOnlyWhenSubscribedToResponses) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/GET/?$rid=1"), PublishVerdict::kAccept);
  EXPECT_TRUE(broker_.published.empty());
  ASSERT_TRUE(hub().OnSubscribe(Conn(0), "dev1", "$iothub/twin/res/#"));
  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/GET/?$rid=7", " "), PublishVerdict::kAccept);
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].client, "dev1");
  EXPECT_EQ(out[0].topic, "$iothub/twin/res/200/?$rid=7");
  EXPECT_EQ(out[0].qos, 0);
  EXPECT_EQ(Json::parse(out[0].payload),
            Json::parse(R"({"desired":{"$version":1},"reported":{"$version":1}})"));
  EXPECT_EQ(Stats()["devices"]["dev1"]["twinGets"], 2);
}

TEST_F(HubTest, TwinGetShowsDesiredAndReported) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(
      hub()
          .UpdateTwin("dev1", Json::parse(R"({"properties":{"desired":{"fan":"on"}}})"), "", false)
          .status,
      200);
  Online(Conn(0), "dev1", key);
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=1", R"({"t":5})"),
            PublishVerdict::kAccept);
  broker_.Take();
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/GET/?$rid=abc"), PublishVerdict::kAccept);
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].topic, "$iothub/twin/res/200/?$rid=abc");
  EXPECT_EQ(
      Json::parse(out[0].payload),
      Json::parse(R"({"desired":{"fan":"on","$version":2},"reported":{"t":5,"$version":2}})"));
}

TEST_F(HubTest, ReportedPatchAnswers204WithVersionAndNullDeletes) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  const std::string etag_before = hub().GetTwin("dev1").body["etag"];
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=1",
                R"({"temp":21,"fw":{"v":"1.0","ok":true}})"),
            PublishVerdict::kAccept);
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=2",
                R"({"temp":null,"fw":{"ok":null},"hum":40})"),
            PublishVerdict::kAccept);
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].topic, "$iothub/twin/res/204/?$rid=1&$version=2");
  EXPECT_EQ(out[0].payload, "");
  EXPECT_EQ(out[1].topic, "$iothub/twin/res/204/?$rid=2&$version=3");
  const Json twin = hub().GetTwin("dev1").body;
  const Json reported = twin["properties"]["reported"];
  EXPECT_FALSE(reported.contains("temp"));
  EXPECT_EQ(reported["fw"], (Json{{"v", "1.0"}}));
  EXPECT_EQ(reported["hum"], 40);
  EXPECT_EQ(reported["$version"], 3);
  EXPECT_EQ(twin["version"], 3);  // the twin's own version counts every change
  EXPECT_NE(twin["etag"], etag_before);
  EXPECT_EQ(Stats()["devices"]["dev1"]["reportedPatches"], 2);
}

TEST_F(HubTest, ReportedPatchAppliesEvenWithoutResponseSubscription) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=1", R"({"a":1})"),
            PublishVerdict::kAccept);
  EXPECT_TRUE(broker_.published.empty());
  EXPECT_EQ(hub().GetTwin("dev1").body["properties"]["reported"]["a"], 1);
}

TEST_F(HubTest, InvalidReportedPatchesAnswer400WithErrorCode) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  Json too_big = Json::object();  // 9 x 4000-byte strings: over 32 KB
  for (int i = 0; i < 9; ++i) too_big["k" + std::to_string(i)] = std::string(4000, 'x');
  const std::vector<std::string> bad = {"{not json",
                                        "",
                                        "[1,2]",
                                        "\"text\"",
                                        R"({"a.b":1})",
                                        R"({"$version":5})",
                                        R"({"with space":1})",
                                        Nested(12).dump(),
                                        Json{{"s", std::string(5 * 1024, 'x')}}.dump(),
                                        Json{{std::string(1025, 'k'), 1}}.dump(),
                                        too_big.dump()};
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const std::string rid = "r" + std::to_string(i);
    ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=" + rid, bad[i]),
              PublishVerdict::kAccept)
        << bad[i].substr(0, 60);
    const auto out = broker_.Take();
    ASSERT_EQ(out.size(), 1u) << bad[i].substr(0, 60);
    EXPECT_EQ(out[0].topic, "$iothub/twin/res/400/?$rid=" + rid) << bad[i].substr(0, 60);
    const Json body = Json::parse(out[0].payload, nullptr, false);
    EXPECT_EQ(body.value("errorCode", 0), 400004) << out[0].payload;
    EXPECT_FALSE(body.value("message", "").empty()) << out[0].payload;
  }
  const Json reported = hub().GetTwin("dev1").body["properties"]["reported"];
  EXPECT_EQ(reported["$version"], 1);
  EXPECT_EQ(reported.size(), 2u) << reported.dump();  // $metadata and $version only
}

TEST_F(HubTest, ReportedPatchesAreThrottled) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(
        Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=" + std::to_string(i),
            R"({"i":1})"),
        PublishVerdict::kAccept);
  }
  broker_.Take();
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=x", R"({"i":2})"),
            PublishVerdict::kAccept);
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].topic, "$iothub/twin/res/429/?$rid=x");
  EXPECT_EQ(Json::parse(out[0].payload)["errorCode"], 429001);
  EXPECT_EQ(hub().GetTwin("dev1").body["properties"]["reported"]["i"], 1);
}

TEST_F(HubTest, TwinGetsAreThrottled) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/GET/?$rid=" + std::to_string(i)),
              PublishVerdict::kAccept);
  }
  EXPECT_EQ(broker_.Take().size(), 100u);
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/GET/?$rid=x"), PublishVerdict::kAccept);
  auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].topic, "$iothub/twin/res/429/?$rid=x");
  EXPECT_EQ(Json::parse(out[0].payload)["errorCode"], 429001);
  steady_.Advance(10);  // 100 per second
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/GET/?$rid=y"), PublishVerdict::kAccept);
  out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].topic, "$iothub/twin/res/200/?$rid=y");
}

TEST_F(HubTest, DesiredUpdateIsPushedWithItsVersion) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  const ServiceReply r = hub().UpdateTwin(
      "dev1", Json::parse(R"({"properties":{"desired":{"color":"red","n":{"a":1}}}})"), "", false);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["properties"]["desired"]["color"], "red");
  EXPECT_EQ(r.body["properties"]["desired"]["$version"], 2);
  EXPECT_EQ(r.headers.at("ETag"), "\"" + r.body["etag"].get<std::string>() + "\"");
  auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].client, "dev1");
  EXPECT_EQ(out[0].topic, "$iothub/twin/PATCH/properties/desired/?$version=2");
  EXPECT_EQ(Json::parse(out[0].payload),
            Json::parse(R"({"color":"red","n":{"a":1},"$version":2})"));

  // A deletion is pushed as null.
  ASSERT_EQ(hub()
                .UpdateTwin("dev1", Json::parse(R"({"properties":{"desired":{"color":null}}})"), "",
                            false)
                .status,
            200);
  out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].topic, "$iothub/twin/PATCH/properties/desired/?$version=3");
  EXPECT_EQ(Json::parse(out[0].payload), Json::parse(R"({"color":null,"$version":3})"));
  EXPECT_FALSE(hub().GetTwin("dev1").body["properties"]["desired"].contains("color"));
  EXPECT_EQ(Stats()["devices"]["dev1"]["desiredPushes"], 2);
}

TEST_F(HubTest, DesiredUpdateIsNotPushedUnlessConnectedAndSubscribed) {
  const std::string key = CreateDevice("dev1");
  const Json patch = Json::parse(R"({"properties":{"desired":{"x":1}}})");
  ASSERT_EQ(hub().UpdateTwin("dev1", patch, "", false).status, 200);  // offline
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_TRUE(hub().OnSubscribe(Conn(0), "dev1", "$iothub/twin/res/#"));
  ASSERT_EQ(hub().UpdateTwin("dev1", patch, "", false).status, 200);  // not subscribed
  EXPECT_TRUE(broker_.published.empty());
  // Tags alone change nothing the device sees.
  ASSERT_TRUE(hub().OnSubscribe(Conn(0), "dev1", "$iothub/twin/PATCH/properties/desired/#"));
  ASSERT_EQ(hub().UpdateTwin("dev1", Json::parse(R"({"tags":{"site":"x"}})"), "", false).status,
            200);
  EXPECT_TRUE(broker_.published.empty());
  EXPECT_EQ(hub().GetTwin("dev1").body["properties"]["desired"]["$version"], 3);
}

TEST_F(HubTest, UpdateTwinHonoursIfMatch) {
  CreateDevice("dev1");
  const ServiceReply twin = hub().GetTwin("dev1");
  const std::string etag = twin.body["etag"];
  EXPECT_EQ(etag, "AAAAAAAAAAE=");
  EXPECT_EQ(twin.headers.at("ETag"), "\"AAAAAAAAAAE=\"");
  const Json patch = Json::parse(R"({"properties":{"desired":{"x":1}}})");

  const ServiceReply wrong = hub().UpdateTwin("dev1", patch, "\"AAAAAAAAAAk=\"", false);
  EXPECT_EQ(wrong.status, 412);
  EXPECT_EQ(ErrorCode(wrong), 412002);
  EXPECT_EQ(wrong.body["Message"].get<std::string>().rfind("ErrorCode:PreconditionFailed;", 0), 0u);
  EXPECT_FALSE(hub().GetTwin("dev1").body["properties"]["desired"].contains("x"));

  const ServiceReply ok = hub().UpdateTwin("dev1", patch, "\"" + etag + "\"", false);
  ASSERT_EQ(ok.status, 200) << ok.body.dump();
  EXPECT_EQ(ok.body["etag"], "AAAAAAAAAAI=");
  // The old etag is stale now; "*" always matches.
  EXPECT_EQ(hub().UpdateTwin("dev1", patch, etag, false).status, 412);
  EXPECT_EQ(hub().UpdateTwin("dev1", patch, "*", false).status, 200);
  EXPECT_EQ(hub().UpdateTwin("dev1", patch, "AAAAAAAAAAM=", false).status, 200);
}

TEST_F(HubTest, UpdateTwinRejectsBadRequests) {
  CreateDevice("dev1");
  EXPECT_EQ(hub().UpdateTwin("ghost", Json::object(), "", false).status, 404);
  EXPECT_EQ(hub().UpdateTwin("dev1", Json::array(), "", false).status, 400);
  const ServiceReply reported =
      hub().UpdateTwin("dev1", Json::parse(R"({"properties":{"reported":{"x":1}}})"), "", false);
  EXPECT_EQ(reported.status, 400);
  EXPECT_EQ(ErrorCode(reported), 400004);
  EXPECT_EQ(
      hub()
          .UpdateTwin("dev1", Json::parse(R"({"properties":{"desired":{"a.b":1}}})"), "", false)
          .status,
      400);
  EXPECT_EQ(
      hub().UpdateTwin("dev1", Json{{"properties", {{"desired", Nested(12)}}}}, "", false).status,
      400);
  EXPECT_EQ(hub().GetTwin("dev1").body["properties"]["desired"]["$version"], 1);
}

TEST_F(HubTest, UpdateTwinIgnoresReadOnlyMembersOfDesired) {
  CreateDevice("dev1");
  const ServiceReply r = hub().UpdateTwin(
      "dev1",
      Json::parse(R"({"properties":{"desired":{"x":1,"$version":99,"$metadata":{"a":1}}}})"), "",
      false);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["properties"]["desired"]["x"], 1);
  EXPECT_EQ(r.body["properties"]["desired"]["$version"], 2);
}

TEST_F(HubTest, TagsAreLimitedTo8KB) {
  CreateDevice("dev1");
  Json tags = Json::object();
  for (int i = 0; i < 3; ++i) tags["t" + std::to_string(i)] = std::string(4000, 'x');
  const ServiceReply r = hub().UpdateTwin("dev1", Json{{"tags", tags}}, "", false);
  EXPECT_EQ(r.status, 400) << r.body.dump().substr(0, 200);
}

// ===================================== direct methods =====================================

TEST_F(HubTest, MethodOnOfflineDeviceIs404103) {
  const std::string key = CreateDevice("dev1");
  MethodCall call;
  hub().InvokeMethod("dev1", Json{{"methodName", "reboot"}}, call.Callback());
  ASSERT_TRUE(call.reply.has_value());
  EXPECT_EQ(call.reply->status, 404);
  EXPECT_EQ(ErrorCode(*call.reply), 404103);
  // Connected but not subscribed to methods is offline too.
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  MethodCall call2;
  hub().InvokeMethod("dev1", Json{{"methodName", "reboot"}}, call2.Callback());
  ASSERT_TRUE(call2.reply.has_value());
  EXPECT_EQ(ErrorCode(*call2.reply), 404103);
  EXPECT_TRUE(broker_.published.empty());
  MethodCall unknown;
  hub().InvokeMethod("ghost", Json{{"methodName", "reboot"}}, unknown.Callback());
  ASSERT_TRUE(unknown.reply.has_value());
  EXPECT_EQ(ErrorCode(*unknown.reply), 404001);
}

TEST_F(HubTest, MethodRoundTrip) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  MethodCall call;
  hub().InvokeMethod("dev1", Json::parse(R"({"methodName":"reboot","payload":{"delay":1},
                                     "responseTimeoutInSeconds":10})"),
                     call.Callback());
  EXPECT_FALSE(call.reply.has_value());
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].client, "dev1");
  EXPECT_EQ(out[0].topic.rfind("$iothub/methods/POST/reboot/?$rid=", 0), 0u) << out[0].topic;
  EXPECT_EQ(out[0].qos, 0);
  EXPECT_EQ(Json::parse(out[0].payload), (Json{{"delay", 1}}));
  const std::string rid = Rid(out[0].topic);
  ASSERT_FALSE(rid.empty());

  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/methods/res/201/?$rid=" + rid, R"({"ok":true})"),
            PublishVerdict::kAccept);
  ASSERT_TRUE(call.reply.has_value());
  EXPECT_EQ(call.reply->status, 200);
  EXPECT_EQ(call.reply->body, Json::parse(R"({"status":201,"payload":{"ok":true}})"));
  // A second answer for the same $rid is ignored.
  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/methods/res/200/?$rid=" + rid, "{}"),
            PublishVerdict::kAccept);
  EXPECT_EQ(Stats()["devices"]["dev1"]["methodCalls"], 1);
}

TEST_F(HubTest, HostileMethodResponsesAreRefusedNotParsed) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  MethodCall deep;
  MethodCall big;
  hub().InvokeMethod("dev1", Json{{"methodName", "a"}}, deep.Callback());
  hub().InvokeMethod("dev1", Json{{"methodName", "b"}}, big.Callback());
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 2u);
  // 200,000 nested arrays would overflow the stack when copied or printed.
  const std::string nested = std::string(200'000, '[') + std::string(200'000, ']');
  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/methods/res/200/?$rid=" + Rid(out[0].topic), nested),
            PublishVerdict::kAccept);
  ASSERT_TRUE(deep.reply.has_value());
  EXPECT_EQ(deep.reply->status, 400);
  const std::string large = "\"" + std::string(128 * 1024 + 1, 'x') + "\"";
  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/methods/res/200/?$rid=" + Rid(out[1].topic), large),
            PublishVerdict::kAccept);
  ASSERT_TRUE(big.reply.has_value());
  EXPECT_EQ(big.reply->status, 400);
}

TEST_F(HubTest, DeeplyNestedReportedPatchIsA400) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  const std::string nested =
      "{\"a\":" + std::string(100'000, '[') + std::string(100'000, ']') + "}";
  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=9", nested),
            PublishVerdict::kAccept);
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].topic, "$iothub/twin/res/400/?$rid=9");
}

TEST_F(HubTest, MethodsAfterShutdownAnswerAtOnce) {
  CreateDevice("dev1");
  hub().Shutdown();
  MethodCall call;
  hub().InvokeMethod("dev1", Json{{"methodName", "a"}, {"connectTimeoutInSeconds", 30}},
                     call.Callback());
  ASSERT_TRUE(call.reply.has_value());
  EXPECT_EQ(call.reply->status, 503);
}

TEST_F(HubTest, BulkIfMatchModesNeedAnETag) {
  CreateDevice("dev1");
  const ServiceReply r = hub().BulkDevices(Json::parse(
      R"([{"id":"dev1","importMode":"deleteIfMatchETag"},{"id":"dev1","importMode":"UpdateIfMatchETag"}])"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["errors"].size(), 2u);
  EXPECT_EQ(hub().GetDevice("dev1").status, 200) << "nothing was deleted";
}

TEST_F(HubTest, MethodResponsePayloadsThatAreEmptyOrNotJson) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  MethodCall empty;
  MethodCall text;
  hub().InvokeMethod("dev1", Json{{"methodName", "a"}}, empty.Callback());
  hub().InvokeMethod("dev1", Json{{"methodName", "b"}}, text.Callback());
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].payload, "null");  // no payload in the request
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/methods/res/200/?$rid=" + Rid(out[0].topic), ""),
            PublishVerdict::kAccept);
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/methods/res/500/?$rid=" + Rid(out[1].topic), "oops"),
            PublishVerdict::kAccept);
  ASSERT_TRUE(empty.reply && text.reply);
  EXPECT_EQ(empty.reply->body, Json::parse(R"({"status":200,"payload":null})"));
  EXPECT_EQ(text.reply->body, Json::parse(R"({"status":500,"payload":"oops"})"));
}

TEST_F(HubTest, MethodResponseFromAnotherDeviceIsIgnored) {
  const std::string key1 = CreateDevice("dev1");
  const std::string key2 = CreateDevice("dev2");
  Online(Conn(0), "dev1", key1);
  Online(Conn(1), "dev2", key2);
  MethodCall call;
  hub().InvokeMethod("dev1", Json{{"methodName", "m"}}, call.Callback());
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  const std::string rid = Rid(out[0].topic);
  EXPECT_EQ(Pub(Conn(1), "dev2", "$iothub/methods/res/200/?$rid=" + rid, "{}"),
            PublishVerdict::kAccept);
  EXPECT_FALSE(call.reply.has_value());
  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/methods/res/200/?$rid=" + rid, "{}"),
            PublishVerdict::kAccept);
  EXPECT_TRUE(call.reply.has_value());
}

TEST_F(HubTest, UnansweredMethodTimesOutWith504) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  MethodCall call;
  hub().InvokeMethod("dev1", Json{{"methodName", "m"}, {"responseTimeoutInSeconds", 10}},
                     call.Callback());
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  steady_.Advance(9'999);
  hub().OnTick();
  EXPECT_FALSE(call.reply.has_value());
  steady_.Advance(1);
  hub().OnTick();
  ASSERT_TRUE(call.reply.has_value());
  EXPECT_EQ(call.reply->status, 504);
  EXPECT_EQ(ErrorCode(*call.reply), 504101);
  // A late answer is ignored.
  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/methods/res/200/?$rid=" + Rid(out[0].topic), "{}"),
            PublishVerdict::kAccept);
}

TEST_F(HubTest, MethodTimeoutDefaultsTo30Seconds) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  MethodCall call;
  hub().InvokeMethod("dev1", Json{{"methodName", "m"}}, call.Callback());
  steady_.Advance(29'999);
  hub().OnTick();
  EXPECT_FALSE(call.reply.has_value());
  steady_.Advance(1);
  hub().OnTick();
  ASSERT_TRUE(call.reply.has_value());
  EXPECT_EQ(call.reply->status, 504);
}

TEST_F(HubTest, ConnectTimeoutWaitsForTheDeviceToSubscribe) {
  const std::string key = CreateDevice("dev1");
  MethodCall call;
  hub().InvokeMethod("dev1",
                     Json{{"methodName", "m"},
                          {"payload", "hi"},
                          {"connectTimeoutInSeconds", 20},
                          {"responseTimeoutInSeconds", 5}},
                     call.Callback());
  EXPECT_FALSE(call.reply.has_value());
  steady_.Advance(5'000);
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  hub().OnTick();
  EXPECT_TRUE(broker_.published.empty());  // connected, but not listening for methods
  ASSERT_TRUE(hub().OnSubscribe(Conn(0), "dev1", "$iothub/methods/POST/#"));
  EXPECT_TRUE(broker_.published.empty());  // sent on the tick after the SUBACK
  hub().OnTick();
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].topic.rfind("$iothub/methods/POST/m/?$rid=", 0), 0u);
  EXPECT_EQ(out[0].payload, "\"hi\"");
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/methods/res/200/?$rid=" + Rid(out[0].topic), "1"),
            PublishVerdict::kAccept);
  ASSERT_TRUE(call.reply.has_value());
  EXPECT_EQ(call.reply->body, Json::parse(R"({"status":200,"payload":1})"));
}

TEST_F(HubTest, ConnectTimeoutExpiresWith404103) {
  CreateDevice("dev1");
  MethodCall call;
  hub().InvokeMethod("dev1", Json{{"methodName", "m"}, {"connectTimeoutInSeconds", 20}},
                     call.Callback());
  steady_.Advance(19'999);
  hub().OnTick();
  EXPECT_FALSE(call.reply.has_value());
  steady_.Advance(1);
  hub().OnTick();
  ASSERT_TRUE(call.reply.has_value());
  EXPECT_EQ(call.reply->status, 404);
  EXPECT_EQ(ErrorCode(*call.reply), 404103);
}

TEST_F(HubTest, MethodArgumentsAreValidated) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  std::deque<MethodCall> calls;  // pending calls must outlive the hub's callbacks
  auto status_of = [&](const Json& body) {
    calls.emplace_back();
    hub().InvokeMethod("dev1", body, calls.back().Callback());
    return calls.back().reply ? calls.back().reply->status : 0;  // 0: pending
  };
  EXPECT_EQ(status_of(Json::object()), 400);
  EXPECT_EQ(status_of(Json{{"methodName", ""}}), 400);
  EXPECT_EQ(status_of(Json{{"methodName", 5}}), 400);
  EXPECT_EQ(status_of(Json{{"methodName", "m"}, {"responseTimeoutInSeconds", 4}}), 400);
  EXPECT_EQ(status_of(Json{{"methodName", "m"}, {"responseTimeoutInSeconds", 301}}), 400);
  EXPECT_EQ(status_of(Json{{"methodName", "m"}, {"responseTimeoutInSeconds", "30"}}), 400);
  EXPECT_EQ(status_of(Json{{"methodName", "m"}, {"connectTimeoutInSeconds", -1}}), 400);
  EXPECT_EQ(status_of(Json{{"methodName", "m"}, {"connectTimeoutInSeconds", 301}}), 400);
  EXPECT_EQ(status_of(Json{{"methodName", "m"}, {"payload", std::string(128 * 1024, 'x')}}), 413);
  EXPECT_TRUE(broker_.published.empty());
  EXPECT_EQ(status_of(Json{{"methodName", "m"}, {"responseTimeoutInSeconds", 5}}), 0);
  EXPECT_EQ(status_of(Json{{"methodName", "m"}, {"responseTimeoutInSeconds", 300}}), 0);
  EXPECT_EQ(broker_.published.size(), 2u);
}

TEST_F(HubTest, ShutdownAnswersWaitingMethodsWith503) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  MethodCall sent;
  MethodCall waiting;
  hub().InvokeMethod("dev1", Json{{"methodName", "m"}}, sent.Callback());
  hub().InvokeMethod("dev2", Json{{"methodName", "m"}}, waiting.Callback());  // unknown: 404
  CreateDevice("dev3");
  MethodCall connecting;
  hub().InvokeMethod("dev3", Json{{"methodName", "m"}, {"connectTimeoutInSeconds", 60}},
                     connecting.Callback());
  hub().Shutdown();
  ASSERT_TRUE(sent.reply && connecting.reply);
  EXPECT_EQ(sent.reply->status, 503);
  EXPECT_EQ(connecting.reply->status, 503);
  EXPECT_EQ(ErrorCode(*sent.reply), 503001);
}

// ===================================== token expiry and sessions ==========================

TEST_F(HubTest, ExpiredTokenGetsTheClientKicked) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(hub().OnConnect(Conn(0), "dev1", Username("dev1"),
                            DeviceToken("dev1", key, NowS() + 60), false),
            AuthOutcome::kAccepted);
  wall_.Advance(59'999);
  hub().OnTick();
  EXPECT_TRUE(broker_.kicked.empty());
  wall_.Advance(1);
  hub().OnTick();
  EXPECT_EQ(broker_.kicked, std::vector<std::string>{"dev1"});
  EXPECT_FALSE(Connected("dev1"));
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), "x"), PublishVerdict::kClose);
  hub().OnTick();
  EXPECT_EQ(broker_.kicked.size(), 1u);  // kicked once
}

TEST_F(HubTest, AdvanceClockEndpointExpiresTokens) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(hub().OnConnect(Conn(0), "dev1", Username("dev1"),
                            DeviceToken("dev1", key, NowS() + 3600), false),
            AuthOutcome::kAccepted);
  const ServiceReply r = hub().AdvanceClock(Json{{"seconds", 3600}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body["now"], "2023-11-14T23:13:20.0000000Z");
  EXPECT_EQ(wall_.NowMs(), kWallStart + 3'600'000);
  EXPECT_EQ(broker_.kicked, std::vector<std::string>{"dev1"});
  EXPECT_EQ(hub().AdvanceClock(Json{{"seconds", -1}}).status, 400);
  EXPECT_EQ(hub().AdvanceClock(Json{{"seconds", "1"}}).status, 400);
  EXPECT_EQ(wall_.NowMs(), kWallStart + 3'600'000);
}

TEST_F(HubTest, SecondConnectReplacesTheFirst) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_EQ(Connect(Conn(1), "dev1", key), AuthOutcome::kAccepted);
  hub().OnDisconnect(Conn(0), "dev1");  // the broker drops the older connection
  EXPECT_TRUE(Connected("dev1"));
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), "old"), PublishVerdict::kClose);
  EXPECT_EQ(Pub(Conn(1), "dev1", Telemetry("dev1"), "new"), PublishVerdict::kAccept);
  hub().OnDisconnect(Conn(1), "dev1");
  EXPECT_FALSE(Connected("dev1"));
  EXPECT_EQ(Stats()["devices"]["dev1"]["connects"], 2);
}

TEST_F(HubTest, RefusedReconnectLeavesTheLiveSessionAlone) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  EXPECT_EQ(hub().OnConnect(Conn(1), "dev1", Username("dev1"), "bad", false),
            AuthOutcome::kNotAuthorized);
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), "x"), PublishVerdict::kAccept);
}

TEST_F(HubTest, CleanSessionZeroKeepsSubscriptionsAcrossReconnect) {
  ASSERT_NO_FATAL_FAILURE(ReconnectAfterSubscribing(false));
  MethodCall call;
  hub().InvokeMethod("dev1", Json{{"methodName", "m"}}, call.Callback());
  EXPECT_FALSE(call.reply.has_value());
  EXPECT_EQ(broker_.Take().size(), 1u);  // sent without resubscribing
  ASSERT_EQ(Pub(Conn(1), "dev1", "$iothub/twin/GET/?$rid=1"), PublishVerdict::kAccept);
  EXPECT_EQ(broker_.Take().size(), 1u);
}

TEST_F(HubTest, CleanSessionOneClearsSubscriptions) {
  ASSERT_NO_FATAL_FAILURE(ReconnectAfterSubscribing(true));
  MethodCall call;
  hub().InvokeMethod("dev1", Json{{"methodName", "m"}}, call.Callback());
  ASSERT_TRUE(call.reply.has_value());
  EXPECT_EQ(ErrorCode(*call.reply), 404103);
  ASSERT_EQ(Pub(Conn(1), "dev1", "$iothub/twin/GET/?$rid=1"), PublishVerdict::kAccept);
  EXPECT_TRUE(broker_.published.empty());
}

TEST_F(HubTest, UnsubscribeDropsTheBit) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  hub().OnUnsubscribe(Conn(0), "dev1", "$iothub/methods/POST/#");
  MethodCall call;
  hub().InvokeMethod("dev1", Json{{"methodName", "m"}}, call.Callback());
  ASSERT_TRUE(call.reply.has_value());
  EXPECT_EQ(ErrorCode(*call.reply), 404103);
}

TEST_F(HubTest, KickFaultDisconnectsTheDevice) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  EXPECT_EQ(hub().Fault("kick", Json{{"deviceId", "dev1"}}).status, 200);
  EXPECT_EQ(broker_.kicked, std::vector<std::string>{"dev1"});
  EXPECT_FALSE(Connected("dev1"));
  const ServiceReply again = hub().Fault("kick", Json{{"deviceId", "dev1"}});
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(ErrorCode(again), 404103);
}

TEST_F(HubTest, BrokerDownFaultAsksForARestart) {
  EXPECT_EQ(hub().Fault("broker-down", Json{{"seconds", 2.5}}).status, 202);
  EXPECT_EQ(broker_downs_, std::vector<int>{3});
  EXPECT_EQ(hub().Fault("broker-down", Json{{"seconds", 0}}).status, 400);
  EXPECT_EQ(hub().Fault("broker-down", Json{{"seconds", 3601}}).status, 400);
  EXPECT_EQ(hub().Fault("no-such-fault", Json::object()).status, 404);
  EXPECT_EQ(hub().Fault("kick", Json::array()).status, 400);
  EXPECT_EQ(broker_downs_.size(), 1u);
}

// ===================================== cloud-to-device =====================================

TEST_F(HubTest, CloudToDeviceQueuesWhileOfflineAndArrivesAfterReconnect) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_TRUE(hub().OnSubscribe(Conn(0), "dev1", "devices/+/messages/devicebound/#"));
  hub().OnDisconnect(Conn(0), "dev1");

  const ServiceReply sent = hub().SendCloudToDevice(
      "dev1", Json::parse(R"({"body":"hello","messageId":"m-1","properties":{"color":"blue"}})"));
  EXPECT_EQ(sent.status, 202);
  EXPECT_EQ(sent.body["messageId"], "m-1");
  EXPECT_EQ(hub().GetDevice("dev1").body["cloudToDeviceMessageCount"], 1);
  hub().OnTick();
  EXPECT_TRUE(broker_.published.empty());

  ASSERT_EQ(Connect(Conn(1), "dev1", key, false), AuthOutcome::kAccepted);
  EXPECT_TRUE(broker_.published.empty());  // delivered on the tick after CONNACK
  hub().OnTick();
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].client, "dev1");
  EXPECT_EQ(out[0].qos, 1);
  EXPECT_EQ(out[0].payload, "hello");
  EXPECT_EQ(out[0].topic.rfind("devices/dev1/messages/devicebound/"
                               "%24.mid=m-1&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&",
                               0),
            0u)
      << out[0].topic;
  EXPECT_EQ(BagValue(out[0].topic, "$.mid"), "m-1");
  EXPECT_EQ(BagValue(out[0].topic, "$.to"), "/devices/dev1/messages/devicebound");
  EXPECT_EQ(BagValue(out[0].topic, "$.exp"), "2023-11-14T23:13:20.0000000Z");  // default TTL 1 h
  EXPECT_EQ(BagValue(out[0].topic, "color"), "blue");
  EXPECT_EQ(hub().GetDevice("dev1").body["cloudToDeviceMessageCount"], 0);
  EXPECT_EQ(Stats()["devices"]["dev1"]["c2dDelivered"], 1);
  hub().OnTick();
  EXPECT_TRUE(broker_.published.empty());  // delivered once
}

TEST_F(HubTest, CloudToDeviceWaitsForTheSubscription) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key, true), AuthOutcome::kAccepted);
  ASSERT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", "a"}}).status, 202);
  hub().OnTick();
  EXPECT_TRUE(broker_.published.empty());
  ASSERT_TRUE(hub().OnSubscribe(Conn(0), "dev1", "devices/dev1/messages/devicebound/#"));
  hub().OnTick();
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].payload, "a");
  // A generated message id looks like a GUID.
  const auto mid = BagValue(out[0].topic, "$.mid");
  ASSERT_TRUE(mid.has_value());
  EXPECT_EQ(mid->size(), 36u) << *mid;
  EXPECT_EQ((*mid)[8], '-');
}

TEST_F(HubTest, CloudToDeviceToAnOnlineDeviceGoesOutAtOnceInOrder) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  hub().OnTick();
  ASSERT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", "1"}}).status, 202);
  ASSERT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", "2"}}).status, 202);
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].payload, "1");
  EXPECT_EQ(out[1].payload, "2");
}

TEST_F(HubTest, CloudToDeviceQueueHoldsFifty) {
  CreateDevice("dev1");
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", std::to_string(i)}}).status, 202) << i;
  }
  const ServiceReply r = hub().SendCloudToDevice("dev1", Json{{"body", "51st"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(ErrorCode(r), 403004);
  EXPECT_EQ(r.headers.at("iothub-errorcode"), "DeviceMaximumQueueDepthExceeded");
  EXPECT_EQ(hub().GetDevice("dev1").body["cloudToDeviceMessageCount"], 50);
}

TEST_F(HubTest, CloudToDeviceSizeLimitCountsBodyAndProperties) {
  CreateDevice("dev1");
  // §5's measure: the body, the values of the system properties the message carries
  // ($.mid, $.to, $.exp), the names and values of the application properties.
  const std::size_t system = std::string("m").size() +
                             std::string("/devices/dev1/messages/devicebound").size() +
                             FormatIsoTime(kWallStart + 3'600'000).size();
  const std::size_t room = 64 * 1024 - system;
  auto send = [&](std::size_t body, const Json& properties = Json::object()) {
    return hub().SendCloudToDevice(
        "dev1",
        Json{{"body", std::string(body, 'x')}, {"messageId", "m"}, {"properties", properties}});
  };
  EXPECT_EQ(send(room).status, 202);
  EXPECT_EQ(send(room - 4, {{"ab", "cd"}}).status, 202);
  const ServiceReply over = send(room + 1);
  EXPECT_EQ(over.status, 413);
  EXPECT_EQ(ErrorCode(over), 413001);
  EXPECT_EQ(send(room - 4, {{"ab", "cde"}}).status, 413);
  EXPECT_EQ(hub().GetDevice("dev1").body["cloudToDeviceMessageCount"], 2);
}

TEST_F(HubTest, CloudToDeviceSendsAreThrottledPerMinute) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  hub().OnTick();
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", "x"}}).status, 202) << i;
  }
  const ServiceReply r = hub().SendCloudToDevice("dev1", Json{{"body", "x"}});
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(ErrorCode(r), 429001);
  EXPECT_EQ(broker_.Take().size(), 100u);
  steady_.Advance(601);  // 100 per minute
  EXPECT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", "x"}}).status, 202);
}

TEST_F(HubTest, CloudToDeviceRejectsBadRequests) {
  CreateDevice("dev1");
  EXPECT_EQ(hub().SendCloudToDevice("ghost", Json{{"body", "x"}}).status, 404);
  EXPECT_EQ(hub().SendCloudToDevice("dev1", Json::object()).status, 400);
  EXPECT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", 5}}).status, 400);
  EXPECT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", "x"}, {"properties", 1}}).status, 400);
  EXPECT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", "x"}, {"properties", {{"a", 1}}}}).status,
            400);
  EXPECT_EQ(hub().GetDevice("dev1").body["cloudToDeviceMessageCount"], 0);
}

TEST_F(HubTest, CloudToDeviceExpiresAfterItsTtl) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", "short"}, {"ttlSeconds", 10}}).status,
            202);
  ASSERT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", "long"}, {"ttlSeconds", 20}}).status,
            202);
  wall_.Advance(9'999);
  hub().OnTick();
  EXPECT_EQ(hub().GetDevice("dev1").body["cloudToDeviceMessageCount"], 2);
  wall_.Advance(1);
  hub().OnTick();
  EXPECT_EQ(hub().GetDevice("dev1").body["cloudToDeviceMessageCount"], 1);
  EXPECT_EQ(Stats()["devices"]["dev1"]["c2dExpired"], 1);
  Online(Conn(0), "dev1", key);
  hub().OnTick();
  const auto out = broker_.Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].payload, "long");
}

// ===================================== registry =====================================

TEST_F(HubTest, PutDeviceCreatesWithGeneratedKeys) {
  const ServiceReply r = hub().PutDevice("dev1", Json::object(), "");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  const Json& d = r.body;
  EXPECT_EQ(d["deviceId"], "dev1");
  EXPECT_EQ(d["etag"], "MA==");
  EXPECT_EQ(d["status"], "enabled");
  EXPECT_EQ(d["connectionState"], "Disconnected");
  EXPECT_EQ(d["cloudToDeviceMessageCount"], 0);
  EXPECT_EQ(d["authentication"]["type"], "sas");
  EXPECT_FALSE(d["generationId"].get<std::string>().empty());
  const std::string primary = d["authentication"]["symmetricKey"]["primaryKey"];
  const std::string secondary = d["authentication"]["symmetricKey"]["secondaryKey"];
  ASSERT_TRUE(Base64Decode(primary).has_value()) << primary;
  ASSERT_TRUE(Base64Decode(secondary).has_value()) << secondary;
  EXPECT_EQ(Base64Decode(primary)->size(), 32u);
  EXPECT_EQ(Base64Decode(secondary)->size(), 32u);
  EXPECT_NE(primary, secondary);
  EXPECT_EQ(hub().GetDevice("dev1").body, d);
  // Another device gets other keys.
  EXPECT_NE(CreateDevice("dev2"), primary);
}

TEST_F(HubTest, PutDeviceKeepsGivenKeysAndChecksThem) {
  const std::string k1 = Base64Encode(std::string(16, 'a'));
  const std::string k2 = Base64Encode(std::string(64, 'b'));
  const Json body = {
      {"deviceId", "dev1"},
      {"authentication",
       {{"type", "sas"}, {"symmetricKey", {{"primaryKey", k1}, {"secondaryKey", k2}}}}}};
  const ServiceReply r = hub().PutDevice("dev1", body, "");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["authentication"]["symmetricKey"]["primaryKey"], k1);
  EXPECT_EQ(r.body["authentication"]["symmetricKey"]["secondaryKey"], k2);
  for (const std::string& bad : {std::string("not base64!"), Base64Encode(std::string(15, 'a')),
                                 Base64Encode(std::string(65, 'a'))}) {
    const Json b = {{"authentication", {{"symmetricKey", {{"primaryKey", bad}}}}}};
    const ServiceReply rejected = hub().PutDevice("dev2", b, "");
    EXPECT_EQ(rejected.status, 400) << bad;
    EXPECT_EQ(ErrorCode(rejected), 400004);
  }
  EXPECT_EQ(hub().GetDevice("dev2").status, 404);
  EXPECT_EQ(hub().PutDevice("dev3", Json{{"deviceId", "other"}}, "").status, 400);
  EXPECT_EQ(hub().PutDevice("dev3", Json{{"status", "paused"}}, "").status, 400);
  EXPECT_EQ(hub().PutDevice("dev3", Json::array(), "").status, 400);
}

TEST_F(HubTest, DuplicateCreateIs409) {
  CreateDevice("dev1");
  const ServiceReply r = hub().PutDevice("dev1", Json::object(), "");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(ErrorCode(r), 409001);
  EXPECT_EQ(r.body["Message"].get<std::string>().rfind("ErrorCode:DeviceAlreadyExists;", 0), 0u)
      << r.body.dump();
  EXPECT_EQ(r.headers.at("iothub-errorcode"), "DeviceAlreadyExists");
}

TEST_F(HubTest, InvalidDeviceIdsAre400) {
  for (const std::string& id :
       {std::string(129, 'a'), std::string(""), std::string("bad/id"), std::string("bad id"),
        std::string("bad#id"), std::string("bad+id"), std::string("caf\xc3\xa9")}) {
    const ServiceReply r = hub().PutDevice(id, Json::object(), "");
    EXPECT_EQ(r.status, 400) << id;
    EXPECT_EQ(ErrorCode(r), 400004) << id;
  }
  EXPECT_EQ(hub().PutDevice(std::string(128, 'a'), Json::object(), "").status, 200);
  EXPECT_EQ(hub().PutDevice("a-b.c%d_e*f?g!h(i)j,k:l=m@n$o'p", Json::object(), "").status, 200);
  EXPECT_EQ(hub().ListDevices(1000).body.size(), 2u);
}

TEST_F(HubTest, UpdateDeviceHonoursIfMatch) {
  CreateDevice("dev1");
  const ServiceReply wrong = hub().PutDevice("dev1", Json{{"status", "disabled"}}, "\"MQ==\"");
  EXPECT_EQ(wrong.status, 412);
  EXPECT_EQ(ErrorCode(wrong), 412002);
  EXPECT_EQ(hub().GetDevice("dev1").body["status"], "enabled");

  const ServiceReply star = hub().PutDevice("dev1", Json{{"statusReason", "why"}}, "*");
  ASSERT_EQ(star.status, 200);
  EXPECT_EQ(star.body["etag"], "MQ==");
  EXPECT_EQ(star.body["statusReason"], "why");
  const ServiceReply quoted = hub().PutDevice("dev1", Json::object(), "\"MQ==\"");
  ASSERT_EQ(quoted.status, 200);
  EXPECT_EQ(quoted.body["etag"], "Mg==");
  const ServiceReply bare = hub().PutDevice("dev1", Json::object(), "Mg==");
  ASSERT_EQ(bare.status, 200);
  EXPECT_EQ(bare.body["etag"], "Mw==");
  EXPECT_EQ(hub().PutDevice("ghost", Json::object(), "*").status, 404);
}

TEST_F(HubTest, UpdateKeepsKeysUnlessReplaced) {
  const std::string key = CreateDevice("dev1");
  const ServiceReply r = hub().PutDevice("dev1", Json{{"status", "enabled"}}, "*");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["authentication"]["symmetricKey"]["primaryKey"], key);
  const std::string fresh = Base64Encode(std::string(32, 'f'));
  const ServiceReply replaced = hub().PutDevice(
      "dev1", Json{{"authentication", {{"symmetricKey", {{"primaryKey", fresh}}}}}}, "*");
  ASSERT_EQ(replaced.status, 200);
  EXPECT_EQ(replaced.body["authentication"]["symmetricKey"]["primaryKey"], fresh);
  EXPECT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kNotAuthorized);
  EXPECT_EQ(Connect(Conn(0), "dev1", fresh), AuthOutcome::kAccepted);
}

TEST_F(HubTest, DisablingAConnectedDeviceKicksIt) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  const ServiceReply r = hub().PutDevice("dev1", Json{{"status", "disabled"}}, "*");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["status"], "disabled");
  EXPECT_EQ(r.body["statusUpdatedTime"], "2023-11-14T22:13:20.0000000Z");
  EXPECT_EQ(broker_.kicked, std::vector<std::string>{"dev1"});
  EXPECT_FALSE(Connected("dev1"));
  EXPECT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kNotAuthorized);
}

TEST_F(HubTest, DeleteThenGetIs404) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", "x"}}).status, 202);
  EXPECT_EQ(hub().DeleteDevice("dev1", "\"Nw==\"").status, 412);
  EXPECT_EQ(hub().DeleteDevice("dev1", "*").status, 204);
  EXPECT_EQ(broker_.kicked, std::vector<std::string>{"dev1"});
  const ServiceReply get = hub().GetDevice("dev1");
  EXPECT_EQ(get.status, 404);
  EXPECT_EQ(ErrorCode(get), 404001);
  EXPECT_EQ(hub().GetTwin("dev1").status, 404);
  EXPECT_EQ(hub().DeleteDevice("dev1", "*").status, 404);
  EXPECT_FALSE(Stats()["devices"].contains("dev1"));
  // A re-created device starts with an empty queue and a fresh etag.
  CreateDevice("dev1");
  EXPECT_EQ(hub().GetDevice("dev1").body["cloudToDeviceMessageCount"], 0);
  EXPECT_EQ(hub().GetDevice("dev1").body["etag"], "MA==");
  EXPECT_EQ(hub().DeleteDevice("dev1", "\"MA==\"").status, 204);
}

TEST_F(HubTest, BulkCreatesDevices) {
  const Json body = Json::parse(R"([{"id":"b1","importMode":"create"},
                                    {"id":"b2","importMode":"Create","status":"disabled"},
                                    {"id":"b3"}])");
  const ServiceReply r = hub().BulkDevices(body);
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["isSuccessful"], true);
  EXPECT_EQ(r.body["errors"], Json::array());
  EXPECT_EQ(hub().ListDevices(1000).body.size(), 3u);
  EXPECT_EQ(hub().GetDevice("b2").body["status"], "disabled");
  EXPECT_EQ(hub().GetDevice("b3").body["authentication"]["type"], "sas");
}

TEST_F(HubTest, BulkTakesOneToOneHundredEntries) {
  EXPECT_EQ(hub().BulkDevices(Json::array()).status, 400);
  Json many = Json::array();
  for (int i = 0; i < 101; ++i) many.push_back({{"id", "d" + std::to_string(i)}});
  const ServiceReply over = hub().BulkDevices(many);
  EXPECT_EQ(over.status, 400);
  EXPECT_EQ(ErrorCode(over), 400004);
  EXPECT_EQ(hub().ListDevices(1000).body.size(), 0u);
  many.erase(many.size() - 1);
  EXPECT_EQ(hub().BulkDevices(many).status, 200);
  EXPECT_EQ(hub().ListDevices(1000).body.size(), 100u);
  EXPECT_EQ(hub().BulkDevices(Json::object()).status, 400);
}

TEST_F(HubTest, BulkReportsPerDeviceErrors) {
  CreateDevice("b1");
  const ServiceReply r = hub().BulkDevices(
      Json::parse(R"([{"id":"b1","importMode":"create"},{"id":"b2","importMode":"create"},
                      {"id":"b3","importMode":"frobnicate"},{"id":"b1","importMode":"delete"}])"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["isSuccessful"], false);
  ASSERT_EQ(r.body["errors"].size(), 2u) << r.body.dump();
  EXPECT_EQ(r.body["errors"][0]["deviceId"], "b1");
  EXPECT_EQ(r.body["errors"][0]["errorCode"], "DeviceAlreadyExists");
  EXPECT_EQ(r.body["errors"][1]["deviceId"], "b3");
  EXPECT_EQ(r.body["errors"][1]["errorCode"], "ArgumentInvalid");
  EXPECT_EQ(hub().GetDevice("b2").status, 200);
  EXPECT_EQ(hub().GetDevice("b1").status, 404);  // the later delete ran
}

TEST_F(HubTest, ListDevicesHonoursTop) {
  CreateDevice("c");
  CreateDevice("a");
  CreateDevice("b");
  const Json all = hub().ListDevices(1000).body;
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]["deviceId"], "a");
  EXPECT_EQ(all[2]["deviceId"], "c");
  EXPECT_EQ(hub().ListDevices(2).body.size(), 2u);
  EXPECT_EQ(hub().ListDevices(0).body, Json::array());
}

TEST_F(HubTest, FreeTierHoldsFiveHundredDevices) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  for (int batch = 0; batch < 5; ++batch) {
    Json entries = Json::array();
    for (int i = 0; i < 100; ++i)
      entries.push_back({{"id", "d" + std::to_string(batch * 100 + i)}});
    ASSERT_EQ(hub().BulkDevices(entries).status, 200) << batch;
  }
  const ServiceReply r = hub().PutDevice("one-too-many", Json::object(), "");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(ErrorCode(r), 403005);
}

TEST_F(HubTest, RegistryOperationsAreThrottledPerMinute) {
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(hub().AllowRegistryOperation()) << i;
  EXPECT_FALSE(hub().AllowRegistryOperation());
  steady_.Advance(590);
  EXPECT_FALSE(hub().AllowRegistryOperation());
  steady_.Advance(11);  // 100 per minute: one every 600 ms
  EXPECT_TRUE(hub().AllowRegistryOperation());
  EXPECT_EQ(Stats()["throttled"], 2);
}

TEST_F(HubTest, MistypedServiceJsonIsA400NotAnException) {
  CreateDevice("dev1");
  ServiceReply r;
  EXPECT_NO_THROW(r = hub().PutDevice("dev2", Json{{"status", 1}}, ""));
  EXPECT_EQ(r.status, 400);
  EXPECT_NO_THROW(r = hub().PutDevice("dev1", Json{{"status", nullptr}}, "*"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NO_THROW(r = hub().PutDevice("dev3", Json{{"capabilities", {{"iotEdge", "yes"}}}}, ""));
  EXPECT_EQ(r.status, 400);
  EXPECT_NO_THROW(r = hub().PutDevice("dev4", Json{{"authentication", {{"type", 3}}}}, ""));
  EXPECT_EQ(r.status, 400);
  EXPECT_NO_THROW(r = hub().BulkDevices(Json::parse(R"([{"id":5}])")));
  EXPECT_EQ(r.status, 400);
  EXPECT_NO_THROW(r = hub().SendCloudToDevice("dev1", Json{{"body", "x"}, {"messageId", 7}}));
  EXPECT_EQ(r.status, 400);
  EXPECT_NO_THROW(r = hub().Fault("refuse-connections", Json{{"seconds", "5"}}));
  EXPECT_EQ(r.status, 400);
}

// ===================================== persistence =====================================

TEST_F(HubTest, ReopenedRegistryKeepsDevicesKeysAndTwin) {
  const std::string key = CreateDevice("dev1");
  const std::string secondary = SecondaryKey("dev1");
  ASSERT_EQ(hub().PutDevice("dev2", Json{{"status", "disabled"}}, "").status, 200);
  ASSERT_EQ(hub()
                .UpdateTwin("dev1", Json::parse(R"({"tags":{"site":"lab"},
                                            "properties":{"desired":{"rate":5}}})"),
                            "", false)
                .status,
            200);
  Online(Conn(0), "dev1", key);
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=1", R"({"fw":"2"})"),
            PublishVerdict::kAccept);
  broker_.Take();
  const Json device_before = hub().GetDevice("dev1").body;
  const Json twin_before = hub().GetTwin("dev1").body;

  ASSERT_NO_FATAL_FAILURE(StartHub());

  const Json device_after = hub().GetDevice("dev1").body;
  EXPECT_EQ(device_after["authentication"]["symmetricKey"]["primaryKey"], key);
  EXPECT_EQ(device_after["authentication"]["symmetricKey"]["secondaryKey"], secondary);
  EXPECT_EQ(device_after["etag"], device_before["etag"]);
  EXPECT_EQ(device_after["generationId"], device_before["generationId"]);
  EXPECT_EQ(device_after["connectionState"], "Disconnected");  // connections are not durable
  const Json twin_after = hub().GetTwin("dev1").body;
  EXPECT_EQ(twin_after["tags"], (Json{{"site", "lab"}}));
  EXPECT_EQ(twin_after["properties"], twin_before["properties"]);
  EXPECT_EQ(twin_after["properties"]["desired"]["rate"], 5);
  EXPECT_EQ(twin_after["properties"]["reported"]["fw"], "2");
  EXPECT_EQ(twin_after["version"], twin_before["version"]);
  EXPECT_EQ(twin_after["etag"], twin_before["etag"]);
  EXPECT_EQ(hub().GetDevice("dev2").body["status"], "disabled");
  EXPECT_EQ(hub().ListDevices(1000).body.size(), 2u);
  EXPECT_TRUE(Stats()["devices"].contains("dev1"));

  // The same key still connects, and a CleanSession=0 session keeps its subscriptions.
  ASSERT_EQ(Connect(Conn(1), "dev1", key, false), AuthOutcome::kAccepted);
  MethodCall call;
  hub().InvokeMethod("dev1", Json{{"methodName", "m"}}, call.Callback());
  EXPECT_FALSE(call.reply.has_value());
  EXPECT_EQ(broker_.Take().size(), 1u);
}

TEST_F(HubTest, DeletedDevicesStayDeletedAfterReopen) {
  CreateDevice("dev1");
  CreateDevice("dev2");
  ASSERT_EQ(hub().DeleteDevice("dev1", "*").status, 204);
  ASSERT_NO_FATAL_FAILURE(StartHub());
  EXPECT_EQ(hub().GetDevice("dev1").status, 404);
  EXPECT_EQ(hub().GetDevice("dev2").status, 200);
}

// Another connection to the registry file holding SQLite's write lock: every write of the
// hub's registry fails (SQLITE_BUSY) while it lives, as on a failing disk.
class RegistryWriteLock {
 public:
  explicit RegistryWriteLock(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK ||
        sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot lock " << path;
    }
  }
  ~RegistryWriteLock() {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
  }
  RegistryWriteLock(const RegistryWriteLock&) = delete;
  RegistryWriteLock& operator=(const RegistryWriteLock&) = delete;

 private:
  sqlite3* db_ = nullptr;
};

TEST_F(HubTest, FailedRegistryWritesAreNeverAcknowledged) {
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  {
    RegistryWriteLock lock(db_path_);
    const ServiceReply created = hub().PutDevice("dev2", Json::object(), "");
    EXPECT_EQ(created.status, 500);
    EXPECT_EQ(ErrorCode(created), 500001);
    EXPECT_EQ(hub().GetDevice("dev2").status, 404);  // memory follows disk
    EXPECT_EQ(hub().PutDevice("dev1", {{"status", "disabled"}}, "*").status, 500);
    EXPECT_EQ(hub().GetDevice("dev1").body["status"], "enabled");
    EXPECT_EQ(hub().UpdateTwin("dev1", {{"tags", {{"a", 1}}}}, "", false).status, 500);
    EXPECT_FALSE(hub().GetTwin("dev1").body["tags"].contains("a"));
    EXPECT_EQ(hub().DeleteDevice("dev1", "*").status, 500);
    EXPECT_EQ(hub().GetDevice("dev1").status, 200);
    const Json bulk = hub().BulkDevices(Json::parse(R"([{"id":"dev3"}])")).body;
    EXPECT_FALSE(bulk["isSuccessful"].get<bool>());
    broker_.Take();
    ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=1", R"({"r":1})"),
              PublishVerdict::kAccept);
    const auto answers = broker_.Take();
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].topic, "$iothub/twin/res/500/?$rid=1");
    EXPECT_FALSE(hub().GetTwin("dev1").body["properties"]["reported"].contains("r"));
    EXPECT_EQ(Stats()["devices"]["dev1"]["reportedPatches"], 0);
  }
  // Nothing half-done survives a restart, and everything works again once writes do.
  ASSERT_NO_FATAL_FAILURE(StartHub());
  EXPECT_EQ(hub().GetDevice("dev2").status, 404);
  EXPECT_EQ(hub().GetDevice("dev1").body["status"], "enabled");
  EXPECT_EQ(hub().PutDevice("dev2", Json::object(), "").status, 200);
  EXPECT_EQ(hub().DeleteDevice("dev1", "*").status, 204);
}

TEST_F(HubTest, SessionStateThatCannotBeStoredRefusesTheSession) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_TRUE(hub().OnSubscribe(Conn(0), "dev1", "$iothub/methods/POST/#"));
  {
    RegistryWriteLock lock(db_path_);
    // A new subscription of a persistent session must be stored: refused, connection closed.
    EXPECT_FALSE(hub().OnSubscribe(Conn(0), "dev1", "$iothub/twin/res/#"));
    // A clean session must forget the stored subscriptions: not opened.
    EXPECT_EQ(Connect(Conn(1), "dev1", key, /*clean_session=*/true), AuthOutcome::kUnavailable);
    // An unsubscription the hub cannot store closes the connection instead.
    broker_.kicked.clear();
    hub().OnUnsubscribe(Conn(0), "dev1", "$iothub/methods/POST/#");
    EXPECT_EQ(broker_.kicked, std::vector<std::string>{"dev1"});
    // Reconnecting without changes needs no write.
    EXPECT_EQ(Connect(Conn(2), "dev1", key), AuthOutcome::kAccepted);
  }
  ASSERT_NO_FATAL_FAILURE(StartHub());
  ASSERT_EQ(Connect(Conn(3), "dev1", key), AuthOutcome::kAccepted);
  MethodCall call;
  hub().InvokeMethod("dev1", {{"methodName", "m"}}, call.Callback());
  EXPECT_FALSE(call.reply.has_value()) << "the stored methods subscription is still there";
}

TEST(DeviceRegistryTest, OpenNamesTheFileItCannotOpen) {
  auto registry = DeviceRegistry::Open("/nonexistent-dir/sub/registry.sqlite");
  ASSERT_FALSE(registry.ok());
  EXPECT_EQ(registry.error().code, "StateDir");
  EXPECT_NE(registry.error().message.find("/nonexistent-dir/sub/registry.sqlite"),
            std::string::npos)
      << registry.error().message;
}

TEST(DeviceRegistryTest, StorageRoundTripKeepsEveryField) {
  Device d;
  d.id = "dev1";
  d.generation_id = "638000";
  d.etag_counter = 4;
  d.enabled = false;
  d.status_reason = "r";
  d.primary_key = "pk";
  d.secondary_key = "sk";
  d.iot_edge = true;
  d.status_updated_ms = 11;
  d.last_activity_ms = 12;
  d.twin_etag_counter = 5;
  d.twin_version = 6;
  d.model_id = "dtmi:x;1";
  d.tags.values = {{"t", 1}};
  d.desired.values = {{"d", 2}};
  d.desired.version = 3;
  d.reported.values = {{"r", 3}};
  d.reported.last_updated_ms = 99;
  d.subscriptions = 9;
  const Device back = DeviceFromStorage(DeviceToStorage(d));
  EXPECT_EQ(DeviceToStorage(back), DeviceToStorage(d));
  EXPECT_EQ(back.Etag(), "NA==");
  EXPECT_EQ(back.TwinEtag(), "AAAAAAAAAAU=");
}

}  // namespace
}  // namespace iothub::emulator
