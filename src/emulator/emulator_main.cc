// iothub-emulator: a faithful local Azure IoT Hub. Parses the command line, prepares the
// state dir (TLS certificates, policies), runs mosquitto with the hub plugin as a child, and
// prints one line of JSON once the hub accepts connections. See README.md and
// docs/emulator-api.md.
#include <fmt/format.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/crypto.h"
#include "emulator/broker_process.h"
#include "emulator/certs.h"
#include "emulator/plugin_options.h"

namespace {

using iothub::Status;
using iothub::emulator::BrokerProcess;
using iothub::emulator::BrokerSettings;

volatile sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }  // handlers only set flags (STYLE.md)

std::string ExecutableDir() {
  char path[PATH_MAX] = {};
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::filesystem::path(std::string(path, static_cast<std::size_t>(n)))
                     .parent_path()
                     .string()
               : ".";
}

int Fail(const std::string& message) {
  std::cerr << "iothub-emulator: " << message << "\n";
  return 1;
}

// The last `count` lines of mosquitto's log, to explain a failed start.
std::string LogTail(const std::string& log_file, std::size_t count) {
  std::ifstream in(log_file);
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (lines.size() > count) lines.pop_front();
  }
  std::string out;
  for (const auto& line : lines) out += "\n  " + line;
  return out;
}

// Waits for the plugin's "ready <port>" line; returns the HTTPS port or an error text.
iothub::Result<int> AwaitReady(BrokerProcess& broker, const std::string& log_file) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline && !g_stop) {
    auto line = broker.ReadLine(200);
    if (line) {
      if (line->rfind("ready ", 0) == 0) return std::atoi(line->c_str() + 6);
      if (line->rfind("error ", 0) == 0) return iothub::MakeError("Broker", line->substr(6));
      continue;
    }
    if (broker.control_fd() < 0 || broker.Exited()) {
      return iothub::MakeError("Broker", "mosquitto exited during start-up; the end of " +
                                             log_file + ":" + LogTail(log_file, 6));
    }
  }
  return iothub::MakeError("Broker", "the hub did not become ready within 30 s; see " + log_file);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "iothub-emulator: a faithful local Azure IoT Hub (MQTT/TLS device API on mosquitto, HTTPS "
      "service API).\nPrints one line of JSON when ready; Ctrl-C or SIGTERM stops it."};
  BrokerSettings s;
  std::string tier = "S1";
  std::string cert, key, ca;
  app.add_option("--state-dir", s.state_dir,
                 "Directory for the registry, twins, keys, certificates and logs")
      ->required();
  app.add_option("--host-name", s.host_name,
                 "Host name of the hub (in connection strings, tokens and the certificate)")
      ->default_val("localhost");
  app.add_option("--mqtt-port", s.mqtt_port, "MQTT over TLS port for devices (0 picks a free port)")
      ->default_val(8883)
      ->check(CLI::Range(0, 65535));
  app.add_option("--https-port", s.https_port,
                 "HTTPS port of the service API (0 picks a free port)")
      ->default_val(443)
      ->check(CLI::Range(0, 65535));
  app.add_option("--bind", s.bind_address, "Address to listen on")->default_val("127.0.0.1");
  app.add_option("--tier", tier,
                 "Pricing tier: free, B1, B2, B3, S1, S2 or S3 (sets quota and throttles; basic "
                 "tiers have no cloud-to-device, twins or methods)")
      ->default_val("S1");
  app.add_option("--units", s.units,
                 "Number of units of the tier (free: 1; B1, B2, S1, S2: up to 200; B3, S3: up "
                 "to 10)")
      ->default_val(1);
  std::string twin_answer = "close";
  app.add_option("--quota-twin-answer", twin_answer,
                 "What a device's twin request gets once the daily quota is gone: close (no "
                 "answer, connection closed) or 403 (twin/res/403, error 403002)")
      ->default_val("close");
  app.add_option("--cert", cert, "Server certificate (PEM); default: generated into the state dir");
  app.add_option("--key", key, "Server private key (PEM), with --cert");
  app.add_option("--ca", ca, "CA certificate that signed --cert (PEM), with --cert");
  app.add_option("--message-capacity", s.message_capacity,
                 "Device-to-cloud messages kept for /emulator/messages")
      ->default_val(100000);
  app.add_option("--mosquitto", s.mosquitto_path, "mosquitto binary")
      ->default_val("/usr/sbin/mosquitto");
  app.add_flag("--verbose", s.verbose, "Copy mosquitto's log to stderr");
  CLI11_PARSE(app, argc, argv);

  auto parsed_tier = iothub::emulator::ParseTier(tier);
  if (!parsed_tier) return Fail(parsed_tier.error().message);
  s.tier = *parsed_tier;
  if (iothub::Status units = iothub::emulator::CheckUnits(s.tier, s.units); !units) {
    return Fail("--units: " + units.error().message);
  }
  auto parsed_answer = iothub::emulator::ParseQuotaTwinAnswer(twin_answer);
  if (!parsed_answer) return Fail("--quota-twin-answer: " + parsed_answer.error().message);
  s.quota_twin_answer = *parsed_answer;
  if (cert.empty() != key.empty() || cert.empty() != ca.empty()) {
    return Fail("--cert, --key and --ca go together");
  }
  std::error_code ec;
  std::filesystem::create_directories(s.state_dir, ec);
  if (ec) return Fail("cannot create state dir " + s.state_dir + ": " + ec.message());
  // Keys and tokens live here: owner only.
  std::filesystem::permissions(s.state_dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  s.state_dir = std::filesystem::absolute(s.state_dir).lexically_normal().string();
  if (!s.state_dir.empty() && s.state_dir.back() == '/') s.state_dir.pop_back();

  if (cert.empty()) {
    auto files = iothub::emulator::EnsureCertificates(
        s.state_dir + "/tls", {s.host_name, "localhost"}, {"127.0.0.1", "::1"});
    if (!files) return Fail(files.error().message);
    s.ca_file = files->ca_file;
    s.cert_file = files->cert_file;
    s.key_file = files->key_file;
  } else {
    s.ca_file = std::filesystem::absolute(ca).string();
    s.cert_file = std::filesystem::absolute(cert).string();
    s.key_file = std::filesystem::absolute(key).string();
  }
  auto policies = iothub::emulator::LoadOrCreatePolicies(s.state_dir);
  if (!policies) return Fail(policies.error().message);
  std::string owner_key;
  for (const auto& p : *policies) {
    if (p.name == "iothubowner") owner_key = p.primary_key;
  }
  if (owner_key.empty()) return Fail(s.state_dir + "/policies.json has no iothubowner policy");

  if (s.mqtt_port == 0) {  // mosquitto cannot report a port it picked: pick one for it
    auto picked = iothub::emulator::PickFreePort(s.bind_address);
    if (!picked) return Fail(picked.error().message);
    s.mqtt_port = *picked;
  }
  s.internal_socket = s.state_dir + "/internal.sock";
  if (s.internal_socket.size() >= 100) {  // sun_path holds 108 bytes
    s.internal_socket =
        "/tmp/iothub-emulator-" + iothub::HexEncode(iothub::RandomBytes(8)) + ".sock";
  }
  s.internal_secret = iothub::HexEncode(iothub::RandomBytes(24));
  s.plugin_path = ExecutableDir() + "/iothub-emulator-plugin.so";
  if (const char* env = std::getenv("IOTHUB_MOSQUITTO")) s.mosquitto_path = env;
  if (::access(s.mosquitto_path.c_str(), X_OK) != 0) {
    return Fail("mosquitto not found at " + s.mosquitto_path +
                " (apt-get install mosquitto, or --mosquitto PATH)");
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  const std::string log_file = s.state_dir + "/mosquitto.log";
  BrokerProcess broker;
  if (Status started = broker.Start(s); !started) return Fail(started.error().message);
  auto https = AwaitReady(broker, log_file);
  if (!https) {
    broker.Stop();
    return Fail(https.error().message);
  }
  s.https_port = *https;  // fixed from now on, also across broker restarts

  const nlohmann::json ready = {
      {"ready", true},
      {"host_name", s.host_name},
      {"mqtt_port", s.mqtt_port},
      {"https_port", s.https_port},
      {"ca_file", s.ca_file},
      {"state_dir", s.state_dir},
      {"pid", ::getpid()},
      {"service_connection_string",
       "HostName=" + s.host_name +
           ";SharedAccessKeyName=iothubowner;SharedAccessKey=" + owner_key}};
  std::cout << ready.dump() << std::endl;

  // State the plugin hands over for its successor after a restart.
  auto remember = [&s](const std::string& line) {
    if (line.rfind("clock ", 0) == 0) s.clock_offset_ms = std::atoll(line.c_str() + 6);
    if (line.rfind("quota ", 0) == 0) s.quota = line.substr(6);
  };
  while (!g_stop) {
    auto line = broker.ReadLine(500);
    if (line && line->rfind("restart ", 0) == 0) {
      const int seconds = std::atoi(line->c_str() + 8);
      std::cerr << "iothub-emulator: fault injected: broker down for " << seconds << " s\n";
      broker.Stop();
      while (auto last = broker.ReadLine(0)) remember(*last);  // e.g. its final quota count
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
      while (!g_stop && std::chrono::steady_clock::now() < until) ::poll(nullptr, 0, 50);
      if (g_stop) break;
      if (Status restarted = broker.Start(s); !restarted) return Fail(restarted.error().message);
      if (auto again = AwaitReady(broker, log_file); !again) return Fail(again.error().message);
      std::cerr << "iothub-emulator: broker back up\n";
    } else if (line) {
      remember(*line);
    } else if (broker.control_fd() < 0 || broker.Exited()) {
      if (g_stop) break;
      return Fail("mosquitto stopped unexpectedly; see " + log_file);
    }
  }
  broker.Stop();
  return 0;
}
