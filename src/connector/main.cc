// iothub-connector: openHAB to Azure IoT Hub. The command line is a table of subcommands;
// each lives in its own file (commands.h).
#include <CLI/CLI.hpp>

#include "connector/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"iothub-connector: replicate openHAB items to Azure IoT Hub and command them back."};
  app.require_subcommand(1);
  int exit_code = 0;
  iothub::connector::AddRunCommand(app, exit_code);
  iothub::connector::AddCheckCommand(app, exit_code);
  iothub::connector::AddSasTokenCommand(app, exit_code);
  iothub::connector::AddInspectCommand(app, exit_code);
  iothub::connector::AddStatusCommand(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
