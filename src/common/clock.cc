#include "common/clock.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>

namespace iothub {

void AppendIsoTimeMs(std::string& out, std::int64_t epoch_ms) {
  constexpr std::int64_t kDayMs = 86'400'000;
  constexpr std::int64_t kMin = -62'135'596'800'000;  // 0001-01-01T00:00:00.000Z
  constexpr std::int64_t kMax = 253'402'300'799'999;  // 9999-12-31T23:59:59.999Z
  epoch_ms = std::clamp(epoch_ms, kMin, kMax);
  std::int64_t days = epoch_ms / kDayMs;
  std::int64_t ms = epoch_ms % kDayMs;
  if (ms < 0) {
    ms += kDayMs;
    --days;
  }
  const std::chrono::year_month_day date{std::chrono::sys_days{std::chrono::days{days}}};
  const auto put = [&out](std::int64_t value, int width) {
    std::array<char, 4> digits{};
    for (int i = width - 1; i >= 0; --i) {
      digits[static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
    out.append(digits.data(), static_cast<std::size_t>(width));
  };
  put(static_cast<int>(date.year()), 4);
  out += '-';
  put(static_cast<unsigned>(date.month()), 2);
  out += '-';
  put(static_cast<unsigned>(date.day()), 2);
  out += 'T';
  put(ms / 3'600'000, 2);
  out += ':';
  put(ms / 60'000 % 60, 2);
  out += ':';
  put(ms / 1000 % 60, 2);
  out += '.';
  put(ms % 1000, 3);
  out += 'Z';
}

std::string FormatIsoTimeMs(std::int64_t epoch_ms) {
  std::string text;
  text.reserve(24);
  AppendIsoTimeMs(text, epoch_ms);
  return text;
}

std::string FormatIsoTime(std::int64_t epoch_ms) {
  std::string text = FormatIsoTimeMs(epoch_ms);
  text.insert(text.size() - 1, "0000");  // Azure writes seven fractional digits
  return text;
}

}  // namespace iothub
