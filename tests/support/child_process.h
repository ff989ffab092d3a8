// A program under test run as a child process that announces itself with one line of JSON on
// stdout (`{"ready":true,...}`), as iothub-emulator and openhab-sim do. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace iothub::testing {

class ChildProcess {
 public:
  // Runs `args` (args[0] is the program's path) and waits up to `timeout` for the ready line.
  static Result<std::unique_ptr<ChildProcess>> Start(std::vector<std::string> args,
                                                     std::chrono::milliseconds timeout);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  const nlohmann::json& ready() const { return ready_; }
  pid_t pid() const { return pid_; }
  // SIGTERM, then SIGKILL after 30 s; returns the wait status (-1 when already stopped).
  int Stop();

 private:
  ChildProcess() = default;
  pid_t pid_ = -1;
  nlohmann::json ready_;
};

}  // namespace iothub::testing
