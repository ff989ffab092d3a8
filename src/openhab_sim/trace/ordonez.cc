#include "openhab_sim/trace/ordonez.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <istream>
#include <map>
#include <optional>
#include <tuple>

namespace iothub::sim {
namespace {

struct SensorType {
  std::string_view name;  // as in the log
  std::string_view item_type;
  std::string_view on;
  std::string_view off;
  std::string_view label_word;
  std::string_view category;
  std::vector<std::string> tags;
};

const std::vector<SensorType>& SensorTypes() {
  static const std::vector<SensorType> kTypes = {
      {"Magnetic", "Contact", "OPEN", "CLOSED", "door", "door", {"OpenState"}},
      {"PIR", "Switch", "ON", "OFF", "motion", "motion", {"Status", "Presence"}},
      {"Pressure", "Switch", "ON", "OFF", "occupancy", "presence", {"Status", "Presence"}},
      {"Flush", "Switch", "ON", "OFF", "flush", "water", {"Status", "Water"}},
      {"Electric", "Switch", "ON", "OFF", "in use", "energy", {"Status", "Power"}},
  };
  return kTypes;
}

const SensorType* FindSensorType(std::string_view name) {
  for (const SensorType& type : SensorTypes()) {
    if (type.name == name) return &type;
  }
  return nullptr;
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }
char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  return out;
}

// CamelCase of the ASCII words in `part`: `sofa-seat` gives `SofaSeat`.
std::string CamelPart(std::string_view part) {
  std::string out;
  bool word_start = true;
  for (const char c : part) {
    if (static_cast<unsigned char>(c) >= 0x80) continue;  // UTF-8: dropped, not a word break
    if (!IsAlnum(c)) {
      word_start = true;
      continue;
    }
    out += word_start ? Upper(c) : c;
    word_start = false;
  }
  return out;
}

// The fields of a line: the text between runs of tabs, trimmed of spaces; leading and
// trailing tabs make no empty field.
std::vector<std::string_view> SplitTabs(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t at = 0;
  while (at < line.size()) {
    const std::size_t begin = line.find_first_not_of('\t', at);
    if (begin == std::string_view::npos) break;
    std::size_t end = line.find('\t', begin);
    if (end == std::string_view::npos) end = line.size();
    std::string_view field = line.substr(begin, end - begin);
    while (!field.empty() && field.front() == ' ') field.remove_prefix(1);
    while (!field.empty() && field.back() == ' ') field.remove_suffix(1);
    fields.push_back(field);
    at = end;
  }
  return fields;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// `YYYY-MM-DD HH:MM:SS` as naive seconds since 1970-01-01 00:00:00.
std::optional<std::int64_t> ParseLocalTime(std::string_view text) {
  constexpr std::string_view kShape = "dddd-dd-dd dd:dd:dd";
  if (text.size() != kShape.size()) return {};
  for (std::size_t i = 0; i < kShape.size(); ++i) {
    const bool digit = text[i] >= '0' && text[i] <= '9';
    if (kShape[i] == 'd' ? !digit : text[i] != kShape[i]) return {};
  }
  const auto number = [&](std::size_t at, std::size_t n) {
    int value = 0;
    for (std::size_t i = at; i < at + n; ++i) value = value * 10 + (text[i] - '0');
    return value;
  };
  const int year = number(0, 4);
  const int month = number(5, 2);
  const int day = number(8, 2);
  const int hour = number(11, 2);
  const int minute = number(14, 2);
  const int second = number(17, 2);
  constexpr std::array<int, 12> kDays = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > kDays[static_cast<std::size_t>(month - 1)] ||
      hour > 23 || minute > 59 || second > 59) {
    return {};
  }
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month == 2 && day == 29 && !leap) return {};
  return DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
         std::int64_t{hour} * 3600 + std::int64_t{minute} * 60 + second;
}

std::string Label(std::string_view place, std::string_view location, const SensorType& type) {
  std::string label = fmt::format("{} {}", place, Lowercase(location));
  // `Entrance maindoor`, not `Entrance maindoor door`.
  if (label.find(type.label_word) == std::string::npos)
    label += fmt::format(" {}", type.label_word);
  return label;
}

struct Change {
  std::int64_t time = 0;
  int phase = 0;  // 0: end of an activation that lasted; 1: a start; 2: end of a zero-length one
  std::size_t sequence = 0;  // log order
  std::size_t item = 0;
  std::string_view state;
};

class Converter {
 public:
  explicit Converter(std::string_view source_name) : source_(source_name) {}

  Result<OrdonezLog> Convert(std::istream& in) {
    bool have_header = false;
    for (std::string line; std::getline(in, line);) {
      ++line_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      const std::vector<std::string_view> fields = SplitTabs(line);
      if (!have_header) {
        if (auto status = Header(fields); !status) return status.error();
        have_header = true;
        continue;
      }
      if (auto status = Activation(fields); !status) return status.error();
    }
    if (in.bad()) return Fail("read error");
    if (!have_header)
      return Fail(fmt::format("expected the header {}, found an empty file", kHeader));
    return Finish();
  }

 private:
  static constexpr std::string_view kHeader =
      "`Start time<TAB>End time<TAB>Location<TAB>Type<TAB>Place`";

  struct Sensor {
    const SensorType* type = nullptr;
    std::int64_t last_end = 0;
  };

  Error Fail(std::string_view what) const {
    return MakeError("bad_log", fmt::format("{}:{}: {}", source_, line_, what));
  }

  Status Header(const std::vector<std::string_view>& fields) const {
    constexpr std::array<std::string_view, 5> kNames = {"start time", "end time", "location",
                                                        "type", "place"};
    bool ok = fields.size() == kNames.size();
    for (std::size_t i = 0; ok && i < kNames.size(); ++i) ok = Lowercase(fields[i]) == kNames[i];
    if (!ok) return Fail(fmt::format("expected the header {}", kHeader));
    return Ok{};
  }

  Status Activation(const std::vector<std::string_view>& fields) {
    if (fields.size() != 5) {
      return Fail(fmt::format(
          "expected 5 tab-separated fields (start time, end time, location, type, place), found {}",
          fields.size()));
    }
    const auto start = ParseLocalTime(fields[0]);
    if (!start) {
      return Fail(fmt::format("bad start time \"{}\" (expected YYYY-MM-DD HH:MM:SS)", fields[0]));
    }
    const auto end = ParseLocalTime(fields[1]);
    if (!end)
      return Fail(fmt::format("bad end time \"{}\" (expected YYYY-MM-DD HH:MM:SS)", fields[1]));
    if (*end < *start) {
      return Fail(fmt::format("end time {} is before start time {}", fields[1], fields[0]));
    }
    const std::string_view location = fields[2];
    const std::string_view type_name = fields[3];
    const std::string_view place = fields[4];
    const SensorType* type = FindSensorType(type_name);
    if (type == nullptr) {
      return Fail(fmt::format(
          "unknown sensor type \"{}\" (expected Magnetic, PIR, Pressure, Flush or Electric)",
          type_name));
    }
    const std::string name = SensorItemName(place, location, type_name);
    if (name.empty()) {
      return Fail(
          fmt::format("location \"{}\" and place \"{}\" need letters or digits", location, place));
    }
    auto [it, added] = index_.try_emplace(name, items_.size());
    if (added) {
      const std::string group = "g" + CamelPart(place);
      if (std::find(groups_.begin(), groups_.end(), group) == groups_.end()) {
        groups_.push_back(group);
        group_labels_.emplace_back(place);
      }
      items_.push_back(HomeItem{name,
                                std::string(type->item_type),
                                Label(place, location, *type),
                                std::string(type->category),
                                type->tags,
                                {group},
                                std::string(type->off)});
      sensors_.push_back(Sensor{type, *end});
    } else {
      Sensor& sensor = sensors_[it->second];
      if (sensor.type != type) {
        return Fail(fmt::format("sensor {} was a {} sensor before, here it is {}", name,
                                sensor.type->name, type->name));
      }
      if (*start < sensor.last_end) ++overlaps_;
      sensor.last_end = std::max(sensor.last_end, *end);
    }
    if (!earliest_ || *start < *earliest_) {
      earliest_ = *start;
      earliest_text_ = std::string(fields[0]);
    }
    const std::size_t item = it->second;
    changes_.push_back(Change{*start, 1, changes_.size(), item, type->on});
    changes_.push_back(Change{*end, *end == *start ? 2 : 0, changes_.size(), item, type->off});
    ++activations_;
    return Ok{};
  }

  OrdonezLog Finish() {
    std::sort(changes_.begin(), changes_.end(), [](const Change& a, const Change& b) {
      return std::tie(a.time, a.phase, a.sequence) < std::tie(b.time, b.phase, b.sequence);
    });
    OrdonezLog log;
    log.trace.source = source_;
    if (earliest_) {
      log.trace.start = earliest_text_;
      log.trace.start[10] = 'T';
    }
    log.trace.entries.reserve(changes_.size());
    for (const Change& change : changes_) {
      log.trace.entries.push_back(TraceEntry{static_cast<double>(change.time - *earliest_),
                                             items_[change.item].name, std::string(change.state)});
    }
    for (std::size_t i = 0; i < groups_.size(); ++i) {
      log.groups.push_back(
          HomeItem{groups_[i], "Group", group_labels_[i], {}, {"Location"}, {}, {}});
    }
    log.items = std::move(items_);
    log.lines = static_cast<std::size_t>(line_);
    log.activations = activations_;
    log.overlaps = overlaps_;
    return log;
  }

  std::string source_;
  int line_ = 0;
  std::vector<HomeItem> items_;
  std::vector<Sensor> sensors_;  // parallel to items_
  std::map<std::string, std::size_t, std::less<>> index_;
  std::vector<std::string> groups_;
  std::vector<std::string> group_labels_;
  std::vector<Change> changes_;
  std::optional<std::int64_t> earliest_;
  std::string earliest_text_;
  std::size_t activations_ = 0;
  std::size_t overlaps_ = 0;
};

}  // namespace

std::string SensorItemName(std::string_view place, std::string_view location,
                           std::string_view type) {
  const std::string a = CamelPart(place);
  const std::string b = CamelPart(location);
  const std::string c = CamelPart(type);
  if (a.empty() || b.empty() || c.empty()) return {};
  std::string name = fmt::format("{}_{}_{}", a, b, c);
  if (name[0] >= '0' && name[0] <= '9') name.insert(0, "_");
  return name;
}

Result<OrdonezLog> ConvertOrdonez(std::istream& in, std::string_view source_name) {
  return Converter(source_name).Convert(in);
}

Result<OrdonezLog> ConvertOrdonezFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError("io", "cannot open " + path);
  return ConvertOrdonez(in, path);
}

}  // namespace iothub::sim
