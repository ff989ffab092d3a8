#include "openhab/state.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <system_error>
#include <utility>

namespace iothub::openhab {
namespace {

constexpr std::string_view kBadState = "bad_state";
constexpr std::string_view kBadCommand = "bad_command";

Error BadState(std::string message) {
  return MakeError(std::string(kBadState), std::move(message));
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && IsSpace(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// The length of the valid UTF-8 sequence at s[i], or 0 if there is none (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) {
    return 1;
  }
  std::size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (s.size() - i < n) {
    return 0;
  }
  if (byte(i + 1) < lo || byte(i + 1) > hi) {
    return 0;
  }
  for (std::size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) {
      return 0;
    }
  }
  return n;
}

bool IsValidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      return false;
    }
    i += n;
  }
  return true;
}

std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out += "\xef\xbf\xbd";  // U+FFFD
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

// The text of a value inside an error message: quoted, control bytes and invalid UTF-8
// escaped (messages end up in logs and JSON), shortened.
std::string Quote(std::string_view text) {
  constexpr std::size_t kMax = 60;
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string out = "\"";
  std::size_t i = 0;
  while (i < text.size() && i < kMax) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t n = Utf8SequenceLength(text, i);
    if (n == 0 || c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  out += '"';
  if (i < text.size()) {
    out += "... (" + std::to_string(text.size()) + " bytes)";
  }
  return out;
}

// UTF-8 read as Latin-1 and encoded again turns `°` (C2 B0) into `Â°` (C3 82 C2 B0). Only
// the signs units use are repaired; anything else is left as it came.
std::string RepairUnitMojibake(std::string_view unit) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kRepairs = {{
      {"\xc3\x82\xc2\xb0", "\xc2\xb0"},  // Â° -> °
      {"\xc3\x82\xc2\xb5", "\xc2\xb5"},  // Âµ -> µ
      {"\xc3\x82\xc2\xb2", "\xc2\xb2"},  // Â² -> ²
      {"\xc3\x82\xc2\xb3", "\xc2\xb3"},  // Â³ -> ³
  }};
  std::string out;
  out.reserve(unit.size());
  while (!unit.empty()) {
    bool repaired = false;
    for (const auto& [bad, good] : kRepairs) {
      if (unit.starts_with(bad)) {
        out += good;
        unit.remove_prefix(bad.size());
        repaired = true;
        break;
      }
    }
    if (!repaired) {
      out += unit.front();
      unit.remove_prefix(1);
    }
  }
  return out;
}

// The length of the number at the start of `s`: `[+-](digits[.digits]|.digits)` and an
// exponent `e[+-]digits` if one follows (`2em` is 2 with unit `em`, as openHAB splits it).
std::size_t NumberPrefixLength(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    ++i;
  }
  std::size_t digits = 0;
  while (i < s.size() && IsDigit(s[i])) {
    ++i;
    ++digits;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && IsDigit(s[i])) {
      ++i;
      ++digits;
    }
  }
  if (digits == 0) {
    return 0;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    std::size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) {
      ++j;
    }
    if (j < s.size() && IsDigit(s[j])) {
      while (j < s.size() && IsDigit(s[j])) {
        ++j;
      }
      i = j;
    }
  }
  return i;
}

// `text` is a whole number as NumberPrefixLength accepts it.
Result<double> NumberValue(std::string_view text) {
  std::string_view digits = text;
  if (digits.starts_with('+')) {
    digits.remove_prefix(1);  // from_chars takes '-' only
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc::result_out_of_range) {
    return BadState(Quote(text) + " is out of the range of a double");
  }
  if (ec != std::errc() || end != digits.data() + digits.size() || !std::isfinite(value)) {
    return BadState(Quote(text) + " is not a number");
  }
  return value;
}

// A unit: no spaces or control bytes, valid UTF-8, not starting like a number.
bool IsPlausibleUnit(std::string_view unit) {
  if (unit.empty() || IsDigit(unit.front()) || unit.front() == '.' || unit.front() == ',' ||
      unit.front() == '+' || unit.front() == '-') {
    return false;
  }
  for (const char c : unit) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return false;
    }
  }
  return IsValidUtf8(unit);
}

// A Decimal (allow_unit false) or a Decimal or Quantity (allow_unit true).
Result<State> ParseNumber(std::string_view text, bool allow_unit) {
  const std::string_view trimmed = Trim(text);
  const std::size_t n = NumberPrefixLength(trimmed);
  if (n == 0) {
    return BadState(Quote(text) + " is not a number");
  }
  const std::string_view number_text = trimmed.substr(0, n);
  std::string_view rest = trimmed.substr(n);
  while (!rest.empty() && (IsSpace(rest.front()) || rest.starts_with("\xc2\xa0"))) {
    rest.remove_prefix(IsSpace(rest.front()) ? 1 : 2);  // a no-break space, as locales write
  }
  auto value = NumberValue(number_text);
  if (!value.ok()) {
    return value.error();
  }
  State state;
  state.kind = StateKind::kDecimal;
  state.number = *value;
  state.number_text = std::string(number_text);
  if (rest.empty()) {
    return state;
  }
  if (!allow_unit) {
    return BadState(Quote(text) + " is not a plain number");
  }
  std::string unit = RepairUnitMojibake(rest);
  if (!IsPlausibleUnit(unit)) {
    return BadState(Quote(text) + " is not a number with a unit");
  }
  state.kind = StateKind::kQuantity;
  state.unit = std::move(unit);
  return state;
}

Result<State> ParsePercent(std::string_view text) {
  auto state = ParseNumber(text, false);
  if (!state.ok()) {
    return state;
  }
  if (state->number < 0 || state->number > 100) {
    return BadState(Quote(text) + " is out of the percent range 0-100");
  }
  state->kind = StateKind::kPercent;
  return state;
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (;;) {
    const auto at = text.find(separator);
    parts.push_back(Trim(text.substr(0, at)));
    if (at == std::string_view::npos) {
      return parts;
    }
    text.remove_prefix(at + 1);
  }
}

// One component of an HSB or point text: a plain number.
Result<double> Component(std::string_view part, std::string_view whole) {
  if (NumberPrefixLength(part) != part.size() || part.empty()) {
    return BadState(Quote(whole) + ": " + Quote(part) + " is not a number");
  }
  return NumberValue(part);
}

Result<State> ParseHsb(std::string_view text) {
  const auto parts = Split(text, ',');
  if (parts.size() != 3) {
    return BadState(Quote(text) + " is not hue,saturation,brightness");
  }
  std::array<double, 3> v{};
  for (std::size_t i = 0; i < 3; ++i) {
    auto value = Component(parts[i], text);
    if (!value.ok()) {
      return value.error();
    }
    v[i] = *value;
  }
  if (v[0] < 0 || v[0] >= 360) {
    return BadState(Quote(text) + ": hue must be at least 0 and below 360");
  }
  if (v[1] < 0 || v[1] > 100) {
    return BadState(Quote(text) + ": saturation must be 0-100");
  }
  if (v[2] < 0 || v[2] > 100) {
    return BadState(Quote(text) + ": brightness must be 0-100");
  }
  return MakeHsb(v[0], v[1], v[2]);
}

Result<State> ParsePoint(std::string_view text) {
  if (Trim(text).empty()) {
    return BadState("a point must not be blank");
  }
  const auto parts = Split(text, ',');
  if (parts.size() < 2 || parts.size() > 3) {
    return BadState(Quote(text) + " is not latitude,longitude[,altitude]");
  }
  std::array<double, 3> v{};
  for (std::size_t i = 0; i < parts.size(); ++i) {
    auto value = Component(parts[i], text);
    if (!value.ok()) {
      return value.error();
    }
    v[i] = *value;
  }
  return MakePoint(v[0], v[1], parts.size() == 3 ? std::optional<double>(v[2]) : std::nullopt);
}

// `a,b\,c` -> {"a", "b,c"}: openHAB's StringListType escapes commas inside elements only.
Result<State> ParseStringList(std::string_view text) {
  State state;
  state.kind = StateKind::kStringList;
  std::string element;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == ',') {
      element += ',';
      ++i;
    } else if (text[i] == ',') {
      state.list.push_back(std::move(element));
      element.clear();
    } else {
      element += text[i];
    }
  }
  state.list.push_back(std::move(element));
  return state;
}

// `data:<mime>;base64,<base64>`, as RawType.valueOf requires.
Result<State> ParseRaw(std::string_view text) {
  if (text.empty()) {
    return BadState("an image must not be blank");
  }
  const auto comma = text.find(',');
  if (!text.starts_with("data:") || comma == std::string_view::npos) {
    return BadState(Quote(text) + " is not a data URI");
  }
  const auto semicolon = text.find(';');
  if (semicolon == std::string_view::npos || semicolon <= 5 || semicolon > comma) {
    return BadState(Quote(text) + " has no MIME type");
  }
  // Base64: its alphabet, then nothing but '=' padding.
  std::string_view data = text.substr(comma + 1);
  const auto padding = data.find('=');
  if (padding != std::string_view::npos) {
    if (data.find_first_not_of('=', padding) != std::string_view::npos) {
      return BadState(Quote(text) + " has data that is not base64");
    }
    data = data.substr(0, padding);
  }
  for (const char c : data) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '+' && c != '/') {
      return BadState(Quote(text) + " has data that is not base64");
    }
  }
  State state;
  state.kind = StateKind::kRaw;
  state.text = std::string(text);
  state.mime_type = std::string(text.substr(5, semicolon - 5));
  return state;
}

constexpr std::int64_t kMsPerDay = 86'400'000;
// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: four-digit years, as openHAB writes.
constexpr std::int64_t kMinEpochMs = -62'135'596'800'000;
constexpr std::int64_t kMaxEpochMs = 253'402'300'799'999;
constexpr int kMaxOffsetMinutes = 18 * 60;

Error BadDateTime(std::string_view text, std::string_view why) {
  return BadState("date-time " + Quote(text) + " is not valid: " + std::string(why));
}

// Reads fixed-width decimal fields.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool AtEnd() const { return i_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[i_]; }
  std::string_view Rest() const { return s_.substr(i_); }
  bool Eat(char c) {
    if (Peek() != c) {
      return false;
    }
    ++i_;
    return true;
  }
  // Exactly `n` digits.
  bool Digits(int n, int* out) {
    int value = 0;
    for (int k = 0; k < n; ++k) {
      if (!IsDigit(Peek())) {
        return false;
      }
      value = value * 10 + (s_[i_++] - '0');
    }
    *out = value;
    return true;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

bool IsZoneIdChar(char c) {
  return IsAlpha(c) || IsDigit(c) || c == '/' || c == '_' || c == '+' || c == '-';
}

// `±HH`, `±HHMM` or `±HH:MM` at the cursor, in minutes.
std::optional<int> ParseOffset(Cursor& c) {
  const char sign = c.Peek();
  if (sign != '+' && sign != '-') {
    return std::nullopt;
  }
  c.Eat(sign);
  int hours = 0;
  int minutes = 0;
  if (!c.Digits(2, &hours)) {
    return std::nullopt;
  }
  if (!c.AtEnd() && c.Peek() != '[') {
    c.Eat(':');
    if (!c.Digits(2, &minutes)) {
      return std::nullopt;
    }
  }
  if (minutes > 59 || hours * 60 + minutes > kMaxOffsetMinutes) {
    return std::nullopt;
  }
  return (sign == '-' ? -1 : 1) * (hours * 60 + minutes);
}

struct Zone {
  std::optional<int> offset_minutes;
  std::string zone_id;
};

// The zone that follows a date-time: `Z` or an offset, each optionally with `[Region/Zone]`,
// or a zone name (`UTC`, `CET`, `Europe/Berlin`, `GMT+2`).
std::optional<Zone> ParseZone(std::string_view text) {
  Zone zone;
  Cursor c(text);
  if (c.Eat('Z')) {
    zone.offset_minutes = 0;
  } else if (c.Peek() == '+' || c.Peek() == '-') {
    zone.offset_minutes = ParseOffset(c);
    if (!zone.offset_minutes) {
      return std::nullopt;
    }
  } else {
    if (!IsAlpha(c.Peek())) {
      return std::nullopt;
    }
    for (const std::string_view utc : {"UTC", "GMT", "UT"}) {
      if (text == utc) {
        zone.offset_minutes = 0;
        return zone;
      }
      if (text.starts_with(utc) && (text[utc.size()] == '+' || text[utc.size()] == '-')) {
        Cursor offset(text.substr(utc.size()));
        zone.offset_minutes = ParseOffset(offset);
        if (!zone.offset_minutes || !offset.AtEnd()) {
          return std::nullopt;
        }
        return zone;
      }
    }
    for (const char ch : text) {
      if (!IsZoneIdChar(ch)) {
        return std::nullopt;
      }
    }
    zone.zone_id = std::string(text);
    return zone;
  }
  if (c.Eat('[')) {
    std::string_view region = c.Rest();
    if (!region.ends_with(']') || region.size() < 2) {
      return std::nullopt;
    }
    region.remove_suffix(1);
    for (const char ch : region) {
      if (!IsZoneIdChar(ch)) {
        return std::nullopt;
      }
    }
    zone.zone_id = std::string(region);
    return zone;
  }
  if (!c.AtEnd()) {
    return std::nullopt;
  }
  return zone;
}

State DateTimeState(DateTime dt) {
  State state;
  state.kind = StateKind::kDateTime;
  state.date_time = std::move(dt);
  return state;
}

// An epoch number: below 12 digits seconds, else milliseconds (DateTimeType's rule).
Result<State> ParseEpoch(std::string_view text) {
  std::string_view digits = text;
  const bool negative = digits.starts_with('-');
  if (negative) {
    digits.remove_prefix(1);
  }
  const auto first = digits.find_first_not_of('0');
  const std::size_t significant = first == std::string_view::npos ? 0 : digits.size() - first;
  if (significant > 15) {
    return BadDateTime(text, "the epoch number is out of range");
  }
  std::int64_t value = 0;
  for (const char ch : digits) {
    value = value * 10 + (ch - '0');
  }
  std::int64_t ms = significant < 12 ? value * 1000 : value;
  if (negative) {
    ms = -ms;
  }
  if (ms < kMinEpochMs || ms > kMaxEpochMs) {
    return BadDateTime(text, "the epoch number is out of range");
  }
  return DateTimeState({std::string(text), ms, 0, ""});
}

Result<State> ParseDateTime(std::string_view input) {
  const std::string_view text = Trim(input);
  if (text.empty()) {
    return BadState("a date-time must not be blank");
  }
  if (text.size() > 100) {
    return BadDateTime(text, "too long");
  }
  const std::string_view unsigned_part = text.starts_with('-') ? text.substr(1) : text;
  if (!unsigned_part.empty() &&
      unsigned_part.find_first_not_of("0123456789") == std::string_view::npos) {
    return ParseEpoch(text);
  }
  constexpr std::string_view kExpected =
      "expected yyyy-MM-dd'T'HH:mm[:ss[.fraction]][zone], a date, a time or an epoch number";
  Cursor c(text);
  int y = 1970;
  int mo = 1;
  int d = 1;
  int hour = 0;
  int minute = 0;
  int second = 0;
  int millis = 0;
  const bool has_date = text.size() >= 10 && text[4] == '-' && text[7] == '-';
  bool has_time = !has_date;
  if (has_date) {
    if (!c.Digits(4, &y) || !c.Eat('-') || !c.Digits(2, &mo) || !c.Eat('-') || !c.Digits(2, &d)) {
      return BadDateTime(text, kExpected);
    }
    // Java's parser takes a space for the 'T' only when a time follows (`yyyy-MM-dd HH:mm`).
    if (c.Eat('T') || (c.Peek() == ' ' && c.Rest().size() >= 6 && c.Rest()[3] == ':')) {
      c.Eat(' ');
      has_time = true;
    }
  }
  if (has_time) {
    if (!c.Digits(2, &hour) || !c.Eat(':') || !c.Digits(2, &minute)) {
      return BadDateTime(text, kExpected);
    }
    if (c.Eat(':')) {
      if (!c.Digits(2, &second)) {
        return BadDateTime(text, kExpected);
      }
      if (c.Eat('.')) {
        int digits = 0;
        for (; digits < 9 && IsDigit(c.Peek()); ++digits) {
          int digit = 0;
          c.Digits(1, &digit);
          if (digits < 3) {
            millis = millis * 10 + digit;
          }
        }
        if (digits == 0 || IsDigit(c.Peek())) {
          return BadDateTime(text, "the fraction of a second needs 1 to 9 digits");
        }
        for (; digits < 3; ++digits) {
          millis *= 10;
        }
      }
    }
  }
  Zone zone;
  if (!c.AtEnd()) {
    auto parsed = ParseZone(c.Rest());
    if (!parsed) {
      return BadDateTime(text, "the zone " + Quote(c.Rest()) +
                                   " is not Z, ±HH[[:]MM] (then optionally [Region/Zone]) or a"
                                   " zone name");
    }
    zone = std::move(*parsed);
  }
  if (y < 1) {
    return BadDateTime(text, "the year must be 0001-9999");
  }
  if (mo < 1 || mo > 12) {
    return BadDateTime(text, "month " + std::to_string(mo) + " does not exist");
  }
  const std::chrono::year_month_day date{std::chrono::year{y},
                                         std::chrono::month{static_cast<unsigned>(mo)},
                                         std::chrono::day{static_cast<unsigned>(d)}};
  if (!date.ok()) {
    return BadDateTime(text, "day " + std::to_string(d) + " does not exist in that month");
  }
  if (hour > 23 || minute > 59 || second > 59) {
    return BadDateTime(text, "the time of day is out of range");
  }
  DateTime dt{std::string(text), std::nullopt, zone.offset_minutes, std::move(zone.zone_id)};
  if (zone.offset_minutes) {
    const std::int64_t days = std::chrono::sys_days(date).time_since_epoch().count();
    const std::int64_t local_ms =
        days * kMsPerDay + ((hour * 60 + minute) * 60 + second) * std::int64_t{1000} + millis;
    dt.epoch_ms = local_ms - std::int64_t{*zone.offset_minutes} * 60'000;
  }
  return DateTimeState(std::move(dt));
}

// `yyyy-MM-ddTHH:mm:ss.SSS` and the offset as `+0200` (openHAB) or `+02:00` (ISO 8601).
std::string FormatDateTime(std::int64_t epoch_ms, int offset_minutes, bool iso) {
  offset_minutes = std::clamp(offset_minutes, -kMaxOffsetMinutes, kMaxOffsetMinutes);
  // Clamped to four-digit years; the sum cannot overflow once the instant is clamped.
  const std::int64_t local = std::clamp(
      std::clamp(epoch_ms, kMinEpochMs, kMaxEpochMs) + std::int64_t{offset_minutes} * 60'000,
      kMinEpochMs, kMaxEpochMs);
  std::int64_t days = local / kMsPerDay;
  std::int64_t ms_of_day = local % kMsPerDay;
  if (ms_of_day < 0) {
    ms_of_day += kMsPerDay;
    --days;
  }
  const std::chrono::year_month_day date{std::chrono::sys_days{std::chrono::days{days}}};
  const int minutes = offset_minutes < 0 ? -offset_minutes : offset_minutes;
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}{}{:02d}{}{:02d}",
                     static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                     static_cast<unsigned>(date.day()), ms_of_day / 3'600'000,
                     ms_of_day / 60'000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000,
                     offset_minutes < 0 ? '-' : '+', minutes / 60, iso ? ":" : "", minutes % 60);
}

// The shortest plain (never exponent) text that reads back as `value`.
std::string FormatNumber(double value) {
  std::array<char, 512> buffer{};
  const auto [end, ec] =
      std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, std::chars_format::fixed);
  if (ec != std::errc()) {
    return "0";  // Not finite: such a value is never produced by parsing.
  }
  return std::string(buffer.data(), end);
}

std::string NumberText(const State& state) {
  return state.number_text.empty() ? FormatNumber(state.number) : state.number_text;
}

struct WordSpec {
  Word word;
  std::string_view text;
  StateKind kind;
};

constexpr std::array<WordSpec, 17> kWords = {{
    {Word::kOn, "ON", StateKind::kOnOff},
    {Word::kOff, "OFF", StateKind::kOnOff},
    {Word::kOpen, "OPEN", StateKind::kOpenClosed},
    {Word::kClosed, "CLOSED", StateKind::kOpenClosed},
    {Word::kUp, "UP", StateKind::kUpDown},
    {Word::kDown, "DOWN", StateKind::kUpDown},
    {Word::kStop, "STOP", StateKind::kStopMove},
    {Word::kMove, "MOVE", StateKind::kStopMove},
    {Word::kIncrease, "INCREASE", StateKind::kIncreaseDecrease},
    {Word::kDecrease, "DECREASE", StateKind::kIncreaseDecrease},
    {Word::kPlay, "PLAY", StateKind::kPlayPause},
    {Word::kPause, "PAUSE", StateKind::kPlayPause},
    {Word::kRewind, "REWIND", StateKind::kRewindFastforward},
    {Word::kFastforward, "FASTFORWARD", StateKind::kRewindFastforward},
    {Word::kNext, "NEXT", StateKind::kNextPrevious},
    {Word::kPrevious, "PREVIOUS", StateKind::kNextPrevious},
    {Word::kRefresh, "REFRESH", StateKind::kRefresh},
}};

const WordSpec* FindWord(Word word) {
  for (const WordSpec& spec : kWords) {
    if (spec.word == word) {
      return &spec;
    }
  }
  return nullptr;
}

bool IsWordKind(StateKind kind) { return kind >= StateKind::kOnOff && kind <= StateKind::kRefresh; }

// Enum names are case-sensitive in openHAB (`on` is no OnOffType).
Result<State> ParseWord(StateKind kind, std::string_view text) {
  std::string expected;
  for (const WordSpec& spec : kWords) {
    if (spec.kind != kind) {
      continue;
    }
    if (spec.text == text) {
      return MakeWord(spec.word);
    }
    expected += expected.empty() ? "" : " or ";
    expected += spec.text;
  }
  return BadState(Quote(text) + " is not " + expected);
}

// `text` as a value of `kind`; kNull and kUndef both read `NULL` or `UNDEF`.
Result<State> ParseAs(StateKind kind, std::string_view text) {
  switch (kind) {
    case StateKind::kNull:
    case StateKind::kUndef:
      if (text == "NULL") {
        return MakeNull();
      }
      if (text == "UNDEF") {
        return MakeUndef();
      }
      return BadState(Quote(text) + " is not NULL or UNDEF");
    case StateKind::kDecimal:
      return ParseNumber(text, false);
    case StateKind::kQuantity:
      return ParseNumber(text, true);
    case StateKind::kPercent:
      return ParsePercent(text);
    case StateKind::kHsb:
      return ParseHsb(text);
    case StateKind::kPoint:
      return ParsePoint(text);
    case StateKind::kDateTime:
      return ParseDateTime(text);
    case StateKind::kString:
      return MakeString(std::string(text));
    case StateKind::kRaw:
      return ParseRaw(text);
    case StateKind::kStringList:
      return ParseStringList(text);
    default:
      return ParseWord(kind, text);
  }
}

using K = StateKind;
constexpr std::array kSwitchStates = {K::kOnOff};
constexpr std::array kSwitchCommands = {K::kOnOff, K::kRefresh};
constexpr std::array kDimmerStates = {K::kPercent, K::kOnOff};
constexpr std::array kDimmerCommands = {K::kPercent, K::kOnOff, K::kIncreaseDecrease, K::kRefresh};
constexpr std::array kRollershutterStates = {K::kPercent, K::kUpDown};
constexpr std::array kRollershutterCommands = {K::kPercent, K::kUpDown, K::kStopMove, K::kRefresh};
constexpr std::array kColorStates = {K::kHsb, K::kPercent, K::kOnOff};
constexpr std::array kColorCommands = {K::kHsb, K::kPercent, K::kOnOff, K::kIncreaseDecrease,
                                       K::kRefresh};
// kQuantity reads a number with or without a unit.
constexpr std::array kNumberStates = {K::kQuantity};
constexpr std::array kNumberCommands = {K::kQuantity, K::kRefresh};
constexpr std::array kContactStates = {K::kOpenClosed};
constexpr std::array kRefreshOnly = {K::kRefresh};
constexpr std::array kDateTimeStates = {K::kDateTime};
constexpr std::array kDateTimeCommands = {K::kDateTime, K::kRefresh};
constexpr std::array kStringStates = {K::kString};
constexpr std::array kStringCommands = {K::kString, K::kRefresh};
constexpr std::array kLocationStates = {K::kPoint};
constexpr std::array kLocationCommands = {K::kPoint, K::kRefresh};
constexpr std::array kPlayerStates = {K::kPlayPause, K::kRewindFastforward};
constexpr std::array kPlayerCommands = {K::kPlayPause, K::kRewindFastforward, K::kNextPrevious,
                                        K::kRefresh};
constexpr std::array kImageStates = {K::kRaw};
constexpr std::array kCallStates = {K::kStringList};

// openhab-core's library/items/*Item.java ACCEPTED_DATA_TYPES and ACCEPTED_COMMAND_TYPES,
// in their order (the first type that parses wins).
struct ItemTypeSpec {
  std::string_view name;
  std::span<const StateKind> states;
  std::span<const StateKind> commands;
  std::string_view expected_states;
  std::string_view expected_commands;
};

constexpr std::array<ItemTypeSpec, 12> kItemTypes = {{
    {"Switch", kSwitchStates, kSwitchCommands, "ON or OFF", "ON, OFF or REFRESH"},
    {"Dimmer", kDimmerStates, kDimmerCommands, "a percent 0-100, ON or OFF",
     "a percent 0-100, ON, OFF, INCREASE, DECREASE or REFRESH"},
    {"Rollershutter", kRollershutterStates, kRollershutterCommands, "a percent 0-100, UP or DOWN",
     "a percent 0-100, UP, DOWN, STOP, MOVE or REFRESH"},
    {"Color", kColorStates, kColorCommands, "hue,saturation,brightness, a percent, ON or OFF",
     "hue,saturation,brightness, a percent 0-100, ON, OFF, INCREASE, DECREASE or REFRESH"},
    {"Number", kNumberStates, kNumberCommands, "a number, optionally with a unit",
     "a number, optionally with a unit, or REFRESH"},
    {"Contact", kContactStates, kRefreshOnly, "OPEN or CLOSED",
     "only REFRESH (update the state instead)"},
    {"DateTime", kDateTimeStates, kDateTimeCommands, "a date-time", "a date-time or REFRESH"},
    {"String", kStringStates, kStringCommands, "text", "text"},
    {"Location", kLocationStates, kLocationCommands, "latitude,longitude[,altitude]",
     "latitude,longitude[,altitude] or REFRESH"},
    {"Player", kPlayerStates, kPlayerCommands, "PLAY, PAUSE, REWIND or FASTFORWARD",
     "PLAY, PAUSE, REWIND, FASTFORWARD, NEXT, PREVIOUS or REFRESH"},
    {"Image", kImageStates, kRefreshOnly, "a data URI (data:<mime>;base64,...)", "only REFRESH"},
    {"Call", kCallStates, kRefreshOnly, "comma-separated text", "only REFRESH"},
}};

// The spec of `Switch`, `Number:Temperature`, `Group:Number:Power:SUM` (a group by its base
// type); null for a plain `Group` and for item types this codec does not know.
const ItemTypeSpec* FindItemType(std::string_view item_type) {
  if (item_type.starts_with("Group:")) {
    item_type.remove_prefix(6);
  }
  const std::string_view base = item_type.substr(0, item_type.find(':'));
  for (const ItemTypeSpec& spec : kItemTypes) {
    if (spec.name == base) {
      return &spec;
    }
  }
  return nullptr;
}

// The first of `kinds` that reads `text`, or an error naming the item type and what it takes.
Result<State> ParseByKinds(const ItemTypeSpec& spec, std::string_view item_type,
                           std::span<const StateKind> kinds, std::string_view text, bool command) {
  std::optional<Error> first_error;
  for (const StateKind kind : kinds) {
    auto state = ParseAs(kind, text);
    if (state.ok()) {
      return state;
    }
    if (!first_error) {
      first_error = state.error();
    }
  }
  std::string message = std::string(item_type) + (command ? " command " : " state ") + Quote(text) +
                        " is not valid: expected " +
                        std::string(command ? spec.expected_commands : spec.expected_states);
  if (!kinds.empty() && !IsWordKind(kinds.front()) && first_error) {
    message += " (" + first_error->message + ")";
  }
  return MakeError(std::string(command ? kBadCommand : kBadState), std::move(message));
}

// Checks a value built in code, which the parsers would have refused.
std::optional<std::string> InvalidValue(const State& state) {
  const auto finite = [](double v) { return std::isfinite(v); };
  switch (state.kind) {
    case StateKind::kDecimal:
    case StateKind::kQuantity:
      if (!finite(state.number)) {
        return "the number is not finite";
      }
      if (state.kind == StateKind::kQuantity && !state.unit.empty() &&
          !IsPlausibleUnit(state.unit)) {
        return "the unit " + Quote(state.unit) + " is not a unit";
      }
      return std::nullopt;
    case StateKind::kPercent:
      if (!(state.number >= 0 && state.number <= 100)) {
        return "the percent is not within 0-100";
      }
      return std::nullopt;
    case StateKind::kHsb:
      if (!(state.hsb.h >= 0 && state.hsb.h < 360 && state.hsb.s >= 0 && state.hsb.s <= 100 &&
            state.hsb.b >= 0 && state.hsb.b <= 100)) {
        return "hue must be within [0, 360), saturation and brightness within 0-100";
      }
      return std::nullopt;
    case StateKind::kPoint:
      if (!finite(state.point.latitude) || !finite(state.point.longitude) ||
          (state.point.altitude && !finite(*state.point.altitude))) {
        return "a coordinate is not finite";
      }
      return std::nullopt;
    case StateKind::kDateTime:
      if (state.date_time.text.empty() && !state.date_time.epoch_ms) {
        return "the date-time has neither text nor an instant";
      }
      return std::nullopt;
    default:
      if (IsWordKind(state.kind)) {
        const WordSpec* spec = FindWord(state.word);
        if (spec == nullptr || spec->kind != state.kind) {
          return "the word does not belong to the kind";
        }
      }
      return std::nullopt;
  }
}

bool Accepts(StateKind command_kind, const State& state) {
  switch (command_kind) {
    case StateKind::kQuantity:  // Number items: any number
      return state.kind == StateKind::kDecimal || state.kind == StateKind::kQuantity ||
             state.kind == StateKind::kPercent;
    case StateKind::kPercent:
      return state.kind == StateKind::kPercent ||
             (state.kind == StateKind::kDecimal && state.number >= 0 && state.number <= 100);
    case StateKind::kString:  // a String item takes any text
      return true;
    default:
      return state.kind == command_kind;
  }
}

Json JsonNumber(double value) {
  constexpr double kMaxExact = 9007199254740992.0;  // 2^53
  if (std::isfinite(value) && std::trunc(value) == value && std::fabs(value) <= kMaxExact) {
    return static_cast<std::int64_t>(value);
  }
  return value;
}

struct TypeNameSpec {
  std::string_view name;
  StateKind kind;
};

// The §3 value type names (openhab-core's class names without "Type").
constexpr std::array<TypeNameSpec, 19> kTypeNames = {{
    {"UnDef", K::kNull},
    {"OnOff", K::kOnOff},
    {"OpenClosed", K::kOpenClosed},
    {"UpDown", K::kUpDown},
    {"StopMove", K::kStopMove},
    {"IncreaseDecrease", K::kIncreaseDecrease},
    {"PlayPause", K::kPlayPause},
    {"RewindFastforward", K::kRewindFastforward},
    {"NextPrevious", K::kNextPrevious},
    {"Refresh", K::kRefresh},
    {"Decimal", K::kDecimal},
    {"Quantity", K::kQuantity},
    {"Percent", K::kPercent},
    {"HSB", K::kHsb},
    {"Point", K::kPoint},
    {"DateTime", K::kDateTime},
    {"String", K::kString},
    {"Raw", K::kRaw},
    {"StringList", K::kStringList},
}};

}  // namespace

State MakeNull() { return State{}; }

State MakeUndef() {
  State state;
  state.kind = StateKind::kUndef;
  return state;
}

State MakeWord(Word word) {
  State state;
  const WordSpec* spec = FindWord(word);
  if (spec != nullptr) {
    state.kind = spec->kind;
    state.word = word;
  }
  return state;
}

State MakeDecimal(double value) {
  State state;
  state.kind = StateKind::kDecimal;
  state.number = value;
  return state;
}

State MakePercent(double value) {
  State state = MakeDecimal(value);
  state.kind = StateKind::kPercent;
  return state;
}

State MakeQuantity(double value, std::string unit) {
  State state = MakeDecimal(value);
  state.kind = StateKind::kQuantity;
  state.unit = std::move(unit);
  return state;
}

State MakeHsb(double h, double s, double b) {
  State state;
  state.kind = StateKind::kHsb;
  state.hsb = Hsb{h, s, b};
  return state;
}

State MakePoint(double latitude, double longitude, std::optional<double> altitude) {
  State state;
  state.kind = StateKind::kPoint;
  state.point = Point{latitude, longitude, altitude};
  return state;
}

State MakeDateTime(std::int64_t epoch_ms, int offset_minutes) {
  return DateTimeState({"", epoch_ms, offset_minutes, ""});
}

State MakeString(std::string text) {
  State state;
  state.kind = StateKind::kString;
  state.text = std::move(text);
  return state;
}

Result<State> ParseState(std::string_view item_type, std::string_view text) {
  if (text == "NULL") {
    return MakeNull();
  }
  if (text == "UNDEF") {
    return MakeUndef();
  }
  const ItemTypeSpec* spec = FindItemType(item_type);
  if (spec == nullptr) {
    return MakeString(std::string(text));
  }
  return ParseByKinds(*spec, item_type, spec->states, text, false);
}

State ParseStateTolerant(std::string_view item_type, std::string_view text) {
  auto state = ParseState(item_type, text);
  if (!state.ok()) {
    return MakeString(std::string(text));
  }
  return std::move(state).value();
}

Result<State> ParseCommand(std::string_view item_type, std::string_view text) {
  const ItemTypeSpec* spec = FindItemType(item_type);
  if (spec == nullptr) {
    return MakeString(std::string(text));
  }
  return ParseByKinds(*spec, item_type, spec->commands, text, true);
}

Result<State> ParseTypedValue(std::string_view type_name, std::string_view value) {
  for (const TypeNameSpec& spec : kTypeNames) {
    if (spec.name == type_name) {
      return ParseAs(spec.kind, value);
    }
  }
  return MakeString(std::string(value));
}

std::string_view TypeName(StateKind kind) {
  if (kind == StateKind::kUndef) {
    return "UnDef";
  }
  for (const TypeNameSpec& spec : kTypeNames) {
    if (spec.kind == kind) {
      return spec.name;
    }
  }
  return "String";
}

std::string_view KindName(StateKind kind) {
  // In the order of StateKind.
  static constexpr std::array<std::string_view, 20> kNames = {"null",
                                                              "undef",
                                                              "onoff",
                                                              "openclosed",
                                                              "updown",
                                                              "stopmove",
                                                              "increasedecrease",
                                                              "playpause",
                                                              "rewindfastforward",
                                                              "nextprevious",
                                                              "refresh",
                                                              "decimal",
                                                              "quantity",
                                                              "percent",
                                                              "hsb",
                                                              "point",
                                                              "datetime",
                                                              "string",
                                                              "raw",
                                                              "stringlist"};
  const auto index = static_cast<std::size_t>(kind);
  return index < kNames.size() ? kNames[index] : "string";
}

std::string ToCommandText(const State& state) {
  switch (state.kind) {
    case StateKind::kNull:
      return "NULL";
    case StateKind::kUndef:
      return "UNDEF";
    case StateKind::kDecimal:
    case StateKind::kPercent:
      return NumberText(state);
    case StateKind::kQuantity:
      return state.unit.empty() ? NumberText(state) : NumberText(state) + " " + state.unit;
    case StateKind::kHsb:
      return FormatNumber(state.hsb.h) + "," + FormatNumber(state.hsb.s) + "," +
             FormatNumber(state.hsb.b);
    case StateKind::kPoint: {
      std::string text =
          FormatNumber(state.point.latitude) + "," + FormatNumber(state.point.longitude);
      if (state.point.altitude) {
        text += "," + FormatNumber(*state.point.altitude);
      }
      return text;
    }
    case StateKind::kDateTime:
      if (!state.date_time.text.empty()) {
        return state.date_time.text;
      }
      return FormatDateTime(state.date_time.epoch_ms.value_or(0),
                            state.date_time.offset_minutes.value_or(0), false);
    case StateKind::kString:
    case StateKind::kRaw:
      return state.text;
    case StateKind::kStringList: {
      std::string text;
      for (std::size_t i = 0; i < state.list.size(); ++i) {
        text += i == 0 ? "" : ",";
        for (const char c : state.list[i]) {
          text += c == ',' ? "\\," : std::string(1, c);
        }
      }
      return text;
    }
    default: {
      const WordSpec* spec = FindWord(state.word);
      return spec == nullptr ? std::string() : std::string(spec->text);
    }
  }
}

Result<std::string> CommandFor(std::string_view item_type, const State& state) {
  const auto bad = [&](const std::string& why) {
    return MakeError(std::string(kBadCommand), std::string(item_type) + " command: " + why);
  };
  if (state.kind == StateKind::kNull || state.kind == StateKind::kUndef) {
    return bad(ToCommandText(state) + " is a state, never a command");
  }
  if (auto invalid = InvalidValue(state)) {
    return bad(*invalid);
  }
  const ItemTypeSpec* spec = FindItemType(item_type);
  if (spec == nullptr) {
    return ToCommandText(state);
  }
  for (const StateKind kind : spec->commands) {
    if (Accepts(kind, state)) {
      return ToCommandText(state);
    }
  }
  return bad("a " + std::string(KindName(state.kind)) + " (" + Quote(ToCommandText(state)) +
             ") is not accepted: expected " + std::string(spec->expected_commands));
}

Json ToJson(const State& state) {
  Json json = Json::object();
  json["kind"] = KindName(state.kind);
  switch (state.kind) {
    case StateKind::kNull:
    case StateKind::kUndef:
    case StateKind::kRefresh:
      break;
    case StateKind::kOnOff:
      json["value"] = state.word == Word::kOn;
      break;
    case StateKind::kDecimal:
    case StateKind::kPercent:
      json["value"] = JsonNumber(state.number);
      break;
    case StateKind::kQuantity:
      json["value"] = JsonNumber(state.number);
      json["unit"] = ValidUtf8(state.unit);
      break;
    case StateKind::kHsb:
      json["h"] = JsonNumber(state.hsb.h);
      json["s"] = JsonNumber(state.hsb.s);
      json["b"] = JsonNumber(state.hsb.b);
      break;
    case StateKind::kPoint:
      json["lat"] = JsonNumber(state.point.latitude);
      json["lon"] = JsonNumber(state.point.longitude);
      if (state.point.altitude) {
        json["alt"] = JsonNumber(*state.point.altitude);
      }
      break;
    case StateKind::kDateTime: {
      const DateTime& dt = state.date_time;
      if (dt.epoch_ms && dt.offset_minutes) {
        json["value"] = FormatDateTime(*dt.epoch_ms, *dt.offset_minutes, true);
      } else {
        json["value"] = ValidUtf8(ToCommandText(state));
      }
      if (dt.epoch_ms) {
        json["epochMs"] = *dt.epoch_ms;
      }
      if (dt.offset_minutes) {
        json["offsetMinutes"] = *dt.offset_minutes;
      }
      if (!dt.zone_id.empty()) {
        json["zone"] = ValidUtf8(dt.zone_id);
      }
      break;
    }
    case StateKind::kString:
      json["value"] = ValidUtf8(state.text);
      break;
    case StateKind::kRaw:
      json["mimeType"] = ValidUtf8(state.mime_type);
      json["value"] = ValidUtf8(state.text);
      break;
    case StateKind::kStringList: {
      Json list = Json::array();
      for (const std::string& element : state.list) {
        list.push_back(ValidUtf8(element));
      }
      json["value"] = std::move(list);
      break;
    }
    default:
      json["value"] = ToCommandText(state);
      break;
  }
  return json;
}

}  // namespace iothub::openhab
