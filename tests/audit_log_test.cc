// The audit of cloud commands: lines with every field read back, the time format, the file's
// mode, rotation and the bound on disk, long and invalid commands, a directory that cannot be
// written (reported once, counted, recovered from), the recent ring, the counts, and torn
// lines. Real files in a temp dir.
#include "connector/audit_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/emulator_fixture.h"

namespace iothub::connector {
namespace {

namespace fs = std::filesystem;

AuditRecord Record(const std::string& id, const std::string& path = "method", int status = 200) {
  AuditRecord r;
  r.time_ms = 1'700'000'000'123;
  r.path = path;
  r.request_id = id;
  r.item = "Light";
  r.command = "ON";
  r.status = status;
  r.message = "accepted";
  r.latency_ms = 12;
  return r;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void AppendRaw(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << bytes;
}

// The request ids of the records in `path`; a file that cannot be read has none.
std::vector<std::string> Ids(const std::string& path) {
  std::vector<std::string> ids;
  const Result<AuditFile> file = AuditLog::ReadFile(path);
  if (!file.ok()) return ids;
  for (const AuditRecord& r : file->records) ids.push_back(r.request_id);
  return ids;
}

// An audit log that opened, or the test fails.
std::unique_ptr<AuditLog> MustOpen(const std::string& dir, AuditLogOptions options = {}) {
  Result<std::unique_ptr<AuditLog>> log = AuditLog::Open(dir, options);
  EXPECT_TRUE(log.ok()) << log.error().message;
  if (!log.ok()) std::abort();
  return std::move(log).value();
}

// The bytes one line of Record(id) takes.
std::int64_t LineBytes(const std::string& id) {
  const testing::TempDir dir;
  const auto log = MustOpen(dir.path());
  EXPECT_TRUE(log->Write(Record(id)).ok());
  return static_cast<std::int64_t>(fs::file_size(log->file_path()));
}

void ExpectSameRecord(const AuditRecord& a, const AuditRecord& b) {
  EXPECT_EQ(a.time_ms, b.time_ms);
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.request_id, b.request_id);
  EXPECT_EQ(a.item, b.item);
  EXPECT_EQ(a.command, b.command);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.latency_ms, b.latency_ms);
}

TEST(AuditLogTest, AppendsOneLinePerRecordWithEveryField) {
  const testing::TempDir dir;
  const auto log = MustOpen(dir.path());
  AuditRecord second;
  second.time_ms = 1'750'000'000'007;
  second.path = "desired";
  second.request_id = "42";
  second.item = "Heating_Setpoint";
  second.command = "21.5 °C";
  second.status = 429;
  second.message = "rate limited: 10 commands per minute";
  second.latency_ms = 0;
  ASSERT_TRUE(log->Write(Record("7")).ok());
  ASSERT_TRUE(log->Write(second).ok());

  EXPECT_EQ(log->file_path(), dir.path() + "/audit.jsonl");
  EXPECT_EQ(Slurp(log->file_path()),
            "{\"v\":1,\"time\":\"2023-11-14T22:13:20.123Z\",\"path\":\"method\",\"id\":\"7\","
            "\"item\":\"Light\",\"command\":\"ON\",\"status\":200,\"message\":\"accepted\","
            "\"latency_ms\":12}\n"
            "{\"v\":1,\"time\":\"2025-06-15T15:06:40.007Z\",\"path\":\"desired\",\"id\":\"42\","
            "\"item\":\"Heating_Setpoint\",\"command\":\"21.5 °C\",\"status\":429,"
            "\"message\":\"rate limited: 10 commands per minute\",\"latency_ms\":0}\n");
  const Result<AuditFile> file = AuditLog::ReadFile(log->file_path());
  ASSERT_TRUE(file.ok()) << file.error().message;
  ASSERT_EQ(file->records.size(), 2u);
  EXPECT_EQ(file->skipped_lines, 0);
  ExpectSameRecord(file->records[0], Record("7"));
  ExpectSameRecord(file->records[1], second);
  EXPECT_EQ(log->errors(), 0);
  EXPECT_EQ(log->last_error(), "");
}

TEST(AuditLogTest, WritesTimeAsIsoUtcWithMillisecondsAndReadsItBack) {
  const testing::TempDir dir;
  const auto log = MustOpen(dir.path());
  const std::vector<std::pair<std::int64_t, std::string>> cases = {
      {0, "1970-01-01T00:00:00.000Z"},
      {951'782'400'999, "2000-02-29T00:00:00.999Z"},
      {1'700'000'000'123, "2023-11-14T22:13:20.123Z"},
      {4'102'444'799'001, "2099-12-31T23:59:59.001Z"},
  };
  for (const auto& [ms, text] : cases) {
    AuditRecord r = Record("t");
    r.time_ms = ms;
    ASSERT_TRUE(log->Write(r).ok());
  }
  std::istringstream lines(Slurp(log->file_path()));
  std::string line;
  std::vector<std::string> times;
  while (std::getline(lines, line)) times.push_back(nlohmann::json::parse(line)["time"]);
  const Result<AuditFile> file = AuditLog::ReadFile(log->file_path());
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(times.size(), cases.size());
  ASSERT_EQ(file->records.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(times[i], cases[i].second);
    EXPECT_EQ(file->records[i].time_ms, cases[i].first);
  }
}

TEST(AuditLogTest, FileHasMode0600WhateverTheUmaskAndItsOldMode) {
  const testing::TempDir dir;
  const mode_t old_umask = ::umask(0);
  {
    const auto log = MustOpen(dir.path());
    ASSERT_TRUE(log->Write(Record("1")).ok());
  }
  ::umask(old_umask);
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() + "/audit.jsonl").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  ASSERT_EQ(::chmod((dir.path() + "/audit.jsonl").c_str(), 0644), 0);
  const auto reopened = MustOpen(dir.path());
  ASSERT_TRUE(reopened->Write(Record("2")).ok());
  ASSERT_EQ(::stat((dir.path() + "/audit.jsonl").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(Ids(dir.path() + "/audit.jsonl"), (std::vector<std::string>{"1", "2"}));
}

TEST(AuditLogTest, RotatesBeforeMaxBytesKeepingKeepFilesAndDroppingTheOldest) {
  const std::int64_t line = LineBytes("r0");
  const testing::TempDir dir;
  const auto log = MustOpen(dir.path(), {.max_bytes = 3 * line, .keep = 2, .recent = 20});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(log->Write(Record("r" + std::to_string(i))).ok());

  const std::string base = dir.path() + "/audit.jsonl";
  EXPECT_EQ(Ids(base + ".2"), (std::vector<std::string>{"r3", "r4", "r5"}));
  EXPECT_EQ(Ids(base + ".1"), (std::vector<std::string>{"r6", "r7", "r8"}));
  EXPECT_EQ(Ids(base), (std::vector<std::string>{"r9"}));
  EXPECT_FALSE(fs::exists(base + ".3"));
  EXPECT_EQ(fs::file_size(base + ".1"), static_cast<std::uintmax_t>(3 * line));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 3);
}

// A rotation that failed halfway (or a user's rm) leaves a gap: the next one fills it, so a
// retry never pushes the files already moved one place further (losing one each time).
TEST(AuditLogTest, RotationFillsAGapInsteadOfShiftingPastIt) {
  const std::int64_t line = LineBytes("r0");
  const testing::TempDir dir;
  const auto log = MustOpen(dir.path(), {.max_bytes = 2 * line, .keep = 3, .recent = 20});
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(log->Write(Record("r" + std::to_string(i))).ok());
  const std::string base = dir.path() + "/audit.jsonl";
  ASSERT_EQ(Ids(base + ".2"), (std::vector<std::string>{"r0", "r1"}));
  fs::remove(base + ".1");
  ASSERT_TRUE(log->Write(Record("r6")).ok());
  EXPECT_EQ(Ids(base + ".2"), (std::vector<std::string>{"r0", "r1"}));
  EXPECT_EQ(Ids(base + ".1"), (std::vector<std::string>{"r4", "r5"}));
  EXPECT_EQ(Ids(base), (std::vector<std::string>{"r6"}));
  EXPECT_FALSE(fs::exists(base + ".3"));
}

TEST(AuditLogTest, KeepZeroStartsAfreshWithoutRotatedFiles) {
  const std::int64_t line = LineBytes("r0");
  const testing::TempDir dir;
  const auto log = MustOpen(dir.path(), {.max_bytes = 2 * line, .keep = 0, .recent = 20});
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->Write(Record("r" + std::to_string(i))).ok());
  EXPECT_EQ(Ids(log->file_path()), (std::vector<std::string>{"r4"}));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(AuditLogTest, TenThousandRecordsStayWithinTheBoundAndTheNewestAreKept) {
  constexpr std::int64_t kMaxBytes = 4096;
  const testing::TempDir dir;
  const auto log = MustOpen(dir.path(), {.max_bytes = kMaxBytes, .keep = 3, .recent = 20});
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_TRUE(log->Write(Record(std::to_string(i))).ok());
  }
  const std::string base = dir.path() + "/audit.jsonl";
  std::uintmax_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_LE(entry.file_size(), static_cast<std::uintmax_t>(kMaxBytes)) << entry.path();
    total += entry.file_size();
  }
  EXPECT_LE(total, static_cast<std::uintmax_t>(4 * kMaxBytes));
  EXPECT_GT(total, static_cast<std::uintmax_t>(3 * kMaxBytes));
  EXPECT_TRUE(fs::exists(base + ".3"));
  EXPECT_FALSE(fs::exists(base + ".4"));
  // Each rotated file is as full as whole lines allow (the last ids all have 4 digits); read
  // oldest first, the ids are consecutive and end with the last one written.
  const std::size_t per_file = static_cast<std::size_t>(kMaxBytes / LineBytes("9999"));
  std::vector<std::string> ids;
  for (const std::string& name : {base + ".3", base + ".2", base + ".1", base}) {
    const std::vector<std::string> more = Ids(name);
    if (name != base) {
      EXPECT_EQ(more.size(), per_file) << name;
    }
    ids.insert(ids.end(), more.begin(), more.end());
  }
  ASSERT_GT(ids.size(), 3 * per_file);
  ASSERT_LE(ids.size(), 4 * per_file);
  const int first = std::stoi(ids.front());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(ids[i], std::to_string(first + static_cast<int>(i)));
  }
  EXPECT_EQ(ids.back(), "9999");
  EXPECT_EQ(log->counts().at({"method", 200}), 10'000);
  EXPECT_EQ(log->errors(), 0);
}

TEST(AuditLogTest, LongAndInvalidTextIsCutAndMadeValidUtf8) {
  const testing::TempDir dir;
  const auto log = MustOpen(dir.path());
  AuditRecord big = Record("big");
  big.command = std::string(10'000, 'x');
  AuditRecord invalid = Record("bad\xff");
  invalid.command = "O\xc3N\xff";
  invalid.item = "L\xe2\x82";
  // A 3-byte character straddles the cut: it goes whole, not halved.
  AuditRecord straddle = Record("straddle");
  straddle.command = std::string(252, 'a') + "€€€";
  ASSERT_TRUE(log->Write(big).ok());
  ASSERT_TRUE(log->Write(invalid).ok());
  ASSERT_TRUE(log->Write(straddle).ok());

  const std::string text = Slurp(log->file_path());
  std::istringstream lines(text);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    ++count;
    const nlohmann::json doc = nlohmann::json::parse(line, nullptr, false);
    EXPECT_TRUE(doc.is_object()) << line;
    EXPECT_LT(line.size(), 600u);
  }
  EXPECT_EQ(count, 3);
  const Result<AuditFile> file = AuditLog::ReadFile(log->file_path());
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(file->records.size(), 3u);
  EXPECT_EQ(file->records[0].command, std::string(253, 'x') + "…");
  EXPECT_EQ(file->records[0].command.size(), kMaxAuditTextBytes);
  EXPECT_EQ(file->records[1].request_id, "bad\xef\xbf\xbd");
  EXPECT_EQ(file->records[1].command, "O\xef\xbf\xbdN\xef\xbf\xbd");
  EXPECT_EQ(file->records[1].item, "L\xef\xbf\xbd");
  EXPECT_EQ(file->records[2].command, std::string(252, 'a') + "…");
  // What status shows is what the file holds.
  ASSERT_EQ(log->recent().size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) ExpectSameRecord(log->recent()[i], file->records[i]);
}

TEST(AuditLogTest, OpenRefusesAStoreItCannotWriteAndOptionsWithoutABound) {
  const testing::TempDir dir;
  // A regular file where the directory should be: fails for root too.
  const std::string store = dir.path() + "/store";
  AppendRaw(store, "not a directory");
  const Result<std::unique_ptr<AuditLog>> unwritable = AuditLog::Open(store);
  ASSERT_FALSE(unwritable.ok());
  EXPECT_EQ(unwritable.error().code, "audit_io");
  EXPECT_EQ(unwritable.error().message,
            "cannot open the audit log " + store + "/audit.jsonl: Not a directory");

  const auto no_bytes = AuditLog::Open(dir.path(), {.max_bytes = 0, .keep = 3, .recent = 20});
  ASSERT_FALSE(no_bytes.ok());
  EXPECT_EQ(no_bytes.error().code, "bad_argument");
  EXPECT_EQ(no_bytes.error().message,
            "the audit log needs max_bytes of at least 1 and keep of at least 0, not "
            "max_bytes 0 and keep 3");
  const auto negative_keep =
      AuditLog::Open(dir.path(), {.max_bytes = 1024, .keep = -1, .recent = 20});
  ASSERT_FALSE(negative_keep.ok());
  EXPECT_EQ(negative_keep.error().code, "bad_argument");
  EXPECT_FALSE(fs::exists(dir.path() + "/audit.jsonl"));
}

TEST(AuditLogTest, StoreLostWhileRunningIsReportedOncePerErrorCountedAndRecoveredFrom) {
  const std::int64_t line = LineBytes("r0");
  const testing::TempDir dir;
  const std::string store = dir.path() + "/store";
  fs::create_directory(store);
  const auto log = MustOpen(store, {.max_bytes = 2 * line, .keep = 1, .recent = 20});
  ASSERT_TRUE(log->Write(Record("r0")).ok());
  ASSERT_TRUE(log->Write(Record("r1")).ok());
  // The store goes away and a regular file takes its name: fails for root too.
  fs::rename(store, store + ".old");
  AppendRaw(store, "not a directory");

  const Status rotate = log->Write(Record("r2"));  // the file is full: rotation first
  ASSERT_FALSE(rotate.ok());
  EXPECT_EQ(rotate.error().code, "audit_io");
  EXPECT_EQ(rotate.error().message,
            "cannot rotate the audit log " + store + "/audit.jsonl: Not a directory");
  EXPECT_EQ(log->errors(), 1);
  const Status open = log->Write(Record("r3"));  // a new text: reported
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.error().message,
            "cannot open the audit log " + store + "/audit.jsonl: Not a directory");
  EXPECT_EQ(log->errors(), 2);
  EXPECT_TRUE(log->Write(Record("r4")).ok());  // the same again: dropped, counted, not reported
  EXPECT_EQ(log->errors(), 3);
  EXPECT_EQ(log->last_error(), open.error().message);
  // Still counted and shown.
  EXPECT_EQ(log->counts().at({"method", 200}), 5);
  EXPECT_EQ(log->recent().size(), 5u);

  fs::remove(store);
  fs::rename(store + ".old", store);
  ASSERT_TRUE(log->Write(Record("r5")).ok());
  EXPECT_EQ(log->errors(), 3);
  EXPECT_EQ(Ids(store + "/audit.jsonl.1"), (std::vector<std::string>{"r0", "r1"}));
  EXPECT_EQ(Ids(store + "/audit.jsonl"), (std::vector<std::string>{"r5"}));
}

TEST(AuditLogTest, FailedRotationDropsTheRecordKeepsTheBoundAndIsRetried) {
  const std::int64_t line = LineBytes("r0");
  const testing::TempDir dir;
  const auto log = MustOpen(dir.path(), {.max_bytes = 2 * line, .keep = 1, .recent = 20});
  const std::string base = dir.path() + "/audit.jsonl";
  // A non-empty directory where the rotated file goes: rename() refuses it, root or not.
  fs::create_directory(base + ".1");
  AppendRaw(base + ".1/blocker", "x");
  ASSERT_TRUE(log->Write(Record("r0")).ok());
  ASSERT_TRUE(log->Write(Record("r1")).ok());

  const Status failed = log->Write(Record("r2"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "cannot rotate the audit log " + base + ": Is a directory");
  EXPECT_EQ(log->errors(), 1);
  EXPECT_EQ(fs::file_size(base), static_cast<std::uintmax_t>(2 * line));

  fs::remove_all(base + ".1");
  ASSERT_TRUE(log->Write(Record("r3")).ok());
  EXPECT_EQ(Ids(base + ".1"), (std::vector<std::string>{"r0", "r1"}));
  EXPECT_EQ(Ids(base), (std::vector<std::string>{"r3"}));
  EXPECT_EQ(log->errors(), 1);
  // After a success the same failure is news again.
  ASSERT_TRUE(log->Write(Record("r4")).ok());
  fs::remove(base + ".1");
  fs::create_directory(base + ".1");
  AppendRaw(base + ".1/blocker", "x");
  EXPECT_FALSE(log->Write(Record("r5")).ok());
  EXPECT_EQ(log->errors(), 2);
}

TEST(AuditLogTest, RecentKeepsOnlyTheLastN) {
  const testing::TempDir dir;
  const auto log = MustOpen(dir.path(), {.max_bytes = 1 << 20, .keep = 3, .recent = 3});
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->Write(Record(std::to_string(i))).ok());
  std::vector<std::string> ids;
  for (const AuditRecord& r : log->recent()) ids.push_back(r.request_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"2", "3", "4"}));
  EXPECT_EQ(Ids(log->file_path()).size(), 5u);
}

TEST(AuditLogTest, CountsByPathAndStatus) {
  const testing::TempDir dir;
  const auto log = MustOpen(dir.path());
  ASSERT_TRUE(log->Write(Record("1", "method", 200)).ok());
  ASSERT_TRUE(log->Write(Record("2", "method", 200)).ok());
  ASSERT_TRUE(log->Write(Record("3", "method", 403)).ok());
  ASSERT_TRUE(log->Write(Record("4", "c2d", 429)).ok());
  ASSERT_TRUE(log->Write(Record("5", "desired", 200)).ok());
  ASSERT_TRUE(log->Write(Record("6", "c2d", 429)).ok());
  const std::map<std::pair<std::string, int>, std::int64_t> expected = {
      {{"c2d", 429}, 2}, {{"desired", 200}, 1}, {{"method", 200}, 2}, {{"method", 403}, 1}};
  EXPECT_EQ(log->counts(), expected);
}

TEST(AuditLogTest, ReadFileSkipsATornLastLine) {
  const testing::TempDir dir;
  {
    const auto log = MustOpen(dir.path());
    ASSERT_TRUE(log->Write(Record("1")).ok());
    ASSERT_TRUE(log->Write(Record("2")).ok());
  }
  const std::string path = dir.path() + "/audit.jsonl";
  AppendRaw(path, "{\"time\":\"2023-11-14T22:1");
  Result<AuditFile> file = AuditLog::ReadFile(path);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->records.size(), 2u);
  EXPECT_EQ(file->skipped_lines, 1);

  // A last line that parses but lost its newline was torn too.
  const std::string whole = dir.path() + "/whole.jsonl";
  std::string text = Slurp(path);
  text.resize(text.rfind('\n'));
  AppendRaw(whole, text);
  file = AuditLog::ReadFile(whole);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->records.size(), 1u);
  EXPECT_EQ(file->skipped_lines, 1);
}

TEST(AuditLogTest, AfterATornLineTheNextRunStartsOnANewLine) {
  const testing::TempDir dir;
  const std::string path = dir.path() + "/audit.jsonl";
  {
    const auto log = MustOpen(dir.path());
    ASSERT_TRUE(log->Write(Record("1")).ok());
  }
  AppendRaw(path, "{\"time\":\"2023");
  const auto log = MustOpen(dir.path());
  ASSERT_TRUE(log->Write(Record("2")).ok());
  const Result<AuditFile> file = AuditLog::ReadFile(path);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(Ids(path), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(file->skipped_lines, 1);
}

TEST(AuditLogTest, ReadFileOfAMissingFileIsAnError) {
  const testing::TempDir dir;
  const Result<AuditFile> file = AuditLog::ReadFile(dir.path() + "/none.jsonl");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.error().code, "audit_io");
  EXPECT_EQ(file.error().message,
            "cannot read the audit log " + dir.path() + "/none.jsonl: No such file or directory");
}

}  // namespace
}  // namespace iothub::connector
