// Runs Debian's mosquitto as a child process with the hub plugin loaded: writes its
// configuration, starts it, and reads the plugin's control lines ("ready <https port>",
// "error <text>", "restart <seconds>", "clock <offset ms>") from a pipe. Not thread-safe;
// used by the launcher's main thread only.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "common/result.h"
#include "emulator/quota.h"

namespace iothub::emulator {

struct BrokerSettings {
  std::string mosquitto_path = "/usr/sbin/mosquitto";
  std::string plugin_path;
  std::string state_dir;
  std::string host_name;
  std::string bind_address;
  int mqtt_port = 0;
  int https_port = 0;
  std::string internal_socket;  // Unix socket of the doorbell listener
  std::string internal_secret;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  Tier tier = Tier::kS1;
  int units = 1;
  QuotaTwinAnswer quota_twin_answer = QuotaTwinAnswer::kClose;
  std::size_t message_capacity = 100'000;
  std::int64_t clock_offset_ms = 0;
  std::string quota;  // "<day> <used>" from the previous broker, empty at first
  bool verbose = false;
};

// The mosquitto.conf text for `settings`, with the plugin's control pipe on `control_fd`.
std::string RenderMosquittoConf(const BrokerSettings& settings, int control_fd);

// A free TCP port on `address` (bound and released; a small race is accepted).
Result<int> PickFreePort(const std::string& address);

class BrokerProcess {
 public:
  BrokerProcess() = default;
  ~BrokerProcess();
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  Status Start(const BrokerSettings& settings);
  // The next control line, or nullopt after `timeout_ms` or when the pipe closed (see
  // Exited()).
  std::optional<std::string> ReadLine(int timeout_ms);
  // Asks mosquitto to stop (SIGTERM), waits up to `grace_ms`, then kills it.
  void Stop(int grace_ms = 15'000);
  // True once the child has ended (reaps it).
  bool Exited();
  int control_fd() const { return read_fd_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int read_fd_ = -1;
  std::string buffer_;
};

}  // namespace iothub::emulator
