#include "connector/command_config.h"

#include <fmt/format.h>

#include <cstdlib>
#include <utility>

namespace iothub::connector {
namespace {

// A TOML basic string holding `text` exactly.
std::string TomlString(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

void AddConfigFlags(CLI::App& command, ConfigFlags& flags) {
  command.add_option("-c,--config", flags.file, "The configuration file (docs/configuration.md)")
      ->check(CLI::ExistingFile);
  command.add_option("--openhab", flags.openhab_url,
                     "openHAB's root URL (openhab.url), e.g. http://127.0.0.1:8080");
  command.add_option("--token", flags.openhab_token,
                     "An openHAB API token (openhab.token); better: OPENHAB_TOKEN in the "
                     "environment, which other users cannot read in the process list");
  command.add_option("--connection-string", flags.connection_string,
                     "The hub's connection string: a policy's or the device's "
                     "(iothub.connection_string); better: IOTHUB_CONNECTION_STRING");
  command.add_option("--mode", flags.mode, "publish | publish-command (iothub.mode)");
  command.add_option("--store", flags.store_dir,
                     "Where the outbox and the device key live (store.dir)");
  command
      .add_option_function<std::string>(
          "--metrics",
          [&flags](const std::string& value) {
            flags.metrics_listen = value;
            flags.metrics_given = true;
          },
          "host:port for Prometheus metrics and the status (metrics.listen); \"\" turns off")
      ->allow_extra_args(false);
  command.add_option(
      "--ca", flags.ca_file,
      "An extra CA (PEM) to trust for the hub, e.g. the emulator's (iothub.ca_file)");
  command.add_option("--set", flags.sets,
                     "Any other key as section.key=value, e.g. --set quota.tier=S1 --set "
                     "'openhab.items=[\"@gLights\"]' (a bare word is a string)");
}

Result<ConfigSources> ToSources(const ConfigFlags& flags) {
  ConfigSources sources;
  sources.file = flags.file;
  sources.getenv = [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
  for (const auto& set : flags.sets) {
    const std::size_t eq = set.find('=');
    if (eq == std::string::npos || eq == 0) {
      return MakeError(
          "config", fmt::format("--set {}: expected section.key=value, e.g. quota.units=2", set));
    }
    sources.flags.emplace_back(set.substr(0, eq), set.substr(eq + 1));
  }
  const auto named = [&](const char* key, const std::string& value, bool given) {
    if (given) sources.flags.emplace_back(key, TomlString(value));
  };
  named("openhab.url", flags.openhab_url, !flags.openhab_url.empty());
  named("openhab.token", flags.openhab_token, !flags.openhab_token.empty());
  named("iothub.connection_string", flags.connection_string, !flags.connection_string.empty());
  named("iothub.mode", flags.mode, !flags.mode.empty());
  named("store.dir", flags.store_dir, !flags.store_dir.empty());
  named("metrics.listen", flags.metrics_listen, flags.metrics_given);
  named("iothub.ca_file", flags.ca_file, !flags.ca_file.empty());
  return sources;
}

}  // namespace iothub::connector
