#include "common/signals.h"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <initializer_list>

namespace iothub {
namespace {

int BlockSignals(std::initializer_list<int> which) {
  sigset_t signals;
  sigemptyset(&signals);
  for (const int s : which) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
}

}  // namespace

int BlockTerminationSignals() { return BlockSignals({SIGINT, SIGTERM}); }

int BlockDaemonSignals() { return BlockSignals({SIGINT, SIGTERM, SIGHUP}); }

int ReadSignal(int signal_fd) {
  signalfd_siginfo info{};
  if (::read(signal_fd, &info, sizeof(info)) != static_cast<ssize_t>(sizeof(info))) return 0;
  return static_cast<int>(info.ssi_signo);
}

}  // namespace iothub
