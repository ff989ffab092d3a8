// The merged, time-ordered sequence of state changes openhab-sim replays: a trace (repeated
// when looping) and the ticks of numeric series. Pure: no clock, no thread; the Replayer
// paces it (replayer.h).
#pragma once

#include <cstddef>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "openhab_sim/trace/series.h"
#include "openhab_sim/trace/trace.h"

namespace iothub::sim {

// `item` takes `state` at sim time `t` (seconds since the replay started).
struct ReplayEvent {
  double t = 0;
  std::string item;
  std::string state;
  friend bool operator==(const ReplayEvent&, const ReplayEvent&) = default;
};

struct ScheduleOptions {
  // Replay the trace again and again: pass n is shifted by n * (duration + loop_gap), and a
  // period that comes out below 1 s is 1 s. Series keep ticking across passes.
  bool loop = false;
  double loop_gap = 1;  // seconds; negative counts as 0
  // The last time delivered (inclusive). Unset: the trace's duration without `loop`, no end
  // with it.
  std::optional<double> until;
};

// Series i ticks at t = 0, every_i, 2 every_i, ... Events at the same `t` come trace first
// (in trace order), then series in the given order. Not thread-safe.
class Schedule {
 public:
  Schedule(Trace trace, std::vector<Series> series, ScheduleOptions options = {});

  // The next event and moves past it; nothing once the schedule has ended.
  std::optional<ReplayEvent> Next();
  // The time of the event Next would give; nothing once the schedule has ended.
  std::optional<double> PeekTime() const;

  const Trace& trace() const { return trace_; }
  const std::vector<Series>& series() const { return series_; }

 private:
  struct Tick {
    double t = 0;
    std::size_t series = 0;  // index into series_
    std::size_t number = 0;  // t = number * every
    // Reversed for std::priority_queue's max-heap: the earliest tick, then the lowest index.
    bool operator<(const Tick& o) const { return t != o.t ? t > o.t : series > o.series; }
  };

  std::optional<double> TraceTime() const;

  Trace trace_;
  std::vector<Series> series_;
  std::priority_queue<Tick> ticks_;  // the next tick of each series
  double period_ = 0;
  bool loop_ = false;
  double until_ = 0;
  std::size_t next_entry_ = 0;
  std::size_t pass_ = 0;
};

}  // namespace iothub::sim
