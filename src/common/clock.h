// Time sources, injected so tests never sleep (STYLE.md). Implementations say whether they
// are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace iothub {

// Wall-clock time in milliseconds since the Unix epoch.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t NowMs() const = 0;
  std::int64_t NowSeconds() const { return NowMs() / 1000; }
};

// The system's real-time clock. Thread-safe.
class SystemClock final : public Clock {
 public:
  std::int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// Monotonic time (ms since an arbitrary start), unaffected by changes to the system time:
// for timeouts, throttles and tick pacing. Thread-safe.
class SteadyClock final : public Clock {
 public:
  std::int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// Another clock moved forward by an adjustable offset; the emulator's clock, which tests
// advance to cross midnight or expire tokens in seconds. Thread-safe.
class OffsetClock final : public Clock {
 public:
  explicit OffsetClock(const Clock& base) : base_(base) {}
  std::int64_t NowMs() const override { return base_.NowMs() + offset_ms_.load(); }
  void Advance(std::int64_t ms) { offset_ms_ += ms; }
  std::int64_t OffsetMs() const { return offset_ms_.load(); }

 private:
  const Clock& base_;
  std::atomic<std::int64_t> offset_ms_{0};
};

// A clock that only moves when told. Not thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t now_ms = 1'700'000'000'000) : now_ms_(now_ms) {}
  std::int64_t NowMs() const override { return now_ms_; }
  void Advance(std::int64_t ms) { now_ms_ += ms; }
  void Set(std::int64_t ms) { now_ms_ = ms; }

 private:
  std::int64_t now_ms_;
};

// ISO 8601 UTC with 7 fractional digits, as IoT Hub prints times ("2024-01-02T03:04:05.1230000Z").
std::string FormatIsoTime(std::int64_t epoch_ms);
// The same with milliseconds only, `2025-06-01T10:00:00.123Z`: what Java's
// ISO_ZONED_DATE_TIME writes for a UTC instant with millisecond precision. Any instant of the
// years 0001-9999, negative epochs included; beyond that range it is clamped.
std::string FormatIsoTimeMs(std::int64_t epoch_ms);
// The same appended to `out`, without allocating: for hot paths (message packing).
void AppendIsoTimeMs(std::string& out, std::int64_t epoch_ms);

}  // namespace iothub
