#include "openhab/sse_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace iothub::openhab {

void SseParser::Reset() { *this = SseParser(limits_); }

void SseParser::Feed(std::string_view chunk, SseHandler& handler) {
  constexpr std::size_t kNone = std::string_view::npos;
  if (after_cr_ && !chunk.empty() && chunk.front() == '\n') chunk.remove_prefix(1);
  after_cr_ = false;
  // Line ends are found with two memchr scans, LF then CR before it, not with find_first_of
  // (a memchr of the two-byte set per byte). The next LF is remembered while CRs end lines
  // before it, so that a CR-only stream costs no rescans.
  std::size_t lf = 0;  // the next LF in `chunk` (kNone: none left), valid while `lf_known`
  bool lf_known = false;
  std::size_t consumed = 0;  // bytes removed from the front of `chunk` since `lf` was found
  while (!chunk.empty()) {
    if (!lf_known) {
      lf = chunk.find('\n');
      lf_known = true;
      consumed = 0;
    }
    const std::size_t next_lf = lf == kNone ? kNone : lf - consumed;
    const std::size_t cr = chunk.substr(0, next_lf).find('\r');
    const std::size_t end = cr != kNone ? cr : next_lf;
    const std::string_view piece = chunk.substr(0, end);
    // A line that lies whole in this chunk is read where it is, without a copy.
    bool in_place = false;
    if (!discarding_line_) {
      if (line_.size() + piece.size() > limits_.max_line_bytes) {
        discarding_line_ = true;
        line_.clear();
        handler.OnError(MakeError("line_too_long",
                                  fmt::format("an event-stream line is over {} bytes; its event is "
                                              "skipped",
                                              limits_.max_line_bytes)));
      } else if (end != kNone && line_.empty()) {
        in_place = true;
      } else {
        line_.append(piece);
      }
    }
    if (end == kNone) return;  // the line continues in the next chunk
    std::size_t skip = end + 1;
    if (chunk[end] == '\r') {
      if (end + 1 < chunk.size()) {
        if (chunk[end + 1] == '\n') ++skip;
      } else {
        after_cr_ = true;
      }
    }
    chunk.remove_prefix(skip);
    consumed += skip;
    if (lf != kNone && consumed > lf) lf_known = false;  // the remembered LF is behind us
    if (discarding_line_) {
      discarding_line_ = false;
      discarding_event_ = true;  // a lost line would make its event wrong
      continue;
    }
    if (in_place) {
      Line(piece, handler);  // `piece` views the caller's chunk, which outlives the call
      continue;
    }
    // Moved out: the handler may Reset() this parser while the line is being read.
    std::string line = std::move(line_);
    line_.clear();
    Line(line, handler);
  }
}

void SseParser::Line(std::string_view line, SseHandler& handler) {
  if (at_start_) {
    at_start_ = false;
    if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
  }
  if (line.empty()) {
    Dispatch(handler);
    return;
  }
  if (line.front() == ':') {
    handler.OnComment(line.substr(1));
    return;
  }
  const std::size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  std::string_view value =
      colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (discarding_event_) return;
    if (data_.size() + value.size() + 1 > limits_.max_event_bytes) {
      discarding_event_ = true;
      data_.clear();
      handler.OnError(MakeError(
          "event_too_large",
          fmt::format("an event is over {} bytes; it is skipped", limits_.max_event_bytes)));
      return;
    }
    if (data_.empty()) data_.reserve(value.size() + 1);  // one allocation, not two
    data_.append(value);
    data_.push_back('\n');
    has_data_ = true;
  } else if (field == "event") {
    event_type_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
  } else if (field == "retry") {
    if (!value.empty() && value.size() < 18 &&
        std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      retry_ms_ = std::stoll(std::string(value));
    }
  }
  // Other fields are ignored, as the specification says.
}

void SseParser::Dispatch(SseHandler& handler) {
  const bool skip = discarding_event_ || !has_data_;
  discarding_event_ = false;
  if (skip) {
    data_.clear();
    event_type_.clear();
    has_data_ = false;
    return;
  }
  SseEvent event;
  data_.pop_back();  // the '\n' after the last data line
  event.data = std::move(data_);
  if (!event_type_.empty()) event.event = std::move(event_type_);
  event.id = last_id_;
  event.retry_ms = retry_ms_;
  data_.clear();
  event_type_.clear();
  has_data_ = false;
  handler.OnEvent(std::move(event));
}

}  // namespace iothub::openhab
