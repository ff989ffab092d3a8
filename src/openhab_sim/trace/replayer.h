// Plays a Schedule in (accelerated) real time on its own thread: the event at sim time `t`
// is delivered `t / speed` seconds of steady-clock time after Start(). Late events (a slow
// sink) are delivered at once, in order, so the replay catches up instead of skipping.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "common/result.h"
#include "openhab_sim/trace/schedule.h"

namespace iothub::sim {

// Thread-safe: Start, Stop, WaitUntilFinished, delivered and SimTime may be called from any
// thread, except Stop from inside the sink (it would wait for itself; there it only asks the
// replay to stop). The sink runs on the replayer's thread, one event at a time, without any
// replayer lock held: it synchronises with the rest of its program itself (the server takes
// its own mutex). After Stop returns the sink is not called again.
class Replayer {
 public:
  using Sink = std::function<void(const ReplayEvent&)>;

  // `speed`: sim seconds per real second, finite and > 0 (60: a minute a second; 3600: an
  // hour a second); an Error (code "bad_speed") otherwise.
  static Result<std::unique_ptr<Replayer>> Create(Schedule schedule, double speed, Sink sink);
  ~Replayer();  // Stop()
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;

  // Starts the thread; sim time 0 is now. Only the first call does anything.
  void Start();
  // Ends the replay promptly (wakes the thread's wait) and joins the thread. Idempotent.
  void Stop();
  // True once every event has been delivered (never for an endless loop), false if
  // `timeout` passed first or the replay was stopped before the end.
  bool WaitUntilFinished(std::chrono::milliseconds timeout);

  std::size_t delivered() const;
  // Seconds of sim time since Start(): real elapsed time * speed; 0 before Start().
  double SimTime() const;

 private:
  Replayer(Schedule schedule, double speed, Sink sink);
  void Run();

  const double speed_;
  const Sink sink_;
  Schedule schedule_;  // used by the replayer thread only, once started
  mutable std::mutex mutex_;
  std::condition_variable wake_;  // stop_ set, or finished_ set
  bool started_ = false;
  bool stop_ = false;
  bool finished_ = false;
  std::size_t delivered_ = 0;
  std::chrono::steady_clock::time_point origin_;
  std::thread thread_;
};

}  // namespace iothub::sim
