// The subcommands of openhab-trace. Each registers itself on the CLI11 app and runs in its
// callback, returning the process exit status through `exit_code`: 0 done, 1 failed (bad
// input, I/O), 2 usage.
#pragma once

#include <CLI/CLI.hpp>

namespace iothub::sim {

// `convert LOG [-o TRACE] [--items ITEMS]`: an Ordonez sensor log to a trace and the items.
void AddConvertCommand(CLI::App& app, int& exit_code);

// `check TRACE [--items ITEMS]`: validates a trace and prints a summary.
void AddCheckCommand(CLI::App& app, int& exit_code);

// `series SPEC --duration S`: prints the states numeric series generate, as a trace.
void AddSeriesCommand(CLI::App& app, int& exit_code);

}  // namespace iothub::sim
