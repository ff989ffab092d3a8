// openhab-trace: makes and inspects the traces and numeric series openhab-sim replays
// (docs/openhab-sim-traces.md). The command line is a table of subcommands (trace_commands.h).
#include <CLI/CLI.hpp>

#include "openhab_sim/trace/trace_commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "openhab-trace: convert, check and preview the traces and numeric series that openhab-sim "
      "replays as openHAB item traffic (docs/openhab-sim-traces.md).\n"
      "Data goes to stdout or -o files; progress, summaries and errors to stderr.\n"
      "Exit status: 0 done, 1 failed (bad input, I/O), 2 usage."};
  app.require_subcommand(1);
  int exit_code = 0;
  iothub::sim::AddConvertCommand(app, exit_code);
  iothub::sim::AddCheckCommand(app, exit_code);
  iothub::sim::AddSeriesCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);  // prints help, or the error and a hint
    return status == 0 ? 0 : 2;
  }
  return exit_code;
}
