// The Hub's unit-test rig: a recording BrokerPort stands in for mosquitto, manual clocks for
// time, a temporary SQLite file for the registry; HubTest drives a Hub directly. Shared by
// hub_test.cc (the protocol) and hub_metering_test.cc (metering, throttles, tiers).
#pragma once

#include <gtest/gtest.h>

#include <deque>
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
#include "emulator/hub.h"
#include "support/emulator_fixture.h"

namespace iothub::emulator {

inline constexpr char kHost[] = "myhub.azure-devices.net";
inline constexpr std::int64_t kWallStart = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
inline constexpr std::int64_t kMidnight = 1'700'006'400'000;   // the next 00:00 UTC
inline constexpr std::int64_t kSteadyStart = 5'000'000;
inline constexpr std::int64_t kDaySeconds = 86'400;

inline const std::string kOwnerKey = Base64Encode(std::string(32, 'o'));
inline const std::string kServiceKey = Base64Encode(std::string(32, 's'));
inline const std::string kDevicePolicyKey = Base64Encode(std::string(32, 'd'));
inline const std::string kDevicePolicyKey2 = Base64Encode(std::string(32, 'D'));
inline const std::string kRegistryReadKey = Base64Encode(std::string(32, 'r'));
inline const std::string kRegistryWriteKey = Base64Encode(std::string(32, 'w'));

inline std::vector<SharedAccessPolicy> TestPolicies() {
  const std::string unused = Base64Encode(std::string(32, 'u'));
  return {{"iothubowner", kOwnerKey, unused,
           kRegistryRead | kRegistryWrite | kServiceConnect | kDeviceConnect},
          {"service", kServiceKey, unused, kServiceConnect},
          {"device", kDevicePolicyKey, kDevicePolicyKey2, kDeviceConnect},
          {"registryRead", kRegistryReadKey, unused, kRegistryRead},
          {"registryReadWrite", kRegistryWriteKey, unused, kRegistryRead | kRegistryWrite}};
}

struct Published {
  std::string client;
  std::string topic;
  std::string payload;
  int qos = -1;
};

// Records what the hub asks of the broker.
class RecordingBroker final : public BrokerPort {
 public:
  void Publish(const std::string& client_id, const std::string& topic, std::string payload,
               int qos) override {
    published.push_back({client_id, topic, std::move(payload), qos});
  }
  void Kick(const std::string& client_id) override { kicked.push_back(client_id); }

  std::vector<Published> Take() { return std::exchange(published, {}); }

  std::vector<Published> published;
  std::vector<std::string> kicked;
};

// A method invocation's answer, once it arrives.
struct MethodCall {
  std::optional<ServiceReply> reply;
  std::function<void(ServiceReply)> Callback() {
    return [this](ServiceReply r) {
      EXPECT_FALSE(reply.has_value()) << "answered twice";
      reply = std::move(r);
    };
  }
};

// {"l1":{"l2":...{"lN":"leaf"}}}: the root object plus `levels` nested objects.
inline Json Nested(int levels) {
  Json inner = "leaf";
  for (int i = levels; i >= 1; --i) inner = Json{{"l" + std::to_string(i), inner}};
  return inner;
}

inline std::string Rid(const std::string& topic) {
  return TopicQueryParam(topic, "$rid").value_or("");
}

// The value of property `name` in a devicebound topic's bag.
inline std::optional<std::string> BagValue(const std::string& topic, const std::string& name) {
  const std::string prefix = "/messages/devicebound/";
  const auto at = topic.find(prefix);
  if (at == std::string::npos) return std::nullopt;
  auto bag = azure::ParsePropertyBag(topic.substr(at + prefix.size()));
  if (!bag.ok()) return std::nullopt;
  return azure::FindProperty(*bag, name);
}

inline int ErrorCode(const ServiceReply& r) { return r.body.value("errorCode", 0); }

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartHub()); }

  // (Re)starts the hub over the same registry file, as the emulator does after a restart.
  void StartHub(Tier tier = Tier::kS1, int units = 1,
                QuotaTwinAnswer twin_answer = QuotaTwinAnswer::kClose) {
    hub_.reset();
    auto registry = DeviceRegistry::Open(db_path_);
    ASSERT_TRUE(registry.ok()) << registry.error().message;
    HubConfig config;
    config.host_name = kHost;
    config.tier = tier;
    config.units = units;
    config.quota_twin_answer = twin_answer;
    config.policies = TestPolicies();
    hub_ = std::make_unique<Hub>(
        config, std::move(registry).value(), store_,
        HubEnvironment{wall_, steady_, broker_, [this](std::int64_t ms) { wall_.Advance(ms); },
                       [this](int seconds) { broker_downs_.push_back(seconds); }});
  }

  Hub& hub() { return *hub_; }
  const void* Conn(int i) { return &connections_[i]; }
  std::int64_t NowS() const { return wall_.NowSeconds(); }

  // Registers `id` and returns its primary key.
  std::string CreateDevice(const std::string& id, const Json& body = Json::object()) {
    const ServiceReply r = hub().PutDevice(id, body, "");
    EXPECT_EQ(r.status, 200) << r.body.dump();
    return r.body["authentication"]["symmetricKey"]["primaryKey"].is_string()
               ? r.body["authentication"]["symmetricKey"]["primaryKey"].get<std::string>()
               : "";
  }
  std::string SecondaryKey(const std::string& id) {
    return hub().GetDevice(id).body["authentication"]["symmetricKey"]["secondaryKey"];
  }

  static std::string Username(const std::string& id, const std::string& extra = "") {
    return std::string(kHost) + "/" + id + "/?api-version=2021-04-12" + extra;
  }
  std::string DeviceToken(const std::string& id, const std::string& key,
                          std::optional<std::int64_t> expiry = std::nullopt) {
    auto token = azure::MakeSasToken(std::string(kHost) + "/devices/" + id, key,
                                     expiry.value_or(NowS() + kDaySeconds));
    EXPECT_TRUE(token.ok());
    return token.ok() ? *token : "";
  }
  // A token with `sr` exactly as given (for encodings MakeSasToken does not produce).
  std::string HandToken(const std::string& sr_raw, const std::string& key, std::int64_t se,
                        const std::string& skn = "") {
    auto sig = azure::SignString(key, sr_raw + "\n" + std::to_string(se));
    EXPECT_TRUE(sig.has_value());
    std::string token = "SharedAccessSignature sr=" + sr_raw + "&sig=" + UrlEncode(*sig) +
                        "&se=" + std::to_string(se);
    if (!skn.empty()) token += "&skn=" + skn;
    return token;
  }

  AuthOutcome Connect(const void* conn, const std::string& id, const std::string& key,
                      bool clean_session = false, const std::string& username_extra = "") {
    return hub().OnConnect(conn, id, Username(id, username_extra), DeviceToken(id, key),
                           clean_session);
  }
  // dev1 subscribes to methods and twin responses on Conn(0), disconnects, and comes back on
  // Conn(1) with the given CleanSession flag.
  void ReconnectAfterSubscribing(bool clean_session) {
    const std::string key = CreateDevice("dev1");
    ASSERT_EQ(Connect(Conn(0), "dev1", key, false), AuthOutcome::kAccepted);
    ASSERT_TRUE(hub().OnSubscribe(Conn(0), "dev1", "$iothub/methods/POST/#"));
    ASSERT_TRUE(hub().OnSubscribe(Conn(0), "dev1", "$iothub/twin/res/#"));
    hub().OnDisconnect(Conn(0), "dev1");
    ASSERT_EQ(Connect(Conn(1), "dev1", key, clean_session), AuthOutcome::kAccepted);
  }
  void SubscribeAll(const void* conn, const std::string& id) {
    for (const char* filter :
         {"devices/+/messages/devicebound/#", "$iothub/twin/res/#",
          "$iothub/twin/PATCH/properties/desired/#", "$iothub/methods/POST/#"}) {
      EXPECT_TRUE(hub().OnSubscribe(conn, id, filter)) << filter;
    }
  }
  // Connects with CleanSession=0 and subscribes to everything.
  void Online(const void* conn, const std::string& id, const std::string& key) {
    ASSERT_EQ(Connect(conn, id, key), AuthOutcome::kAccepted);
    SubscribeAll(conn, id);
  }
  PublishVerdict Pub(const void* conn, const std::string& id, const std::string& topic,
                     const std::string& payload = "", bool retain = false) {
    return hub().OnPublish(conn, id, topic, payload, 1, retain);
  }
  std::string Telemetry(const std::string& id, const std::string& bag = "") {
    return "devices/" + id + "/messages/events/" + bag;
  }

  // Spends a free hub's whole day as `id`'s telemetry: 16 messages of 256 KB, 512 chunks each.
  void ExhaustFreeQuota(const void* conn, const std::string& id) {
    const std::string big(256 * 1024, 'x');
    for (int i = 0; i < 16; ++i) {
      ASSERT_EQ(Pub(conn, id, Telemetry(id), big), PublishVerdict::kAccept) << i;
    }
  }

  std::vector<StoredMessage> Stored(const std::string& device = "") {
    return store_.Read(device, 0, 100000);
  }
  Json Stats() { return hub().Stats().body; }
  bool Connected(const std::string& id) {
    return hub().GetDevice(id).body.value("connectionState", "") == "Connected";
  }

  ManualClock wall_{kWallStart};
  ManualClock steady_{kSteadyStart};
  RecordingBroker broker_;
  MessageStore store_{1000};
  iothub::testing::TempDir dir_;
  std::string db_path_ = dir_.path() + "/registry.sqlite";
  std::vector<int> broker_downs_;
  int connections_[4] = {};
  std::unique_ptr<Hub> hub_;
};

}  // namespace iothub::emulator
