// The durable outbox (docs/outbox.md) on real SQLite files: group commit, send order,
// snapshot replacement, sealing across a restart, merging, the disk bound, format checks, and
// failures (a full disk through a fault-injecting VFS, the process killed).
#include "connector/outbox.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "support/emulator_fixture.h"
#include "support/manual_loop.h"
#include "support/outbox_fault_vfs.h"

namespace iothub::connector {
namespace {

using testing::ManualLoop;
using testing::OutboxFaultVfs;
using testing::TempDir;

Entry Change(const std::string& key, Json value, Priority priority = Priority::kNormal,
             std::int64_t time_ms = 1'000) {
  Entry e;
  e.kind = EntryKind::kChange;
  e.priority = priority;
  e.key = key;
  e.type = "Number";
  e.value = std::move(value);
  e.time_ms = time_ms;
  return e;
}

Entry Snapshot(const std::string& key, Json value, std::int64_t time_ms = 1'000) {
  Entry e = Change(key, std::move(value), Priority::kNormal, time_ms);
  e.kind = EntryKind::kSnapshot;
  return e;
}

Entry Thing(const std::string& uid, const std::string& status, std::int64_t time_ms = 1'000) {
  Entry e;
  e.kind = EntryKind::kThing;
  e.key = uid;
  e.value = Json{{"status", status}};
  e.time_ms = time_ms;
  return e;
}

SealedMessage Message(const std::string& id) {
  SealedMessage m;
  m.message_id = id;
  m.device_id = "openhab";
  m.body = R"({"kind":"changes","items":{"T":{"value":21.5}}})";
  m.properties = {{"kind", "changes"}, {"Table", "home"}};
  m.content_type = "application/json";
  m.content_encoding = "utf-8";
  m.creation_time = "2025-06-01T10:00:00.000Z";
  m.billed_chunks = 1;
  m.sequence = 42;
  return m;
}

std::vector<std::int64_t> Ids(const std::vector<Entry>& entries) {
  std::vector<std::int64_t> ids;
  ids.reserve(entries.size());
  for (const Entry& e : entries) ids.push_back(e.id);
  return ids;
}

std::vector<std::string> Keys(const std::vector<Entry>& entries) {
  std::vector<std::string> keys;
  keys.reserve(entries.size());
  for (const Entry& e : entries) keys.push_back(e.key);
  return keys;
}

class OutboxTest : public ::testing::Test {
 protected:
  OutboxOptions Options() {
    OutboxOptions options;
    options.dir = dir_.path() + "/store";
    options.clock = &clock_;
    return options;
  }
  std::unique_ptr<Outbox> OpenOutbox(OutboxOptions options) {
    auto opened = Outbox::Open(loop_, std::move(options));
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    if (!opened) return nullptr;
    auto outbox = std::move(opened).value();
    outbox->SetCommitted([this](std::size_t n) { committed_.push_back(n); });
    return outbox;
  }
  std::unique_ptr<Outbox> OpenOutbox() { return OpenOutbox(Options()); }
  std::string FilePath() const { return dir_.path() + "/store/outbox.sqlite"; }

  TempDir dir_;
  ManualLoop loop_;
  ManualClock clock_{1'700'000'000'000};
  std::vector<std::size_t> committed_;  // what each committed callback said
};

TEST_F(OutboxTest, EntriesAddedInOneTurnCommitInOneTransaction) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  for (int i = 0; i < 100; ++i) outbox->Add(Change("T" + std::to_string(i % 7), i));
  // Not accepted before the turn ends: nothing committed, nothing to peek.
  EXPECT_EQ(outbox->Stats().commits, 0);
  EXPECT_EQ(outbox->Stats().batched_entries, 100);
  EXPECT_TRUE(outbox->Peek(1000).empty());
  EXPECT_TRUE(committed_.empty());
  loop_.RunReady();
  EXPECT_EQ(outbox->Stats().commits, 1);
  EXPECT_EQ(committed_, std::vector<std::size_t>{100});
  EXPECT_EQ(outbox->Peek(1000).size(), 100U);
  EXPECT_EQ(outbox->Stats().pending_entries, 100);
  EXPECT_EQ(outbox->Stats().entries_accepted, 100);
  // The next turn is a new batch.
  outbox->Add(Change("T", 1));
  loop_.RunReady();
  EXPECT_EQ(outbox->Stats().commits, 2);
  EXPECT_EQ(committed_, (std::vector<std::size_t>{100, 1}));
}

TEST_F(OutboxTest, AFullBatchCommitsAtOnceAndReportsLater) {
  OutboxOptions options = Options();
  options.batch_limit = 10;
  auto outbox = OpenOutbox(options);
  ASSERT_TRUE(outbox);
  for (int i = 0; i < 25; ++i) outbox->Add(Change("T", i));
  EXPECT_EQ(outbox->Stats().commits, 2);
  EXPECT_EQ(outbox->Peek(100).size(), 20U);
  // The callback never runs inside Add.
  EXPECT_TRUE(committed_.empty());
  loop_.RunReady();
  EXPECT_EQ(outbox->Stats().commits, 3);
  std::size_t total = 0;
  for (std::size_t n : committed_) total += n;
  EXPECT_EQ(total, 25U);
  EXPECT_EQ(outbox->Peek(100).size(), 25U);
}

TEST_F(OutboxTest, PeekSendsHighPriorityFirstThenTheLongestWaiting) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  outbox->Add(Change("low1", 1, Priority::kLow));
  outbox->Add(Change("normal1", 1, Priority::kNormal));
  outbox->Add(Change("high1", 1, Priority::kHigh));
  outbox->Add(Change("low2", 1, Priority::kLow));
  outbox->Add(Change("normal2", 1, Priority::kNormal));
  outbox->Add(Change("high2", 1, Priority::kHigh));
  loop_.RunReady();
  const auto entries = outbox->Peek(100);
  EXPECT_EQ(Keys(entries),
            (std::vector<std::string>{"high1", "high2", "normal1", "normal2", "low1", "low2"}));
  EXPECT_EQ(Keys(outbox->Peek(3)), (std::vector<std::string>{"high1", "high2", "normal1"}));
  // Ids are assigned by the outbox, ascending in acceptance order.
  std::set<std::int64_t> ids;
  for (const Entry& e : entries) ids.insert(e.id);
  EXPECT_EQ(ids.size(), 6U);
  EXPECT_EQ(entries[0].id + 3, entries[1].id);  // high1 was third, high2 sixth
}

TEST_F(OutboxTest, ASnapshotReplacesThePendingSnapshotOfItsKeyAndKeepsItsPlace) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  outbox->Add(Snapshot("A", 1));
  outbox->Add(Snapshot("B", 1));
  outbox->Add(Snapshot("A", 2));  // same turn: replaces in memory
  loop_.RunReady();
  EXPECT_EQ(committed_, std::vector<std::size_t>{2});
  outbox->Add(Snapshot("A", 3));  // next turn: replaces the committed one
  outbox->Add(Change("A", 4));    // changes are appended
  outbox->Add(Change("A", 5));
  loop_.RunReady();
  const auto entries = outbox->Peek(100);
  ASSERT_EQ(entries.size(), 4U);
  EXPECT_EQ(Keys(entries), (std::vector<std::string>{"A", "B", "A", "A"}));
  EXPECT_EQ(entries[0].kind, EntryKind::kSnapshot);
  EXPECT_EQ(entries[0].value, 3);  // latest state, first place
  EXPECT_EQ(entries[2].value, 4);
  EXPECT_EQ(entries[3].value, 5);
  EXPECT_GT(entries[0].id, entries[1].id);  // a new id: the content changed
  EXPECT_EQ(outbox->Stats().snapshots_replaced, 2);
  EXPECT_EQ(outbox->Stats().pending_entries, 4);
}

TEST_F(OutboxTest, SealMovesEntriesIntoAMessageThatSurvivesARestart) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  for (int i = 0; i < 5; ++i) outbox->Add(Change("T", i));
  loop_.RunReady();
  const auto first = outbox->Peek(3);
  const SealedMessage message = Message("m-1");
  ASSERT_TRUE(outbox->Seal(message, Ids(first), {{"sequence", "42"}, {"budget.used", "7"}}));
  EXPECT_EQ(outbox->Stats().pending_entries, 2);
  EXPECT_EQ(outbox->Stats().sealed_messages, 1);
  const auto rest = outbox->Peek(100);
  ASSERT_EQ(rest.size(), 2U);
  EXPECT_EQ(rest[0].value, 3);

  outbox.reset();  // a restart
  outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  const auto sealed = outbox->Sealed();
  ASSERT_EQ(sealed.size(), 1U);
  SealedMessage expected = message;
  expected.sealed_ms = clock_.NowMs();  // filled in by the outbox's clock
  EXPECT_EQ(sealed[0], expected);
  EXPECT_EQ(Ids(outbox->Peek(100)), Ids(rest));
  EXPECT_EQ(outbox->GetMeta("sequence")->value_or(""), "42");
  EXPECT_EQ(outbox->GetMeta("budget.used")->value_or(""), "7");
}

TEST_F(OutboxTest, SealIsAllOrNothing) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  for (int i = 0; i < 4; ++i) outbox->Add(Change("T", i));
  loop_.RunReady();
  const auto entries = outbox->Peek(2);
  ASSERT_TRUE(outbox->Seal(Message("m-1"), Ids(entries), {{"sequence", "1"}}));
  // A duplicate message id fails the whole seal: no entry deleted, no meta written.
  const auto next = outbox->Peek(2);
  auto status = outbox->Seal(Message("m-1"), Ids(next), {{"sequence", "2"}});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, "store");
  EXPECT_NE(status.error().message.find("m-1"), std::string::npos) << status.error().message;
  EXPECT_EQ(outbox->Peek(100).size(), 2U);
  EXPECT_EQ(outbox->GetMeta("sequence")->value_or(""), "1");
  EXPECT_EQ(outbox->Sealed().size(), 1U);
  EXPECT_EQ(outbox->Stats().commit_errors, 1);
  // Ids that are gone are skipped; what is still pending stays.
  ASSERT_TRUE(outbox->Seal(Message("m-2"), std::vector<std::int64_t>{entries[0].id, next[0].id}));
  EXPECT_EQ(Ids(outbox->Peek(100)), std::vector<std::int64_t>{next[1].id});
}

TEST_F(OutboxTest, SealedMessagesStayInSealOrder) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  for (const char* id : {"m-b", "m-a", "m-c"}) ASSERT_TRUE(outbox->Seal(Message(id), {}));
  std::vector<std::string> ids;
  for (const auto& m : outbox->Sealed()) ids.push_back(m.message_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"m-b", "m-a", "m-c"}));
}

TEST_F(OutboxTest, AcknowledgeForgetsAMessage) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  ASSERT_TRUE(outbox->Seal(Message("m-1"), {}));
  ASSERT_TRUE(outbox->Seal(Message("m-2"), {}));
  outbox->Acknowledge("m-1");
  outbox->Acknowledge("unknown");
  // Gone from the list at once, committed at the end of the turn.
  ASSERT_EQ(outbox->Sealed().size(), 1U);
  EXPECT_EQ(outbox->Sealed()[0].message_id, "m-2");
  const auto commits = outbox->Stats().commits;
  loop_.RunReady();
  EXPECT_EQ(outbox->Stats().commits, commits + 1);
  EXPECT_EQ(outbox->Stats().sealed_messages, 1);
  EXPECT_TRUE(committed_.empty());  // no entries were accepted
  outbox.reset();
  outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  ASSERT_EQ(outbox->Sealed().size(), 1U);
  EXPECT_EQ(outbox->Sealed()[0].message_id, "m-2");
}

TEST_F(OutboxTest, IdsAreNeverReusedAcrossRestarts) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  for (int i = 0; i < 3; ++i) outbox->Add(Change("T", i));
  loop_.RunReady();
  auto entries = outbox->Peek(100);
  const std::int64_t highest = entries.back().id;
  // Seal them all, so that no id is left in the file.
  ASSERT_TRUE(outbox->Seal(Message("m-1"), Ids(entries)));
  outbox.reset();
  outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  outbox->Add(Change("T", 9));
  loop_.RunReady();
  entries = outbox->Peek(100);
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_GT(entries[0].id, highest);
}

TEST_F(OutboxTest, MergeHistoryKeepsTheLatestStateAndSummarisesTheRest) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  outbox->Add(Snapshot("T", 19.0, 500));  // older than T's changes: merged in
  Entry a = Change("T", 20.5, Priority::kLow, 1'000);
  outbox->Add(a);
  outbox->Add(Change("Other", 1, Priority::kNormal, 1'100));
  Entry b = Change("T", 25, Priority::kHigh, 2'000);
  b.count = 3;  // already a merge of three
  b.first_ms = 900;
  b.min = 12;
  b.max = 26;
  outbox->Add(b);
  Entry c = Change("T", nullptr, Priority::kNormal, 3'000);
  c.state = "UNDEF";
  c.unit = "°C";
  c.type = "Number:Temperature";
  outbox->Add(c);
  outbox->Add(Snapshot("S", 1));  // a lone snapshot: nothing to merge
  outbox->Add(Thing("hue:bridge:1", "ONLINE", 1'000));
  outbox->Add(Thing("hue:bridge:1", "OFFLINE", 4'000));
  loop_.RunReady();
  const auto before = outbox->Peek(100);
  ASSERT_EQ(before.size(), 8U);

  auto report = outbox->MergeHistory();
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->merged, 4);
  EXPECT_EQ(report->per_key, (std::map<std::string, std::int64_t>{{"T", 3}, {"hue:bridge:1", 1}}));
  EXPECT_EQ(outbox->Stats().merged, 4);
  EXPECT_EQ(outbox->merged_by_key().at("T"), 3);
  EXPECT_EQ(outbox->Stats().pending_entries, 4);

  const auto after = outbox->Peek(100);
  ASSERT_EQ(after.size(), 4U);
  // The merged T outranks the rest (high priority); the others keep their order.
  EXPECT_EQ(Keys(after), (std::vector<std::string>{"T", "Other", "S", "hue:bridge:1"}));
  const Entry& t = after[0];
  EXPECT_EQ(t.kind, EntryKind::kChange);
  EXPECT_EQ(t.priority, Priority::kHigh);
  EXPECT_TRUE(t.value.is_null());
  EXPECT_EQ(t.state, "UNDEF");
  EXPECT_EQ(t.unit, "°C");
  EXPECT_EQ(t.type, "Number:Temperature");
  EXPECT_EQ(t.time_ms, 3'000);
  EXPECT_EQ(t.count, 1 + 1 + 3 + 1);
  EXPECT_EQ(t.first_ms, 500);
  EXPECT_EQ(t.min, 12);
  EXPECT_EQ(t.max, 26);
  EXPECT_GT(t.id, before.back().id);  // a new id, never one of the merged ones
  const Entry& thing = after[3];
  EXPECT_EQ(thing.kind, EntryKind::kThing);
  EXPECT_EQ(thing.value, (Json{{"status", "OFFLINE"}}));
  EXPECT_EQ(thing.count, 2);
  EXPECT_EQ(thing.first_ms, 1'000);
  EXPECT_FALSE(thing.min.has_value());

  // Nothing left to merge.
  report = outbox->MergeHistory();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->merged, 0);
}

TEST_F(OutboxTest, ASnapshotNewerThanEveryChangeIsNotMergedAway) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  outbox->Add(Change("T", 1));
  outbox->Add(Change("T", 2));
  outbox->Add(Snapshot("T", 3));
  loop_.RunReady();
  auto report = outbox->MergeHistory();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->merged, 1);
  const auto entries = outbox->Peek(100);
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[0].kind, EntryKind::kChange);
  EXPECT_EQ(entries[0].value, 2);
  EXPECT_EQ(entries[1].kind, EntryKind::kSnapshot);
  EXPECT_EQ(entries[1].value, 3);
  // A later change makes that snapshot history too; the latest value wins again.
  outbox->Add(Change("T", 4));
  loop_.RunReady();
  report = outbox->MergeHistory();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->merged, 2);
  ASSERT_EQ(outbox->Peek(100).size(), 1U);
  EXPECT_EQ(outbox->Peek(100)[0].value, 4);
  EXPECT_EQ(outbox->Peek(100)[0].count, 4);
}

TEST_F(OutboxTest, MergeHistoryCanBeLimitedToOlderEntriesOrToKeys) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  for (int i = 0; i < 6; ++i) outbox->Add(Change("T", i));
  for (int i = 0; i < 3; ++i) outbox->Add(Change("U", i));
  loop_.RunReady();
  const auto entries = outbox->Peek(100);
  MergeFilter older;
  older.before_id = entries[3].id;  // T's first three only
  auto report = outbox->MergeHistory(older);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->merged, 2);
  auto now = outbox->Peek(100);
  ASSERT_EQ(now.size(), 7U);
  EXPECT_EQ(now[0].value, 2);
  EXPECT_EQ(now[0].count, 3);
  EXPECT_EQ(now[1].value, 3);

  MergeFilter only_u;
  only_u.keys = {"U"};
  report = outbox->MergeHistory(only_u);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->per_key, (std::map<std::string, std::int64_t>{{"U", 2}}));
  // A second limited merge takes the earlier merge along (its oldest fact decides).
  older.before_id = entries[5].id;
  report = outbox->MergeHistory(older);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->merged, 2);
  now = outbox->Peek(100);
  ASSERT_EQ(now.size(), 3U);
  EXPECT_EQ(now[0].value, 4);
  EXPECT_EQ(now[0].count, 5);
}

// The latest value of every key among `entries`, by the highest id.
std::map<std::string, Json> Latest(const std::vector<Entry>& entries) {
  std::map<std::string, std::pair<std::int64_t, Json>> latest;
  for (const Entry& e : entries) {
    auto& slot = latest[e.key];
    if (e.id > slot.first) slot = {e.id, e.value};
  }
  std::map<std::string, Json> out;
  for (auto& [key, v] : latest) out[key] = v.second;
  return out;
}

TEST_F(OutboxTest, TheDiskBoundMergesHistoryAndKeepsEveryLatestState) {
  OutboxOptions options = Options();
  options.max_bytes = 512 << 10;
  auto outbox = OpenOutbox(options);
  ASSERT_TRUE(outbox);
  std::map<std::string, Json> expected;
  for (int turn = 0; turn < 100; ++turn) {
    for (int i = 0; i < 200; ++i) {
      const std::string key = "Sensor_" + std::to_string(i % 50);
      const Json value = turn * 1000 + i;
      outbox->Add(Change(key, value, Priority::kNormal, 1'000 + turn));
      expected[key] = value;
    }
    loop_.RunReady();
  }
  const OutboxStats stats = outbox->Stats();
  EXPECT_EQ(stats.entries_accepted, 20'000);
  EXPECT_GT(stats.merged, 0);
  EXPECT_LT(stats.pending_entries, 20'000);
  EXPECT_FALSE(stats.full);
  EXPECT_LE(stats.file_bytes, options.max_bytes);
  const auto entries = outbox->Peek(100'000);
  EXPECT_EQ(static_cast<std::int64_t>(entries.size()), stats.pending_entries);
  EXPECT_EQ(Latest(entries), expected);
  // Every change is accounted for: pending counts plus merged ones.
  std::int64_t counted = 0;
  for (const Entry& e : entries) counted += e.count;
  EXPECT_EQ(counted, 20'000);
}

TEST_F(OutboxTest, WhenNothingIsLeftToMergeTheOutboxSaysFullAndKeepsOnePerKey) {
  OutboxOptions options = Options();
  options.max_bytes = 256 << 10;
  auto outbox = OpenOutbox(options);
  ASSERT_TRUE(outbox);
  const std::string padding(200, 'x');
  std::map<std::string, Json> expected;
  for (int turn = 0; turn < 4; ++turn) {
    for (int i = 0; i < 600; ++i) {
      const std::string key = "Item_" + std::to_string(i);
      const Json value = padding + std::to_string(turn);
      outbox->Add(Change(key, value));
      expected[key] = value;
    }
    loop_.RunReady();
  }
  OutboxStats stats = outbox->Stats();
  EXPECT_TRUE(stats.full);
  EXPECT_EQ(stats.full_events, 1);
  ASSERT_TRUE(outbox->last_error().has_value());
  EXPECT_EQ(outbox->last_error()->code, "full");
  EXPECT_NE(outbox->last_error()->message.find("full"), std::string::npos);
  EXPECT_EQ(stats.pending_entries, 600);  // one per key
  auto entries = outbox->Peek(100'000);
  EXPECT_EQ(Latest(entries), expected);
  // More changes while full: still one per key, the latest.
  for (int i = 0; i < 600; ++i) {
    const std::string key = "Item_" + std::to_string(i);
    outbox->Add(Change(key, padding + "new"));
    expected[key] = padding + "new";
  }
  loop_.RunReady();
  EXPECT_EQ(outbox->Stats().pending_entries, 600);
  entries = outbox->Peek(100'000);
  EXPECT_EQ(Latest(entries), expected);
  for (const Entry& e : entries) EXPECT_EQ(e.count, 5);
  // Sending makes room: the outbox stops being full.
  std::size_t n = 0;
  while (!(entries = outbox->Peek(100)).empty()) {
    ASSERT_TRUE(outbox->Seal(Message("m-" + std::to_string(n++)), Ids(entries)));
    for (const auto& m : outbox->Sealed()) outbox->Acknowledge(m.message_id);
    loop_.RunReady();
  }
  EXPECT_FALSE(outbox->Stats().full);
  EXPECT_FALSE(outbox->last_error().has_value());
}

TEST_F(OutboxTest, AFileThatIsNotSqliteIsAClearError) {
  std::filesystem::create_directories(dir_.path() + "/store");
  std::ofstream(FilePath()) << "this is not a database, just some text that is long enough to "
                               "fill an SQLite header of one hundred bytes or so, really.";
  auto opened = Outbox::Open(loop_, Options());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, "store");
  EXPECT_NE(opened.error().message.find(FilePath()), std::string::npos) << opened.error().message;
  EXPECT_NE(opened.error().message.find("not an SQLite database"), std::string::npos)
      << opened.error().message;
}

// Runs `sql` on the file with a plain SQLite connection.
void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

TEST_F(OutboxTest, ANewerFormatVersionIsAClearError) {
  ASSERT_TRUE(OpenOutbox());  // creates version 1, closed again at once
  RawExec(FilePath(), "PRAGMA user_version = 2");
  auto opened = Outbox::Open(loop_, Options());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, "store");
  EXPECT_NE(opened.error().message.find(FilePath()), std::string::npos);
  EXPECT_NE(opened.error().message.find("format version 2 is newer"), std::string::npos)
      << opened.error().message;
}

TEST_F(OutboxTest, AnotherProgramsDatabaseIsAClearError) {
  std::filesystem::create_directories(dir_.path() + "/store");
  RawExec(FilePath(), "CREATE TABLE t(x)");
  auto opened = Outbox::Open(loop_, Options());
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("another program"), std::string::npos)
      << opened.error().message;
}

TEST_F(OutboxTest, OneProcessAtATimeOwnsTheStore) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  auto second = Outbox::Open(loop_, Options());
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("another connector"), std::string::npos)
      << second.error().message;
}

TEST_F(OutboxTest, TheStoreIsPrivate) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  struct stat st {};
  ASSERT_EQ(::stat((dir_.path() + "/store").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700U);
  ASSERT_EQ(::stat(FilePath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
}

TEST_F(OutboxTest, MetaRoundTripsAcrossARestart) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  EXPECT_EQ(*outbox->GetMeta("twin.reported"), std::nullopt);
  ASSERT_TRUE(outbox->PutMeta("twin.reported", R"({"T":1})"));
  ASSERT_TRUE(outbox->PutMeta("twin.reported", R"({"T":2})"));
  ASSERT_TRUE(outbox->PutMeta("sequence", "9"));
  EXPECT_FALSE(outbox->PutMeta("outbox.next_entry_id", "1").ok());  // the outbox's own
  outbox.reset();
  outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  EXPECT_EQ(*outbox->GetMeta("twin.reported"), std::optional<std::string>(R"({"T":2})"));
  EXPECT_EQ(*outbox->GetMeta("sequence"), std::optional<std::string>("9"));
}

TEST_F(OutboxTest, AFailedCommitIsReportedRetriedAndLosesNothing) {
  OutboxFaultVfs vfs;
  OutboxOptions options = Options();
  options.vfs = vfs.name();
  options.memory_limit = 100;
  auto outbox = OpenOutbox(options);
  ASSERT_TRUE(outbox);
  outbox->Add(Change("T", 1));
  loop_.RunReady();
  ASSERT_EQ(outbox->Peek(100).size(), 1U);

  vfs.disk_full = true;
  outbox->Add(Change("T", 2));
  outbox->Add(Snapshot("S", 1));
  loop_.RunReady();
  EXPECT_GT(vfs.failed_writes, 0);
  OutboxStats stats = outbox->Stats();
  EXPECT_EQ(stats.commit_errors, 1);
  EXPECT_EQ(stats.batched_entries, 2);
  ASSERT_TRUE(outbox->last_error().has_value());
  EXPECT_EQ(outbox->last_error()->code, "store");
  EXPECT_NE(outbox->last_error()->message.find("database or disk is full"), std::string::npos)
      << outbox->last_error()->message;
  EXPECT_EQ(committed_, std::vector<std::size_t>{1});
  // What was committed is still there.
  ASSERT_EQ(outbox->Peek(100).size(), 1U);
  EXPECT_EQ(outbox->Peek(100)[0].value, 1);
  // Flush says so too.
  EXPECT_FALSE(outbox->Flush().ok());

  // Past the memory limit, each key's entries in memory merge; the latest states stay.
  for (int i = 0; i < 300; ++i) {
    outbox->Add(Change("K" + std::to_string(i % 10), i));
    loop_.RunReady();
  }
  stats = outbox->Stats();
  EXPECT_LE(stats.batched_entries, 101);
  EXPECT_GT(stats.merged, 0);

  // The retry (with backoff) succeeds once space returns.
  vfs.disk_full = false;
  loop_.Advance(60'000);
  stats = outbox->Stats();
  EXPECT_EQ(stats.batched_entries, 0);
  EXPECT_FALSE(outbox->last_error().has_value());
  const auto entries = outbox->Peek(1000);
  std::map<std::string, Json> expected{{"T", 2}, {"S", 1}};
  for (int i = 290; i < 300; ++i) expected["K" + std::to_string(i % 10)] = i;
  EXPECT_EQ(Latest(entries), expected);
  std::int64_t counted = 0;
  for (const Entry& e : entries) counted += e.count;
  EXPECT_EQ(counted, 1 + 1 + 1 + 300);
  std::size_t total = 0;
  for (std::size_t n : committed_) total += n;
  EXPECT_EQ(total, entries.size());
}

TEST_F(OutboxTest, ACommitSurvivesTheProcessBeingKilled) {
  const OutboxOptions options = Options();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child accepts entries and dies without closing anything.
    ManualLoop loop;
    auto opened = Outbox::Open(loop, options);
    if (!opened) ::_exit(2);
    for (int i = 0; i < 50; ++i) opened.value()->Add(Change("T" + std::to_string(i), i));
    loop.RunReady();
    if (opened.value()->Stats().pending_entries != 50) ::_exit(3);
    if (!opened.value()->Seal(Message("m-1"), std::vector<std::int64_t>{1, 2})) ::_exit(4);
    opened.value()->Add(Change("uncommitted", 0));  // batched only: not accepted
    ::raise(SIGKILL);
    ::_exit(5);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  auto outbox = OpenOutbox(options);
  ASSERT_TRUE(outbox);
  EXPECT_EQ(outbox->Stats().pending_entries, 48);
  ASSERT_EQ(outbox->Sealed().size(), 1U);
  EXPECT_EQ(outbox->Sealed()[0].message_id, "m-1");
  for (const Entry& e : outbox->Peek(100)) EXPECT_NE(e.key, "uncommitted");
}

TEST_F(OutboxTest, TheWalIsSyncedSoonAfterACommit) {
  OutboxOptions options = Options();
  options.sync_interval_ms = 1'000;
  auto outbox = OpenOutbox(options);
  ASSERT_TRUE(outbox);
  EXPECT_EQ(loop_.pending_timers(), 0U);
  outbox->Add(Change("T", 1));
  loop_.RunReady();
  EXPECT_EQ(outbox->Stats().syncs, 0);
  loop_.Advance(999);
  EXPECT_EQ(outbox->Stats().syncs, 0);
  loop_.Advance(1);
  EXPECT_EQ(outbox->Stats().syncs, 1);
  // Nothing new: no timer, no sync.
  EXPECT_EQ(loop_.pending_timers(), 0U);
  ASSERT_TRUE(outbox->Sync());
  EXPECT_EQ(outbox->Stats().syncs, 1);
  // An explicit Sync commits what is batched and syncs it.
  outbox->Add(Change("T", 2));
  ASSERT_TRUE(outbox->Sync());
  EXPECT_EQ(outbox->Stats().syncs, 2);
  EXPECT_EQ(outbox->Peek(10).size(), 2U);
}

TEST_F(OutboxTest, StatsTellTheOldestPendingEntry) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  EXPECT_EQ(outbox->Stats().oldest_pending_ms, 0);
  const std::int64_t first = clock_.NowMs();
  outbox->Add(Change("A", 1, Priority::kLow));
  clock_.Advance(5'000);
  outbox->Add(Change("B", 1, Priority::kHigh));
  loop_.RunReady();
  EXPECT_EQ(outbox->Stats().oldest_pending_ms, first);
  EXPECT_GT(outbox->Stats().file_bytes, 0);
  const auto entries = outbox->Peek(10);
  ASSERT_TRUE(outbox->Seal(Message("m"), std::vector<std::int64_t>{entries[1].id}));
  EXPECT_EQ(outbox->Stats().oldest_pending_ms, first + 5'000);
}

TEST_F(OutboxTest, DestroyingTheOutboxCommitsItsBatch) {
  auto outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  outbox->Add(Change("T", 1));
  outbox.reset();
  loop_.RunReady();  // the posted commit task finds the outbox gone and does nothing
  EXPECT_TRUE(committed_.empty());
  outbox = OpenOutbox();
  ASSERT_TRUE(outbox);
  EXPECT_EQ(outbox->Peek(10).size(), 1U);
}

TEST_F(OutboxTest, OptionsAreChecked) {
  OutboxOptions options = Options();
  options.max_bytes = 1000;
  auto opened = Outbox::Open(loop_, options);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("max_bytes"), std::string::npos);
  options = Options();
  options.dir = "";
  EXPECT_FALSE(Outbox::Open(loop_, options).ok());
}

}  // namespace
}  // namespace iothub::connector
