#include "azure/connect_pacer.h"

#include <algorithm>
#include <cmath>

namespace iothub::azure {

ConnectPacer::ConnectPacer(EventLoop& loop, double per_second)
    : loop_(loop), interval_ms_(1000.0 / std::max(per_second, 0.001)) {}

ConnectPacer::~ConnectPacer() {
  if (timer_ != 0) loop_.Cancel(timer_);
}

ConnectPacer::Ticket ConnectPacer::Request(std::function<void()> grant) {
  const Ticket ticket = next_ticket_++;
  queue_.emplace_back(ticket, std::move(grant));
  Arm();
  return ticket;
}

void ConnectPacer::Cancel(Ticket ticket) {
  std::erase_if(queue_, [ticket](const auto& entry) { return entry.first == ticket; });
  if (queue_.empty() && timer_ != 0) {
    loop_.Cancel(timer_);
    timer_ = 0;
  }
}

void ConnectPacer::Arm() {
  if (timer_ != 0 || queue_.empty()) return;
  const double now = static_cast<double>(loop_.NowMs());
  next_free_ms_ = std::max(next_free_ms_, now);
  const auto delay = static_cast<std::int64_t>(std::ceil(next_free_ms_ - now));
  timer_ = loop_.RunAfter(delay, [this] { GrantNext(); });
}

void ConnectPacer::GrantNext() {
  timer_ = 0;
  if (queue_.empty()) return;
  auto grant = std::move(queue_.front().second);
  queue_.pop_front();
  next_free_ms_ = std::max(next_free_ms_, static_cast<double>(loop_.NowMs())) + interval_ms_;
  Arm();
  grant();
}

}  // namespace iothub::azure
