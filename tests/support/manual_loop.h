// A fake EventLoop for unit tests: time moves only when the test says so, posted tasks run
// when the test drains them, and descriptors are not supported. Not thread-safe.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <unordered_map>
#include <utility>

#include "common/event_loop.h"

namespace iothub::testing {

class ManualLoop final : public EventLoop {
 public:
  std::int64_t NowMs() const override { return now_ms_; }
  TimerId RunAfter(std::int64_t delay_ms, Task task) override {
    const TimerId id = next_id_++;
    const std::int64_t due = now_ms_ + (delay_ms < 0 ? 0 : delay_ms);
    timers_.emplace(std::make_pair(due, id), std::move(task));
    due_.emplace(id, due);
    return id;
  }
  void Cancel(TimerId id) override {
    const auto it = due_.find(id);
    if (it == due_.end()) return;
    timers_.erase({it->second, id});
    due_.erase(it);
  }
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
      if (!timers_.empty() && timers_.begin()->first.first <= now_ms_) {
        auto node = timers_.extract(timers_.begin());
        due_.erase(node.key().second);
        node.mapped()();
        continue;
      }
      return;
    }
  }
  // Moves time forward by `ms`, running every timer on the way in due order.
  void Advance(std::int64_t ms) {
    const std::int64_t target = now_ms_ + ms;
    RunReady();
    while (!timers_.empty() && timers_.begin()->first.first <= target) {
      now_ms_ = timers_.begin()->first.first;
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
  TimerId next_id_ = 1;
  std::map<std::pair<std::int64_t, TimerId>, Task> timers_;
  std::unordered_map<TimerId, std::int64_t> due_;
  std::deque<Task> posted_;
};

}  // namespace iothub::testing
