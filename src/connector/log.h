// The daemon's log: one line per event on stderr (or any sink), `2026-12-02T10:00:00.123Z
// INFO  hub: connected`, with secrets kept out by two rules (STYLE.md §10):
// - what is printed is built by allowlist: connection strings only through
//   RedactConnectionString (the names of their parts and the allowlisted values), URLs only
//   through RedactUrl (no user info, no query);
// - as a last line of defence every registered secret (keys, tokens, signatures) is replaced
//   by `<redacted>` wherever it appears, so an error text that quotes one is still safe.
// Thread-safe: lines from several threads never interleave.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"

namespace iothub::connector {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

class Log {
 public:
  using Sink = std::function<void(std::string_view line)>;
  // Writes to stderr by default; `wall` stamps the lines and must outlive the log.
  explicit Log(const Clock& wall, LogLevel level = LogLevel::kInfo, Sink sink = nullptr);

  // A secret to scrub from every later line (ignored when shorter than 6 characters, which
  // would scrub ordinary words).
  void AddSecret(std::string secret);
  void set_level(LogLevel level) { level_ = level; }
  bool enabled(LogLevel level) const { return level >= level_; }

  void Write(LogLevel level, std::string_view component, std::string_view message);

  template <typename... Args>
  void Debug(std::string_view component, fmt::format_string<Args...> format, Args&&... args) {
    if (enabled(LogLevel::kDebug))
      Write(LogLevel::kDebug, component, fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void Info(std::string_view component, fmt::format_string<Args...> format, Args&&... args) {
    if (enabled(LogLevel::kInfo))
      Write(LogLevel::kInfo, component, fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void Warn(std::string_view component, fmt::format_string<Args...> format, Args&&... args) {
    if (enabled(LogLevel::kWarning))
      Write(LogLevel::kWarning, component, fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void Error(std::string_view component, fmt::format_string<Args...> format, Args&&... args) {
    Write(LogLevel::kError, component, fmt::format(format, std::forward<Args>(args)...));
  }

  // What Write would print for `text` (secrets scrubbed). For other outputs (status, errors).
  std::string Scrub(std::string_view text) const;

 private:
  const Clock& wall_;
  LogLevel level_;
  Sink sink_;
  mutable std::mutex mutex_;
  std::vector<std::string> secrets_;  // guarded by mutex_
};

// `HostName=h;SharedAccessKeyName=p;SharedAccessKey=<redacted>`: the values of HostName,
// DeviceId, ModuleId, SharedAccessKeyName and GatewayHostName are kept, every other part's
// value is replaced.
std::string RedactConnectionString(std::string_view text);
// `scheme://host:port/path` without user info, query or fragment.
std::string RedactUrl(std::string_view url);

}  // namespace iothub::connector
