#include "support/child_process.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace iothub::testing {

Result<std::unique_ptr<ChildProcess>> ChildProcess::Start(std::vector<std::string> args,
                                                          std::chrono::milliseconds timeout) {
  const std::string name = args.at(0).substr(args[0].rfind('/') + 1);
  int out[2];
  if (::pipe(out) != 0) return MakeError("Start", "pipe failed");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  auto process = std::unique_ptr<ChildProcess>(new ChildProcess());
  process->pid_ = pid;
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (line.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{out[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
      ::close(out[0]);
      return MakeError("Start", name + " did not print its ready line in time");
    }
    char buf[4096];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) {
      ::close(out[0]);
      return MakeError("Start", name + " exited before it was ready");
    }
    line.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  process->ready_ = nlohmann::json::parse(line.substr(0, line.find('\n')), nullptr, false);
  if (process->ready_.is_discarded() || !process->ready_.value("ready", false)) {
    return MakeError("Start", name + " printed an unexpected ready line: " + line);
  }
  return process;
}

int ChildProcess::Stop() {
  if (pid_ < 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 3000; ++i) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    ::usleep(10'000);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

ChildProcess::~ChildProcess() { Stop(); }

}  // namespace iothub::testing
