// The audit of cloud commands (issue 11): every command that reaches the connector by a direct
// method, a cloud-to-device message or a desired property, with its outcome and latency, as one
// JSON object per line in `<store>/audit.jsonl`, rotated and bounded; the last few in memory
// for `iothub-connector status`, and counts by path and status for the metrics.
//
// A line holds exactly these members, in this order, and nothing else (no secrets can reach it
// unless a caller puts one in `message`):
//   {"time":"2025-06-01T10:00:00.123Z","path":"method","id":"7","item":"Light",
//    "command":"ON","status":200,"message":"accepted","latency_ms":12}
// Text members are valid UTF-8 (invalid bytes become U+FFFD) and at most kMaxAuditTextBytes
// bytes (a longer text is cut at a character boundary and ends with "…"). Readers ignore
// members they do not know, so later versions may add some.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace iothub::connector {

// One command and what became of it.
struct AuditRecord {
  std::int64_t time_ms = 0;     // wall clock, epoch ms, when the command arrived
  std::string path;             // "method" | "c2d" | "desired"
  std::string request_id;       // the method's $rid, the C2D message id, the desired $version
  std::string item;             // the item it was meant for, as received
  std::string command;          // the command text, as received
  int status = 0;               // the answer: 200 202 400 403 404 405 429 502 504 (issue 11)
  std::string message;          // a short reason; never a secret
  std::int64_t latency_ms = 0;  // from arrival to answer
};

// The version of an audit line's layout (its "v" member, docs/commands.md); raised on
// incompatible changes only: members are only ever added, and readers ignore unknown ones.
inline constexpr int kAuditFormatVersion = 1;

// The most bytes of a text member in the file and in AuditLog::recent(), "…" included.
inline constexpr std::size_t kMaxAuditTextBytes = 256;

// Sizes.
struct AuditLogOptions {
  std::int64_t max_bytes = 1 << 20;  // a file is rotated before a line would take it past this
  int keep = 3;                      // rotated files kept: audit.jsonl.1 (newest) .. .keep
  std::size_t recent = 20;           // records kept in memory for recent()
};

// What ReadFile found.
struct AuditFile {
  std::vector<AuditRecord> records;  // in file order
  // Lines that are not a whole record, skipped: a torn last line (a crash or power cut while
  // writing), or such a line followed by the lines written after the restart.
  int skipped_lines = 0;
};

// Appends audit records to `<dir>/audit.jsonl` (mode 0600, O_APPEND) and keeps the recent
// ones and the counts. Each line goes to the OS by write(2) as it comes, without fsync: a power
// cut may lose the last lines, which an audit of home commands accepts; a crash of the
// process loses nothing written. Before a line would take the file past max_bytes, the file
// becomes audit.jsonl.1 (.1 becomes .2, ..., the oldest, .keep, is overwritten), so the files
// hold at most about (keep + 1) × max_bytes. Disk errors never stop the daemon: the record
// is dropped from the file (still counted and kept in memory), and the next Write retries
// from a fresh open. Not thread-safe: one owner, the loop thread.
class AuditLog {
 public:
  // Opens (creates) `<dir>/audit.jsonl`; `dir` must exist, it is not created. Errors:
  // "bad_argument" for max_bytes < 1 or keep < 0, "audit_io" when the file cannot be
  // opened (a store the connector cannot write should stop it at start, not in a command).
  static Result<std::unique_ptr<AuditLog>> Open(std::string dir, AuditLogOptions options = {});
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Records `record` (its text members made valid and bounded): in counts() and recent()
  // always, in the file when the disk allows. An error (code "audit_io", naming the file and
  // the system's reason) only the first time a failure with that text happens since the last
  // successful write, so that the caller can log every error it gets without flooding; a
  // record dropped for a failure already reported returns ok. errors() counts every drop.
  Status Write(const AuditRecord& record);

  // The last `recent` records given to Write, oldest first, written to the file or not.
  const std::deque<AuditRecord>& recent() const { return recent_; }
  // Records given to Write since Open, by (path, status).
  const std::map<std::pair<std::string, int>, std::int64_t>& counts() const { return counts_; }
  // Records the file missed, and the text of the most recent failure ("" if none yet).
  std::int64_t errors() const { return errors_; }
  const std::string& last_error() const { return last_error_; }
  // `<dir>/audit.jsonl`.
  const std::string& file_path() const { return path_; }

  // The records of an audit file (the current one or a rotated one). Lines that do not parse
  // are skipped and counted. An error (code "audit_io") only when the file cannot be read.
  static Result<AuditFile> ReadFile(const std::string& path);

 private:
  AuditLog(std::string dir, AuditLogOptions options);
  // Opens the file if it is not open; on failure fd_ stays -1.
  Status OpenFile();
  // Closes the file and shifts it to .1, the older ones up to .keep.
  Status Rotate();
  // Writes one line; on failure the partial line is cut off and the file closed.
  Status WriteLine(std::string_view line);
  void Close();

  const std::string path_;
  const AuditLogOptions options_;
  int fd_ = -1;
  std::int64_t size_ = 0;       // the open file's size
  bool needs_newline_ = false;  // the open file ends in a torn line: start on a new one
  std::deque<AuditRecord> recent_;
  std::map<std::pair<std::string, int>, std::int64_t> counts_;
  std::int64_t errors_ = 0;
  std::string last_error_;
  std::set<std::string> reported_;  // failure texts reported since the last successful write
};

}  // namespace iothub::connector
