// Settings the launcher hands to the broker plugin (as plugin_opt_* lines of the generated
// mosquitto.conf), and the hub's shared access policies file in the state dir. Thread-safe
// (pure functions and file I/O).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "emulator/hub.h"
#include "emulator/quota.h"

namespace iothub::emulator {

struct PluginOptions {
  std::string state_dir;
  std::string host_name = "localhost";
  int https_port = 0;
  std::string bind_address = "0.0.0.0";
  std::string cert_file;
  std::string key_file;
  Tier tier = Tier::kS1;
  int units = 1;
  QuotaTwinAnswer quota_twin_answer = QuotaTwinAnswer::kClose;
  std::string internal_socket;
  std::string internal_secret;
  int control_fd = -1;
  std::size_t message_capacity = 100'000;
  std::int64_t clock_offset_ms = 0;
  std::int64_t quota_day = -1;
  std::int64_t quota_used = 0;
  std::vector<SharedAccessPolicy> policies;
};

// Parses the plugin_opt_* map (keys without the prefix) and loads the policies file.
Result<PluginOptions> ParsePluginOptions(const std::map<std::string, std::string>& raw);

// `<state_dir>/policies.json`: created with fresh keys on first use (mode 0600, written
// atomically), read afterwards. Format: docs/emulator-state.md.
Result<std::vector<SharedAccessPolicy>> LoadOrCreatePolicies(const std::string& state_dir);

// Writes `content` to `path` atomically: temp file, fsync, rename, so a crash leaves either
// the old or the new file, never half of one.

}  // namespace iothub::emulator
