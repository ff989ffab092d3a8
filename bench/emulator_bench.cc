// Benchmark of iothub-emulator (issue 2): telemetry throughput over one connection at QoS 1,
// and round-trip latencies of twin GET, method invoke, desired push and cloud-to-device
// send. Figures are reported next to a baseline measured in the same run on a plain
// mosquitto (same TLS, no hub plugin), because these machines are noisy.
//
//   build/bin/emulator_bench [--messages N] [--samples N] [--payload BYTES]
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "support/emulator_fixture.h"

using namespace iothub::testing;
using Clock = std::chrono::steady_clock;

namespace {

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Percentiles {
  double p50 = 0, p99 = 0;
};

Percentiles Summarise(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return {};
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

// Publishes `count` QoS 1 messages with at most `window` unacknowledged; messages/s.
double Throughput(DeviceClient& device, const std::string& topic, int count, int window,
                  const std::string& payload) {
  const std::size_t base = device.acks();
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    if (i >= window) device.WaitAcks(base + static_cast<std::size_t>(i - window + 1), 30s);
    device.PublishAsync(topic, payload, 1);
  }
  if (!device.WaitAcks(base + static_cast<std::size_t>(count), 60s)) {
    fmt::print(stderr, "throughput run lost acknowledgements\n");
    std::exit(1);
  }
  return count / std::chrono::duration<double>(Clock::now() - start).count();
}

// A plain mosquitto with the same TLS material, anonymous, for the baseline.
struct PlainBroker {
  pid_t pid = -1;
  int port = 0;
  ~PlainBroker() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

void StartPlainBroker(PlainBroker& broker, const std::string& dir) {
  broker.port = 20000 + static_cast<int>(::getpid() % 20000);
  const std::string conf = dir + "/plain.conf";
  std::ofstream(conf) << "user root\nallow_anonymous true\nset_tcp_nodelay true\nlog_dest none\n"
                      << "listener " << broker.port << " 127.0.0.1\n"
                      << "cafile " << dir << "/tls/ca.pem\ncertfile " << dir
                      << "/tls/server.pem\nkeyfile " << dir << "/tls/server.key\n";
  broker.pid = ::fork();
  if (broker.pid == 0) {
    ::execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf.c_str(), nullptr);
    ::_exit(127);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int messages = 50'000, samples = 300, payload_bytes = 200, window = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--messages")
      messages = value;
    else if (flag == "--samples")
      samples = value;
    else if (flag == "--payload")
      payload_bytes = value;
    else if (flag == "--window")
      window = value;
    else {
      fmt::print(stderr, "usage: {} [--messages N] [--samples N] [--payload BYTES] [--window N]\n",
                 argv[0]);
      return 2;
    }
  }
  TempDir dir;
  // S3 with many units: the benchmark measures the emulator, not its throttles or quota.
  auto started = EmulatorProcess::Start(
      dir.path(), {"--tier", "S3", "--units", "10", "--message-capacity", "200000"});
  if (!started) {
    fmt::print(stderr, "cannot start the emulator: {}\n", started.error().message);
    return 1;
  }
  const EmulatorInfo& info = (*started)->info();
  ServiceClient service(info);
  const std::string payload(static_cast<std::size_t>(payload_bytes), 'x');
  fmt::print("iothub-emulator benchmark: {} messages of {} bytes, window {}, {} latency samples\n",
             messages, payload_bytes, window, samples);

  // Throughput: plain mosquitto first (baseline), then the emulator, same client library.
  PlainBroker plain;
  StartPlainBroker(plain, dir.path());
  EmulatorInfo plain_info = info;
  plain_info.mqtt_port = plain.port;
  DeviceClient::Options anonymous;
  anonymous.username = "bench";
  anonymous.password = "bench";
  // Alternate baseline and emulator rounds so that drift in machine load hits both alike;
  // report the median of each.
  const std::string key = service.CreateDevice("bench");
  const std::string topic = "devices/bench/messages/events/%24.ct=application%2Fjson&k=v";
  std::vector<double> baseline_runs, emulator_runs;
  for (int round = 0; round < 3; ++round) {
    DeviceClient plain_client(plain_info, "baseline", "", anonymous);
    int rc = -1;
    for (int attempt = 0; attempt < 50 && rc != 0; ++attempt) {
      rc = plain_client.Connect(1s);
      if (rc != 0) std::this_thread::sleep_for(100ms);  // the baseline broker is still starting
    }
    if (rc != 0) {
      fmt::print(stderr, "cannot connect to the baseline mosquitto\n");
      return 1;
    }
    baseline_runs.push_back(Throughput(plain_client, "bench/telemetry", messages, window, payload));
    DeviceClient device(info, "bench", key);
    if (device.Connect() != 0) {
      fmt::print(stderr, "cannot connect to the emulator\n");
      return 1;
    }
    emulator_runs.push_back(Throughput(device, topic, messages, window, payload));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double baseline = median(baseline_runs);
  const double emulated = median(emulator_runs);
  fmt::print(
      "telemetry QoS 1, one connection (median of 3): emulator {:.0f} msg/s, plain mosquitto "
      "{:.0f} msg/s, ratio {:.2f} (target >= 20000 msg/s)\n",
      emulated, baseline, emulated / baseline);

  // Baseline latency: an MQTT round trip through plain mosquitto (publish to self, QoS 0).
  std::vector<double> echo;
  {
    DeviceClient client(plain_info, "echo", "", anonymous);
    if (client.Connect() == 0 && client.Subscribe("bench/echo", 0) == 0) {
      for (int i = 0; i < samples; ++i) {
        const std::string tag = std::to_string(i);
        const auto t0 = Clock::now();
        client.PublishAsync("bench/echo", tag, 0);
        if (client.WaitMessage([&](auto& m) { return m.payload == tag; }, 2s))
          echo.push_back(Ms(Clock::now() - t0));
      }
    }
  }

  DeviceClient twin_device(info, "bench-rt", service.CreateDevice("bench-rt"));
  twin_device.Connect();
  twin_device.Subscribe("$iothub/twin/res/#", 0);
  twin_device.Subscribe("$iothub/twin/PATCH/properties/desired/#", 0);
  twin_device.Subscribe("$iothub/methods/POST/#", 0);
  twin_device.Subscribe("devices/bench-rt/messages/devicebound/#", 1);

  std::vector<double> twin_get, desired, c2d, method_total, method_to_device;
  for (int i = 0; i < samples; ++i) {
    const std::string rid = "g" + std::to_string(i);
    const auto t0 = Clock::now();
    twin_device.PublishAsync("$iothub/twin/GET/?$rid=" + rid, "", 0);
    if (twin_device.WaitMessage([&](auto& m) { return m.topic.ends_with("$rid=" + rid); }, 2s)) {
      twin_get.push_back(Ms(Clock::now() - t0));
    }
  }
  for (int i = 0; i < samples; ++i) {
    const auto t0 = Clock::now();
    service.Request("PATCH", "/twins/bench-rt", Json{{"properties", {{"desired", {{"n", i}}}}}});
    if (twin_device.WaitMessage(
            [&](auto& m) { return m.topic.find("desired/?$version=") != std::string::npos; }, 2s)) {
      desired.push_back(Ms(Clock::now() - t0));
    }
  }
  for (int i = 0; i < samples; ++i) {
    const std::string body = "c" + std::to_string(i);
    const auto t0 = Clock::now();
    service.Request("POST", "/emulator/devices/bench-rt/messages", Json{{"body", body}});
    if (twin_device.WaitMessage([&](auto& m) { return m.payload == body; }, 2s))
      c2d.push_back(Ms(Clock::now() - t0));
  }
  std::atomic<bool> stop{false};
  std::atomic<Clock::rep> request_seen{0};
  std::thread responder([&] {
    while (!stop) {
      auto req = twin_device.WaitMessage(
          [](auto& m) { return m.topic.starts_with("$iothub/methods/POST/"); }, 100ms);
      if (!req) continue;
      request_seen = Clock::now().time_since_epoch().count();
      twin_device.PublishAsync(
          "$iothub/methods/res/200/?$rid=" + req->topic.substr(req->topic.find("$rid=") + 5), "{}",
          0);
    }
  });
  for (int i = 0; i < samples; ++i) {
    const auto t0 = Clock::now();
    auto reply = service.Request("POST", "/twins/bench-rt/methods",
                                 Json{{"methodName", "ping"}, {"responseTimeoutInSeconds", 5}});
    if (reply.status == 200) {
      method_total.push_back(Ms(Clock::now() - t0));
      method_to_device.push_back(Ms(Clock::time_point(Clock::duration(request_seen.load())) - t0));
    }
  }
  stop = true;
  responder.join();

  auto print = [](const char* what, const std::vector<double>& v, const char* note = "") {
    const auto p = Summarise(v);
    fmt::print("{:<44} p50 {:7.3f} ms  p99 {:7.3f} ms  (n={}){}\n", what, p.p50, p.p99, v.size(),
               note);
  };
  print("baseline: MQTT echo via plain mosquitto", echo);
  print("twin GET round trip (device)", twin_get);
  print("desired PATCH (HTTPS) -> device receives", desired, "  target p50 <= 5 ms");
  print("C2D send (HTTPS) -> device receives", c2d, "  target p50 <= 5 ms");
  print("method invoke (HTTPS) -> device receives", method_to_device, "  target p50 <= 5 ms");
  print("method invoke round trip (HTTPS)", method_total);
  const auto base = Summarise(echo).p50;
  if (base > 0) {
    fmt::print(
        "ratios to the MQTT echo baseline (p50): twin GET {:.1f}x, desired {:.1f}x, C2D {:.1f}x, "
        "method to device {:.1f}x\n",
        Summarise(twin_get).p50 / base, Summarise(desired).p50 / base, Summarise(c2d).p50 / base,
        Summarise(method_to_device).p50 / base);
  }
  return 0;
}
