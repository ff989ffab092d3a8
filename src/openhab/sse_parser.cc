#include "openhab/sse_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace iothub::openhab {

void SseParser::Reset() { *this = SseParser(limits_); }

void SseParser::Feed(std::string_view chunk, SseHandler& handler) {
  if (after_cr_ && !chunk.empty() && chunk.front() == '\n') chunk.remove_prefix(1);
  after_cr_ = false;
  while (!chunk.empty()) {
    const std::size_t end = chunk.find_first_of("\r\n");
    const std::string_view piece = chunk.substr(0, end);
    if (!discarding_line_) {
      if (line_.size() + piece.size() > limits_.max_line_bytes) {
        discarding_line_ = true;
        line_.clear();
        handler.OnError(MakeError("line_too_long",
                                  fmt::format("an event-stream line is over {} bytes; its event is "
                                              "skipped",
                                              limits_.max_line_bytes)));
      } else {
        line_.append(piece);
      }
    }
    if (end == std::string_view::npos) return;  // the line continues in the next chunk
    if (chunk[end] == '\r') {
      if (end + 1 < chunk.size()) {
        if (chunk[end + 1] == '\n') chunk.remove_prefix(1);
      } else {
        after_cr_ = true;
      }
    }
    chunk.remove_prefix(end + 1);
    if (discarding_line_) {
      discarding_line_ = false;
      discarding_event_ = true;  // a lost line would make its event wrong
      continue;
    }
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
