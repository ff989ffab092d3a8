// Unit tests of DeviceSession with a fake MQTT connection, a fake loop and a manual wall
// clock: the wire format it produces, its window, its reconnect and quota logic, and how it
// survives garbage from the hub.
#include "azure/device_session.h"

#include <gtest/gtest.h>

#include "azure/sas_token.h"
#include "support/fake_mqtt.h"
#include "support/manual_loop.h"
#include "support/session_rig.h"
#include "support/telemetry_queue.h"

namespace iothub::testing {
namespace {

using azure::SessionState;

constexpr char kKey[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

class DeviceSessionTest : public ::testing::Test {
 protected:
  DeviceSessionTest() : random_({0.0}), pacer_(loop_, 1000.0) {
    config_.host_name = "hub.example.net";
    config_.device_id = "dev1";
    config_.key = kKey;
    config_.reconnect = {1'000, 8'000, 2.0, 0.5};
    config_.throttled_floor_ms = 20'000;
  }
  azure::DeviceSession& Make() {
    auto s = azure::DeviceSession::Create(loop_, mqtt_, pacer_, wall_, random_, config_, listener_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    session_ = std::move(s).value();
    session_->SetTelemetrySource(&queue_);
    return *session_;
  }
  // Queues telemetry for the session, as its owner would.
  Result<std::string> Send(azure::TelemetryMessage m) {
    return queue_.Send(*session_, std::move(m));
  }
  // Telemetry not yet acknowledged: waiting in the queue or in the session's window.
  std::size_t Pending() const { return queue_.waiting() + session_->window(); }
  // Starts the session and accepts its connection.
  azure::DeviceSession& Connected() {
    auto& s = Make();
    s.Start();
    loop_.RunReady();
    Accept();
    return s;
  }
  void Accept() {
    loop_.RunReady();
    mqtt_.last().handler.OnConnack(0);
    loop_.RunReady();
  }
  FakeMqttConnection& conn() { return mqtt_.last(); }
  std::vector<FakePublish> Telemetry(FakeMqttConnection& c) {
    std::vector<FakePublish> out;
    for (const auto& p : c.published) {
      if (p.topic.starts_with("devices/dev1/messages/events/")) out.push_back(p);
    }
    return out;
  }
  const FakePublish* LastTwinGet(FakeMqttConnection& c) {
    for (auto it = c.published.rbegin(); it != c.published.rend(); ++it) {
      if (it->topic.starts_with("$iothub/twin/GET/")) return &*it;
    }
    return nullptr;
  }
  static std::string Rid(const FakePublish& p) { return p.topic.substr(p.topic.find("$rid=") + 5); }
  void Lose(const std::string& why = "gone") {
    mqtt_.last().handler.OnConnectionLost(why);
    loop_.RunReady();
  }

  ManualLoop loop_;
  ManualClock wall_{1'700'000'000'000};
  ScriptedRandom random_;
  azure::ConnectPacer pacer_;
  FakeMqttConnector mqtt_;
  RecordingListener listener_;
  azure::DeviceSessionConfig config_;
  TelemetryQueue queue_;
  std::unique_ptr<azure::DeviceSession> session_;
};

TEST_F(DeviceSessionTest, ConnectsWithTheHubsUsernameAndARenewableToken) {
  config_.model_id = "dtmi:com:example:Thermostat;1";
  auto& s = Connected();
  const auto& o = conn().options;
  EXPECT_EQ(o.client_id, "dev1");
  EXPECT_EQ(o.host, "hub.example.net");
  EXPECT_EQ(o.port, 8883);
  EXPECT_FALSE(o.clean_session);
  EXPECT_EQ(o.username,
            "hub.example.net/dev1/?api-version=2021-04-12&DeviceClientType=iothub-connector%2F0.1.0"
            "&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1");
  auto token = azure::ParseSasToken(o.password);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->resource, "hub.example.net/devices/dev1");
  EXPECT_EQ(token->expiry, wall_.NowSeconds() + 3600);
  EXPECT_TRUE(azure::VerifySasSignature(*token, kKey));
  EXPECT_EQ(s.state(), SessionState::kConnected);
  EXPECT_EQ(conn().subscribed,
            (std::vector<std::string>{"devices/dev1/messages/devicebound/#", "$iothub/twin/res/#",
                                      "$iothub/twin/PATCH/properties/desired/#",
                                      "$iothub/methods/POST/#"}));
  ASSERT_NE(LastTwinGet(conn()), nullptr) << "a full twin GET follows every connect";
}

TEST_F(DeviceSessionTest, APublishOnlySessionSubscribesToTwinAnswersAndReadsNoTwin) {
  config_.receive_cloud = false;
  Connected();
  EXPECT_EQ(conn().subscribed, (std::vector<std::string>{"$iothub/twin/res/#"}));
  EXPECT_EQ(LastTwinGet(conn()), nullptr) << "no billed twin GET when nothing is received";
}

TEST_F(DeviceSessionTest, WithoutATwinTwinRequestsFailAtOnce) {
  config_.receive_cloud = false;
  config_.twin = false;
  auto& s = Connected();
  EXPECT_TRUE(conn().subscribed.empty());
  std::optional<std::string> reported_error;
  s.UpdateReported(Json{{"a", 1}},
                   [&](Result<std::int64_t> r) { reported_error = r.ok() ? "" : r.error().code; });
  std::optional<std::string> get_error;
  s.GetTwin([&](Result<Json> r) { get_error = r.ok() ? "" : r.error().code; });
  EXPECT_EQ(reported_error, "twin_unavailable");
  EXPECT_EQ(get_error, "twin_unavailable");
  EXPECT_EQ(LastTwinGet(conn()), nullptr);
}

TEST_F(DeviceSessionTest, ConfigurationErrorsNameTheField) {
  auto bad = [&](auto tweak, const std::string& expected) {
    azure::DeviceSessionConfig c = config_;
    tweak(c);
    auto s = azure::DeviceSession::Create(loop_, mqtt_, pacer_, wall_, random_, c, listener_);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find(expected), std::string::npos) << s.error().message;
    EXPECT_EQ(s.error().message.find(kKey), std::string::npos) << "no key in errors";
  };
  bad([](auto& c) { c.host_name.clear(); }, "host_name");
  bad([](auto& c) { c.device_id = "bad/id"; }, "device id");
  bad([](auto& c) { c.device_id = "wild+card"; }, "no '+' or '#'");
  bad([](auto& c) { c.device_id = std::string(129, 'a'); }, "1-128");
  bad([](auto& c) { c.key = "not base64!"; }, "base64");
  bad([](auto& c) { c.sas_token = "SharedAccessSignature sr=x"; }, "exactly one");
  bad(
      [](auto& c) {
        c.key.clear();
        c.sas_token = "garbage";
      },
      "malformed");
  bad([](auto& c) { c.model_id = "urn:x"; }, "dtmi:");
  bad([](auto& c) { c.keepalive_s = 2000; }, "keepalive");
  bad([](auto& c) { c.max_in_flight = 0; }, "max_in_flight");
}

TEST_F(DeviceSessionTest, TelemetryEncodesSystemAndApplicationProperties) {
  Connected();
  azure::TelemetryMessage m;
  m.body = "{}";
  m.message_id = "m 1";
  m.content_type = "application/json";
  m.content_encoding = "utf-8";
  m.component = "th1";
  m.creation_time = "2023-11-14T22:13:20.000Z";
  m.properties = {{"alert", "hot & humid"}, {"none", std::nullopt}};
  ASSERT_EQ(Send(m).value(), "m 1");
  const auto sent = Telemetry(conn());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].topic,
            "devices/dev1/messages/events/%24.mid=m%201&%24.ct=application%2Fjson&%24.ce=utf-8"
            "&%24.ctime=2023-11-14T22%3A13%3A20.000Z&%24.sub=th1&alert=hot%20%26%20humid&none");
  EXPECT_EQ(sent[0].qos, 1);
}

TEST_F(DeviceSessionTest, CheckTelemetryRefusesWhatTheHubWouldReject) {
  config_.max_in_flight = 1;
  auto& s = Make();
  EXPECT_EQ(Send({std::string(256 * 1024 + 1, 'x'), {}, "", "", "", "", "", ""}).error().code,
            "too_large");
  EXPECT_EQ(Send({"x", {{"$.mid", "forged"}}, "", "", "", "", "", ""}).error().code, "bad_message");
  EXPECT_EQ(azure::CheckTelemetry("dev1", {"x", {}, "", "", "", "", "", ""}).error().code,
            "bad_message")
      << "a message needs an id";
  ASSERT_TRUE(Send({"1", {}, "", "", "", "", "", ""}).ok());
  ASSERT_TRUE(Send({"2", {}, "", "", "", "", "", ""}).ok());
  EXPECT_EQ(s.window(), 0u) << "nothing is taken before the session is connected";
  EXPECT_EQ(Pending(), 2u);
}

// A source that hands out whatever it is given, checked or not, and counts the asks.
struct ListSource final : azure::TelemetrySource {
  std::optional<azure::TelemetryMessage> NextTelemetry() override {
    ++asks;
    if (messages.empty()) return std::nullopt;
    azure::TelemetryMessage m = std::move(messages.front());
    messages.pop_front();
    return m;
  }
  std::deque<azure::TelemetryMessage> messages;
  int asks = 0;
};

TEST_F(DeviceSessionTest, TelemetryIsPulledOnlyWhenTheWindowHasRoom) {
  config_.max_in_flight = 2;
  auto& s = Make();
  ListSource source;
  for (int i = 0; i < 5; ++i)
    source.messages.push_back({std::to_string(i), {}, "m" + std::to_string(i), "", "", "", "", ""});
  s.SetTelemetrySource(&source);
  EXPECT_EQ(source.asks, 0) << "not connected: nothing asked";
  s.Start();
  loop_.RunReady();
  Accept();
  auto sent = Telemetry(conn());
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(source.messages.size(), 3u) << "only what fits the window is taken";
  const int asks = source.asks;
  s.TelemetryReady();
  EXPECT_EQ(source.asks, asks) << "a full window asks nothing";
  conn().handler.OnPuback(sent[0].packet_id);
  EXPECT_EQ(listener_.delivered, (std::vector<std::string>{"m0"}));
  ASSERT_EQ(Telemetry(conn()).size(), 3u);
  EXPECT_EQ(Telemetry(conn())[2].payload, "2");
  EXPECT_EQ(source.messages.size(), 2u);
}

TEST_F(DeviceSessionTest, AMessageTheSourceShouldNotHaveGivenIsRefusedAndSkipped) {
  auto& s = Connected();
  ListSource source;
  source.messages.push_back({"bad", {{"$.mid", "forged"}}, "m-bad", "", "", "", "", ""});
  source.messages.push_back({"good", {}, "m-good", "", "", "", "", ""});
  s.SetTelemetrySource(&source);
  ASSERT_EQ(listener_.refused.size(), 1u);
  EXPECT_EQ(listener_.refused[0].first, "m-bad");
  EXPECT_EQ(listener_.refused[0].second.code, "bad_message");
  const auto sent = Telemetry(conn());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].payload, "good");
}

TEST_F(DeviceSessionTest, InFlightWindowIsBoundedAndRefilledByPubacks) {
  config_.max_in_flight = 4;
  auto& s = Connected();
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(Send({std::to_string(i), {}, "", "", "", "", "", ""}).ok());
  auto sent = Telemetry(conn());
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(s.in_flight(), 4u);
  conn().handler.OnPuback(sent[1].packet_id);  // out of order is fine
  EXPECT_EQ(Telemetry(conn()).size(), 5u);
  EXPECT_EQ(listener_.delivered.size(), 1u);
  EXPECT_EQ(Pending(), 9u);
}

TEST_F(DeviceSessionTest, UnacknowledgedMessagesAreResentInOrderWithTheSameIdAfterALoss) {
  config_.max_in_flight = 3;
  auto& s = Connected();
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(Send({std::to_string(i), {}, "", "", "", "", "", ""}).ok());
  auto first = Telemetry(conn());
  conn().handler.OnPuback(first[0].packet_id);
  Lose();
  EXPECT_EQ(s.state(), SessionState::kBackingOff);
  loop_.Advance(1'000);  // the backoff (random 0 -> the full delay)
  Accept();
  auto second = Telemetry(conn());
  ASSERT_EQ(second.size(), 3u);
  EXPECT_EQ(second[0].topic, first[1].topic) << "same $.mid";
  EXPECT_EQ(second[1].topic, first[2].topic);
  EXPECT_EQ(second[2].payload, "3");
  EXPECT_EQ(s.counters().resent, 3) << "1, 2 and 3 were in flight";
}

TEST_F(DeviceSessionTest, ReconnectDelaysGrowCappedAndResetOnceStable) {
  Connected();
  Lose();
  // Measures the time to the next attempt, then fails that attempt before its CONNACK.
  auto next_attempt = [&](bool fail) {
    const std::int64_t t0 = loop_.NowMs();
    const std::size_t before = mqtt_.count();
    for (int i = 0; i < 1000 && mqtt_.count() == before; ++i) loop_.Advance(50);
    if (fail) Lose("refused");
    return loop_.NowMs() - t0;
  };
  std::vector<std::int64_t> delays;
  for (int i = 0; i < 5; ++i) delays.push_back(next_attempt(true));
  EXPECT_EQ(delays, (std::vector<std::int64_t>{1'000, 2'000, 4'000, 8'000, 8'000}));
  next_attempt(false);
  Accept();
  loop_.Advance(10'000);  // stable: the backoff starts again from the beginning
  Lose();
  EXPECT_EQ(next_attempt(false), 1'000);
}

TEST_F(DeviceSessionTest, StopFromInsideAStateCallbackStaysStopped) {
  auto& s = Connected();
  listener_.on_state = [&](SessionState state) {
    if (state == SessionState::kBackingOff) s.Stop();
  };
  const std::size_t attempts = mqtt_.count();
  Lose();
  loop_.Advance(120'000);
  EXPECT_EQ(s.state(), SessionState::kStopped);
  EXPECT_EQ(mqtt_.count(), attempts) << "no reconnect after Stop()";
}

TEST_F(DeviceSessionTest, ExpiredFixedTokenIsRefusedForGoodAndStopSticks) {
  config_.key.clear();
  config_.sas_token =
      azure::MakeSasToken("hub.example.net/devices/dev1", kKey, wall_.NowSeconds() - 10).value();
  auto& s = Make();
  listener_.on_state = [&](SessionState state) {
    if (state == SessionState::kRefused) s.Stop();
  };
  s.Start();
  loop_.Advance(10 * 60'000);
  EXPECT_EQ(s.state(), SessionState::kStopped);
  EXPECT_LE(listener_.states.size(), 3u) << "connecting, refused, stopped: no retry loop";
}

TEST_F(DeviceSessionTest, ConnackRefusalIsReportedAndRetriedSlowly) {
  auto& s = Make();
  s.Start();
  loop_.RunReady();
  conn().handler.OnConnack(5);
  loop_.RunReady();
  EXPECT_EQ(s.state(), SessionState::kRefused);
  EXPECT_NE(listener_.states.back().second.find("CONNACK 5"), std::string::npos);
  const std::size_t before = mqtt_.count();
  loop_.Advance(19'000);
  EXPECT_EQ(mqtt_.count(), before) << "no retry before the throttled floor";
  loop_.Advance(1'100);
  EXPECT_EQ(mqtt_.count(), before + 1);
}

TEST_F(DeviceSessionTest, ExpiredFixedTokenIsAClearRefusal) {
  config_.key.clear();
  config_.sas_token =
      azure::MakeSasToken("hub.example.net/devices/dev1", kKey, wall_.NowSeconds() - 10).value();
  auto& s = Make();
  s.Start();
  loop_.RunReady();
  EXPECT_EQ(s.state(), SessionState::kRefused);
  EXPECT_NE(listener_.states.back().second.find("expired"), std::string::npos);
  loop_.Advance(10 * 60'000);
  EXPECT_EQ(mqtt_.count(), 0u);
  EXPECT_EQ(s.state(), SessionState::kRefused) << "refused for good: it cannot get younger";
}

TEST_F(DeviceSessionTest, QuotaExhaustionIsRecognisedAndWaitsForMidnightUtc) {
  config_.quota_strikes = 3;
  auto& s = Connected();
  ASSERT_TRUE(Send({"x", {}, "", "", "", "", "", ""}).ok());
  for (int strike = 0; strike < 3; ++strike) {
    ASSERT_EQ(s.state(), SessionState::kConnected);
    Lose("closed by the hub");  // the billable twin GET and telemetry got no answer
    if (strike < 2) {
      loop_.Advance(10'000);
      Accept();
    }
  }
  EXPECT_EQ(s.state(), SessionState::kQuotaExhausted);
  const std::int64_t midnight = (wall_.NowMs() / 86'400'000 + 1) * 86'400'000;
  EXPECT_EQ(s.quota_resume_wall_ms(), midnight) << "jitter is 0 with this random source";
  EXPECT_NE(listener_.states.back().second.find("quota"), std::string::npos);
  const std::size_t attempts = mqtt_.count();
  loop_.Advance(60'000);
  EXPECT_EQ(mqtt_.count(), attempts);
  wall_.Set(midnight + 1);  // the day rolls over (the wall clock jumps; loop time barely moves)
  loop_.Advance(1'100);
  ASSERT_EQ(mqtt_.count(), attempts + 1);
  Accept();
  conn().handler.OnPuback(Telemetry(conn()).at(0).packet_id);
  EXPECT_EQ(Pending(), 0u);
  EXPECT_EQ(s.quota_resume_wall_ms(), 0);
}

TEST_F(DeviceSessionTest, LossesAfterAnsweredRequestsAreNotQuotaStrikes) {
  auto& s = Connected();
  for (int i = 0; i < 5; ++i) {
    const auto* get = LastTwinGet(conn());
    ASSERT_NE(get, nullptr);
    conn().handler.OnMessage("$iothub/twin/res/200/?$rid=" + Rid(*get),
                             R"({"desired":{"$version":1},"reported":{"$version":1}})");
    Lose();
    loop_.Advance(20'000);
    Accept();
  }
  EXPECT_EQ(s.state(), SessionState::kConnected);
}

TEST_F(DeviceSessionTest, RenewalDrainsInFlightWorkThenReconnectsWithANewToken) {
  auto& s = Connected();
  conn().handler.OnMessage("$iothub/twin/res/200/?$rid=" + Rid(*LastTwinGet(conn())),
                           R"({"desired":{"$version":1},"reported":{"$version":1}})");
  ASSERT_TRUE(Send({"a", {}, "", "", "", "", "", ""}).ok());
  const std::string first_password = conn().options.password;
  wall_.Advance(2'880'000);  // 80% of an hour
  loop_.Advance(1'000);
  ASSERT_TRUE(Send({"b", {}, "", "", "", "", "", ""}).ok());
  EXPECT_EQ(Telemetry(conn()).size(), 1u) << "nothing new is sent while draining";
  const std::size_t before = mqtt_.count();
  conn().handler.OnPuback(Telemetry(conn())[0].packet_id);
  loop_.Advance(1'000);
  ASSERT_EQ(mqtt_.count(), before + 1);
  EXPECT_TRUE(mqtt_.connections[before - 1]->closed);
  Accept();
  EXPECT_NE(conn().options.password, first_password);
  ASSERT_EQ(Telemetry(conn()).size(), 1u);
  EXPECT_EQ(Telemetry(conn())[0].payload, "b");
  EXPECT_EQ(s.counters().renewals, 1);
  EXPECT_EQ(s.counters().resent, 0);
}

TEST_F(DeviceSessionTest, RenewalResendsWhatTheDrainDidNotGetAcknowledgedWithTheSameId) {
  auto& s = Connected();
  ASSERT_TRUE(Send({"a", {}, "", "", "", "", "", ""}).ok());
  const std::string topic = Telemetry(conn()).at(0).topic;
  const std::size_t before = mqtt_.count();
  wall_.Advance(2'880'000);
  loop_.Advance(1'000);  // renewal starts; the PUBACK never comes
  EXPECT_EQ(mqtt_.count(), before);
  loop_.Advance(5'000);  // the drain gives up
  ASSERT_EQ(mqtt_.count(), before + 1);
  Accept();
  ASSERT_EQ(Telemetry(conn()).size(), 1u);
  EXPECT_EQ(Telemetry(conn())[0].topic, topic);
  EXPECT_EQ(s.counters().resent, 1);
  EXPECT_EQ(s.counters().renewals, 1);
}

TEST_F(DeviceSessionTest, GarbageFromTheHubIsReportedNeverFatal) {
  auto& s = Connected();
  auto& h = conn().handler;
  h.OnMessage("$iothub/twin/res/200/?$rid=" + Rid(*LastTwinGet(conn())), "{not json");
  const std::size_t published = conn().published.size();
  h.OnMessage("$iothub/twin/res/200/?$rid=999", "{}");  // unknown rid: ignored
  h.OnMessage("$iothub/twin/res/204/?$rid=", "");       // empty rid
  h.OnMessage("$iothub/twin/res/abc", "");              // no status, no rid
  h.OnMessage("$iothub/twin/PATCH/properties/desired/?$version=3", "[1,2");
  h.OnMessage("$iothub/methods/POST/?$rid=1", "{}");            // no method name
  h.OnMessage("devices/dev1/messages/devicebound/%zz=1", "x");  // bad bag
  h.OnMessage("devices/other/messages/devicebound/", "x");      // not ours
  EXPECT_EQ(conn().published.size(), published) << "a failed GET waits before it is retried";
  loop_.Advance(1'000);
  const std::string deep =
      R"({"desired":{"$version":9,"a":)" + std::string(100, '[') + std::string(100, ']') + "}}";
  h.OnMessage("$iothub/twin/res/200/?$rid=" + Rid(*LastTwinGet(conn())), deep);
  loop_.Advance(2'000);  // the backoff grows
  h.OnMessage("$iothub/twin/res/200/?$rid=" + Rid(*LastTwinGet(conn())),
              R"({"desired":{"a":1,"$version":4},"reported":{"$version":1}})");
  std::vector<std::string> codes;
  for (const auto& p : listener_.problems) codes.push_back(p.code);
  EXPECT_EQ(codes, (std::vector<std::string>{"bad_twin", "bad_twin_response", "bad_twin_response",
                                             "bad_desired_patch", "bad_method", "bad_cloud_message",
                                             "unexpected_topic", "bad_twin"}));
  EXPECT_EQ(s.state(), SessionState::kConnected);
  EXPECT_TRUE(listener_.cloud.empty());
  ASSERT_EQ(listener_.desired.size(), 1u);
  EXPECT_EQ(listener_.desired[0].version, 4);
}

TEST_F(DeviceSessionTest, AnEmptyRidNeverCompletesAnotherRequest) {
  auto& s = Connected();
  std::optional<Result<std::int64_t>> result;
  s.UpdateReported(Json{{"x", 1}}, [&](Result<std::int64_t> r) { result = std::move(r); });
  conn().handler.OnMessage("$iothub/twin/res/429/?$rid=" + Rid(conn().published.back()), "");
  conn().handler.OnMessage("$iothub/twin/res/204/?$rid=&$version=3", "");  // while it waits
  EXPECT_FALSE(result.has_value());
  loop_.Advance(2'000);
  conn().handler.OnMessage(
      "$iothub/twin/res/204/?$rid=" + Rid(conn().published.back()) + "&$version=4", "");
  ASSERT_TRUE(result.has_value() && result->ok());
  EXPECT_EQ(**result, 4);
}

TEST_F(DeviceSessionTest, StopFromATimedOutRequestsCallbackIsSafe) {
  auto& s = Connected();
  int calls = 0;
  s.UpdateReported(Json{{"x", 1}}, [&](Result<std::int64_t> r) {
    ++calls;
    EXPECT_EQ(r.error().code, "timeout");
    s.Stop();
  });
  s.UpdateReported(Json{{"y", 1}}, [&](Result<std::int64_t>) { ++calls; });
  loop_.Advance(10 * 60'000);  // six attempts of 30 s each, with waits between them
  EXPECT_EQ(s.state(), SessionState::kStopped);
  EXPECT_EQ(calls, 2) << "the second request is failed by Stop()";
}

TEST_F(DeviceSessionTest, SizeLimitCountsSystemPropertiesAndTheMessageId) {
  Connected();
  azure::TelemetryMessage m;
  m.body = std::string(256 * 1024 - 10, 'x');
  m.message_id = std::string(20, 'i');
  EXPECT_EQ(Send(m).error().code, "too_large");
  m.body = "x";
  m.message_id = std::string(129, 'i');
  EXPECT_EQ(Send(m).error().code, "bad_message");
  m.message_id.clear();
  m.properties = {{"big", std::string(30'000, '%')}};  // 90,000 bytes once percent-encoded
  EXPECT_EQ(Send(m).error().code, "too_large") << "the MQTT topic limit";
  EXPECT_EQ(Pending(), 0u);
}

TEST_F(DeviceSessionTest, DesiredGapTriggersAFullGet) {
  auto& s = Connected();
  conn().handler.OnMessage("$iothub/twin/res/200/?$rid=" + Rid(*LastTwinGet(conn())),
                           R"({"desired":{"a":1,"$version":2},"reported":{"$version":1}})");
  const std::size_t gets = conn().published.size();
  conn().handler.OnMessage("$iothub/twin/PATCH/properties/desired/?$version=3",
                           R"({"a":2,"$version":3})");
  EXPECT_EQ(s.desired().version(), 3);
  conn().handler.OnMessage("$iothub/twin/PATCH/properties/desired/?$version=5",
                           R"({"a":5,"$version":5})");
  EXPECT_EQ(s.desired().version(), 3) << "version 4 is missing";
  ASSERT_GT(conn().published.size(), gets);
  EXPECT_TRUE(conn().published.back().topic.starts_with("$iothub/twin/GET/"));
}

TEST_F(DeviceSessionTest, ThrottledTwinRequestIsRetriedAndRaisesTheBackoffFloor) {
  auto& s = Connected();
  std::optional<Result<std::int64_t>> result;
  s.UpdateReported(Json{{"x", 1}}, [&](Result<std::int64_t> r) { result = std::move(r); });
  const FakePublish patch = conn().published.back();
  ASSERT_TRUE(patch.topic.starts_with("$iothub/twin/PATCH/properties/reported/"));
  conn().handler.OnMessage("$iothub/twin/res/429/?$rid=" + Rid(patch), "");
  EXPECT_EQ(s.counters().throttled, 1);
  EXPECT_FALSE(result.has_value());
  loop_.Advance(2'000);
  const FakePublish retry = conn().published.back();
  ASSERT_TRUE(retry.topic.starts_with("$iothub/twin/PATCH/properties/reported/"));
  EXPECT_NE(Rid(retry), Rid(patch));
  conn().handler.OnMessage("$iothub/twin/res/204/?$rid=" + Rid(retry) + "&$version=7", "");
  ASSERT_TRUE(result.has_value() && result->ok());
  EXPECT_EQ(**result, 7);
  // The next reconnect waits at least the throttled floor.
  Lose();
  const std::size_t before = mqtt_.count();
  loop_.Advance(19'000);
  EXPECT_EQ(mqtt_.count(), before);
}

TEST_F(DeviceSessionTest, RejectedTwinPatchFailsWithTheStatus) {
  auto& s = Connected();
  std::optional<Result<std::int64_t>> result;
  s.UpdateReported(Json{{"bad key", 1}}, [&](Result<std::int64_t> r) { result = std::move(r); });
  conn().handler.OnMessage("$iothub/twin/res/400/?$rid=" + Rid(conn().published.back()), "");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->error().code, "twin_rejected");
  std::optional<Result<std::int64_t>> not_object;
  s.UpdateReported(Json::array(), [&](Result<std::int64_t> r) { not_object = std::move(r); });
  EXPECT_EQ(not_object->error().code, "bad_patch");
}

TEST_F(DeviceSessionTest, RedeliveredCloudMessagesAreDroppedByMessageId) {
  Connected();
  conn().handler.OnMessage("devices/dev1/messages/devicebound/%24.mid=c1&k=v", "on");
  conn().handler.OnMessage("devices/dev1/messages/devicebound/%24.mid=c1&k=v", "on");
  conn().handler.OnMessage("devices/dev1/messages/devicebound/%24.mid=c2", "off");
  ASSERT_EQ(listener_.cloud.size(), 2u);
  EXPECT_EQ(session_->counters().duplicate_cloud_messages, 1);
}

TEST_F(DeviceSessionTest, MethodRequestsAreParsedAndAnswered) {
  auto& s = Connected();
  conn().handler.OnMessage("$iothub/methods/POST/set%20mode/?$rid=42", R"({"m":1})");
  ASSERT_EQ(listener_.methods.size(), 1u);
  EXPECT_EQ(listener_.methods[0].name, "set mode");
  EXPECT_EQ(listener_.methods[0].request_id, "42");
  ASSERT_TRUE(s.RespondMethod("42", 200, R"({"ok":true})").ok());
  EXPECT_EQ(conn().published.back().topic, "$iothub/methods/res/200/?$rid=42");
  EXPECT_EQ(s.RespondMethod("42", 200, "{oops").error().code, "bad_payload");
  Lose();
  EXPECT_EQ(s.RespondMethod("42", 200, "").error().code, "not_connected");
}

TEST_F(DeviceSessionTest, PubackTimeoutEndsADeadConnection) {
  config_.puback_timeout_ms = 10'000;
  auto& s = Connected();
  ASSERT_TRUE(Send({"x", {}, "", "", "", "", "", ""}).ok());
  loop_.Advance(10'500);
  EXPECT_EQ(s.state(), SessionState::kBackingOff);
  EXPECT_NE(listener_.states.back().second.find("no PUBACK"), std::string::npos);
}

TEST(SessionConfigTest, ComesFromADeviceConnectionString) {
  auto c = azure::SessionConfigFromConnectionString(
      std::string("HostName=hub.example.net;DeviceId=dev1;SharedAccessKey=") + kKey +
      ";GatewayHostName=127.0.0.1:18883");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->host_name, "hub.example.net");
  EXPECT_EQ(c->device_id, "dev1");
  EXPECT_EQ(c->key, kKey);
  EXPECT_EQ(c->connect_host, "127.0.0.1");
  EXPECT_EQ(c->port, 18883);
  auto plain = azure::SessionConfigFromConnectionString(
      std::string("HostName=h;DeviceId=d;SharedAccessKey=") + kKey);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->port, 8883);
  EXPECT_TRUE(plain->connect_host.empty());
  auto x509 = azure::SessionConfigFromConnectionString("HostName=h;DeviceId=d;x509=true");
  EXPECT_EQ(x509.error().code, "unsupported");
  auto module = azure::SessionConfigFromConnectionString(
      std::string("HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=") + kKey);
  EXPECT_EQ(module.error().code, "unsupported");
  auto broken = azure::SessionConfigFromConnectionString("HostName=h;SharedAccessKey=abc");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().message.find("DeviceId"), std::string::npos);
}

TEST(ConnectPacerTest, GrantsAtTheConfiguredRateInOrder) {
  ManualLoop loop;
  azure::ConnectPacer pacer(loop, 50.0);
  std::vector<int> granted;
  for (int i = 0; i < 5; ++i) pacer.Request([&, i] { granted.push_back(i); });
  const auto cancelled = pacer.Request([&] { granted.push_back(99); });
  pacer.Cancel(cancelled);
  loop.RunReady();
  EXPECT_EQ(granted, (std::vector<int>{0}));
  loop.Advance(20);
  EXPECT_EQ(granted, (std::vector<int>{0, 1}));
  loop.Advance(60);
  EXPECT_EQ(granted, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(pacer.waiting(), 0u);
}

}  // namespace
}  // namespace iothub::testing
