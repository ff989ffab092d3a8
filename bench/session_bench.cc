// Benchmark of the device-session library: the resident memory of many connected idle
// sessions sharing one loop (target under 100 KB each), and the telemetry throughput of one
// session as a ratio to a bare libmosquitto client publishing the same messages with the same
// window in the same run (target at least 0.8). Both sides of the ratio authenticate as
// devices of the emulator, so both go through the same broker and hub plugin; their rounds
// alternate so that drift in machine load hits both alike.
//
//   build/bin/session_bench [--messages N] [--payload BYTES] [--window N] [--rounds N]
//                           [--sessions N] [--tier free|S1|S2|S3]
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "azure/property_bag.h"
#include "common/crypto.h"
#include "support/emulator_fixture.h"
#include "support/session_rig.h"

using namespace iothub::testing;
namespace azure = iothub::azure;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kBulkBatch = 100;  // devices per bulk registry request (the hub's maximum)

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The resident set of this process in KB (VmRSS), or -1 when /proc cannot tell.
long ResidentKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// Every session holds a socket and libmosquitto's wake-up socket pair; the emulator's
// mosquitto (which inherits the limit) holds one socket per device.
rlim_t RaiseFdLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

// A JSON sensor reading padded to `bytes` (never shorter than the reading itself).
std::string SensorReading(int bytes) {
  std::string json = R"({"deviceId":"bench","ts":"2024-05-01T12:00:00.000Z","temperature":21.53,)"
                     R"("humidity":48.2,"pressure":1013.25,"battery":3.71,"status":"ok","note":")";
  const std::string tail = "\"}";
  const auto target = static_cast<std::size_t>(std::max(bytes, 0));
  if (json.size() + tail.size() < target) json.append(target - json.size() - tail.size(), 'x');
  return json + tail;
}

// The system properties every message carries, as the session sends them.
constexpr std::string_view kContentType = "application/json";
constexpr std::string_view kContentEncoding = "utf-8";

// The topic a session publishes message `id` on, written out by hand as a bare client would
// (checked against the library's encoder once, so both sides carry the same bytes).
std::string BareTopic(const std::string& device_id, const std::string& id) {
  return fmt::format("devices/{}/messages/events/%24.mid={}&%24.ct=application%2Fjson&%24.ce=utf-8",
                     device_id, id);
}

bool BareTopicMatchesSession(const std::string& device_id) {
  const std::string id = "0123456789ab-1";
  const azure::PropertyBag bag = {
      {std::string(azure::kMessageId), id},
      {std::string(azure::kContentType), std::string(kContentType)},
      {std::string(azure::kContentEncoding), std::string(kContentEncoding)}};
  return BareTopic(device_id, id) ==
         "devices/" + device_id + "/messages/events/" + azure::EncodePropertyBag(bag);
}

// Publishes `count` QoS 1 messages, each with its own message id (12 characters, a dash and
// a number, like the session's), with at most `window` unacknowledged; messages/s.
std::optional<double> BareThroughput(DeviceClient& device, const std::string& device_id, int count,
                                     int window, const std::string& payload) {
  const std::string prefix = "baseline0000";
  const std::size_t base = device.acks();
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    if (i >= window) device.WaitAcks(base + static_cast<std::size_t>(i - window + 1), 30s);
    if (device.PublishAsync(BareTopic(device_id, fmt::format("{}-{}", prefix, i + 1)), payload, 1) <
        0) {
      fmt::print(stderr, "bare client: publish {} failed\n", i);
      return std::nullopt;
    }
  }
  if (!device.WaitAcks(base + static_cast<std::size_t>(count), 60s)) {
    fmt::print(stderr, "bare client: throughput run lost acknowledgements\n");
    return std::nullopt;
  }
  return count / Seconds(Clock::now() - start);
}

// One round of the bare client: a fresh connection, then the timed publishing.
std::optional<double> BareRound(const EmulatorInfo& info, const std::string& device_id,
                                const std::string& key, int count, int window,
                                const std::string& payload) {
  DeviceClient device(info, device_id, key);
  if (const int rc = device.Connect(); rc != 0) {
    fmt::print(stderr, "bare client: cannot connect to the emulator (CONNACK {})\n", rc);
    return std::nullopt;
  }
  return BareThroughput(device, device_id, count, window, payload);
}

// One round of the session: a fresh loop, connector and connection, then, timed, every
// message queued in the session's source and the loop run until the hub has acknowledged
// them all.
std::optional<double> SessionRound(const EmulatorInfo& info, const std::string& device_id,
                                   const std::string& key, int count, int window,
                                   const std::string& payload) {
  SessionRig rig(info);
  auto config = rig.Config(device_id, key);
  config.max_in_flight = static_cast<std::size_t>(window);
  azure::DeviceSession& session = rig.Add(std::move(config));
  if (!rig.Run([&] { return session.state() == azure::SessionState::kConnected; })) {
    fmt::print(stderr, "session: not connected: {}\n",
               rig.listener().states.empty() ? "" : rig.listener().states.back().second);
    return std::nullopt;
  }
  rig.RunFor(200);  // the SUBSCRIBE and the session's first twin GET are answered
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    azure::TelemetryMessage message;
    message.body = payload;
    message.content_type = kContentType;
    message.content_encoding = kContentEncoding;
    if (auto sent = rig.Send(session, std::move(message)); !sent) {
      fmt::print(stderr, "session: Send {} failed: {}\n", i, sent.error().message);
      return std::nullopt;
    }
  }
  if (!rig.Run([&] { return rig.Pending(session) == 0; }, 60'000)) {
    fmt::print(stderr, "session: {} messages still unacknowledged after 60 s\n",
               rig.Pending(session));
    return std::nullopt;
  }
  const double rate = count / Seconds(Clock::now() - start);
  if (session.counters().connection_losses != 0 || session.counters().resent != 0) {
    fmt::print(stderr, "session: {} connection losses, {} resends during the run\n",
               session.counters().connection_losses, session.counters().resent);
  }
  return rate;
}

// Registers `count` devices with keys chosen here, in bulk requests: registry operations are
// throttled (100 a minute on S1) and a bulk request counts as one. Returns (id, key) pairs.
std::optional<std::vector<std::pair<std::string, std::string>>> CreateIdleDevices(
    ServiceClient& service, int count) {
  std::vector<std::pair<std::string, std::string>> devices;
  for (int first = 0; first < count; first += kBulkBatch) {
    Json batch = Json::array();
    for (int i = first; i < std::min(count, first + kBulkBatch); ++i) {
      std::string id = fmt::format("idle-{:05}", i);
      std::string key = iothub::Base64Encode(iothub::RandomBytes(32));
      batch.push_back(
          {{"id", id},
           {"importMode", "create"},
           {"authentication", {{"type", "sas"}, {"symmetricKey", {{"primaryKey", key}}}}}});
      devices.emplace_back(std::move(id), std::move(key));
    }
    const HttpReply reply = service.Request("POST", "/devices?api-version=2021-04-12", batch);
    if (reply.status != 200) {
      fmt::print(stderr, "\ncannot create devices: {} {}\n", reply.status, reply.text);
      return std::nullopt;
    }
    fmt::print(stderr, "\rcreated {}/{} devices", devices.size(), count);
  }
  fmt::print(stderr, "\n");
  return devices;
}

// Connects `count` sessions on one loop and reports what they cost once idle.
bool MeasureIdleSessions(const EmulatorInfo& info, ServiceClient& service, int count) {
  auto devices = CreateIdleDevices(service, count);
  if (!devices) return false;
  SessionRig rig(info);  // the loop, the connector with its TLS context, the pacer
  rig.RunFor(10);
  const long before_kb = ResidentKb();
  const auto start = Clock::now();
  for (const auto& [id, key] : *devices) rig.Add(rig.Config(id, key));
  auto connected = [&] {
    std::size_t n = 0;
    for (std::size_t i = 0; i < rig.size(); ++i) {
      if (rig.session(i).state() == azure::SessionState::kConnected) ++n;
    }
    return n;
  };
  // The pacer admits 50 connections a second: allow twice that long, and some.
  const auto deadline = start + std::chrono::milliseconds(count * 40 + 30'000);
  bool all = false;
  while (!all && Clock::now() < deadline) {
    all = rig.Run([&] { return connected() == rig.size(); }, 1'000);
    fmt::print(stderr, "\rconnected {}/{} sessions", connected(), count);
  }
  fmt::print(stderr, "\n");
  const double connect_s = Seconds(Clock::now() - start);
  const std::size_t up = connected();
  if (!all) {
    std::map<std::string_view, int> states;
    std::string example;
    for (std::size_t i = 0; i < rig.size(); ++i) {
      const auto state = rig.session(i).state();
      ++states[azure::ToString(state)];
      if (state != azure::SessionState::kConnected && example.empty() &&
          !rig.listener(i).states.empty()) {
        example = rig.session(i).device_id() + ": " + rig.listener(i).states.back().second;
      }
    }
    std::string summary;
    for (const auto& [name, n] : states) summary += fmt::format(" {} {},", name, n);
    fmt::print("idle sessions: only {} of {} connected within {:.1f} s:{} e.g. {}\n", up, count,
               connect_s, summary, example);
  }
  rig.RunFor(2'000);  // buffers settle; keep-alive and tick timers run
  const long after_kb = ResidentKb();
  const auto mb = [](long kb) { return static_cast<double>(kb) / 1024.0; };
  const double per_session_kb =
      up == 0 ? 0.0 : static_cast<double>(after_kb - before_kb) / static_cast<double>(up);
  fmt::print("idle sessions: {} connected in {:.1f} s ({:.1f}/s; the pacer allows 50/s)\n", up,
             connect_s, static_cast<double>(up) / connect_s);
  fmt::print(
      "idle sessions: RSS {:.1f} MB before, {:.1f} MB after 2 s idle: {:.1f} MB for {} sessions, "
      "{:.1f} KB per session (target < 100 KB)\n",
      mb(before_kb), mb(after_kb), mb(after_kb - before_kb), up, per_session_kb);
  return all;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int messages = 20'000, payload_bytes = 200, window = 16, rounds = 3, sessions = 500;
  std::string tier = "S1";
  auto usage = [&] {
    fmt::print(stderr,
               "usage: {} [--messages N] [--payload BYTES] [--window N] [--rounds N] "
               "[--sessions N] [--tier free|S1|S2|S3]\n",
               argv[0]);
    return 2;
  };
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) return usage();
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--messages")
      messages = value;
    else if (flag == "--payload")
      payload_bytes = value;
    else if (flag == "--window")
      window = value;
    else if (flag == "--rounds")
      rounds = value;
    else if (flag == "--sessions")
      sessions = value;
    else if (flag == "--tier")
      tier = argv[i + 1];
    else
      return usage();
  }
  if (messages < 1 || window < 1 || rounds < 1 || sessions < 0 || payload_bytes < 0) {
    fmt::print(stderr,
               "--messages, --window and --rounds must be at least 1, --sessions 0 or more\n");
    return 2;
  }
  const rlim_t fd_limit = RaiseFdLimit();  // before the emulator starts: it inherits the limit
  TempDir dir;
  auto started = EmulatorProcess::Start(dir.path(), {"--tier", tier});
  if (!started) {
    fmt::print(stderr, "cannot start the emulator: {}\n", started.error().message);
    return 1;
  }
  const EmulatorInfo& info = (*started)->info();
  ServiceClient service(info);
  const std::string payload = SensorReading(payload_bytes);
  fmt::print(
      "device-session benchmark: {} messages of {} bytes, window {}, {} rounds; {} idle "
      "sessions; tier {}, fd limit {}\n",
      messages, payload.size(), window, rounds, sessions, tier, fd_limit);

  // Memory first, while the heap is fresh: after the throughput rounds, freed but resident
  // memory would be reused by the sessions and hide their cost.
  bool ok = true;
  if (sessions > 0) ok = MeasureIdleSessions(info, service, sessions);

  const std::string bare_id = "bench-bare", session_id = "bench-session";
  if (!BareTopicMatchesSession(bare_id)) {
    fmt::print(stderr, "fatal: the bare client's topic differs from the session's encoding\n");
    return 1;
  }
  const std::string bare_key = service.CreateDevice(bare_id);
  const std::string session_key = service.CreateDevice(session_id);
  std::vector<double> bare_runs, session_runs;
  for (int round = 0; round < rounds; ++round) {
    const auto bare = BareRound(info, bare_id, bare_key, messages, window, payload);
    if (!bare) return 1;
    bare_runs.push_back(*bare);
    const auto session = SessionRound(info, session_id, session_key, messages, window, payload);
    if (!session) return 1;
    session_runs.push_back(*session);
    fmt::print(stderr, "round {}: bare {:.0f} msg/s, session {:.0f} msg/s\n", round + 1, *bare,
               *session);
  }
  // The ratio of the medians, and as a check on drift, the median of each round's ratio.
  std::vector<double> ratios;
  for (std::size_t i = 0; i < bare_runs.size(); ++i)
    ratios.push_back(session_runs[i] / bare_runs[i]);
  const double bare = Median(bare_runs);
  const double session = Median(session_runs);
  fmt::print(
      "telemetry QoS 1, one connection, window {} (median of {}): session {:.0f} msg/s, bare "
      "libmosquitto client {:.0f} msg/s, ratio {:.2f} (target >= 0.8; median of round ratios "
      "{:.2f})\n",
      window, rounds, session, bare, session / bare, Median(ratios));
  fmt::print("rounds in order (msg/s): bare {:.0f}; session {:.0f}\n", fmt::join(bare_runs, " "),
             fmt::join(session_runs, " "));
  return ok ? 0 : 1;
}
