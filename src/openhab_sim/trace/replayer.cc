#include "openhab_sim/trace/replayer.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace iothub::sim {

Result<std::unique_ptr<Replayer>> Replayer::Create(Schedule schedule, double speed, Sink sink) {
  if (!std::isfinite(speed) || speed <= 0) {
    return MakeError("bad_speed", "speed must be a number > 0 (sim seconds per real second), not " +
                                      std::to_string(speed));
  }
  return std::unique_ptr<Replayer>(new Replayer(std::move(schedule), speed, std::move(sink)));
}

Replayer::Replayer(Schedule schedule, double speed, Sink sink)
    : speed_(speed), sink_(std::move(sink)), schedule_(std::move(schedule)) {}

Replayer::~Replayer() { Stop(); }

void Replayer::Start() {
  std::lock_guard lock(mutex_);
  if (started_ || stop_) return;
  started_ = true;
  origin_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] { Run(); });
}

void Replayer::Stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

bool Replayer::WaitUntilFinished(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, timeout, [this] { return finished_ || stop_; });
  return finished_;
}

std::size_t Replayer::delivered() const {
  std::lock_guard lock(mutex_);
  return delivered_;
}

double Replayer::SimTime() const {
  std::lock_guard lock(mutex_);
  if (!started_) return 0;
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - origin_;
  return elapsed.count() * speed_;
}

void Replayer::Run() {
  // Far beyond any replay, short of overflowing steady_clock's nanoseconds.
  constexpr double kMaxWaitSeconds = 1e9;
  std::unique_lock lock(mutex_);
  while (!stop_) {
    const auto t = schedule_.PeekTime();
    if (!t) {
      finished_ = true;
      break;
    }
    const auto due =
        origin_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(std::min(*t / speed_, kMaxWaitSeconds)));
    if (wake_.wait_until(lock, due, [this] { return stop_; })) break;
    auto event = schedule_.Next();
    lock.unlock();
    sink_(*event);
    lock.lock();
    ++delivered_;
  }
  lock.unlock();
  wake_.notify_all();
}

}  // namespace iothub::sim
