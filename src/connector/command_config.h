// The configuration flags the `run` and `check` subcommands share: `--config FILE`, the
// quick-start flags (`--openhab URL`, `--connection-string CS`, ...) and `--set key=value` for
// any other key of docs/configuration.md. Thread-safe (plain data and pure functions).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "connector/config.h"

namespace iothub::connector {

struct ConfigFlags {
  std::string file;
  std::string openhab_url;
  std::string openhab_token;
  std::string connection_string;
  std::string mode;
  std::string store_dir;
  std::string metrics_listen;
  bool metrics_given = false;  // --metrics "" turns metrics off, so "" is a value
  std::string ca_file;
  std::vector<std::string> sets;  // section.key=value
};

// Registers the flags on `command`; `flags` must outlive the parse.
void AddConfigFlags(CLI::App& command, ConfigFlags& flags);

// The sources LoadConfig reads: the file, the flags as config keys, the process environment.
// Errors (code "config") for a --set without '='.
Result<ConfigSources> ToSources(const ConfigFlags& flags);

}  // namespace iothub::connector
