// The subcommands of iothub-connector. Each registers itself on the CLI11 app and runs in
// its callback, returning the process exit status through `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace iothub::connector {

// `run`: the daemon (docs/configuration.md).
void AddRunCommand(CLI::App& app, int& exit_code);

// `check`: validates the configuration and reaches openHAB and the hub without sending
// anything billable.
void AddCheckCommand(CLI::App& app, int& exit_code);

// `sas-token`: prints a SAS token (shared/reference/azure-iothub.md §2).
void AddSasTokenCommand(CLI::App& app, int& exit_code);

// `inspect`: prints openHAB's items as the connector understands them, then follows changes
// (shared/reference/openhab.md).
void AddInspectCommand(CLI::App& app, int& exit_code);

// `status`: prints a running connector's status (GET /status on [metrics].listen) for people,
// or as JSON (docs/metrics.md).
void AddStatusCommand(CLI::App& app, int& exit_code);

}  // namespace iothub::connector
