#include "common/clock.h"

#include <fmt/format.h>

#include <ctime>

namespace iothub {

std::string FormatIsoTimeMs(std::int64_t epoch_ms) {
  const std::time_t seconds = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, epoch_ms % 1000);
}

std::string FormatIsoTime(std::int64_t epoch_ms) {
  std::string text = FormatIsoTimeMs(epoch_ms);
  text.insert(text.size() - 1, "0000");  // Azure writes seven fractional digits
  return text;
}

}  // namespace iothub
