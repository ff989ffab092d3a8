// A trace: timed openHAB item state changes for openhab-sim to replay, and its JSONL file
// format, version 1 (docs/openhab-sim-traces.md). Thread-safe (pure functions and values).
#pragma once

#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace iothub::sim {

// The trace format version this code reads and writes.
inline constexpr int kTraceVersion = 1;

// One state change: `item` takes `state` (openHAB state text, shared/reference/openhab.md §5)
// `t` seconds after the trace start.
struct TraceEntry {
  double t = 0;
  std::string item;
  std::string state;
  int line = 0;  // 1-based line in the file it was read from; 0 when built in code
  friend bool operator==(const TraceEntry& a, const TraceEntry& b) {
    return a.t == b.t && a.item == b.item && a.state == b.state;  // `line` is provenance only
  }
};

// Entries are in non-decreasing `t`, every `t` >= 0, every item name valid.
struct Trace {
  std::string source;  // where the data came from, free text
  std::string start;   // local wall-clock time of t = 0, `YYYY-MM-DDTHH:MM:SS`; may be empty
  std::vector<TraceEntry> entries;
  friend bool operator==(const Trace&, const Trace&) = default;

  // The `t` of the last entry; 0 for an empty trace.
  double duration() const { return entries.empty() ? 0 : entries.back().t; }
};

// openHAB's item name rule (§1): `[a-zA-Z_][a-zA-Z0-9_]*`.
bool IsValidItemName(std::string_view name);

// Seconds since local midnight of a `YYYY-MM-DDTHH:MM:SS` time (a space instead of `T` is
// accepted); nothing when the text is not such a time. Used to phase daily cycles.
std::optional<double> SecondsOfDay(std::string_view local_time);

// Reads a version 1 trace. Every error (code "bad_trace") starts with `source_name:line: ` and
// says what was expected: bad JSON, a missing or unsupported header, a missing or non-numeric
// `t`, a negative or decreasing `t`, an invalid item name, a state that is not a string.
// Blank lines are skipped; unknown fields are ignored (a later version may add some).
Result<Trace> ReadTrace(std::istream& in, std::string_view source_name);
// As ReadTrace, from a file; `path` is the source name.
Result<Trace> ReadTraceFile(const std::string& path);

// Writes `trace` in version 1 form: the header, then one entry a line, `\n` line ends. A `t`
// that is a whole number is written without a fraction. ReadTrace gives `trace` back.
// The caller checks the stream.
void WriteTrace(std::ostream& out, const Trace& trace);
std::string WriteTraceToString(const Trace& trace);

}  // namespace iothub::sim
