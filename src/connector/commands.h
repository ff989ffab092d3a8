// The subcommands of iothub-connector. Each registers itself on the CLI11 app and runs in
// its callback, returning the process exit status through `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace iothub::connector {

// `sas-token`: prints a SAS token (shared/reference/azure-iothub.md §2).
void AddSasTokenCommand(CLI::App& app, int& exit_code);

// `inspect`: prints openHAB's items as the connector understands them, then follows changes
// (shared/reference/openhab.md).
void AddInspectCommand(CLI::App& app, int& exit_code);

}  // namespace iothub::connector
