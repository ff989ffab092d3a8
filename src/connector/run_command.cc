// `iothub-connector run`: the daemon in the foreground (issue 10 "Running it"). Logs go to
// stderr; one line of JSON on stdout says it is up ({"ready":true,"metrics":"HOST:PORT",...}),
// for scripts and tests. SIGTERM and SIGINT send what the budget allows and exit 0 (a second
// one exits at once); SIGHUP reloads the item selection and per-item settings.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/event_loop.h"
#include "common/json_depth.h"
#include "common/signals.h"
#include "connector/command_config.h"
#include "connector/commands.h"
#include "connector/connector.h"
#include "connector/log.h"

namespace iothub::connector {
namespace {

struct RunOptions {
  ConfigFlags config;
  std::string log_level = "info";
  std::int64_t quota_probe_s = 1'800;
};

LogLevel ParseLevel(const std::string& text) {
  if (text == "debug") return LogLevel::kDebug;
  if (text == "warn") return LogLevel::kWarning;
  if (text == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

int Run(const RunOptions& options) {
  SystemClock wall;
  Log log(wall, ParseLevel(options.log_level));
  auto sources = ToSources(options.config);
  if (!sources) {
    std::cerr << "iothub-connector: " << sources.error().message << "\n";
    return 2;
  }
  auto loaded = LoadConfig(*sources);
  if (!loaded) {
    std::cerr << "iothub-connector: configuration errors:\n" << loaded.error().message << "\n";
    return 2;
  }
  const int signal_fd = BlockDaemonSignals();  // before any thread starts
  // One malloc arena for all threads: the helper threads (HTTP, event stream, resolver,
  // metrics) allocate little and rarely, and an arena each kept a few hundred KB resident
  // for nothing (bench/connector_bench: 1 MB less with 1,000 items). The loop thread does the
  // work, so there is no contention to speak of.
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 32 * 1024);
  PollLoop loop;
  int exit_code = 0;
  ConnectorOptions connector_options;
  connector_options.config_file = options.config.file;
  connector_options.warnings = loaded->warnings;
  connector_options.quota_probe_ms = options.quota_probe_s * 1'000;
  auto connector = Connector::Create(loop, wall, log, loaded->config, connector_options,
                                     [&](const std::string& message) {
                                       log.Error("connector", "{}", message);
                                       exit_code = 1;
                                       loop.Stop();
                                     });
  if (!connector) {
    std::cerr << "iothub-connector: " << log.Scrub(connector.error().message) << "\n";
    return 2;
  }
  if (auto started = (*connector)->Start(); !started) {
    log.Error("connector", "cannot start: {}", started.error().message);
    return 1;
  }
  bool stopping = false;
  if (signal_fd >= 0) {
    loop.Watch(signal_fd, true, false, [&](bool, bool) {
      for (int signo = ReadSignal(signal_fd); signo != 0; signo = ReadSignal(signal_fd)) {
        if (signo == SIGHUP) {
          auto reloaded = LoadConfig(*sources);
          if (!reloaded) {
            log.Error("config", "SIGHUP: the file has errors, the running settings stay:\n{}",
                      reloaded.error().message);
          } else {
            log.Info("config", "SIGHUP: reloading the item selection and settings");
            (*connector)->Reload(reloaded->config);
          }
          continue;
        }
        if (stopping) {
          log.Warn("connector", "second signal: stopping at once");
          loop.Stop();
          continue;
        }
        stopping = true;
        (*connector)->Shutdown([&loop] { loop.Stop(); });
      }
    });
  }
  const nlohmann::json ready = {{"ready", true},
                                {"pid", ::getpid()},
                                {"metrics", (*connector)->metrics_address()},
                                {"device", (*connector)->plan().device_id},
                                {"hub", (*connector)->plan().host_name},
                                {"store", loaded->config.store.dir}};
  std::cout << DumpJson(ready) << std::endl;
  loop.Run();
  if (signal_fd >= 0) {
    loop.Unwatch(signal_fd);
    close(signal_fd);
  }
  connector->reset();
  return exit_code;
}

}  // namespace

void AddRunCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<RunOptions>();  // shared: outlives this function
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Replicate openHAB's items (and, with an admin token, things) to Azure IoT Hub, within the\n"
      "message budget, until SIGTERM or Ctrl-C. Settings: docs/configuration.md. Quick start\n"
      "without a file: iothub-connector run --openhab http://127.0.0.1:8080 --connection-string\n"
      "'HostName=...;DeviceId=...;SharedAccessKey=...' --store ./store");
  AddConfigFlags(*cmd, options->config);
  cmd->add_option("--log-level", options->log_level, "debug | info | warn | error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  cmd->add_option("--quota-probe", options->quota_probe_s,
                  "Seconds to wait before trying a hub whose daily message quota is exhausted\n"
                  "again (it is also tried at 00:00 UTC, when the hub's quota resets)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{86'400}))
      ->capture_default_str();
  cmd->callback([options, &exit_code] { exit_code = Run(*options); });
}

}  // namespace iothub::connector
