// Timers ordered by due time, cancellable by id: the bookkeeping both the real PollLoop and
// the tests' ManualLoop need. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>

namespace iothub {

class TimerQueue {
 public:
  using Task = std::function<void()>;
  using Id = std::uint64_t;

  Id Add(std::int64_t due_ms, Task task) {
    const Id id = next_id_++;
    timers_.emplace(std::make_pair(due_ms, id), std::move(task));
    due_.emplace(id, due_ms);
    return id;
  }
  // Unknown or spent ids are ignored.
  void Cancel(Id id) {
    const auto it = due_.find(id);
    if (it == due_.end()) return;
    timers_.erase({it->second, id});
    due_.erase(it);
  }
  // When the earliest timer is due, if any.
  std::optional<std::int64_t> NextDue() const {
    if (timers_.empty()) return std::nullopt;
    return timers_.begin()->first.first;
  }
  // Removes and returns the earliest timer if it is due at `now_ms` (ties in Add order).
  std::optional<Task> PopDue(std::int64_t now_ms) {
    if (timers_.empty() || timers_.begin()->first.first > now_ms) return std::nullopt;
    auto node = timers_.extract(timers_.begin());
    due_.erase(node.key().second);
    return std::move(node.mapped());
  }
  std::size_t size() const { return timers_.size(); }

 private:
  Id next_id_ = 1;
  std::map<std::pair<std::int64_t, Id>, Task> timers_;  // ordered by (due, id)
  std::unordered_map<Id, std::int64_t> due_;
};

}  // namespace iothub
