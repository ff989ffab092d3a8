// A fake EventLoop for unit tests: time moves only when the test says so, posted tasks run
// when the test drains them, and descriptors are not supported. Not thread-safe.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <utility>

#include "common/event_loop.h"
#include "common/timer_queue.h"

namespace iothub::testing {

class ManualLoop final : public EventLoop {
 public:
  std::int64_t NowMs() const override { return now_ms_; }
  TimerId RunAfter(std::int64_t delay_ms, Task task) override {
    return timers_.Add(now_ms_ + (delay_ms < 0 ? 0 : delay_ms), std::move(task));
  }
  void Cancel(TimerId id) override { timers_.Cancel(id); }
  void Post(Task task) override { posted_.push_back(std::move(task)); }
  void Watch(int, bool, bool, FdCallback) override { Unsupported(); }
  void SetInterest(int, bool, bool) override { Unsupported(); }
  void Unwatch(int) override { Unsupported(); }

  // Runs posted tasks and timers due now, until none is left.
  void RunReady() {
    for (;;) {
      if (!posted_.empty()) {
        Task task = std::move(posted_.front());
        posted_.pop_front();
        task();
        continue;
      }
      if (auto task = timers_.PopDue(now_ms_)) {
        (*task)();
        continue;
      }
      return;
    }
  }
  // Moves time forward by `ms`, running every timer on the way in due order.
  void Advance(std::int64_t ms) {
    const std::int64_t target = now_ms_ + ms;
    RunReady();
    while (timers_.NextDue() && *timers_.NextDue() <= target) {
      now_ms_ = *timers_.NextDue();
      RunReady();
    }
    now_ms_ = target;
    RunReady();
  }
  std::size_t pending_timers() const { return timers_.size(); }

 private:
  [[noreturn]] static void Unsupported() {
    std::fprintf(stderr, "ManualLoop does not watch descriptors\n");
    std::abort();
  }

  std::int64_t now_ms_ = 1'000'000;
  TimerQueue timers_;
  std::deque<Task> posted_;
};

}  // namespace iothub::testing
