// The connector's durable outbox (docs/outbox.md): the only queue between the replicator and
// the hub session. It keeps, in one SQLite file (`<dir>/outbox.sqlite`, WAL journal):
//   - pending entries: accepted facts about items and things, not yet in a message;
//   - sealed messages: telemetry built from entries and handed to the hub session, kept until
//     the hub acknowledged them, and resent after a restart with the same id and body;
//   - a small key/value table that other components keep durable state in (the message
//     sequence counter, the budget's spend, twin state).
// An entry counts as accepted once the transaction that wrote it committed: from then on it
// survives the process's death (kill -9, a crash). A power cut or kernel crash can lose the
// commits since the last WAL sync, at most `sync_interval_ms` old (docs/outbox.md says exactly
// what is guaranteed). Past `max_bytes` it merges older history, oldest first, and never drops
// a latest state; when nothing is left to merge it says it is full and keeps one entry per key.
//
// Not thread-safe: the outbox and every callback it makes belong to the loop thread.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "common/liveness.h"
#include "common/random.h"
#include "common/result.h"
#include "connector/entry.h"

namespace iothub::connector {

struct OutboxOptions {
  // The store directory (created with mode 0700 when missing); the file is
  // `<dir>/outbox.sqlite`, created with mode 0600.
  std::string dir;
  // Disk bound: past about 90 % of it (less the WAL's allowance) history is merged, oldest
  // first; latest states are never dropped. At least 128 KiB.
  std::int64_t max_bytes = std::int64_t{64} << 20;
  // A batch of this many entries commits at once instead of at the end of the loop turn.
  std::size_t batch_limit = 2048;
  // While commits fail, at most this many entries wait in memory; past it, each key's entries
  // are merged as MergeHistory would (counted), so the latest states are kept.
  std::size_t memory_limit = 65'536;
  // Retries of a failed commit (jitter is pointless against a local disk).
  BackoffPolicy retry = {.initial_ms = 500, .max_ms = 30'000, .multiplier = 2.0, .jitter = 0.0};
  // How long after a commit the WAL is fsynced (Sync()): the most a power cut can take back.
  // 0: only at checkpoints and on Sync().
  std::int64_t sync_interval_ms = 1'000;
  // synchronous=FULL: every commit is fsynced before it returns (power-cut safe, slower).
  bool sync_commits = false;
  // Wall clock for the time each entry was accepted; nullptr: the system clock.
  const Clock* clock = nullptr;
  // An SQLite VFS name; empty: SQLite's default. For fault-injection tests.
  std::string vfs;
};

// Telemetry built from entries, kept from Seal until the hub acknowledged it.
struct SealedMessage {
  std::string message_id;  // unique; a resend carries the same one
  std::string device_id;
  std::string body;
  std::vector<std::pair<std::string, std::string>> properties;  // application properties
  std::string content_type;
  std::string content_encoding;
  std::string creation_time;  // iothub-creation-time-utc
  std::int64_t billed_chunks = 0;
  std::int64_t sequence = 0;   // the message format's sequence number
  std::int64_t sealed_ms = 0;  // wall clock; 0 in Seal: the outbox's clock fills it in
  bool operator==(const SealedMessage&) const = default;
};

// Which pending entries MergeHistory may merge.
struct MergeFilter {
  // Only entries standing for facts accepted before the entry with this id (an entry's
  // oldest fact decides, so earlier merges are merged again); 0: all.
  std::int64_t before_id = 0;
  // Only these keys; empty: every key.
  std::vector<std::string> keys;
};

struct MergeReport {
  std::int64_t merged = 0;                      // entries merged away (into another)
  std::map<std::string, std::int64_t> per_key;  // the same, by key (only keys with merges)
};

// For metrics and the status command.
struct OutboxStats {
  std::int64_t pending_entries = 0;  // committed, not sealed
  std::int64_t batched_entries = 0;  // added, not committed yet (in memory)
  std::int64_t sealed_messages = 0;  // sealed, not acknowledged
  // Wall-clock time (epoch ms) at which the longest-waiting pending entry was accepted; 0: none.
  std::int64_t oldest_pending_ms = 0;
  std::int64_t file_bytes = 0;        // the database and its WAL on disk
  std::int64_t entries_accepted = 0;  // committed since Open
  std::int64_t merged = 0;            // entries merged away since Open (history and memory)
  std::int64_t snapshots_replaced = 0;
  std::int64_t commits = 0;        // write transactions committed
  std::int64_t commit_errors = 0;  // write transactions that failed
  std::int64_t syncs = 0;
  // Over max_bytes with nothing left to merge: new entries keep one per key.
  bool full = false;
  std::int64_t full_events = 0;  // times it became full since Open
};

class Outbox {
 public:
  // Opens (creating if needed) `<options.dir>/outbox.sqlite`. Errors (code "store") name the
  // file: not a database, another program's database, a newer format version, a file locked
  // by another process (one connector per store), I/O errors, a max_bytes below 128 KiB.
  // `loop` must outlive the outbox.
  static Result<std::unique_ptr<Outbox>> Open(EventLoop& loop, OutboxOptions options);
  // Commits what is batched (if that fails, the batch is lost: it was never accepted) and
  // closes the file, which checkpoints the WAL into it. No callback runs after this.
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Called on the loop after each commit that made entries durable, with how many; never from
  // inside a call to this class.
  void SetCommitted(std::function<void(std::size_t accepted)> committed);

  // Accepts `entry` (its id is assigned here; the one given is ignored). Entries added in one
  // loop turn commit in one transaction at the end of the turn, or at once when the batch
  // reaches `batch_limit`. A snapshot replaces the key's pending snapshot (it keeps the
  // replaced one's place in the send order); changes and things are appended.
  void Add(Entry entry);

  // Commits what is batched now (entries and acknowledgements), e.g. at shutdown. Errors:
  // "store" (the batch stays in memory and is retried).
  Status Flush();

  // Commits what is batched, then fsyncs the WAL, so that every commit so far survives a
  // power cut. Runs by itself `sync_interval_ms` after a commit.
  Status Sync();

  // Up to `max_entries` committed entries in send order: priority high, normal, low, then the
  // longest waiting first (the id of the oldest fact an entry stands for). Uncommitted ones
  // are not shown. An I/O error yields what was read before it (and sets last_error()).
  std::vector<Entry> Peek(std::size_t max_entries);

  // In one transaction: stores `message`, deletes the entries `entry_ids` (ids that are gone,
  // replaced or merged meanwhile, are skipped: their newer state stays pending) and writes
  // the `meta` rows (keys not starting with "outbox."). Commits the batch first; keeps the
  // disk bound after. Errors: "store" (I/O, a duplicate message id); then nothing of it
  // happened.
  Status Seal(const SealedMessage& message, std::span<const std::int64_t> entry_ids,
              const std::vector<std::pair<std::string, std::string>>& meta = {});

  // Sealed, unacknowledged messages in seal order.
  std::vector<SealedMessage> Sealed();

  // Forgets a sealed message (group-committed like Add, so there is nothing to return; it
  // leaves Sealed() at once). Unknown ids are ignored. A failed commit is retried; until then
  // the message would be resent after a restart, which the hub's duplicate detection by
  // message id expects.
  void Acknowledge(std::string_view message_id);

  // Merges each key's pending history into one entry per key: the changes of an item (with
  // its snapshots older than its newest change), or the status changes of a thing. The
  // merged entry has the newest value, unit, state, type and time, the highest priority, the
  // sum of the counts, the oldest first time, and min/max over the numeric values and earlier
  // min/max; it gets a new id and keeps the oldest one's place in the send order. Commits the
  // batch first. Errors: "store" (then nothing was merged).
  Result<MergeReport> MergeHistory(const MergeFilter& filter = {});

  // The durable key/value table. Keys starting with "outbox." are the outbox's own.
  Result<std::optional<std::string>> GetMeta(std::string_view key);
  // Durable (committed) before it returns.
  Status PutMeta(std::string_view key, std::string_view value);

  OutboxStats Stats();
  // Entries merged away since Open, by key.
  const std::map<std::string, std::int64_t>& merged_by_key() const { return merged_by_key_; }
  // The last failure (a write, a read), until the next successful write; code "store". Or,
  // while Stats().full, the error saying so, code "full".
  const std::optional<Error>& last_error() const { return last_error_; }
  const std::string& path() const { return path_; }

 private:
  struct DbDeleter {
    void operator()(sqlite3* db) const { sqlite3_close(db); }
  };
  struct StmtDeleter {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
  };
  using DbPtr = std::unique_ptr<sqlite3, DbDeleter>;
  using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

  // An entry with the outbox's bookkeeping: `first_id` is the id of the oldest fact it stands
  // for (its place in the send order), `last_id` the id of the newest (which state wins),
  // `accepted_ms` when the oldest was accepted. A fresh entry has both ids equal to its own.
  struct Row {
    Entry entry;
    std::int64_t first_id = 0;
    std::int64_t last_id = 0;
    std::int64_t accepted_ms = 0;
  };
  // What merging one key's rows does: the rows folded away and their replacements (id 0).
  struct KeyMerge {
    std::vector<std::int64_t> absorbed;
    std::vector<Row> merged;
    std::int64_t merged_away = 0;  // absorbed.size() - merged.size()
  };
  static KeyMerge MergeKeyRows(const std::vector<Row>& rows);
  static Row FoldRows(const std::vector<const Row*>& rows);

  struct Statements {
    StmtPtr begin, commit, rollback;
    StmtPtr insert_entry, delete_entry, find_snapshot, peek, entry_by_id, merge_scan, oldest;
    StmtPtr insert_message, delete_message, list_messages;
    StmtPtr get_meta, put_meta;
    StmtPtr page_count, freelist_count;
  };

  Outbox(EventLoop& loop, OutboxOptions options, std::string path, DbPtr db);
  Status Init();
  Status Prepare(StmtPtr& stmt, const char* sql);
  Error StoreError(std::string_view what) const;
  Status Exec(const char* sql);
  Status Begin();
  Status Commit();
  void Rollback();

  Status CommitBatch();
  void CommitTask();
  void ScheduleCommit();
  void ScheduleRetry();
  void ScheduleSync();
  void NotifyLater();
  void Deliver();
  void CompactBatch();
  Status InsertRow(const Row& row);
  Status DeleteEntry(std::int64_t id);
  Result<MergeReport> MergeInTxn(const MergeFilter& filter);
  Status PutMetaInTxn(std::string_view key, std::string_view value);
  void Count(const MergeReport& report);
  std::int64_t DataBytes();
  void KeepBound();
  void Reclaim();
  Row ReadRow(sqlite3_stmt* stmt) const;
  void Fail(Error error);
  void Succeeded();

  EventLoop& loop_;
  OutboxOptions options_;
  std::string path_;
  DbPtr db_;
  Statements st_;
  SystemClock system_clock_;
  const Clock* clock_;
  SystemRandom random_;
  Backoff retry_backoff_;
  std::int64_t wal_limit_bytes_ = 0;
  std::int64_t page_size_ = 4096;

  std::int64_t next_id_ = 1;
  std::vector<Row> batch_;
  std::unordered_map<std::string, std::size_t> batch_snapshots_;  // key -> index in batch_
  std::vector<std::string> acks_;
  bool commit_posted_ = false;
  bool notify_posted_ = false;
  std::size_t unnotified_ = 0;
  std::optional<EventLoop::TimerId> retry_timer_;
  std::optional<EventLoop::TimerId> sync_timer_;
  bool unsynced_ = false;
  bool full_ = false;

  std::int64_t pending_ = 0;
  std::int64_t sealed_ = 0;
  std::int64_t accepted_total_ = 0;
  std::int64_t merged_total_ = 0;
  std::int64_t replaced_total_ = 0;
  std::int64_t commits_ = 0;
  std::int64_t commit_errors_ = 0;
  std::int64_t syncs_ = 0;
  std::int64_t full_events_ = 0;
  std::map<std::string, std::int64_t> merged_by_key_;
  std::optional<Error> last_error_;
  std::function<void(std::size_t)> committed_;

  Liveness liveness_;  // last: callbacks stop before the members they touch go
};

}  // namespace iothub::connector
