// End-to-end rig for the connector: the real iothub-emulator, the real openhab-sim and the
// real iothub-connector as child processes, a config file written per test, and readers for
// what reached the hub (the emulator's own records: /emulator/messages, /emulator/stats,
// twins) and for the connector's status. Every wait has a timeout. Not thread-safe.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.h"
#include "support/emulator_fixture.h"
#include "support/openhab_sim_fixture.h"

namespace iothub::testing {

// Polls `done` every 20 ms until it is true or `timeout` passes; returns done().
inline bool WaitUntil(const std::function<bool()>& done,
                      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// "2026-12-02T13:25:06.2610000Z" (any number of fraction digits) as epoch ms; 0 when not one.
inline std::int64_t ParseUtcMs(const std::string& text) {
  std::tm tm{};
  int ms = 0;
  const char* rest = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return 0;
  if (*rest == '.') {
    int scale = 100;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest, scale /= 10) ms += (*rest - '0') * scale;
  }
  return static_cast<std::int64_t>(::timegm(&tm)) * 1000 + ms;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// One device-to-cloud message as the emulator recorded it, with its body parsed.
struct HubMessage {
  std::int64_t seq = 0;
  std::string device_id;
  std::string message_id;
  std::string kind;              // the `kind` application property
  std::int64_t enqueued_ms = 0;  // when the hub took it (its enqueuedTime)
  std::string body_text;
  nlohmann::json body;  // discarded when not JSON
  nlohmann::json properties;
  nlohmann::json system_properties;
};

// One state of an item as the hub received it: the latest state a message carries for the
// item, or an element of its history (with the item's unit where the element leaves it out).
struct Observation {
  std::string kind;      // the message's kind: "changes" or "snapshot"
  std::int64_t seq = 0;  // the body's seq
  std::int64_t enqueued_ms = 0;
  nlohmann::json value;
  std::string unit;
  std::string state;      // "NULL" / "UNDEF", else ""
  nlohmann::json merged;  // the `merged` member, or null
};

// Every observation of `item` in `messages`, in the order the connector sent them (each
// message's history, oldest first, then its latest state).
inline std::vector<Observation> ItemObservations(const std::vector<HubMessage>& messages,
                                                 const std::string& item) {
  std::vector<Observation> out;
  for (const auto& m : messages) {
    if (!m.body.is_object() || !m.body.contains("items") || !m.body["items"].contains(item)) {
      continue;
    }
    const nlohmann::json& entry = m.body["items"][item];
    const auto add = [&](const nlohmann::json& o) {
      Observation seen;
      seen.kind = m.kind;
      seen.seq = m.body.value("seq", std::int64_t{0});
      seen.enqueued_ms = m.enqueued_ms;
      seen.value = o.value("value", nlohmann::json());
      seen.unit = o.value("unit", entry.value("unit", ""));
      seen.state = o.value("state", "");
      seen.merged = o.value("merged", nlohmann::json());
      out.push_back(std::move(seen));
    };
    if (entry.contains("history")) {
      for (const auto& earlier : entry["history"]) add(earlier);
    }
    add(entry);
  }
  return out;
}

// The values of `observations` of one kind ("" for all), in order.
inline std::vector<nlohmann::json> ValuesOf(const std::vector<Observation>& observations,
                                            const std::string& kind = "") {
  std::vector<nlohmann::json> values;
  for (const auto& o : observations) {
    if (kind.empty() || o.kind == kind) values.push_back(o.value);
  }
  return values;
}

class ConnectorRig {
 public:
  // Starts the emulator (with `emulator_args`, e.g. {"--tier","S1"}) and openhab-sim (with
  // `sim_args`, on the demo home unless `home` is given). Check ok() before use.
  ConnectorRig(std::vector<std::string> emulator_args = {}, std::vector<std::string> sim_args = {},
               const std::string& home = SimProcess::DemoHome()) {
    // The service client keeps its TLS connection; when the emulator has closed an idle one
    // (5 s), OpenSSL's next write raises SIGPIPE, which would kill the test and orphan the
    // programs it started. The programs ignore SIGPIPE themselves (common/signals.h).
    ::signal(SIGPIPE, SIG_IGN);
    auto hub = EmulatorProcess::Start(dir_.path() + "/hub", std::move(emulator_args));
    if (!hub) {
      error_ = "emulator: " + hub.error().message;
      return;
    }
    hub_ = std::move(hub).value();
    auto sim = SimProcess::Start(std::move(sim_args), home);
    if (!sim) {
      error_ = "openhab-sim: " + sim.error().message;
      return;
    }
    sim_ = std::move(sim).value();
    service_ = std::make_unique<ServiceClient>(hub_->info());
  }
  ~ConnectorRig() { StopConnector(); }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_.path(); }
  EmulatorProcess& hub() { return *hub_; }
  const EmulatorInfo& hub_info() const { return hub_->info(); }
  SimProcess& sim() { return *sim_; }
  ServiceClient& service() { return *service_; }
  std::string store_dir() const { return dir_.path() + "/store"; }
  std::string log_path() const { return dir_.path() + "/connector.log"; }
  std::string config_path() const { return dir_.path() + "/connector.toml"; }

  // The [openhab], [iothub], [store] and [metrics] tables pointing at this rig's programs,
  // with `connection_string` (default: the emulator's iothubowner policy) and `openhab_keys`
  // (TOML lines added to [openhab], e.g. "items = [\"Living_*\"]\n": TOML cannot reopen it).
  std::string BaseConfig(const std::string& connection_string = "",
                         const std::string& openhab_keys = "") const {
    const EmulatorInfo& info = hub_->info();
    std::ostringstream toml;
    toml << "[openhab]\nurl = \"http://127.0.0.1:" << sim_->port() << "\"\n"
         << openhab_keys << "\n"
         << "[iothub]\nconnection_string = \""
         << (connection_string.empty() ? info.service_connection_string : connection_string)
         << "\"\nmqtt_endpoint = \"localhost:" << info.mqtt_port << "\"\n"
         << "https_endpoint = \"localhost:" << info.https_port << "\"\n"
         << "ca_file = \"" << info.ca_file << "\"\n\n"
         << "[store]\ndir = \"" << store_dir() << "\"\n\n"
         << "[metrics]\nlisten = \"127.0.0.1:0\"\n";
    return toml.str();
  }

  // Writes `toml` as the config file (mode 0600) and starts `iothub-connector run` on it,
  // stderr appended to log_path(). Returns false (and sets error()) when it did not start.
  bool StartConnector(const std::string& toml, std::vector<std::string> extra_args = {}) {
    {
      std::ofstream out(config_path());
      out << toml;
    }
    ::chmod(config_path().c_str(), 0600);
    std::string command = "exec '" + std::string(IOTHUB_BIN_DIR) +
                          "/iothub-connector' run --config '" + config_path() + "'";
    for (const auto& arg : extra_args) command += " '" + arg + "'";
    command += " 2>>'" + log_path() + "'";
    auto child = ChildProcess::Start({"/bin/sh", "-c", command}, std::chrono::seconds(30));
    if (!child) {
      error_ = "iothub-connector: " + child.error().message + "\n" + ReadFile(log_path());
      return false;
    }
    connector_ = std::move(child).value();
    metrics_ = connector_->ready().value("metrics", "");
    return true;
  }
  // Waits up to `timeout` for the connector to exit by itself and returns its exit code (128 +
  // the signal when a signal ended it); nullopt when it is still running (or none runs).
  std::optional<int> WaitConnectorExit(std::chrono::milliseconds timeout) {
    if (!connector_) return std::nullopt;
    siginfo_t info{};
    const bool exited = WaitUntil(
        [&] {
          info = {};
          // WNOWAIT: the child stays reapable, so ChildProcess::Stop() can collect it.
          return ::waitid(P_PID, static_cast<id_t>(connector_->pid()), &info,
                          WEXITED | WNOHANG | WNOWAIT) == 0 &&
                 info.si_pid == connector_->pid();
        },
        timeout);
    if (!exited) return std::nullopt;
    const int status = StopConnector();
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return status;
  }
  // SIGTERM and wait; the exit status as waitpid gives it (-1 when not running).
  int StopConnector() { return connector_ ? std::exchange(connector_, nullptr)->Stop() : -1; }
  // SIGKILL: no chance to flush anything.
  void KillConnector() {
    if (!connector_) return;
    ::kill(connector_->pid(), SIGKILL);
    connector_->Stop();
    connector_.reset();
  }
  void SignalConnector(int signo) {
    if (connector_) ::kill(connector_->pid(), signo);
  }
  pid_t connector_pid() const { return connector_ ? connector_->pid() : -1; }
  std::string Log() const { return ReadFile(log_path()); }
  // The connector's [metrics] address as its ready line gave it ("" when off).
  const std::string& metrics_address() const { return metrics_; }
  // The emulator's key of shared access policy `name` (iothubowner, service, device,
  // registryRead, registryReadWrite; docs/emulator-state.md).
  std::string PolicyKey(const std::string& name) const {
    const auto policies =
        nlohmann::json::parse(ReadFile(hub_->info().state_dir + "/policies.json"), nullptr, false);
    if (!policies.is_object()) return "";
    for (const auto& policy : policies.value("policies", nlohmann::json::array())) {
      if (policy.value("name", "") == name) return policy.value("primaryKey", "");
    }
    return "";
  }
  // `HostName=...;SharedAccessKeyName=<name>;SharedAccessKey=<its key>`.
  std::string PolicyConnectionString(const std::string& name) const {
    return "HostName=" + hub_->info().host_name + ";SharedAccessKeyName=" + name +
           ";SharedAccessKey=" + PolicyKey(name);
  }

  // Every device-to-cloud message the emulator holds (of `device_id`, or all), oldest first.
  std::vector<HubMessage> Messages(const std::string& device_id = "") {
    std::vector<HubMessage> out;
    std::int64_t since = 0;
    for (;;) {
      const HttpReply reply =
          service_->Request("GET", "/emulator/messages?limit=1000&since=" + std::to_string(since) +
                                       (device_id.empty() ? "" : "&deviceId=" + device_id));
      if (reply.status != 200 || !reply.body.contains("messages")) break;
      const auto& messages = reply.body["messages"];
      for (const auto& m : messages) {
        HubMessage message;
        message.seq = m.value("seq", std::int64_t{0});
        message.device_id = m.value("deviceId", "");
        message.body_text = m.value("body", "");
        message.body = nlohmann::json::parse(message.body_text, nullptr, false);
        message.properties = m.value("properties", nlohmann::json::object());
        message.system_properties = m.value("systemProperties", nlohmann::json::object());
        message.message_id = message.system_properties.value("message-id", "");
        message.kind = message.properties.value("kind", "");
        message.enqueued_ms = ParseUtcMs(m.value("enqueuedTime", ""));
        out.push_back(std::move(message));
      }
      if (messages.empty()) break;
      since = reply.body.value("next", since);
      if (messages.size() < 1000) break;
    }
    return out;
  }
  nlohmann::json Stats() { return service_->Request("GET", "/emulator/stats").body; }
  // The emulator's counters of one device (connects, d2cMessages, reportedPatches, ...).
  nlohmann::json DeviceStats(const std::string& device_id = "openhab") {
    const nlohmann::json stats = Stats();
    if (!stats.is_object() || !stats.contains("devices") || !stats["devices"].contains(device_id)) {
      return nlohmann::json::object();
    }
    return stats["devices"][device_id];
  }
  nlohmann::json Twin(const std::string& device_id = "openhab") {
    return service_->Request("GET", "/twins/" + device_id).body;
  }
  // The connector's GET /status (null when it does not answer).
  nlohmann::json Status() {
    if (metrics_.empty()) return nullptr;
    httplib::Client client("http://" + metrics_);
    client.set_read_timeout(5, 0);
    auto res = client.Get("/status?items=all");
    if (!res || res->status != 200) return nullptr;
    return nlohmann::json::parse(res->body, nullptr, false);
  }
  std::string Metrics() {
    if (metrics_.empty()) return "";
    httplib::Client client("http://" + metrics_);
    auto res = client.Get("/metrics");
    return res ? res->body : "";
  }

  // The bodies as sent, for ValidateMessages (support/message_schema.h).
  static std::vector<std::string> Bodies(const std::vector<HubMessage>& messages) {
    std::vector<std::string> bodies;
    bodies.reserve(messages.size());
    for (const auto& m : messages) bodies.push_back(m.body_text);
    return bodies;
  }

  // The newest value each item has in the hub's messages: items.<name>.value (of any kind).
  std::map<std::string, nlohmann::json> LatestValues(const std::vector<HubMessage>& messages) {
    std::map<std::string, nlohmann::json> latest;
    for (const auto& m : messages) {
      if (!m.body.is_object() || !m.body.contains("items")) continue;
      for (const auto& [name, item] : m.body["items"].items()) latest[name] = item["value"];
    }
    return latest;
  }

 private:
  TempDir dir_;
  std::string error_;
  std::unique_ptr<EmulatorProcess> hub_;
  std::unique_ptr<SimProcess> sim_;
  std::unique_ptr<ServiceClient> service_;
  std::unique_ptr<ChildProcess> connector_;
  std::string metrics_;
};

}  // namespace iothub::testing
