// Test and benchmark support for device sessions against the real emulator: one PollLoop
// driven by the test thread, the real libmosquitto connector, a pacer, a wall clock the test
// can advance in step with the emulator's, and a listener that records everything.
// Not thread-safe: everything runs on the thread that calls Run().
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "azure/connect_pacer.h"
#include "azure/device_session.h"
#include "azure/mosquitto_connection.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "common/random.h"
#include "support/emulator_fixture.h"
#include "support/telemetry_queue.h"

namespace iothub::testing {

// Records what a session reports.
struct RecordingListener final : azure::SessionListener {
  void OnState(azure::SessionState state, std::string_view detail) override {
    states.emplace_back(state, std::string(detail));
    if (on_state) on_state(state);
  }
  void OnDelivered(std::string_view id) override { delivered.emplace_back(id); }
  void OnTelemetryRefused(std::string_view id, const Error& why) override {
    refused.emplace_back(std::string(id), why);
  }
  void OnCloudMessage(const azure::CloudMessage& m) override { cloud.push_back(m); }
  void OnDesired(const azure::DesiredTracker::Change& c) override { desired.push_back(c); }
  void OnMethod(const azure::MethodRequest& r) override {
    methods.push_back(r);
    if (on_method) on_method(r);
  }
  void OnProblem(const Error& e) override { problems.push_back(e); }
  bool Saw(azure::SessionState state) const {
    for (const auto& [s, d] : states) {
      if (s == state) return true;
    }
    return false;
  }

  std::vector<std::pair<azure::SessionState, std::string>> states;
  std::vector<std::string> delivered;
  std::vector<std::pair<std::string, Error>> refused;
  std::vector<azure::CloudMessage> cloud;
  std::vector<azure::DesiredTracker::Change> desired;
  std::vector<azure::MethodRequest> methods;
  std::vector<Error> problems;
  std::function<void(const azure::MethodRequest&)> on_method;
  std::function<void(azure::SessionState)> on_state;
};

class SessionRig {
 public:
  // `tls` overrides the emulator's CA and host name (to test what a client must refuse).
  explicit SessionRig(const EmulatorInfo& info, double connects_per_second = 50.0,
                      std::optional<azure::TlsOptions> tls = std::nullopt)
      : info_(info), wall_(system_clock_), pacer_(loop_, connects_per_second) {
    auto connector = azure::MosquittoConnector::Create(
        loop_, tls.value_or(azure::TlsOptions{info.ca_file, info.host_name}));
    if (!connector) {
      std::fprintf(stderr, "connector: %s\n", connector.error().message.c_str());
      std::abort();
    }
    connector_ = std::move(connector).value();
  }
  ~SessionRig() {
    sessions_.clear();
    loop_.RunUntil([] { return false; }, 5);  // destroy retired connections before the connector
  }

  // The configuration for a device of the emulator (connects to 127.0.0.1 by the hub name).
  azure::DeviceSessionConfig Config(const std::string& device_id, const std::string& key) const {
    azure::DeviceSessionConfig c;
    c.host_name = info_.host_name;
    c.connect_host = "127.0.0.1";
    c.port = info_.mqtt_port;
    c.device_id = device_id;
    c.key = key;
    c.reconnect = {200, 2'000, 2.0, 0.5};
    c.throttled_floor_ms = 1'000;
    c.connect_timeout_ms = 3'000;
    return c;
  }
  // Creates (and starts) a session; the rig owns it and its listener.
  azure::DeviceSession& Add(azure::DeviceSessionConfig config, bool start = true) {
    auto listener = std::make_unique<RecordingListener>();
    auto session = azure::DeviceSession::Create(loop_, *connector_, pacer_, wall_, random_,
                                                std::move(config), *listener);
    if (!session) {
      std::fprintf(stderr, "session: %s\n", session.error().message.c_str());
      std::abort();
    }
    auto queue = std::make_unique<TelemetryQueue>();
    session.value()->SetTelemetrySource(queue.get());
    sessions_.push_back({std::move(listener), std::move(queue), std::move(session).value()});
    if (start) sessions_.back().session->Start();
    return *sessions_.back().session;
  }
  // Queues telemetry for `session` (one of this rig's), as its owner would.
  Result<std::string> Send(azure::DeviceSession& session, azure::TelemetryMessage message) {
    return EntryOf(session).queue->Send(session, std::move(message));
  }
  // Telemetry of `session` not yet acknowledged: queued or in its window.
  std::size_t Pending(const azure::DeviceSession& session) {
    return EntryOf(session).queue->waiting() + session.window();
  }
  RecordingListener& listener(std::size_t i = 0) { return *sessions_.at(i).listener; }
  azure::DeviceSession& session(std::size_t i = 0) { return *sessions_.at(i).session; }
  std::size_t size() const { return sessions_.size(); }

  // Runs the loop until `done` or the timeout; returns done().
  bool Run(const std::function<bool()>& done, std::int64_t timeout_ms = 15'000) {
    return loop_.RunUntil(done, timeout_ms);
  }
  void RunFor(std::int64_t ms) {
    loop_.RunUntil([] { return false; }, ms);
  }

  PollLoop& loop() { return loop_; }
  OffsetClock& wall() { return wall_; }

 private:
  struct Entry {
    std::unique_ptr<RecordingListener> listener;
    std::unique_ptr<TelemetryQueue> queue;
    std::unique_ptr<azure::DeviceSession> session;
  };
  Entry& EntryOf(const azure::DeviceSession& session) {
    for (auto& e : sessions_) {
      if (e.session.get() == &session) return e;
    }
    std::fprintf(stderr, "SessionRig: not one of this rig's sessions\n");
    std::abort();
  }
  const EmulatorInfo& info_;
  SystemClock system_clock_;
  OffsetClock wall_;
  SystemRandom random_;
  PollLoop loop_;
  azure::ConnectPacer pacer_;
  std::unique_ptr<azure::MosquittoConnector> connector_;
  std::vector<Entry> sessions_;
};

}  // namespace iothub::testing
