// Host-name resolution off the loop thread: getaddrinfo blocks for as long as DNS takes
// (seconds, or much longer with a dead resolver), which an event loop must never do. The seam
// has a real implementation on a worker thread and fakes in tests.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/event_loop.h"
#include "common/liveness.h"
#include "common/result.h"

namespace iothub {

class Resolver {
 public:
  using Done = std::function<void(Result<std::vector<std::string>>)>;
  virtual ~Resolver() = default;
  // The TCP addresses of `host` as numeric text ("127.0.0.1", "::1"), in getaddrinfo's order.
  // `done` runs on the loop thread, never inside the call; an error ("resolve") names the
  // host. Loop thread only.
  virtual void Resolve(const std::string& host, Done done) = 0;
};

// True for an IPv4 or IPv6 address literal, which needs no resolution.
bool IsNumericHost(const std::string& host);

// getaddrinfo on one worker thread this object owns, lookups one at a time in order. Loop
// thread only; destroy it on the loop thread, before the loop. Destruction drops the queued
// lookups and no `done` runs after it starts, but it waits for a lookup in progress (getaddrinfo
// cannot be interrupted): at most the system resolver's own timeout, at shutdown.
class ThreadResolver final : public Resolver {
 public:
  explicit ThreadResolver(EventLoop& loop);
  ~ThreadResolver() override;
  ThreadResolver(const ThreadResolver&) = delete;
  ThreadResolver& operator=(const ThreadResolver&) = delete;

  void Resolve(const std::string& host, Done done) override;

 private:
  struct Lookup {
    std::string host;
    Done done;
  };
  void WorkerMain();

  EventLoop& loop_;
  Liveness liveness_;
  const Liveness::Watch watch_ = liveness_.watch();  // copied by the worker into completions
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Lookup> queue_;  // guarded by mutex_
  bool stopping_ = false;     // guarded by mutex_
  std::thread worker_;        // started last, joined by the destructor
};

}  // namespace iothub
