#include "openhab_sim/trace/schedule.h"

#include <algorithm>
#include <limits>

namespace iothub::sim {

Schedule::Schedule(Trace trace, std::vector<Series> series, ScheduleOptions options)
    : trace_(std::move(trace)),
      series_(std::move(series)),
      period_(std::max(1.0, trace_.duration() + std::max(0.0, options.loop_gap))),
      loop_(options.loop) {
  for (std::size_t i = 0; i < series_.size(); ++i) ticks_.push(Tick{0, i, 0});
  if (options.until) {
    until_ = *options.until;
  } else {
    until_ = loop_ ? std::numeric_limits<double>::infinity() : trace_.duration();
  }
}

std::optional<double> Schedule::TraceTime() const {
  if (trace_.entries.empty() || (!loop_ && pass_ > 0)) return {};
  return trace_.entries[next_entry_].t + static_cast<double>(pass_) * period_;
}

std::optional<double> Schedule::PeekTime() const {
  std::optional<double> t = TraceTime();
  if (!ticks_.empty() && (!t || ticks_.top().t < *t)) t = ticks_.top().t;
  if (!t || *t > until_) return {};
  return t;
}

std::optional<ReplayEvent> Schedule::Next() {
  const auto t = PeekTime();
  if (!t) return {};
  if (const auto trace_t = TraceTime(); trace_t && *trace_t == *t) {
    const TraceEntry& entry = trace_.entries[next_entry_];
    ReplayEvent event{*t, entry.item, entry.state};
    if (++next_entry_ == trace_.entries.size()) {
      next_entry_ = 0;
      ++pass_;
    }
    return event;
  }
  Tick tick = ticks_.top();
  ticks_.pop();
  Series& series = series_[tick.series];
  ReplayEvent event{tick.t, series.item(), series.Next(tick.t)};
  ++tick.number;
  // Multiplied, not summed, so that rounding does not drift over millions of ticks.
  tick.t = static_cast<double>(tick.number) * series.every();
  ticks_.push(tick);
  return event;
}

}  // namespace iothub::sim
