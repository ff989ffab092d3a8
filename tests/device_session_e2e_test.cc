// Device sessions against the real emulator: every feature, and every fault the emulator can
// inject, with the proof that nothing is lost and nothing is duplicated beyond a resend with
// the same message id.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <map>
#include <set>

#include "support/session_rig.h"

namespace iothub::testing {
namespace {

using azure::SessionState;

std::string History(const RecordingListener& l) {
  std::string out;
  for (const auto& [state, detail] : l.states) {
    out += fmt::format("{}: {}\n", azure::ToString(state), detail);
  }
  return out;
}

class DeviceSessionE2E : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }
  void Start(std::vector<std::string> args) {
    auto started = EmulatorProcess::Start(dir_.path(), std::move(args));
    ASSERT_TRUE(started.ok()) << started.error().message;
    emulator_ = std::move(started).value();
    service_ = std::make_unique<ServiceClient>(emulator_->info());
    rig_ = std::make_unique<SessionRig>(emulator_->info());
  }
  void TearDown() override {
    rig_.reset();
    service_.reset();
    emulator_.reset();
  }
  const EmulatorInfo& info() { return emulator_->info(); }
  azure::DeviceSession& AddDevice(
      const std::string& id, const std::function<void(azure::DeviceSessionConfig&)>& tweak = {}) {
    auto config = rig_->Config(id, service_->CreateDevice(id));
    if (tweak) tweak(config);
    return rig_->Add(std::move(config));
  }
  bool WaitConnected(azure::DeviceSession& s, std::int64_t ms = 15'000) {
    return rig_->Run([&] { return s.state() == SessionState::kConnected; }, ms);
  }
  // Connected, and the session's own twin GET answered: the hub handles a connection's
  // packets in order, so the SUBSCRIBEs sent before that GET are in place too.
  bool WaitSubscribed(azure::DeviceSession& s) {
    return WaitConnected(s) && rig_->Run([&] { return !s.desired().NeedsFullGet(); });
  }
  // Queues `count` numbered messages; returns their ids.
  std::vector<std::string> SendNumbered(azure::DeviceSession& s, int count, int first = 0) {
    std::vector<std::string> ids;
    for (int i = first; i < first + count; ++i) {
      azure::TelemetryMessage m;
      m.body = fmt::format(R"({{"n":{}}})", i);
      m.content_type = "application/json";
      m.content_encoding = "utf-8";
      m.properties = {{"seq", std::to_string(i)}};
      auto id = rig_->Send(s, std::move(m));
      EXPECT_TRUE(id.ok()) << id.error().message;
      if (id) ids.push_back(*id);
    }
    return ids;
  }
  // All telemetry the hub stored for `device`, as message ids in arrival order.
  std::vector<std::string> StoredIds(const std::string& device) {
    std::vector<std::string> ids;
    std::int64_t since = 0;
    for (;;) {
      auto reply = service_->Request(
          "GET", fmt::format("/emulator/messages?deviceId={}&since={}&limit=1000", device, since));
      EXPECT_EQ(reply.status, 200) << reply.text;
      if (reply.status != 200 || reply.body["messages"].empty()) break;
      for (const auto& m : reply.body["messages"]) {
        ids.push_back(m["systemProperties"].value("message-id", ""));
      }
      since = reply.body["next"];
    }
    return ids;
  }
  // Every sent id stored, and any extra copy is a resend the session counted.
  void ExpectExactlyOnceById(const std::string& device, const std::vector<std::string>& sent,
                             const azure::DeviceSession& s) {
    const auto stored = StoredIds(device);
    const std::set<std::string> unique(stored.begin(), stored.end());
    EXPECT_EQ(unique, std::set<std::string>(sent.begin(), sent.end()));
    EXPECT_LE(static_cast<std::int64_t>(stored.size() - unique.size()), s.counters().resent)
        << "a duplicate that was not a resend of an unacknowledged message";
    EXPECT_EQ(rig_->Pending(s), 0u);
  }
  Json Service(const std::string& method, const std::string& path, const Json& body = nullptr) {
    auto reply =
        body.is_null() ? service_->Request(method, path) : service_->Request(method, path, body);
    EXPECT_LT(reply.status, 300) << method << " " << path << ": " << reply.text;
    return reply.body;
  }
  // Runs a blocking service call on another thread while the loop keeps running.
  HttpReply ServiceWhileRunning(const std::string& method, const std::string& path,
                                const Json& body) {
    ServiceClient other(info());
    auto reply = std::async(std::launch::async, [&] { return other.Request(method, path, body); });
    rig_->Run([&] { return reply.wait_for(0s) == std::future_status::ready; }, 30'000);
    return reply.get();
  }
  void AdvanceClocks(std::int64_t seconds) {
    Service("POST", "/emulator/clock/advance", Json{{"seconds", seconds}});
    rig_->wall().Advance(seconds * 1000);
  }

  TempDir dir_;
  std::unique_ptr<EmulatorProcess> emulator_;
  std::unique_ptr<ServiceClient> service_;
  std::unique_ptr<SessionRig> rig_;
};

TEST_F(DeviceSessionE2E, TelemetryWithPropertiesArrivesOnceInOrder) {
  auto& s = AddDevice("sensor");
  ASSERT_TRUE(WaitConnected(s));
  azure::TelemetryMessage special;
  special.body = "{\"t\":21.5}";
  special.message_id = "id with spaces & = %";
  special.content_type = "application/json";
  special.content_encoding = "utf-8";
  special.component = "thermostat1";
  special.properties = {{"alert", "hot & humid"}, {"empty", ""}, {"bare", std::nullopt}};
  ASSERT_TRUE(rig_->Send(s, special).ok());
  auto ids = SendNumbered(s, 200);
  ids.insert(ids.begin(), special.message_id);
  ASSERT_TRUE(rig_->Run([&] { return rig_->listener().delivered.size() == ids.size(); }));
  EXPECT_EQ(rig_->listener().delivered, ids) << "acknowledged in order";
  EXPECT_EQ(StoredIds("sensor"), ids);
  auto stored = Service("GET", "/emulator/messages?deviceId=sensor&limit=1");
  const Json& first = stored["messages"][0];
  EXPECT_EQ(first["body"], "{\"t\":21.5}");
  EXPECT_EQ(first["properties"]["alert"], "hot & humid");
  EXPECT_EQ(first["properties"]["empty"], "");
  EXPECT_EQ(first["systemProperties"]["content-type"], "application/json");
  EXPECT_EQ(first["systemProperties"]["dt-subject"], "thermostat1");
  EXPECT_EQ(s.counters().resent, 0);
}

TEST_F(DeviceSessionE2E, ModelIdReachesTheHub) {
  auto& s = AddDevice("pnp", [](auto& c) { c.model_id = "dtmi:com:example:Thermostat;1"; });
  ASSERT_TRUE(WaitConnected(s));
  EXPECT_EQ(Service("GET", "/twins/pnp")["modelId"], "dtmi:com:example:Thermostat;1");
  ASSERT_TRUE(rig_->Send(s, {"x", {}, "", "", "", "", "", ""}).ok());
  ASSERT_TRUE(rig_->Run([&] { return rig_->Pending(s) == 0; }));
  auto stored = Service("GET", "/emulator/messages?deviceId=pnp");
  EXPECT_EQ(stored["messages"][0]["systemProperties"]["dt-dataschema"],
            "dtmi:com:example:Thermostat;1");
}

TEST_F(DeviceSessionE2E, AHostNameIsResolvedOffTheLoopAndTheTlsNameStaysTheHubs) {
  // "localhost" goes through the connector's resolver thread; the certificate is still
  // checked against the hub's name.
  auto& s = AddDevice("named", [](auto& c) { c.connect_host = "localhost"; });
  ASSERT_TRUE(WaitConnected(s));
  ASSERT_TRUE(rig_->Send(s, {"by name", {}, "", "", "", "", "", ""}).ok());
  ASSERT_TRUE(rig_->Run([&] { return rig_->Pending(s) == 0; }));
  EXPECT_EQ(Service("GET", "/emulator/messages?deviceId=named")["messages"][0]["body"], "by name");
}

TEST_F(DeviceSessionE2E, CloudToDeviceMessagesArriveWithProperties) {
  auto& s = AddDevice("lamp");
  ASSERT_TRUE(WaitSubscribed(s));
  Service("POST", "/emulator/devices/lamp/messages",
          Json{{"body", "ON"}, {"messageId", "cmd-1"}, {"properties", {{"item", "Lamp & Co"}}}});
  ASSERT_TRUE(rig_->Run([&] { return rig_->listener().cloud.size() == 1; }));
  const auto& m = rig_->listener().cloud[0];
  EXPECT_EQ(m.body, "ON");
  EXPECT_EQ(m.message_id, "cmd-1");
  EXPECT_EQ(azure::FindProperty(m.properties, "item"), "Lamp & Co");
}

TEST_F(DeviceSessionE2E, CloudToDeviceQueuedWhileAwayArrivesAfterReconnect) {
  auto& s = AddDevice("away");
  ASSERT_TRUE(WaitSubscribed(s));
  s.Stop();
  ASSERT_TRUE(rig_->Run([&] {
    return !Service("GET", "/emulator/stats")["devices"]["away"]["connected"].get<bool>();
  }));
  Service("POST", "/emulator/devices/away/messages", Json{{"body", "while away"}});
  s.Start();
  ASSERT_TRUE(rig_->Run([&] { return rig_->listener().cloud.size() == 1; }));
  EXPECT_EQ(rig_->listener().cloud[0].body, "while away");
}

TEST_F(DeviceSessionE2E, OversizedCloudMessageIsReportedAndDropped) {
  auto& s = AddDevice("small", [](auto& c) { c.max_cloud_message_bytes = 1000; });
  ASSERT_TRUE(WaitSubscribed(s));
  Service("POST", "/emulator/devices/small/messages", Json{{"body", std::string(5000, 'x')}});
  Service("POST", "/emulator/devices/small/messages", Json{{"body", "fits"}});
  ASSERT_TRUE(rig_->Run([&] { return rig_->listener().cloud.size() == 1; }));
  EXPECT_EQ(rig_->listener().cloud[0].body, "fits");
  ASSERT_EQ(rig_->listener().problems.size(), 1u);
  EXPECT_EQ(rig_->listener().problems[0].code, "cloud_message_too_large");
  EXPECT_EQ(s.state(), SessionState::kConnected);
}

TEST_F(DeviceSessionE2E, ReportedPropertiesAndTwinGet) {
  auto& s = AddDevice("twin");
  ASSERT_TRUE(WaitConnected(s));
  std::optional<Result<std::int64_t>> version;
  s.UpdateReported(Json{{"firmware", "1.2"}, {"rooms", {{"kitchen", 21}}}},
                   [&](Result<std::int64_t> v) { version = std::move(v); });
  ASSERT_TRUE(rig_->Run([&] { return version.has_value(); }));
  ASSERT_TRUE(version->ok()) << version->error().message;
  EXPECT_GE(**version, 2);
  std::optional<Result<Json>> twin;
  s.GetTwin([&](Result<Json> t) { twin = std::move(t); });
  ASSERT_TRUE(rig_->Run([&] { return twin.has_value(); }));
  ASSERT_TRUE(twin->ok());
  EXPECT_EQ((**twin)["reported"]["firmware"], "1.2");
  EXPECT_EQ((**twin)["reported"]["$version"], **version);
}

TEST_F(DeviceSessionE2E, DesiredChangesArriveInOrderAcrossAKick) {
  auto& s = AddDevice("thermo");
  Service("PATCH", "/twins/thermo", Json{{"properties", {{"desired", {{"setpoint", 20}}}}}});
  ASSERT_TRUE(WaitConnected(s));
  // The full GET after connecting brings the change made before.
  ASSERT_TRUE(rig_->Run([&] { return s.desired().version() >= 2; }));
  EXPECT_EQ(s.desired().desired()["setpoint"], 20);
  ServiceWhileRunning("PATCH", "/twins/thermo",
                      Json{{"properties", {{"desired", {{"mode", "eco"}}}}}});
  ASSERT_TRUE(rig_->Run([&] { return s.desired().version() >= 3; }));
  // Changes made while the device is away reach it through the GET after reconnecting.
  Service("POST", "/emulator/faults/refuse-connections", Json{{"seconds", 2}});
  Service("POST", "/emulator/faults/kick", Json{{"deviceId", "thermo"}});
  Service("PATCH", "/twins/thermo", Json{{"properties", {{"desired", {{"setpoint", 18}}}}}});
  Service("PATCH", "/twins/thermo", Json{{"properties", {{"desired", {{"mode", nullptr}}}}}});
  ASSERT_TRUE(rig_->Run([&] { return s.desired().version() >= 5; }, 20'000));
  EXPECT_EQ(s.desired().desired(), (Json{{"setpoint", 18}}));
  std::vector<std::int64_t> versions;
  for (const auto& c : rig_->listener().desired) versions.push_back(c.version);
  EXPECT_TRUE(std::is_sorted(versions.begin(), versions.end()));
  EXPECT_EQ(std::set<std::int64_t>(versions.begin(), versions.end()).size(), versions.size())
      << "each version applied once";
}

TEST_F(DeviceSessionE2E, DirectMethodsAreAnswered) {
  auto& s = AddDevice("blinds");
  ASSERT_TRUE(WaitSubscribed(s));
  rig_->listener().on_method = [&](const azure::MethodRequest& r) {
    EXPECT_EQ(r.name, "setPosition");
    auto ok = s.RespondMethod(r.request_id, 200, R"({"position":)" + r.payload + "}");
    EXPECT_TRUE(ok.ok());
    EXPECT_FALSE(s.RespondMethod(r.request_id, 200, "not json").ok());
  };
  auto reply = ServiceWhileRunning(
      "POST", "/twins/blinds/methods",
      Json{{"methodName", "setPosition"}, {"payload", 40}, {"responseTimeoutInSeconds", 10}});
  EXPECT_EQ(reply.status, 200) << reply.text;
  EXPECT_EQ(reply.body["status"], 200);
  EXPECT_EQ(reply.body["payload"], (Json{{"position", 40}}));
}

TEST_F(DeviceSessionE2E, KickDuringTelemetryLosesNothing) {
  auto& s = AddDevice("kicked");
  ASSERT_TRUE(WaitConnected(s));
  auto ids = SendNumbered(s, 2000);
  ASSERT_TRUE(rig_->Run([&] { return rig_->listener().delivered.size() >= 300; }));
  Service("POST", "/emulator/faults/kick", Json{{"deviceId", "kicked"}});
  ASSERT_TRUE(rig_->Run([&] { return rig_->Pending(s) == 0; }, 30'000));
  EXPECT_GE(s.counters().connects, 2);
  ExpectExactlyOnceById("kicked", ids, s);
}

TEST_F(DeviceSessionE2E, WithheldPubacksAreResentWithTheSameId) {
  auto& s = AddDevice("withheld");
  ASSERT_TRUE(WaitSubscribed(s));
  Service("POST", "/emulator/faults/withhold-puback", Json{{"deviceId", "withheld"}, {"count", 2}});
  auto ids = SendNumbered(s, 50);
  ASSERT_TRUE(rig_->Run([&] { return rig_->Pending(s) == 0; }, 30'000));
  EXPECT_GE(s.counters().resent, 2);
  EXPECT_EQ(s.state(), SessionState::kConnected);
  ExpectExactlyOnceById("withheld", ids, s);
}

TEST_F(DeviceSessionE2E, BrokerDownForAWhileLosesNothing) {
  auto& s = AddDevice("survivor");
  ASSERT_TRUE(WaitConnected(s));
  auto ids = SendNumbered(s, 100);
  ASSERT_TRUE(rig_->Run([&] { return rig_->Pending(s) == 0; }));
  auto before = StoredIds("survivor");  // broker-down clears stored telemetry
  ServiceWhileRunning("POST", "/emulator/faults/broker-down", Json{{"seconds", 2}});
  auto more = SendNumbered(s, 100, 100);  // queued while the hub is down
  ASSERT_TRUE(rig_->Run([&] { return rig_->Pending(s) == 0; }, 40'000))
      << History(rig_->listener());
  EXPECT_TRUE(rig_->listener().Saw(SessionState::kBackingOff));
  EXPECT_EQ(before.size(), 100u);
  ExpectExactlyOnceById("survivor", more, s);
}

TEST_F(DeviceSessionE2E, TokenIsRenewedBeforeExpiryWithoutLoss) {
  auto& s = AddDevice("renewer", [](auto& c) { c.token_ttl_s = 600; });
  ASSERT_TRUE(WaitConnected(s));
  auto ids = SendNumbered(s, 500);
  AdvanceClocks(500);  // past 80% of the token's life on both clocks
  auto more = SendNumbered(s, 500, 500);
  ASSERT_TRUE(rig_->Run(
      [&] {
        return s.counters().renewals >= 1 && rig_->Pending(s) == 0 &&
               s.state() == SessionState::kConnected;
      },
      20'000));
  ids.insert(ids.end(), more.begin(), more.end());
  EXPECT_EQ(s.state(), SessionState::kConnected);
  EXPECT_EQ(s.counters().resent, 0) << "renewal drains in-flight messages first";
  ExpectExactlyOnceById("renewer", ids, s);
}

TEST_F(DeviceSessionE2E, ExpiredTokenClosedByTheHubIsReplaced) {
  auto& s = AddDevice("expired", [](auto& c) { c.token_ttl_s = 600; });
  ASSERT_TRUE(WaitConnected(s));
  // Only the hub's clock moves: the hub closes the connection when the token expires, and
  // the session reconnects with a fresh token once its own clock agrees.
  Service("POST", "/emulator/clock/advance", Json{{"seconds", 700}});
  ASSERT_TRUE(rig_->Run([&] { return s.state() != SessionState::kConnected; }));
  rig_->wall().Advance(700'000);
  auto ids = SendNumbered(s, 20);
  ASSERT_TRUE(rig_->Run([&] { return rig_->Pending(s) == 0; }, 30'000));
  ExpectExactlyOnceById("expired", ids, s);
}

TEST_F(DeviceSessionE2E, ThrottledTwinUpdatesAreRetriedUntilAccepted) {
  auto& s = AddDevice("chatty");
  ASSERT_TRUE(WaitConnected(s));
  int accepted = 0;
  int failed = 0;
  for (int i = 0; i < 150; ++i) {
    s.UpdateReported(Json{{"n", i}},
                     [&](Result<std::int64_t> v) { v.ok() ? ++accepted : ++failed; });
  }
  ASSERT_TRUE(rig_->Run([&] { return accepted + failed == 150; }, 40'000));
  EXPECT_EQ(failed, 0);
  EXPECT_GT(s.counters().throttled, 0) << "the hub allows 50 twin updates/s";
}

// Bytes waiting to be read in this process's unnamed AF_UNIX stream sockets (libmosquitto's
// wake-up pairs among them).
std::size_t LargestUnreadWakeupQueue() {
  std::size_t largest = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::stoi(entry.path().filename().string());
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) continue;
    if (address.ss_family != AF_UNIX) continue;
    int unread = 0;
    if (ioctl(fd, FIONREAD, &unread) == 0)
      largest = std::max(largest, static_cast<std::size_t>(unread));
  }
  return largest;
}

TEST_F(DeviceSessionE2E, LibraryWakeupBytesDoNotPileUp) {
  auto& s = AddDevice("busy");
  ASSERT_TRUE(WaitConnected(s));
  SendNumbered(s, 3000);
  ASSERT_TRUE(rig_->Run([&] { return rig_->Pending(s) == 0; }));
  // Without draining, libmosquitto's pair would hold a byte per publish (until its buffer is
  // full, ~200 KB of kernel memory per session); the connection drains it at least once a
  // second.
  EXPECT_TRUE(rig_->Run([] { return LargestUnreadWakeupQueue() < 16; }, 3'000))
      << LargestUnreadWakeupQueue() << " bytes unread";
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

TEST_F(DeviceSessionE2E, ServerCertificatesThatFailVerificationAreRefusedClearly) {
  const std::string key = service_->CreateDevice("careful");
  for (const auto& tls : {azure::TlsOptions{"", info().host_name},  // system CAs only
                          azure::TlsOptions{info().ca_file, "not-the-hub.example"}}) {
    SessionRig rig(info(), 50.0, tls);
    auto& s = rig.Add(rig.Config("careful", key));
    const double cpu_before = CpuSeconds();
    rig.RunFor(2'000);
    EXPECT_LT(CpuSeconds() - cpu_before, 1.0) << "a failed handshake must not spin the loop";
    EXPECT_EQ(s.counters().connects, 0);
    EXPECT_NE(s.state(), SessionState::kConnected);
    const std::string history = History(rig.listener());
    EXPECT_NE(history.find("TLS handshake failed"), std::string::npos) << history;
    EXPECT_NE(history.find("certificate verify failed"), std::string::npos) << history;
  }
}

// A server that accepts TCP but never answers the TLS handshake (a black-holed hub).
TEST_F(DeviceSessionE2E, ASilentServerDoesNotSpinTheLoop) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(listener, 16), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  auto config = rig_->Config("silent", service_->CreateDevice("silent"));
  config.port = ntohs(address.sin_port);
  auto& s = rig_->Add(config);
  const double cpu_before = CpuSeconds();
  rig_->RunFor(2'000);
  EXPECT_LT(CpuSeconds() - cpu_before, 0.5);
  EXPECT_EQ(s.state(), SessionState::kConnecting);
  rig_->RunFor(2'000);  // the rig's connect timeout is 3 s
  EXPECT_TRUE(rig_->listener().Saw(SessionState::kBackingOff)) << History(rig_->listener());
  close(listener);
}

TEST_F(DeviceSessionE2E, ManySessionsShareOneLoopAndArePaced) {
  const int kDevices = 60;
  std::vector<azure::DeviceSession*> sessions;
  for (int i = 0; i < kDevices; ++i) sessions.push_back(&AddDevice(fmt::format("item{}", i)));
  const std::int64_t start = rig_->loop().NowMs();
  ASSERT_TRUE(rig_->Run([&] {
    return std::all_of(sessions.begin(), sessions.end(),
                       [](auto* s) { return s->state() == SessionState::kConnected; });
  }));
  // 50 connection attempts per second: 60 take at least 1.18 s.
  EXPECT_GE(rig_->loop().NowMs() - start, 1'100);
  for (auto* s : sessions) SendNumbered(*s, 5);
  ASSERT_TRUE(rig_->Run([&] {
    return std::all_of(sessions.begin(), sessions.end(),
                       [this](auto* s) { return rig_->Pending(*s) == 0; });
  }));
  std::map<std::string, int> per_device;
  const Json stored = Service("GET", "/emulator/messages?limit=1000");
  for (const auto& m : stored["messages"]) {
    ++per_device[m["deviceId"].get<std::string>()];
  }
  EXPECT_EQ(per_device.size(), static_cast<std::size_t>(kDevices)) << stored.dump().substr(0, 300);
  for (const auto& [device, count] : per_device) EXPECT_EQ(count, 5) << device;
}

class QuotaE2E : public DeviceSessionE2E {
 protected:
  void SetUp() override { Start({"--tier", "free"}); }
};

TEST_F(QuotaE2E, ExhaustedQuotaWaitsForMidnightAndLosesNothing) {
  auto& s = AddDevice("meter", [](auto& c) { c.token_ttl_s = 3 * 86'400; });
  ASSERT_TRUE(WaitConnected(s));
  // 8,000 half-KB chunks a day: 2,000 messages of 2 KB use it all.
  std::vector<std::string> ids;
  for (int i = 0; i < 2010; ++i) {
    auto id = rig_->Send(
        s, {std::string(2048, 'x'), {{"seq", std::to_string(i)}}, "", "", "", "", "", ""});
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  ASSERT_TRUE(rig_->Run([&] { return s.state() == SessionState::kQuotaExhausted; }, 60'000));
  EXPECT_GT(rig_->Pending(s), 0u);
  EXPECT_GT(s.quota_resume_wall_ms(), rig_->wall().NowMs());
  // Nothing happens until the day ends.
  const auto connects = s.counters().connects;
  rig_->RunFor(3'000);
  EXPECT_EQ(s.counters().connects, connects);
  EXPECT_EQ(s.state(), SessionState::kQuotaExhausted);
  const std::int64_t now_ms = Service("GET", "/emulator/clock")["epochMs"];
  AdvanceClocks((86'400'000 - now_ms % 86'400'000) / 1000 + 31);
  ASSERT_TRUE(rig_->Run([&] { return rig_->Pending(s) == 0; }, 30'000));
  EXPECT_EQ(s.state(), SessionState::kConnected);
  const auto stored = StoredIds("meter");
  EXPECT_EQ(std::set<std::string>(stored.begin(), stored.end()),
            std::set<std::string>(ids.begin(), ids.end()));
}

}  // namespace
}  // namespace iothub::testing
