#include "connector/log.h"

#include <unistd.h>

#include <array>
#include <utility>

namespace iothub::connector {
namespace {

constexpr std::string_view kRedacted = "<redacted>";

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO ";
    case LogLevel::kWarning:
      return "WARN ";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?    ";
}

void WriteStderr(std::string_view line) {
  // One write(2) per line, so lines of several processes sharing the terminal do not mix.
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

Log::Log(const Clock& wall, LogLevel level, Sink sink)
    : wall_(wall), level_(level), sink_(sink ? std::move(sink) : Sink(WriteStderr)) {}

void Log::AddSecret(std::string secret) {
  if (secret.size() < 6) return;
  std::lock_guard lock(mutex_);
  for (const auto& s : secrets_) {
    if (s == secret) return;
  }
  secrets_.push_back(std::move(secret));
}

std::string Log::Scrub(std::string_view text) const {
  std::string out(text);
  std::lock_guard lock(mutex_);
  for (const auto& secret : secrets_) {
    for (std::size_t at = out.find(secret); at != std::string::npos;
         at = out.find(secret, at + kRedacted.size())) {
      out.replace(at, secret.size(), kRedacted);
    }
  }
  return out;
}

void Log::Write(LogLevel level, std::string_view component, std::string_view message) {
  if (!enabled(level)) return;
  std::string line = fmt::format("{} {} {}: {}", FormatIsoTimeMs(wall_.NowMs()), LevelName(level),
                                 component, message);
  line = Scrub(line);
  // Control characters from outside (an item name, a server's error text) cannot forge lines.
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = ' ';
  }
  line.push_back('\n');
  std::lock_guard lock(mutex_);
  sink_(line);
}

std::string RedactConnectionString(std::string_view text) {
  static constexpr std::array<std::string_view, 5> kKept = {
      "HostName", "DeviceId", "ModuleId", "SharedAccessKeyName", "GatewayHostName"};
  std::string out;
  while (!text.empty()) {
    const std::size_t semi = text.find(';');
    const std::string_view part = text.substr(0, semi);
    text = semi == std::string_view::npos ? std::string_view() : text.substr(semi + 1);
    if (part.empty()) continue;
    if (!out.empty()) out.push_back(';');
    const std::size_t eq = part.find('=');
    const std::string_view name = part.substr(0, eq);
    bool kept = false;
    for (const auto k : kKept) kept = kept || k == name;
    out.append(name);
    if (eq == std::string_view::npos) continue;
    out.push_back('=');
    out.append(kept ? part.substr(eq + 1) : kRedacted);
  }
  return out;
}

std::string RedactUrl(std::string_view url) {
  const std::size_t scheme = url.find("://");
  const std::size_t host_start = scheme == std::string_view::npos ? 0 : scheme + 3;
  std::string_view rest = url.substr(host_start);
  rest = rest.substr(0, rest.find_first_of("?#"));
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  const std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) authority = authority.substr(at + 1);
  std::string out(url.substr(0, host_start));
  out.append(authority);
  if (slash != std::string_view::npos) out.append(rest.substr(slash));
  return out;
}

}  // namespace iothub::connector
