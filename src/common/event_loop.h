// The event loop every network component runs on (STYLE.md §3): one thread owns the loop and
// all state reached from its callbacks; other threads only Post() work to it. Timers replace
// sleeps, so tests drive time with a fake loop instead of waiting.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/timer_queue.h"

namespace iothub {

class EventLoop {
 public:
  using Task = std::function<void()>;
  using TimerId = std::uint64_t;
  // Called with what the descriptor is ready for (an error or hang-up counts as readable).
  using FdCallback = std::function<void(bool readable, bool writable)>;

  virtual ~EventLoop() = default;

  // Monotonic milliseconds of this loop's clock (the fake loop's clock moves only when told).
  virtual std::int64_t NowMs() const = 0;
  // Runs `task` on the loop thread once, `delay_ms` from now. Loop thread only.
  virtual TimerId RunAfter(std::int64_t delay_ms, Task task) = 0;
  // Cancels a timer that has not run yet; unknown or spent ids are ignored. Loop thread only.
  virtual void Cancel(TimerId id) = 0;
  // Runs `task` on the loop thread soon, in posting order. Thread-safe.
  virtual void Post(Task task) = 0;
  // Watches a descriptor (replacing an earlier watch of it). Loop thread only; Unwatch before
  // the descriptor is closed.
  virtual void Watch(int fd, bool want_read, bool want_write, FdCallback callback) = 0;
  virtual void SetInterest(int fd, bool want_read, bool want_write) = 0;
  virtual void Unwatch(int fd) = 0;
};

// The real loop: poll(2) over the watched descriptors, timers on the steady clock, and an
// eventfd so Post() wakes it. Post() and Stop() are thread-safe; the rest is loop-thread only.
class PollLoop final : public EventLoop {
 public:
  PollLoop();
  ~PollLoop() override;
  PollLoop(const PollLoop&) = delete;
  PollLoop& operator=(const PollLoop&) = delete;

  std::int64_t NowMs() const override;
  TimerId RunAfter(std::int64_t delay_ms, Task task) override;
  void Cancel(TimerId id) override;
  void Post(Task task) override;
  void Watch(int fd, bool want_read, bool want_write, FdCallback callback) override;
  void SetInterest(int fd, bool want_read, bool want_write) override;
  void Unwatch(int fd) override;

  // Runs until Stop(). Call from the thread that owns the loop.
  void Run();
  // Runs until `done()` is true or `timeout_ms` passes; returns done(). For tests and tools
  // that drive the loop from their own thread.
  bool RunUntil(const std::function<bool()>& done, std::int64_t timeout_ms);
  // Makes Run() return after the current iteration. Thread-safe.
  void Stop();

 private:
  struct Watcher {
    bool want_read = false;
    bool want_write = false;
    std::uint64_t generation = 0;
    std::shared_ptr<FdCallback> callback;  // shared: kept alive while it runs, even if unwatched
  };

  void RunOnce(std::int64_t max_wait_ms);
  void RunDueTimers();
  void RunPosted();

  int wake_fd_ = -1;
  TimerQueue timers_;
  std::unordered_map<int, Watcher> watchers_;
  std::uint64_t next_generation_ = 1;
  bool stop_requested_ = false;

  std::mutex posted_mutex_;
  std::vector<Task> posted_;  // guarded by posted_mutex_
  bool stop_posted_ = false;  // guarded by posted_mutex_
};

}  // namespace iothub
