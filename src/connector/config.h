// The connector's configuration (docs/configuration.md): a TOML file, command-line values and
// two environment variables, parsed once into a plain struct with defaults and validated with
// messages that name the source (file and line, or the flag), the key and what was expected.
// Unknown keys are errors with a "did you mean". Thread-safe (pure functions, and one file
// read).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "azure/tier.h"
#include "common/result.h"

namespace iothub::connector {

enum class Mode { kPublish, kPublishCommand };
enum class Layout { kGateway };
enum class Priority { kHigh, kNormal, kLow };
enum class SendAs { kTelemetry, kTwin, kBoth, kNone };

// The names the file gives these values, in enum order (config.cc reads them, the status and
// the logs print them).
inline constexpr std::string_view kModeNames[] = {"publish", "publish-command"};
inline constexpr std::string_view kPriorityNames[] = {"high", "normal", "low"};
inline constexpr std::string_view kSendNames[] = {"telemetry", "twin", "both", "none"};
inline std::string_view ToString(Mode mode) { return kModeNames[static_cast<int>(mode)]; }
inline std::string_view ToString(Priority p) { return kPriorityNames[static_cast<int>(p)]; }
inline std::string_view ToString(SendAs send) { return kSendNames[static_cast<int>(send)]; }

// A change smaller than this is not sent: a fraction of the last sent value (`5 %`) or an
// absolute amount, with the unit it is measured in (`0.2 °C`, `10 W`, or none).
struct Deadband {
  bool percent = false;
  double amount = 0;
  std::string unit;
};

// Per-item behaviour for the items `match` selects (the patterns of openhab.items). Unset
// fields leave what earlier rules (or the defaults) said.
struct ItemRule {
  std::string match;
  std::optional<Priority> priority;
  std::optional<Deadband> deadband;
  std::optional<std::int64_t> min_interval_ms;
  std::optional<std::int64_t> heartbeat_ms;
  std::optional<SendAs> send;
};

struct Config {
  struct OpenHab {
    std::string url = "http://127.0.0.1:8080";
    std::string token;  // secret
    std::vector<std::string> items = {"*"};
    std::vector<std::string> exclude;
  } openhab;
  struct IotHub {
    std::string connection_string;  // secret; a service policy's or a device's
    Mode mode = Mode::kPublish;
    Layout layout = Layout::kGateway;
    std::string gateway_device_id = "openhab";
    std::string mqtt_endpoint;   // host:port, empty: HostName:8883
    std::string https_endpoint;  // host:port, empty: HostName:443
    std::string ca_file;
    std::map<std::string, std::string> properties;  // static application properties
  } iothub;
  struct Quota {
    azure::Tier tier = azure::Tier::kFree;
    int units = 1;
    std::int64_t daily_messages = 0;  // 0: the tier's whole quota
    double reserve = 0.1;
    std::int64_t window_seconds = 86'400;
  } quota;
  struct Store {
    std::string dir = "/var/lib/iothub-connector";
    std::int64_t max_bytes = std::int64_t{64} << 20;
  } store;
  struct Metrics {
    std::string listen = "127.0.0.1:9464";  // empty: off
  } metrics;
  // Commands from the cloud (publish-command mode; docs/configuration.md, "Commands").
  struct Commands {
    std::vector<std::string> allow;     // item patterns; empty: replicated items not read-only
    std::vector<std::string> deny;      // item patterns; deny wins over everything
    double item_rate = 1.0;             // commands a second to one item, sustained
    int item_burst = 5;                 // ... and at once
    double rate = 10.0;                 // commands a second in all, sustained
    int burst = 20;                     // ... and at once
    std::int64_t timeout_ms = 5'000;    // openHAB's answer to a command (then 504)
    std::int64_t max_wait_ms = 60'000;  // the most a method's "wait" may ask for
  } commands;
  std::vector<ItemRule> items;  // [[item]], in file order (later ones win)

  // The budget this connector may spend in a day: daily_messages, or the tier's quota.
  std::int64_t DailyBudget() const;
};

// Where the configuration comes from.
struct ConfigSources {
  std::string file;  // a TOML file; empty: defaults, flags and the environment only
  // Values given on the command line by key ("openhab.url", "quota.units"), as TOML value
  // text (`2`, `"text"`, `["a", "b"]`); they override the file.
  std::vector<std::pair<std::string, std::string>> flags;
  // IOTHUB_CONNECTION_STRING and OPENHAB_TOKEN, when set, override the file's secrets (flags
  // override both). Defaults to the process environment.
  std::function<std::optional<std::string>(const char*)> getenv;
};

struct LoadedConfig {
  Config config;
  std::vector<std::string> warnings;  // e.g. a config file readable by other users
};

// Reads, merges and validates. Errors (code "config") carry every problem found, one per
// line; secrets never appear in them.
Result<LoadedConfig> LoadConfig(const ConfigSources& sources);

// The same for TOML text, as if read from `file_name` (no file access, no environment).
Result<Config> ParseConfig(std::string_view toml, std::string_view file_name,
                           const std::vector<std::pair<std::string, std::string>>& flags = {});

// "10s", "500ms", "2m", "1h", "1d", or a plain number of seconds; nullopt when not one.
std::optional<std::int64_t> ParseDurationMs(std::string_view text);
// "64MiB", "512KiB", "1GiB", "10MB", "4096" (bytes); nullopt when not one.
std::optional<std::int64_t> ParseByteSize(std::string_view text);
// "5 %", "5%", "0.2 °C", "10 W", "0.5"; nullopt when not one.
std::optional<Deadband> ParseDeadband(std::string_view text);

}  // namespace iothub::connector
