// Runs a shell command line and collects what it prints, for tests of the real programs.
// Not thread-safe (popen).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace iothub::testing {

struct CommandOutput {
  int status = -1;  // the exit code; -1 when it could not run or a signal ended it
  std::string out;  // what it wrote to stdout (redirect stderr in `command` to see it too)
};

inline CommandOutput RunCommand(const std::string& command) {
  CommandOutput run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) run.out += buffer.data();
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace iothub::testing
