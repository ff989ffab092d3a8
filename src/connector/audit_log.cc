#include "connector/audit_log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/clock.h"
#include "common/json_depth.h"
#include "common/json_fields.h"

namespace iothub::connector {
namespace {

constexpr std::string_view kCutMarker = "…";

Error IoError(std::string_view action, const std::string& path, int err) {
  return MakeError("audit_io",
                   fmt::format("{} the audit log {}: {}", action, path, std::strerror(err)));
}

// `text` with invalid UTF-8 replaced by U+FFFD, through the JSON dump that does it anyway.
std::string ValidUtf8(std::string_view text) {
  const nlohmann::json back =
      nlohmann::json::parse(DumpJson(nlohmann::json(std::string(text))), nullptr, false);
  return back.is_string() ? back.get<std::string>() : std::string();
}

// `text` as valid UTF-8 of at most kMaxAuditTextBytes bytes, cut at a character boundary and
// marked when it was longer. Only a prefix is sanitised, so a 10 MB command costs little.
std::string Bounded(std::string_view text) {
  const bool cut = text.size() > kMaxAuditTextBytes;
  std::string valid = ValidUtf8(cut ? text.substr(0, kMaxAuditTextBytes) : text);
  if (!cut && valid.size() <= kMaxAuditTextBytes) return valid;
  // The prefix may end in half a character (now U+FFFD) or have grown by replacements: cut
  // before the limit, on a character boundary, so the marker fits.
  std::size_t n = std::min(valid.size(), kMaxAuditTextBytes - kCutMarker.size());
  while (n > 0 && (static_cast<unsigned char>(valid[n]) & 0xc0) == 0x80) --n;
  valid.resize(n);
  valid += kCutMarker;
  return valid;
}

std::string ToLine(const AuditRecord& r) {
  nlohmann::ordered_json json;
  json["v"] = kAuditFormatVersion;
  json["time"] = FormatIsoTimeMs(r.time_ms);
  json["path"] = r.path;
  json["id"] = r.request_id;
  json["item"] = r.item;
  json["command"] = r.command;
  json["status"] = r.status;
  json["message"] = r.message;
  json["latency_ms"] = r.latency_ms;
  return json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

// The digits text[pos, pos + len) as a number; nullopt if any is not a digit.
std::optional<int> Digits(std::string_view text, std::size_t pos, std::size_t len) {
  int value = 0;
  for (std::size_t i = pos; i < pos + len; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

// Epoch ms of exactly what FormatIsoTimeMs writes ("2025-06-01T10:00:00.123Z", years
// 0000-9999); nullopt for anything else.
std::optional<std::int64_t> ParseIsoTimeMs(std::string_view t) {
  if (t.size() != 24 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
      t[16] != ':' || t[19] != '.' || t[23] != 'Z') {
    return std::nullopt;
  }
  const auto year = Digits(t, 0, 4);
  const auto month = Digits(t, 5, 2);
  const auto day = Digits(t, 8, 2);
  const auto hour = Digits(t, 11, 2);
  const auto minute = Digits(t, 14, 2);
  const auto second = Digits(t, 17, 2);
  const auto ms = Digits(t, 20, 3);
  if (!year || !month || !day || !hour || !minute || !second || !ms) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year{*year},
                                         std::chrono::month{static_cast<unsigned>(*month)},
                                         std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 59) return std::nullopt;
  const std::int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  return days * 86'400'000 + *hour * 3'600'000LL + *minute * 60'000LL + *second * 1000LL + *ms;
}

// The record of one line; nullopt when it is not a whole record.
std::optional<AuditRecord> ParseLine(std::string_view line) {
  const std::optional<nlohmann::json> doc = ParseUntrustedJson(line);
  if (!doc || !doc->is_object()) return std::nullopt;
  for (const char* key :
       {"time", "path", "id", "item", "command", "status", "message", "latency_ms"}) {
    if (!doc->contains(key)) return std::nullopt;
  }
  AuditRecord r;
  std::string time;
  std::int64_t status = 0;
  if (!json::ReadString(*doc, "time", time) || !json::ReadString(*doc, "path", r.path) ||
      !json::ReadString(*doc, "id", r.request_id) || !json::ReadString(*doc, "item", r.item) ||
      !json::ReadString(*doc, "command", r.command) || !json::ReadInt(*doc, "status", status) ||
      !json::ReadString(*doc, "message", r.message) ||
      !json::ReadInt(*doc, "latency_ms", r.latency_ms)) {
    return std::nullopt;
  }
  const std::optional<std::int64_t> time_ms = ParseIsoTimeMs(time);
  if (!time_ms || status < 0 || status > 999) return std::nullopt;
  r.time_ms = *time_ms;
  r.status = static_cast<int>(status);
  return r;
}

}  // namespace

AuditLog::AuditLog(std::string dir, AuditLogOptions options)
    : path_(std::move(dir) + "/audit.jsonl"), options_(options) {}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(std::string dir, AuditLogOptions options) {
  if (options.max_bytes < 1 || options.keep < 0) {
    return MakeError("bad_argument",
                     fmt::format("the audit log needs max_bytes of at least 1 and keep of at "
                                 "least 0, not max_bytes {} and keep {}",
                                 options.max_bytes, options.keep));
  }
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(dir), options));
  if (Status opened = log->OpenFile(); !opened.ok()) return opened.error();
  return log;
}

AuditLog::~AuditLog() { Close(); }

Status AuditLog::Write(const AuditRecord& given) {
  AuditRecord record = given;
  record.path = Bounded(record.path);
  record.request_id = Bounded(record.request_id);
  record.item = Bounded(record.item);
  record.command = Bounded(record.command);
  record.message = Bounded(record.message);
  ++counts_[{record.path, record.status}];

  const std::string line = ToLine(record);
  if (options_.recent > 0) {
    if (recent_.size() == options_.recent) recent_.pop_front();
    recent_.push_back(std::move(record));
  }

  Status written = OpenFile();
  if (written.ok() && size_ > 0 &&
      size_ + static_cast<std::int64_t>(line.size()) + (needs_newline_ ? 1 : 0) >
          options_.max_bytes) {
    written = Rotate();
    if (written.ok()) written = OpenFile();
  }
  if (written.ok()) written = WriteLine(line);
  if (written.ok()) {
    reported_.clear();
    return Ok{};
  }
  ++errors_;
  last_error_ = written.error().message;
  if (!reported_.insert(last_error_).second) return Ok{};
  return written;
}

Status AuditLog::OpenFile() {
  if (fd_ >= 0) return Ok{};
  // O_RDWR only to read the last byte back. fchmod: the umask must not widen or narrow it.
  const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot open", path_, errno);
  struct stat st {};
  if (::fchmod(fd, 0600) != 0 || ::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError("cannot open", path_, err);
  }
  char last = '\n';
  if (st.st_size > 0 && ::pread(fd, &last, 1, st.st_size - 1) != 1) {
    const int err = errno;
    ::close(fd);
    return IoError("cannot read", path_, err);
  }
  fd_ = fd;
  size_ = st.st_size;
  needs_newline_ = last != '\n';
  return Ok{};
}

Status AuditLog::Rotate() {
  Close();
  const auto rotated = [this](int n) { return path_ + "." + std::to_string(n); };
  if (options_.keep == 0) {
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
      return IoError("cannot remove", path_, errno);
    }
    return Ok{};
  }
  // Shift only up to the first missing file: after a rotation that failed halfway, a retry
  // must not push the files already moved one place further, losing one each time. rename()
  // replaces its target, so when none is missing .keep, the oldest, goes.
  int top = 1;
  while (top < options_.keep && ::access(rotated(top).c_str(), F_OK) == 0) ++top;
  for (int n = top - 1; n >= 0; --n) {
    const std::string from = n == 0 ? path_ : rotated(n);
    if (::rename(from.c_str(), rotated(n + 1).c_str()) != 0 && errno != ENOENT) {
      return IoError("cannot rotate", from, errno);
    }
  }
  return Ok{};
}

Status AuditLog::WriteLine(std::string_view line) {
  std::string bytes;
  if (needs_newline_) bytes += '\n';
  bytes += line;
  std::string_view rest = bytes;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      // A partial line would glue itself to the next one: cut it off (best effort; if that
      // fails too, the next Open sees the torn end and starts on a new line).
      if (::ftruncate(fd_, size_) != 0) needs_newline_ = true;
      Close();
      return IoError("cannot write", path_, err);
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  size_ += static_cast<std::int64_t>(bytes.size());
  needs_newline_ = false;
  return Ok{};
}

void AuditLog::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<AuditFile> AuditLog::ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot read", path, errno);
  std::string text;
  std::array<char, 65536> buffer{};
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return IoError("cannot read", path, err);
    }
    if (n == 0) break;
    text.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  AuditFile file;
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t end = rest.find('\n');
    // A line without its newline was torn, even if what was written happens to parse.
    std::optional<AuditRecord> record;
    if (end != std::string_view::npos) record = ParseLine(rest.substr(0, end));
    if (record) {
      file.records.push_back(std::move(*record));
    } else {
      ++file.skipped_lines;
    }
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
  }
  return file;
}

}  // namespace iothub::connector
