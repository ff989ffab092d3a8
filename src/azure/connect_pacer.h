// Paces connection attempts across many device sessions so a process with hundreds of them
// never storms the hub (which throttles new connections, reference §5). Grants are FIFO at a
// fixed rate. Not thread-safe: loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <utility>

#include "common/event_loop.h"

namespace iothub::azure {

class ConnectPacer {
 public:
  using Ticket = std::uint64_t;

  // `per_second` attempts at most (> 0).
  ConnectPacer(EventLoop& loop, double per_second = 50.0);
  ~ConnectPacer();
  ConnectPacer(const ConnectPacer&) = delete;
  ConnectPacer& operator=(const ConnectPacer&) = delete;

  // Calls `grant` on the loop when this request's turn comes (never synchronously).
  Ticket Request(std::function<void()> grant);
  // Withdraws a request not yet granted; unknown tickets are ignored.
  void Cancel(Ticket ticket);
  std::size_t waiting() const { return queue_.size(); }

 private:
  void Arm();
  void GrantNext();

  EventLoop& loop_;
  double interval_ms_;
  double next_free_ms_ = 0;  // loop time of the next free slot
  Ticket next_ticket_ = 1;
  std::deque<std::pair<Ticket, std::function<void()>>> queue_;
  EventLoop::TimerId timer_ = 0;
};

}  // namespace iothub::azure
