#include "common/event_loop.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace iothub {
namespace {

std::int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

PollLoop::PollLoop() : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (wake_fd_ < 0) {
    std::fprintf(stderr, "fatal: eventfd: %s\n", std::strerror(errno));
    std::abort();
  }
}

PollLoop::~PollLoop() { close(wake_fd_); }

std::int64_t PollLoop::NowMs() const { return SteadyNowMs(); }

EventLoop::TimerId PollLoop::RunAfter(std::int64_t delay_ms, Task task) {
  return timers_.Add(NowMs() + std::max<std::int64_t>(delay_ms, 0), std::move(task));
}

void PollLoop::Cancel(TimerId id) { timers_.Cancel(id); }

void PollLoop::Post(Task task) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(task));
  }
  const std::uint64_t one = 1;
  // A full counter (impossible in practice) still leaves the loop woken, so the result can
  // be ignored.
  (void)!write(wake_fd_, &one, sizeof one);
}

void PollLoop::Stop() {
  {
    std::lock_guard lock(posted_mutex_);
    stop_posted_ = true;
  }
  const std::uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

void PollLoop::Watch(int fd, bool want_read, bool want_write, FdCallback callback) {
  Watcher& w = watchers_[fd];
  w.want_read = want_read;
  w.want_write = want_write;
  w.generation = next_generation_++;
  w.callback = std::make_shared<FdCallback>(std::move(callback));
}

void PollLoop::SetInterest(int fd, bool want_read, bool want_write) {
  const auto it = watchers_.find(fd);
  if (it == watchers_.end()) return;
  it->second.want_read = want_read;
  it->second.want_write = want_write;
}

void PollLoop::Unwatch(int fd) { watchers_.erase(fd); }

void PollLoop::Run() {
  stop_requested_ = false;
  while (!stop_requested_) RunOnce(60'000);
}

bool PollLoop::RunUntil(const std::function<bool()>& done, std::int64_t timeout_ms) {
  const std::int64_t deadline = NowMs() + timeout_ms;
  stop_requested_ = false;
  while (!done()) {
    const std::int64_t left = deadline - NowMs();
    if (left <= 0 || stop_requested_) break;
    RunOnce(left);
  }
  return done();
}

void PollLoop::RunOnce(std::int64_t max_wait_ms) {
  std::int64_t wait_ms = max_wait_ms;
  if (const auto due = timers_.NextDue()) {
    wait_ms = std::min(wait_ms, std::max<std::int64_t>(0, *due - NowMs()));
  }
  std::vector<pollfd> fds;
  std::vector<std::uint64_t> generations;
  fds.reserve(watchers_.size() + 1);
  generations.reserve(watchers_.size() + 1);
  fds.push_back({wake_fd_, POLLIN, 0});
  generations.push_back(0);
  for (const auto& [fd, w] : watchers_) {
    const short events =
        static_cast<short>((w.want_read ? POLLIN : 0) | (w.want_write ? POLLOUT : 0));
    fds.push_back({fd, events, 0});
    generations.push_back(w.generation);
  }
  const int n = poll(fds.data(), fds.size(), static_cast<int>(wait_ms));
  if (n < 0 && errno != EINTR) {
    std::fprintf(stderr, "fatal: poll: %s\n", std::strerror(errno));
    std::abort();
  }
  if (n > 0) {
    if (fds[0].revents != 0) {
      std::uint64_t count = 0;
      (void)!read(wake_fd_, &count, sizeof count);
    }
    for (std::size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      // A callback may have unwatched (or replaced) this descriptor meanwhile.
      const auto it = watchers_.find(fds[i].fd);
      if (it == watchers_.end() || it->second.generation != generations[i]) continue;
      const bool readable = (fds[i].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) != 0;
      const bool writable = (fds[i].revents & POLLOUT) != 0;
      const std::shared_ptr<FdCallback> callback = it->second.callback;
      (*callback)(readable, writable);
    }
  }
  RunDueTimers();
  RunPosted();
}

void PollLoop::RunDueTimers() {
  const std::int64_t now = NowMs();
  while (auto task = timers_.PopDue(now)) (*task)();
}

void PollLoop::RunPosted() {
  std::vector<Task> tasks;
  {
    std::lock_guard lock(posted_mutex_);
    tasks.swap(posted_);
    if (stop_posted_) {
      stop_posted_ = false;
      stop_requested_ = true;
    }
  }
  for (auto& task : tasks) task();
}

}  // namespace iothub
