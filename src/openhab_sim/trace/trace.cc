#include "openhab_sim/trace/trace.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <istream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "common/json_depth.h"

namespace iothub::sim {
namespace {

using Json = nlohmann::json;

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

// nlohmann's message without its `[json.exception.parse_error.101] ` prefix; the line is
// always 1 (one document a line), so its `line 1, ` goes too.
std::string ParseErrorText(const Json::exception& e) {
  std::string text = e.what();
  if (const auto end = text.find("] "); end != std::string::npos) text.erase(0, end + 2);
  if (const auto at = text.find("line 1, "); at != std::string::npos) text.erase(at, 8);
  return text;
}

// Quoted and shortened for an error message.
std::string Quote(std::string_view text) {
  constexpr std::size_t kMax = 40;
  return text.size() <= kMax ? fmt::format("\"{}\"", text)
                             : fmt::format("\"{}...\"", text.substr(0, kMax));
}

class Reader {
 public:
  explicit Reader(std::string_view source_name) : source_(source_name) {}

  Result<Trace> Read(std::istream& in) {
    Trace trace;
    bool have_header = false;
    for (std::string line; std::getline(in, line);) {
      ++line_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (IsBlank(line)) continue;
      auto doc = Parse(line);
      if (!doc) return doc.error();
      if (!have_header) {
        if (auto status = Header(*doc, trace); !status) return status.error();
        have_header = true;
        continue;
      }
      auto entry = Entry(*doc, trace.entries.empty() ? 0.0 : trace.entries.back().t);
      if (!entry) return entry.error();
      trace.entries.push_back(std::move(entry).value());
    }
    if (in.bad()) return Fail("read error");
    if (!have_header) {
      return Fail(
          fmt::format("expected the header {{\"openhab-trace\":{},\"source\":...}} as the "
                      "first line, found an empty file",
                      kTraceVersion));
    }
    return trace;
  }

 private:
  Error Fail(std::string_view what) const {
    return MakeError("bad_trace", fmt::format("{}:{}: {}", source_, line_, what));
  }

  Result<Json> Parse(const std::string& line) const {
    if (!JsonDepthWithin(line, kMaxJsonDepth)) return Fail("bad JSON: nested too deeply");
    try {
      return Json::parse(line);
    } catch (const Json::exception& e) {  // parse_error, or out_of_range for 1e400
      return Fail(fmt::format("bad JSON: {}", ParseErrorText(e)));
    }
  }

  Status Header(const Json& doc, Trace& trace) const {
    const std::string expected =
        fmt::format("expected the header {{\"openhab-trace\":{},\"source\":...}} as the first line",
                    kTraceVersion);
    if (!doc.is_object() || !doc.contains("openhab-trace")) return Fail(expected);
    const Json& version = doc["openhab-trace"];
    if (!version.is_number_integer()) {
      return Fail(fmt::format("{}; \"openhab-trace\" must be an integer version, found {}",
                              expected, version.dump()));
    }
    if (version.get<std::int64_t>() != kTraceVersion) {
      return Fail(fmt::format("unsupported trace version {} (this reader knows version {})",
                              version.dump(), kTraceVersion));
    }
    for (const char* key : {"source", "start"}) {
      if (!doc.contains(key)) continue;
      if (!doc[key].is_string()) {
        return Fail(
            fmt::format("header field \"{}\" must be a string, found {}", key, doc[key].dump()));
      }
    }
    trace.source = doc.value("source", "");
    trace.start = doc.value("start", "");
    return Ok{};
  }

  Result<TraceEntry> Entry(const Json& doc, double previous_t) const {
    if (!doc.is_object()) {
      return Fail(fmt::format(
          "expected an entry {{\"t\":...,\"item\":...,\"state\":...}}, found {}", doc.type_name()));
    }
    TraceEntry entry;
    entry.line = line_;
    const auto t = doc.find("t");
    if (t == doc.end()) return Fail("missing \"t\" (seconds since the trace start)");
    if (!t->is_number()) {
      return Fail(fmt::format("\"t\" must be a number of seconds, found {}", t->dump()));
    }
    entry.t = t->get<double>();
    if (!std::isfinite(entry.t) || entry.t < 0) {
      return Fail(fmt::format("\"t\" must be >= 0, found {}", t->dump()));
    }
    if (entry.t < previous_t) {
      return Fail(
          fmt::format("\"t\" must not decrease: {} after {}", t->dump(), Json(previous_t).dump()));
    }
    const auto item = doc.find("item");
    if (item == doc.end()) return Fail("missing \"item\" (an item name)");
    if (!item->is_string()) {
      return Fail(fmt::format("\"item\" must be a string, found {}", item->dump()));
    }
    entry.item = item->get<std::string>();
    if (!IsValidItemName(entry.item)) {
      return Fail(
          fmt::format("invalid item name {} (expected [a-zA-Z_][a-zA-Z0-9_]*)", Quote(entry.item)));
    }
    const auto state = doc.find("state");
    if (state == doc.end()) return Fail("missing \"state\" (openHAB state text)");
    if (!state->is_string()) {
      return Fail(
          fmt::format("\"state\" must be a string (openHAB state text such as \"ON\" or "
                      "\"21.5 °C\"), found {}",
                      state->dump()));
    }
    entry.state = state->get<std::string>();
    return entry;
  }

  std::string source_;
  int line_ = 0;
};

// A whole number of seconds as an integer (`12`), anything else as the shortest double text
// that reads back exactly (`12.5`).
Json TimeJson(double t) {
  constexpr double kExact = 9007199254740992.0;  // 2^53
  if (t == std::floor(t) && t < kExact) return static_cast<std::int64_t>(t);
  return t;
}

}  // namespace

bool IsValidItemName(std::string_view name) {
  if (name.empty()) return false;
  const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!alpha(name[0]) && name[0] != '_') return false;
  for (const char c : name) {
    if (!alpha(c) && !digit(c) && c != '_') return false;
  }
  return true;
}

std::optional<double> SecondsOfDay(std::string_view local_time) {
  // YYYY-MM-DDTHH:MM:SS
  if (local_time.size() != 19 || (local_time[10] != 'T' && local_time[10] != ' ')) return {};
  const auto two = [&](std::size_t at) -> int {
    const char a = local_time[at];
    const char b = local_time[at + 1];
    if (a < '0' || a > '9' || b < '0' || b > '9') return -1;
    return (a - '0') * 10 + (b - '0');
  };
  const int h = two(11);
  const int m = two(14);
  const int s = two(17);
  if (local_time[13] != ':' || local_time[16] != ':' || h < 0 || h > 23 || m < 0 || m > 59 ||
      s < 0 || s > 60) {
    return {};
  }
  return h * 3600.0 + m * 60.0 + s;
}

Result<Trace> ReadTrace(std::istream& in, std::string_view source_name) {
  return Reader(source_name).Read(in);
}

Result<Trace> ReadTraceFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError("io", "cannot open " + path);
  return ReadTrace(in, path);
}

void WriteTrace(std::ostream& out, const Trace& trace) {
  nlohmann::ordered_json header;
  header["openhab-trace"] = kTraceVersion;
  header["source"] = trace.source;
  if (!trace.start.empty()) header["start"] = trace.start;
  out << header.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
  for (const TraceEntry& entry : trace.entries) {
    nlohmann::ordered_json line;
    line["t"] = TimeJson(entry.t);
    line["item"] = entry.item;
    line["state"] = entry.state;
    // Replace invalid UTF-8 rather than throw: a state is text from anywhere.
    out << line.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
  }
}

std::string WriteTraceToString(const Trace& trace) {
  std::ostringstream out;
  WriteTrace(out, trace);
  return out.str();
}

}  // namespace iothub::sim
