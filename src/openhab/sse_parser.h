// Server-Sent Events framing (the WHATWG "event stream interpretation"), as openHAB's
// /rest/events speaks it (shared/reference/openhab.md §3): lines end in CRLF, LF or CR (a
// CRLF may be split across chunks), ':' starts a comment, `data` lines join with '\n', a
// blank line dispatches. Input arrives in arbitrary chunks. Bounded: a line or an event over
// its limit is reported and skipped, never buffered without end. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace iothub::openhab {

struct SseEvent {
  std::string event = "message";  // the `event:` field, "message" when absent
  std::string data;               // `data:` lines joined with '\n'
  std::string id;                 // the last event id seen on the stream (openHAB sends none)
  std::optional<std::int64_t> retry_ms;
};

class SseHandler {
 public:
  virtual ~SseHandler() = default;
  virtual void OnEvent(SseEvent&& event) = 0;
  // A line or event over its limit (code "line_too_long" or "event_too_large"): skipped.
  virtual void OnError(const Error& error) = 0;
  // Any comment line (openHAB 3.x and proxies send ": keep-alive"-style comments).
  virtual void OnComment(std::string_view /*text*/) {}
};

struct SseLimits {
  std::size_t max_line_bytes = 1 << 20;   // one line
  std::size_t max_event_bytes = 4 << 20;  // the data of one event
};

class SseParser {
 public:
  explicit SseParser(SseLimits limits = {}) : limits_(limits) {}

  // Consumes a chunk; complete events go to `handler` in order.
  void Feed(std::string_view chunk, SseHandler& handler);
  // Forgets everything (a new connection starts a new stream, BOM included).
  void Reset();

 private:
  void Line(std::string_view line, SseHandler& handler);
  void Dispatch(SseHandler& handler);

  SseLimits limits_;
  std::string line_;               // the line being assembled
  bool discarding_line_ = false;   // the current line went over the limit
  bool discarding_event_ = false;  // the current event went over the limit
  bool after_cr_ = false;          // the previous chunk ended in CR: a leading LF is its pair
  bool at_start_ = true;           // a UTF-8 BOM may start the stream
  std::string bom_;                // BOM bytes seen so far at the start
  std::string event_type_;
  std::string data_;
  bool has_data_ = false;
  std::string last_id_;
  std::optional<std::int64_t> retry_ms_;
};

}  // namespace iothub::openhab
