#include "connector/outbox.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>
#include <unordered_set>

#include "common/json_depth.h"

namespace iothub::connector {
namespace {

// The on-disk format (docs/outbox.md). PRAGMA application_id marks the file as an outbox
// ("IHOB"); PRAGMA user_version and the meta row carry the version.
constexpr std::int64_t kApplicationId = 0x49484F42;
constexpr std::int64_t kFormatVersion = 1;
constexpr std::int64_t kMinMaxBytes = std::int64_t{128} << 10;
constexpr const char* kFileName = "outbox.sqlite";
constexpr const char* kMetaFormat = "outbox.format_version";
constexpr const char* kMetaNextId = "outbox.next_entry_id";
constexpr const char* kMetaSynced = "outbox.synced_ms";
constexpr std::size_t kKeptBatchCapacity = 256;  // rows a batch keeps room for between commits

// Filled in with the application id and the format version.
constexpr const char* kSchema = R"sql(
BEGIN;
CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE entries(
  id INTEGER PRIMARY KEY,
  first_id INTEGER NOT NULL,
  last_id INTEGER NOT NULL,
  accepted_ms INTEGER NOT NULL,
  kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 2),
  priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 2),
  key TEXT NOT NULL,
  type TEXT NOT NULL,
  value TEXT NOT NULL,
  unit TEXT NOT NULL,
  state TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  count INTEGER NOT NULL,
  first_ms INTEGER NOT NULL,
  min REAL,
  max REAL);
CREATE INDEX entries_order ON entries(priority, first_id);
CREATE UNIQUE INDEX entries_snapshot ON entries(key) WHERE kind = 1;
CREATE TABLE messages(
  seq INTEGER PRIMARY KEY,
  message_id TEXT NOT NULL UNIQUE,
  device_id TEXT NOT NULL,
  body TEXT NOT NULL,
  properties TEXT NOT NULL,
  content_type TEXT NOT NULL,
  content_encoding TEXT NOT NULL,
  creation_time TEXT NOT NULL,
  billed_chunks INTEGER NOT NULL,
  sequence INTEGER NOT NULL,
  sealed_ms INTEGER NOT NULL);
INSERT INTO meta(key, value) VALUES ('outbox.format_version', '{1}');
PRAGMA application_id = {0};
PRAGMA user_version = {1};
COMMIT;
)sql";

constexpr const char* kEntryColumns =
    "id, first_id, last_id, accepted_ms, kind, priority, key, type, value, unit, state, time_ms, "
    "count, first_ms, min, max";

constexpr std::int64_t kNoLimit = std::numeric_limits<std::int64_t>::max();

// Stable numbers for the file, whatever the enums' order.
int KindCode(EntryKind kind) {
  switch (kind) {
    case EntryKind::kChange:
      return 0;
    case EntryKind::kSnapshot:
      return 1;
    case EntryKind::kThing:
      return 2;
  }
  return 0;
}
EntryKind KindFromCode(std::int64_t code) {
  return code == 1 ? EntryKind::kSnapshot : code == 2 ? EntryKind::kThing : EntryKind::kChange;
}
int PriorityCode(Priority priority) {
  switch (priority) {
    case Priority::kHigh:
      return 0;
    case Priority::kNormal:
      return 1;
    case Priority::kLow:
      return 2;
  }
  return 1;
}
Priority PriorityFromCode(std::int64_t code) {
  return code == 0 ? Priority::kHigh : code == 2 ? Priority::kLow : Priority::kNormal;
}

// Binds, steps and resets one prepared statement; the statement is ready for reuse when this
// goes out of scope.
class Use {
 public:
  explicit Use(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Use() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

  Use& Bind(int index, std::int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }
  Use& Bind(int index, std::string_view value) {
    sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    return *this;
  }
  Use& Bind(int index, std::optional<double> value) {
    if (value) {
      sqlite3_bind_double(stmt_, index, *value);
    } else {
      sqlite3_bind_null(stmt_, index);
    }
    return *this;
  }
  int Step() { return sqlite3_step(stmt_); }

 private:
  sqlite3_stmt* stmt_;
};

std::int64_t Int(sqlite3_stmt* stmt, int column) {
  return static_cast<std::int64_t>(sqlite3_column_int64(stmt, column));
}
std::string Text(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  return text ? std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)))
              : std::string();
}
std::optional<double> OptionalDouble(sqlite3_stmt* stmt, int column) {
  if (sqlite3_column_type(stmt, column) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_double(stmt, column);
}

std::int64_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::int64_t>(size);
}

Priority Higher(Priority a, Priority b) { return PriorityCode(a) <= PriorityCode(b) ? a : b; }

}  // namespace

// Folds rows of one key into one: the newest state, the highest priority, the sum of counts,
// the oldest times and place, min/max over every numeric value and earlier min/max. The id is
// left to the caller.
Outbox::Row Outbox::FoldRows(const std::vector<const Row*>& rows) {
  const Row* newest = rows.front();
  for (const Row* row : rows) {
    if (row->last_id > newest->last_id) newest = row;
  }
  Row out = *newest;
  Entry& e = out.entry;
  e.id = 0;
  e.count = 0;
  e.min.reset();
  e.max.reset();
  e.first_ms = kNoLimit;
  auto widen = [&e](double v) {
    e.min = e.min ? std::min(*e.min, v) : v;
    e.max = e.max ? std::max(*e.max, v) : v;
  };
  for (const Row* row : rows) {
    const Entry& r = row->entry;
    e.count += std::max<std::int64_t>(r.count, 1);
    e.priority = Higher(e.priority, r.priority);
    e.first_ms = std::min(e.first_ms, r.first_ms > 0 ? r.first_ms : r.time_ms);
    if (r.value.is_number()) widen(r.value.get<double>());
    if (r.min) widen(*r.min);
    if (r.max) widen(*r.max);
    out.first_id = std::min(out.first_id, row->first_id);
    out.accepted_ms = std::min(out.accepted_ms, row->accepted_ms);
  }
  return out;
}

// A thing's status changes merge into one; an item's changes merge into one together with its
// snapshots older than its newest change (latest state wins). A snapshot newer than every
// change of its item stays as it is.
Outbox::KeyMerge Outbox::MergeKeyRows(const std::vector<Row>& rows) {
  KeyMerge result;
  std::vector<const Row*> things;
  std::vector<const Row*> items;
  std::int64_t newest_change = 0;
  for (const Row& row : rows) {
    if (row.entry.kind == EntryKind::kThing) things.push_back(&row);
    if (row.entry.kind == EntryKind::kChange) newest_change = std::max(newest_change, row.last_id);
  }
  for (const Row& row : rows) {
    if (row.entry.kind == EntryKind::kChange ||
        (row.entry.kind == EntryKind::kSnapshot && row.last_id < newest_change)) {
      items.push_back(&row);
    }
  }
  for (const auto* group : {&things, &items}) {
    if (group->size() < 2) continue;
    for (const Row* row : *group) result.absorbed.push_back(row->entry.id);
    result.merged.push_back(FoldRows(*group));
    result.merged.back().entry.kind = group == &things ? EntryKind::kThing : EntryKind::kChange;
    result.merged_away += static_cast<std::int64_t>(group->size()) - 1;
  }
  return result;
}

Result<std::unique_ptr<Outbox>> Outbox::Open(EventLoop& loop, OutboxOptions options) {
  namespace fs = std::filesystem;
  if (options.dir.empty()) return MakeError("store", "the store directory is not set");
  if (options.max_bytes < kMinMaxBytes) {
    return MakeError("store", fmt::format("store max_bytes {} is below the minimum of {} bytes",
                                          options.max_bytes, kMinMaxBytes));
  }
  std::error_code ec;
  if (!fs::exists(options.dir, ec)) {
    fs::create_directories(options.dir, ec);
    if (!ec) fs::permissions(options.dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec) {
      return MakeError("store", fmt::format("{}: cannot create the store directory: {}",
                                            options.dir, ec.message()));
    }
  } else if (!fs::is_directory(options.dir, ec)) {
    return MakeError("store", fmt::format("{}: not a directory", options.dir));
  }
  std::string path = (fs::path(options.dir) / kFileName).string();
  // Created here with mode 0600 so that SQLite's WAL, which copies the mode, is private too.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return MakeError("store", fmt::format("{}: {}", path, std::strerror(errno)));
  }
  ::close(fd);

  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                                 options.vfs.empty() ? nullptr : options.vfs.c_str());
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    return MakeError("store",
                     fmt::format("{}: {}", path, raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_extended_result_codes(raw, 1);
  std::unique_ptr<Outbox> outbox(
      new Outbox(loop, std::move(options), std::move(path), std::move(db)));
  if (auto status = outbox->Init(); !status) return status.error();
  return outbox;
}

Outbox::Outbox(EventLoop& loop, OutboxOptions options, std::string path, DbPtr db)
    : loop_(loop),
      options_(std::move(options)),
      path_(std::move(path)),
      db_(std::move(db)),
      clock_(options_.clock ? options_.clock : &system_clock_),
      retry_backoff_(options_.retry, random_) {
  wal_limit_bytes_ = std::clamp<std::int64_t>(options_.max_bytes / 8, std::int64_t{64} << 10,
                                              std::int64_t{4} << 20);
}

Outbox::~Outbox() {
  (void)CommitBatch();
  if (retry_timer_) loop_.Cancel(*retry_timer_);
  if (sync_timer_) loop_.Cancel(*sync_timer_);
}

Error Outbox::StoreError(std::string_view what) const {
  return MakeError("store", fmt::format("{}: {}: {}", path_, what, sqlite3_errmsg(db_.get())));
}

Status Outbox::Exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &message) != SQLITE_OK) {
    Error error = MakeError(
        "store", fmt::format("{}: {}", path_, message ? message : sqlite3_errmsg(db_.get())));
    sqlite3_free(message);
    return error;
  }
  return Ok{};
}

Status Outbox::Prepare(StmtPtr& stmt, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) !=
      SQLITE_OK) {
    return StoreError(fmt::format("cannot prepare `{}`", sql));
  }
  stmt.reset(raw);
  return Ok{};
}

Status Outbox::Init() {
  // One process per store: an exclusive lock, held while open, makes a second connector on
  // the same directory fail here instead of interleaving with this one. It also keeps the WAL
  // index in this process's memory (no -shm file).
  if (auto s = Exec("PRAGMA locking_mode=EXCLUSIVE"); !s) return s;
  std::int64_t application_id = 0;
  std::int64_t version = 0;
  std::int64_t objects = 0;
  {
    // The first read: it tells an SQLite database from anything else, and takes the lock.
    sqlite3_stmt* raw = nullptr;
    const char* sql =
        "SELECT (SELECT application_id FROM pragma_application_id),"
        " (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_master)";
    const bool prepared = sqlite3_prepare_v2(db_.get(), sql, -1, &raw, nullptr) == SQLITE_OK;
    StmtPtr stmt(raw);
    if (!prepared || sqlite3_step(raw) != SQLITE_ROW) {
      const int code = sqlite3_extended_errcode(db_.get());
      if (code == SQLITE_NOTADB) {
        return MakeError("store", fmt::format("{}: not an outbox: the file is not an SQLite "
                                              "database",
                                              path_));
      }
      if ((code & 0xff) == SQLITE_BUSY) {
        return MakeError("store", fmt::format("{}: {} (is another connector using this store?)",
                                              path_, sqlite3_errmsg(db_.get())));
      }
      return StoreError("cannot read the file");
    }
    application_id = Int(raw, 0);
    version = Int(raw, 1);
    objects = Int(raw, 2);
  }

  const bool fresh = application_id == 0 && version == 0 && objects == 0;
  if (!fresh) {
    if (application_id != kApplicationId) {
      return MakeError("store", fmt::format("{}: not an outbox: an SQLite database of another "
                                            "program (application_id {:#x})",
                                            path_, application_id));
    }
    if (version > kFormatVersion) {
      return MakeError("store",
                       fmt::format("{}: outbox format version {} is newer than this connector "
                                   "reads (version {}); use a newer connector or another store "
                                   "directory",
                                   path_, version, kFormatVersion));
    }
    if (version < 1) {
      return MakeError("store",
                       fmt::format("{}: outbox format version {} is unknown", path_, version));
    }
  } else {
    // Before any table exists: lets Reclaim() give freed pages back to the file system.
    if (auto s = Exec("PRAGMA auto_vacuum=INCREMENTAL"); !s) return s;
  }
  if (auto s = Exec("PRAGMA journal_mode=WAL"); !s) return s;
  if (fresh) {
    const std::string schema = fmt::format(fmt::runtime(kSchema), kApplicationId, kFormatVersion);
    if (auto s = Exec(schema.c_str()); !s) {
      (void)Exec("ROLLBACK");
      return s;
    }
  }
  const std::string tuning = fmt::format(
      "PRAGMA synchronous={}; PRAGMA wal_autocheckpoint={}; PRAGMA journal_size_limit={};",
      options_.sync_commits ? "FULL" : "NORMAL",
      std::max<std::int64_t>(wal_limit_bytes_ / 4096, 16), wal_limit_bytes_);
  if (auto s = Exec(tuning.c_str()); !s) return s;

  const std::string cols = kEntryColumns;
  for (auto [stmt, sql] : std::initializer_list<std::pair<StmtPtr*, std::string>>{
           {&st_.begin, "BEGIN IMMEDIATE"},
           {&st_.commit, "COMMIT"},
           {&st_.rollback, "ROLLBACK"},
           {&st_.insert_entry, "INSERT INTO entries(" + cols +
                                   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                                   "?13, ?14, ?15, ?16)"},
           {&st_.delete_entry, "DELETE FROM entries WHERE id = ?1"},
           {&st_.find_snapshot,
            "SELECT id, first_id, accepted_ms FROM entries WHERE key = ?1 AND kind = 1"},
           {&st_.peek, "SELECT " + cols + " FROM entries ORDER BY priority, first_id LIMIT ?1"},
           {&st_.entry_by_id, "SELECT " + cols + " FROM entries WHERE id = ?1"},
           // Without a key index (it would cost a scattered page per entry on every insert
           // and delete), merges find their keys with one sorted scan.
           {&st_.merge_scan,
            "SELECT key, id FROM entries WHERE first_id < ?1 AND "
            "(?2 IS NULL OR key IN (SELECT value FROM json_each(?2))) ORDER BY key, id"},
           {&st_.oldest,
            "SELECT first_id, accepted_ms FROM entries WHERE priority = ?1 ORDER BY first_id "
            "LIMIT 1"},
           {&st_.insert_message,
            "INSERT INTO messages(message_id, device_id, body, properties, content_type, "
            "content_encoding, creation_time, billed_chunks, sequence, sealed_ms) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},
           {&st_.delete_message, "DELETE FROM messages WHERE message_id = ?1"},
           {&st_.list_messages,
            "SELECT message_id, device_id, body, properties, content_type, content_encoding, "
            "creation_time, billed_chunks, sequence, sealed_ms FROM messages ORDER BY seq"},
           {&st_.get_meta, "SELECT value FROM meta WHERE key = ?1"},
           {&st_.put_meta,
            "INSERT INTO meta(key, value) VALUES (?1, ?2) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value"},
           {&st_.page_count, "PRAGMA page_count"},
           {&st_.freelist_count, "PRAGMA freelist_count"},
       }) {
    if (auto s = Prepare(*stmt, sql.c_str()); !s) return s;
  }

  auto format = GetMeta(kMetaFormat);
  if (!format) return format.error();
  if (*format != std::optional<std::string>(std::to_string(kFormatVersion))) {
    return MakeError("store",
                     fmt::format("{}: outbox format version {} is unknown (meta row "
                                 "{} is '{}')",
                                 path_, version, kMetaFormat, format->value_or("missing")));
  }

  // Ids are never reused: the next one is kept in meta by every commit that takes ids, and is
  // at least past every id still in the file.
  sqlite3_stmt* raw = nullptr;
  const char* sql =
      "SELECT (SELECT coalesce(max(max(id), max(last_id)), 0) FROM entries),"
      " (SELECT count(*) FROM entries), (SELECT count(*) FROM messages),"
      " (SELECT page_size FROM pragma_page_size)";
  if (sqlite3_prepare_v2(db_.get(), sql, -1, &raw, nullptr) != SQLITE_OK) {
    return StoreError("cannot read the outbox");
  }
  StmtPtr stmt(raw);
  if (sqlite3_step(raw) != SQLITE_ROW) return StoreError("cannot read the outbox");
  next_id_ = Int(raw, 0) + 1;
  pending_ = Int(raw, 1);
  sealed_ = Int(raw, 2);
  page_size_ = Int(raw, 3);
  auto next = GetMeta(kMetaNextId);
  if (!next) return next.error();
  if (*next) {
    next_id_ = std::max(
        next_id_, static_cast<std::int64_t>(std::strtoll(next->value().c_str(), nullptr, 10)));
  }
  KeepBound();
  return Ok{};
}

Status Outbox::Begin() {
  Use use(st_.begin.get());
  if (use.Step() != SQLITE_DONE) return StoreError("cannot begin a transaction");
  return Ok{};
}

Status Outbox::Commit() {
  Use use(st_.commit.get());
  if (use.Step() != SQLITE_DONE) return StoreError("commit failed");
  return Ok{};
}

void Outbox::Rollback() {
  // A failed COMMIT may or may not have ended the transaction already.
  if (sqlite3_get_autocommit(db_.get())) return;
  Use use(st_.rollback.get());
  (void)use.Step();
}

void Outbox::Fail(Error error) { last_error_ = std::move(error); }

void Outbox::Succeeded() {
  if (last_error_ && last_error_->code != "full") last_error_.reset();
}

void Outbox::SetCommitted(std::function<void(std::size_t)> committed) {
  committed_ = std::move(committed);
}

void Outbox::Add(Entry entry) {
  Row row;
  row.entry = std::move(entry);
  row.entry.id = next_id_++;
  row.first_id = row.last_id = row.entry.id;
  row.accepted_ms = clock_->NowMs();
  const auto replaced = row.entry.kind == EntryKind::kSnapshot
                            ? batch_snapshots_.try_emplace(row.entry.key, batch_.size())
                            : std::make_pair(batch_snapshots_.end(), true);
  if (!replaced.second) {
    // The batch's snapshot of this key: the new state takes its place.
    Row& old = batch_[replaced.first->second];
    row.first_id = old.first_id;
    row.accepted_ms = old.accepted_ms;
    old = std::move(row);
    ++replaced_total_;
  } else {
    batch_.push_back(std::move(row));
  }
  ScheduleCommit();
  if (retry_timer_) {
    // Commits fail: wait for the retry, within the memory bound.
    if (batch_.size() > options_.memory_limit) CompactBatch();
    return;
  }
  if (batch_.size() >= options_.batch_limit) {
    (void)CommitBatch();
    NotifyLater();
  }
}

void Outbox::ScheduleCommit() {
  if (commit_posted_) return;
  commit_posted_ = true;
  loop_.Post(liveness_.Guard([this] { CommitTask(); }));
}

void Outbox::CommitTask() {
  commit_posted_ = false;
  if (!retry_timer_) {  // else the retry timer commits
    (void)CommitBatch();
    KeepBound();
  }
  Deliver();
}

void Outbox::NotifyLater() {
  if (unnotified_ == 0 || notify_posted_ || commit_posted_) return;
  notify_posted_ = true;
  loop_.Post(liveness_.Guard([this] {
    notify_posted_ = false;
    Deliver();
  }));
}

void Outbox::Deliver() {
  if (unnotified_ == 0) return;
  const std::size_t n = unnotified_;
  unnotified_ = 0;
  if (committed_) committed_(n);
}

void Outbox::ScheduleRetry() {
  if (retry_timer_) return;
  retry_timer_ = loop_.RunAfter(retry_backoff_.NextDelayMs(), liveness_.Guard([this] {
    retry_timer_.reset();
    if (CommitBatch().ok()) KeepBound();
    Deliver();
  }));
}

void Outbox::ScheduleSync() {
  if (options_.sync_commits) return;
  unsynced_ = true;
  if (options_.sync_interval_ms <= 0 || sync_timer_) return;
  sync_timer_ = loop_.RunAfter(options_.sync_interval_ms, liveness_.Guard([this] {
    sync_timer_.reset();
    (void)Sync();
  }));
}

void Outbox::CompactBatch() {
  std::unordered_map<std::string, std::vector<std::size_t>> by_key;
  for (std::size_t i = 0; i < batch_.size(); ++i) by_key[batch_[i].entry.key].push_back(i);
  std::vector<bool> drop(batch_.size(), false);
  std::vector<Row> added;
  MergeReport report;
  for (const auto& [key, indexes] : by_key) {
    if (indexes.size() < 2) continue;
    std::vector<Row> rows;
    rows.reserve(indexes.size());
    std::unordered_map<std::int64_t, std::size_t> index_of_id;
    for (std::size_t i : indexes) {
      rows.push_back(batch_[i]);
      index_of_id[batch_[i].entry.id] = i;
    }
    KeyMerge merge = MergeKeyRows(rows);
    if (merge.merged.empty()) continue;
    for (std::int64_t id : merge.absorbed) drop[index_of_id[id]] = true;
    for (Row& row : merge.merged) {
      row.entry.id = next_id_++;
      added.push_back(std::move(row));
    }
    report.merged += merge.merged_away;
    report.per_key[key] += merge.merged_away;
  }
  std::vector<Row> kept;
  kept.reserve(batch_.size() - static_cast<std::size_t>(report.merged));
  for (std::size_t i = 0; i < batch_.size(); ++i) {
    if (!drop[i]) kept.push_back(std::move(batch_[i]));
  }
  for (Row& row : added) kept.push_back(std::move(row));
  batch_ = std::move(kept);
  batch_snapshots_.clear();
  for (std::size_t i = 0; i < batch_.size(); ++i) {
    if (batch_[i].entry.kind == EntryKind::kSnapshot) batch_snapshots_[batch_[i].entry.key] = i;
  }
  Count(report);
}

void Outbox::Count(const MergeReport& report) {
  merged_total_ += report.merged;
  for (const auto& [key, n] : report.per_key) merged_by_key_[key] += n;
}

Status Outbox::InsertRow(const Row& row) {
  const Entry& e = row.entry;
  const std::string value = DumpJson(e.value);
  Use use(st_.insert_entry.get());
  use.Bind(1, e.id)
      .Bind(2, row.first_id)
      .Bind(3, row.last_id)
      .Bind(4, row.accepted_ms)
      .Bind(5, std::int64_t{KindCode(e.kind)})
      .Bind(6, std::int64_t{PriorityCode(e.priority)})
      .Bind(7, std::string_view(e.key))
      .Bind(8, std::string_view(e.type))
      .Bind(9, std::string_view(value))
      .Bind(10, std::string_view(e.unit))
      .Bind(11, std::string_view(e.state))
      .Bind(12, e.time_ms)
      .Bind(13, e.count)
      .Bind(14, e.first_ms)
      .Bind(15, e.min)
      .Bind(16, e.max);
  if (use.Step() != SQLITE_DONE) return StoreError("cannot store an entry");
  return Ok{};
}

Status Outbox::DeleteEntry(std::int64_t id) {
  Use use(st_.delete_entry.get());
  use.Bind(1, id);
  if (use.Step() != SQLITE_DONE) return StoreError("cannot delete an entry");
  return Ok{};
}

Status Outbox::PutMetaInTxn(std::string_view key, std::string_view value) {
  Use use(st_.put_meta.get());
  use.Bind(1, key).Bind(2, value);
  if (use.Step() != SQLITE_DONE) return StoreError(fmt::format("cannot write meta '{}'", key));
  return Ok{};
}

Status Outbox::CommitBatch() {
  if (batch_.empty() && acks_.empty()) return Ok{};
  std::int64_t pending_delta = 0;
  std::int64_t sealed_delta = 0;
  std::int64_t replaced = 0;
  MergeReport report;
  Status status = [&]() -> Status {
    if (auto s = Begin(); !s) return s;
    for (const Row& batched : batch_) {
      if (batched.entry.kind != EntryKind::kSnapshot) {
        if (auto s = InsertRow(batched); !s) return s;
        ++pending_delta;
        continue;
      }
      Row row = batched;
      std::optional<std::int64_t> old_id;
      {
        Use use(st_.find_snapshot.get());
        use.Bind(1, std::string_view(row.entry.key));
        const int rc = use.Step();
        if (rc == SQLITE_ROW) {
          old_id = Int(st_.find_snapshot.get(), 0);
          row.first_id = std::min(row.first_id, Int(st_.find_snapshot.get(), 1));
          row.accepted_ms = std::min(row.accepted_ms, Int(st_.find_snapshot.get(), 2));
        } else if (rc != SQLITE_DONE) {
          return StoreError("cannot read an entry");
        }
      }
      if (old_id) {
        if (auto s = DeleteEntry(*old_id); !s) return s;
        --pending_delta;
        ++replaced;
      }
      if (auto s = InsertRow(row); !s) return s;
      ++pending_delta;
    }
    for (const std::string& id : acks_) {
      Use use(st_.delete_message.get());
      use.Bind(1, std::string_view(id));
      if (use.Step() != SQLITE_DONE) return StoreError("cannot delete a message");
      sealed_delta -= sqlite3_changes(db_.get());
    }
    if (full_) {
      // Over the disk bound with nothing left to merge: one entry per key from now on.
      std::unordered_set<std::string> keys;
      for (const Row& row : batch_) {
        if (row.entry.kind != EntryKind::kSnapshot) keys.insert(row.entry.key);
      }
      MergeFilter filter;
      filter.keys.assign(keys.begin(), keys.end());
      auto merged = MergeInTxn(filter);
      if (!merged) return merged.error();
      report = std::move(merged).value();
    }
    return Commit();
  }();
  if (!status) {
    Rollback();
    ++commit_errors_;
    Fail(status.error());
    ScheduleRetry();
    return status;
  }
  const std::size_t accepted = batch_.size();
  pending_ += pending_delta - report.merged;
  sealed_ += sealed_delta;
  replaced_total_ += replaced;
  accepted_total_ += static_cast<std::int64_t>(accepted);
  unnotified_ += accepted;
  ++commits_;
  Count(report);
  batch_.clear();
  batch_snapshots_.clear();
  acks_.clear();
  // A snapshot or a burst grows the batch to thousands of rows for one commit; keeping that
  // capacity would hold a quarter of a megabyte per thousand items for nothing.
  if (batch_.capacity() > kKeptBatchCapacity) std::vector<Row>().swap(batch_);
  retry_backoff_.Reset();
  if (retry_timer_) {
    loop_.Cancel(*retry_timer_);
    retry_timer_.reset();
  }
  Succeeded();
  ScheduleSync();
  return Ok{};
}

Status Outbox::Flush() {
  Status status = CommitBatch();
  NotifyLater();
  return status;
}

Status Outbox::Sync() {
  if (auto s = Flush(); !s) return s;
  if (sync_timer_) {
    loop_.Cancel(*sync_timer_);
    sync_timer_.reset();
  }
  if (!unsynced_) return Ok{};
  // With synchronous=FULL, SQLite fsyncs the WAL at the end of a commit; one small commit so
  // makes every earlier frame durable too (fsync covers the whole file).
  if (auto s = Exec("PRAGMA synchronous=FULL"); !s) return s;
  Status status = [&]() -> Status {
    if (auto s = Begin(); !s) return s;
    if (auto s = PutMetaInTxn(kMetaSynced, std::to_string(clock_->NowMs())); !s) return s;
    return Commit();
  }();
  if (!status) Rollback();
  (void)Exec("PRAGMA synchronous=NORMAL");
  if (!status) {
    ++commit_errors_;
    Fail(status.error());
    return status;
  }
  unsynced_ = false;
  ++syncs_;
  Succeeded();
  return Ok{};
}

Outbox::Row Outbox::ReadRow(sqlite3_stmt* stmt) const {
  Row row;
  Entry& e = row.entry;
  e.id = Int(stmt, 0);
  row.first_id = Int(stmt, 1);
  row.last_id = Int(stmt, 2);
  row.accepted_ms = Int(stmt, 3);
  e.kind = KindFromCode(Int(stmt, 4));
  e.priority = PriorityFromCode(Int(stmt, 5));
  e.key = Text(stmt, 6);
  e.type = Text(stmt, 7);
  // Written by DumpJson, so it parses; a damaged value reads as null rather than throwing.
  e.value = Json::parse(Text(stmt, 8), nullptr, /*allow_exceptions=*/false);
  if (e.value.is_discarded()) e.value = nullptr;
  e.unit = Text(stmt, 9);
  e.state = Text(stmt, 10);
  e.time_ms = Int(stmt, 11);
  e.count = Int(stmt, 12);
  e.first_ms = Int(stmt, 13);
  e.min = OptionalDouble(stmt, 14);
  e.max = OptionalDouble(stmt, 15);
  return row;
}

std::vector<Entry> Outbox::Peek(std::size_t max_entries) {
  std::vector<Entry> entries;
  Use use(st_.peek.get());
  use.Bind(1, static_cast<std::int64_t>(std::min<std::size_t>(max_entries, kNoLimit)));
  for (;;) {
    const int rc = use.Step();
    if (rc == SQLITE_ROW) {
      entries.push_back(ReadRow(st_.peek.get()).entry);
      continue;
    }
    if (rc != SQLITE_DONE) Fail(StoreError("cannot read entries"));
    break;
  }
  return entries;
}

Status Outbox::Seal(const SealedMessage& message, std::span<const std::int64_t> entry_ids,
                    const std::vector<std::pair<std::string, std::string>>& meta) {
  for (const auto& [key, value] : meta) {
    if (key.starts_with("outbox.")) {
      return MakeError("store", fmt::format("meta key '{}' is the outbox's own", key));
    }
  }
  (void)Flush();  // a failure is counted and retried; the seal does not depend on it
  std::int64_t pending_delta = 0;
  Status status = [&]() -> Status {
    Json properties = Json::array();
    for (const auto& [name, value] : message.properties) properties.push_back({name, value});
    const std::string properties_text = DumpJson(properties);
    if (auto s = Begin(); !s) return s;
    {
      Use use(st_.insert_message.get());
      use.Bind(1, std::string_view(message.message_id))
          .Bind(2, std::string_view(message.device_id))
          .Bind(3, std::string_view(message.body))
          .Bind(4, std::string_view(properties_text))
          .Bind(5, std::string_view(message.content_type))
          .Bind(6, std::string_view(message.content_encoding))
          .Bind(7, std::string_view(message.creation_time))
          .Bind(8, message.billed_chunks)
          .Bind(9, message.sequence)
          .Bind(10, message.sealed_ms != 0 ? message.sealed_ms : clock_->NowMs());
      if (use.Step() != SQLITE_DONE) {
        return StoreError(fmt::format("cannot store message '{}'", message.message_id));
      }
    }
    for (std::int64_t id : entry_ids) {
      if (auto s = DeleteEntry(id); !s) return s;
      pending_delta -= sqlite3_changes(db_.get());
    }
    for (const auto& [key, value] : meta) {
      if (auto s = PutMetaInTxn(key, value); !s) return s;
    }
    // The one place where the highest id can leave the file: keep it, ids are never reused.
    if (auto s = PutMetaInTxn(kMetaNextId, std::to_string(next_id_)); !s) return s;
    return Commit();
  }();
  if (!status) {
    Rollback();
    ++commit_errors_;
    Fail(status.error());
    return status;
  }
  pending_ += pending_delta;
  ++sealed_;
  ++commits_;
  Succeeded();
  ScheduleSync();
  KeepBound();
  return Ok{};
}

std::vector<SealedMessage> Outbox::Sealed() {
  std::vector<SealedMessage> messages;
  const std::unordered_set<std::string> acknowledged(acks_.begin(), acks_.end());
  sqlite3_stmt* stmt = st_.list_messages.get();
  Use use(stmt);
  for (;;) {
    const int rc = use.Step();
    if (rc != SQLITE_ROW) {
      if (rc != SQLITE_DONE) Fail(StoreError("cannot read messages"));
      break;
    }
    SealedMessage m;
    m.message_id = Text(stmt, 0);
    if (acknowledged.count(m.message_id) != 0) continue;
    m.device_id = Text(stmt, 1);
    m.body = Text(stmt, 2);
    const Json properties = Json::parse(Text(stmt, 3), nullptr, /*allow_exceptions=*/false);
    if (properties.is_array()) {
      for (const Json& pair : properties) {
        if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string()) {
          m.properties.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
        }
      }
    }
    m.content_type = Text(stmt, 4);
    m.content_encoding = Text(stmt, 5);
    m.creation_time = Text(stmt, 6);
    m.billed_chunks = Int(stmt, 7);
    m.sequence = Int(stmt, 8);
    m.sealed_ms = Int(stmt, 9);
    messages.push_back(std::move(m));
  }
  return messages;
}

void Outbox::Acknowledge(std::string_view message_id) {
  acks_.emplace_back(message_id);
  ScheduleCommit();
}

Result<MergeReport> Outbox::MergeInTxn(const MergeFilter& filter) {
  // First the keys with more than one row and their ids (the scan ends before anything
  // changes), then each such key's rows, merged.
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> groups;
  {
    Json keys = Json::array();
    for (const std::string& key : filter.keys) keys.push_back(key);
    const std::string keys_text = DumpJson(keys);
    sqlite3_stmt* stmt = st_.merge_scan.get();
    Use use(stmt);
    use.Bind(1, filter.before_id > 0 ? filter.before_id : kNoLimit);
    if (!filter.keys.empty()) use.Bind(2, std::string_view(keys_text));
    std::string key;
    std::vector<std::int64_t> ids;
    auto close_group = [&] {
      if (ids.size() > 1) groups.emplace_back(std::move(key), std::move(ids));
      ids.clear();
    };
    for (;;) {
      const int rc = use.Step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return StoreError("cannot read entries");
      std::string row_key = Text(stmt, 0);
      if (row_key != key) {
        close_group();
        key = std::move(row_key);
      }
      ids.push_back(Int(stmt, 1));
    }
    close_group();
  }
  MergeReport report;
  for (auto& [key, ids] : groups) {
    std::vector<Row> rows;
    rows.reserve(ids.size());
    for (std::int64_t id : ids) {
      Use use(st_.entry_by_id.get());
      use.Bind(1, id);
      if (use.Step() != SQLITE_ROW) return StoreError("cannot read an entry");
      rows.push_back(ReadRow(st_.entry_by_id.get()));
    }
    KeyMerge merge = MergeKeyRows(rows);
    if (merge.merged.empty()) continue;
    for (std::int64_t id : merge.absorbed) {
      if (auto s = DeleteEntry(id); !s) return s.error();
    }
    for (Row& row : merge.merged) {
      row.entry.id = next_id_++;
      if (auto s = InsertRow(row); !s) return s.error();
    }
    report.merged += merge.merged_away;
    report.per_key[key] += merge.merged_away;
  }
  return report;
}

Result<MergeReport> Outbox::MergeHistory(const MergeFilter& filter) {
  (void)Flush();
  Result<MergeReport> report = [&]() -> Result<MergeReport> {
    if (auto s = Begin(); !s) return s.error();
    auto merged = MergeInTxn(filter);
    if (!merged) return merged;
    if (auto s = Commit(); !s) return s.error();
    return merged;
  }();
  if (!report) {
    Rollback();
    ++commit_errors_;
    Fail(report.error());
    return report;
  }
  pending_ -= report->merged;
  ++commits_;
  Succeeded();
  Count(*report);
  ScheduleSync();
  return report;
}

Result<std::optional<std::string>> Outbox::GetMeta(std::string_view key) {
  Use use(st_.get_meta.get());
  use.Bind(1, key);
  const int rc = use.Step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(Text(st_.get_meta.get(), 0));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return StoreError(fmt::format("cannot read meta '{}'", key));
}

Status Outbox::PutMeta(std::string_view key, std::string_view value) {
  if (key.starts_with("outbox.")) {
    return MakeError("store", fmt::format("meta key '{}' is the outbox's own", key));
  }
  Status status = [&]() -> Status {
    if (auto s = Begin(); !s) return s;
    if (auto s = PutMetaInTxn(key, value); !s) return s;
    return Commit();
  }();
  if (!status) {
    Rollback();
    ++commit_errors_;
    Fail(status.error());
    return status;
  }
  ++commits_;
  Succeeded();
  ScheduleSync();
  return Ok{};
}

std::int64_t Outbox::DataBytes() {
  std::int64_t pages = 0;
  std::int64_t free_pages = 0;
  {
    Use use(st_.page_count.get());
    if (use.Step() == SQLITE_ROW) pages = Int(st_.page_count.get(), 0);
  }
  {
    Use use(st_.freelist_count.get());
    if (use.Step() == SQLITE_ROW) free_pages = Int(st_.freelist_count.get(), 0);
  }
  return (pages - free_pages) * page_size_;
}

void Outbox::Reclaim() {
  // Freed pages go back to the file system, and the WAL shrinks to its limit.
  (void)Exec("PRAGMA incremental_vacuum");
  if (Exec("PRAGMA wal_checkpoint(TRUNCATE)")) unsynced_ = false;
}

void Outbox::KeepBound() {
  // The WAL has its own allowance; the data may use the rest up to a high mark, and merging
  // stops once it is back under a low mark, so that it does not run at every commit.
  const std::int64_t budget = options_.max_bytes - wal_limit_bytes_;
  const std::int64_t high = budget / 10 * 9;
  const std::int64_t low = budget / 10 * 7;
  std::int64_t data = DataBytes();
  if (full_) {
    if (data <= low) {
      full_ = false;
      if (last_error_ && last_error_->code == "full") last_error_.reset();
    }
    return;
  }
  if (data <= high) return;
  // Oldest history first: a quarter of the pending id range at a time.
  std::int64_t oldest = next_id_;
  for (std::int64_t priority = 0; priority < 3; ++priority) {
    Use use(st_.oldest.get());
    use.Bind(1, priority);
    if (use.Step() == SQLITE_ROW) {
      oldest = std::min(oldest, Int(st_.oldest.get(), 0));
    }
  }
  const std::int64_t span = next_id_ - oldest;
  for (int step = 1; step <= 4 && data > low; ++step) {
    MergeFilter filter;
    filter.before_id = step == 4 ? 0 : oldest + span * step / 4 + 1;
    Result<MergeReport> report = [&]() -> Result<MergeReport> {
      if (auto s = Begin(); !s) return s.error();
      auto merged = MergeInTxn(filter);
      if (!merged) return merged;
      if (auto s = Commit(); !s) return s.error();
      return merged;
    }();
    if (!report) {
      Rollback();
      ++commit_errors_;
      Fail(report.error());
      return;
    }
    pending_ -= report->merged;
    ++commits_;
    Count(*report);
    data = DataBytes();
  }
  Reclaim();
  if (data > high) {
    full_ = true;
    ++full_events_;
    Fail(MakeError("full", fmt::format("{}: the outbox is full: {} bytes of pending data and "
                                       "messages over the {} bytes allowed (max_bytes {}) "
                                       "after merging all history; new entries now keep only "
                                       "the latest per key",
                                       path_, data, high, options_.max_bytes)));
  }
}

OutboxStats Outbox::Stats() {
  OutboxStats stats;
  stats.pending_entries = pending_;
  stats.batched_entries = static_cast<std::int64_t>(batch_.size());
  stats.sealed_messages = sealed_;
  for (std::int64_t priority = 0; priority < 3; ++priority) {
    Use use(st_.oldest.get());
    use.Bind(1, priority);
    if (use.Step() == SQLITE_ROW) {
      const std::int64_t accepted = Int(st_.oldest.get(), 1);
      if (stats.oldest_pending_ms == 0 || accepted < stats.oldest_pending_ms) {
        stats.oldest_pending_ms = accepted;
      }
    }
  }
  stats.file_bytes = FileSize(path_) + FileSize(path_ + "-wal");
  stats.entries_accepted = accepted_total_;
  stats.merged = merged_total_;
  stats.snapshots_replaced = replaced_total_;
  stats.commits = commits_;
  stats.commit_errors = commit_errors_;
  stats.syncs = syncs_;
  stats.full = full_;
  stats.full_events = full_events_;
  return stats;
}

}  // namespace iothub::connector
