// Benchmark of the durable outbox (issue 10, "Durability"): changes per second made durable
// with group commit, driven through a real PollLoop the way the replicator feeds it (a number
// of changes per loop turn), against the baseline of one transaction per change in the same
// run (and, for scale, one fsynced transaction per change); then the dispatcher's cycle,
// Peek + Seal + Acknowledge of ~30-entry messages, with 100,000 entries pending. Prints
// figures; not a test. The target is 10,000 changes/s on a 2-core machine.
//
//   build/bin/outbox_bench [--changes N] [--dir DIR]
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "connector/outbox.h"
#include "support/emulator_fixture.h"

namespace {

using iothub::PollLoop;
using iothub::connector::Entry;
using iothub::connector::EntryKind;
using iothub::connector::Outbox;
using iothub::connector::OutboxOptions;
using iothub::connector::SealedMessage;
using Steady = std::chrono::steady_clock;

// Prints a line at once, so that progress shows while the next figure is measured.
template <typename... Args>
void Line(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(format, std::forward<Args>(args)...);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

double SecondsSince(Steady::time_point start) {
  return std::chrono::duration<double>(Steady::now() - start).count();
}

// A home's mix: a thousand items, numbers with units mostly.
Entry MakeChange(std::int64_t i) {
  Entry e;
  e.kind = EntryKind::kChange;
  e.key = fmt::format("Room{}_Sensor{}", i % 40, i % 1000);
  e.type = "Number:Power";
  e.value = static_cast<double>(i % 3500) / 10.0;
  e.unit = "W";
  e.time_ms = 1'700'000'000'000 + i;
  return e;
}

std::unique_ptr<Outbox> OpenFresh(PollLoop& loop, const std::string& dir, OutboxOptions options) {
  std::filesystem::remove_all(dir);
  options.dir = dir;
  auto opened = Outbox::Open(loop, std::move(options));
  if (!opened) {
    fmt::print(stderr, "open: {}", opened.error().message);
    std::exit(1);
  }
  return std::move(opened).value();
}

struct Run {
  double seconds = 0;
  std::int64_t commits = 0;
};

// Adds `n` changes, `per_turn` in each loop turn, and waits until all are committed.
Run Feed(PollLoop& loop, Outbox& outbox, std::int64_t n, std::int64_t per_turn) {
  std::int64_t added = 0;
  std::int64_t committed = 0;
  outbox.SetCommitted([&](std::size_t count) { committed += static_cast<std::int64_t>(count); });
  const std::int64_t commits_before = outbox.Stats().commits;
  std::function<void()> turn = [&] {
    for (std::int64_t i = 0; i < per_turn && added < n; ++i) outbox.Add(MakeChange(added++));
    if (added < n) loop.Post(turn);
  };
  const auto start = Steady::now();
  loop.Post(turn);
  if (!loop.RunUntil([&] { return committed >= n; }, 600'000)) {
    fmt::print(stderr, "timed out: {} of {} committed ({})", committed, n,
               outbox.last_error() ? outbox.last_error()->message : "no error");
    std::exit(1);
  }
  Run run;
  run.seconds = SecondsSince(start);
  run.commits = outbox.Stats().commits - commits_before;
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t changes = 100'000;
  std::string base;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--changes") == 0) changes = std::atoll(argv[i + 1]);
    if (std::strcmp(argv[i], "--dir") == 0) base = argv[i + 1];
  }
  iothub::testing::TempDir temp;
  if (base.empty()) base = temp.path();
  PollLoop loop;
  OutboxOptions options;
  options.max_bytes = std::int64_t{1} << 30;  // measure the queue, not the disk bound

  Line("outbox: {} changes into {}/.../outbox.sqlite (WAL, synchronous=NORMAL)", changes, base);
  Line("{:<44} {:>12} {:>10} {:>10}", "", "changes/s", "commits", "seconds");
  double group_rate = 0;
  for (std::int64_t per_turn : {std::int64_t{1}, std::int64_t{10}, std::int64_t{100}, changes}) {
    auto outbox = OpenFresh(loop, base + "/group", options);
    const Run run = Feed(loop, *outbox, changes, per_turn);
    const double rate = static_cast<double>(changes) / run.seconds;
    if (per_turn == 10) group_rate = rate;
    Line("{:<44} {:>12.0f} {:>10} {:>10.2f}",
         fmt::format("group commit, {} per loop turn", per_turn), rate, run.commits, run.seconds);
  }

  // Baselines: every change its own transaction.
  const std::int64_t baseline_changes = std::min<std::int64_t>(changes, 20'000);
  OutboxOptions single = options;
  single.batch_limit = 1;
  double single_rate = 0;
  {
    auto outbox = OpenFresh(loop, base + "/single", single);
    const Run run = Feed(loop, *outbox, baseline_changes, 10);
    single_rate = static_cast<double>(baseline_changes) / run.seconds;
    Line("{:<44} {:>12.0f} {:>10} {:>10.2f}", "one transaction per change", single_rate,
         run.commits, run.seconds);
  }
  {
    OutboxOptions fsynced = options;
    fsynced.sync_commits = true;
    auto outbox = OpenFresh(loop, base + "/group-fsync", fsynced);
    const std::int64_t n = std::min<std::int64_t>(changes, 20'000);
    const Run run = Feed(loop, *outbox, n, 100);
    Line("{:<44} {:>12.0f} {:>10} {:>10.2f}", "group commit, 100 per turn, each fsynced",
         static_cast<double>(n) / run.seconds, run.commits, run.seconds);
  }
  single.sync_commits = true;
  {
    const std::int64_t n = std::min<std::int64_t>(changes, 300);
    auto outbox = OpenFresh(loop, base + "/fsync", single);
    const Run run = Feed(loop, *outbox, n, 10);
    Line("{:<44} {:>12.0f} {:>10} {:>10.2f}", "one fsynced transaction per change",
         static_cast<double>(n) / run.seconds, run.commits, run.seconds);
  }
  Line("group commit (10 per turn) / one transaction per change: {:.1f}x",
       group_rate / single_rate);

  // The dispatcher's cycle with 100,000 pending.
  auto outbox = OpenFresh(loop, base + "/cycle", options);
  const std::int64_t pending = std::max<std::int64_t>(changes, 100'000);
  (void)Feed(loop, *outbox, pending, pending);
  {
    const int peeks = 1000;
    const auto start = Steady::now();
    std::size_t seen = 0;
    for (int i = 0; i < peeks; ++i) seen += outbox->Peek(30).size();
    Line("Peek(30) with {} pending: {:.1f} us ({} entries)", pending,
         SecondsSince(start) / peeks * 1e6, seen / peeks);
  }
  {
    const auto start = Steady::now();
    auto report = outbox->MergeHistory({.before_id = pending / 2, .keys = {}});
    Line("MergeHistory of the older half ({} pending, 1000 keys): {:.0f} ms, {} merged", pending,
         SecondsSince(start) * 1e3, report ? report->merged : -1);
  }
  (void)Feed(loop, *outbox, pending - outbox->Stats().pending_entries, pending);
  {
    std::int64_t messages = 0;
    std::int64_t entries = 0;
    bool done = false;
    std::function<void()> cycle = [&] {
      const std::vector<Entry> batch = outbox->Peek(30);
      if (batch.empty()) {
        done = true;
        return;
      }
      std::vector<std::int64_t> ids;
      std::string body = R"({"v":1,"kind":"changes","items":{)";
      for (const Entry& e : batch) {
        ids.push_back(e.id);
        body += fmt::format(R"("{}":{{"value":{},"unit":"{}","time":{}}},)", e.key, e.value.dump(),
                            e.unit, e.time_ms);
      }
      body.back() = '}';
      body += "}";
      SealedMessage m;
      m.message_id = fmt::format("m-{}", messages);
      m.device_id = "openhab";
      m.body = std::move(body);
      m.properties = {{"kind", "changes"}};
      m.content_type = "application/json";
      m.content_encoding = "utf-8";
      m.billed_chunks = 1;
      m.sequence = messages;
      if (auto s = outbox->Seal(m, ids, {{"sequence", std::to_string(messages)}}); !s) {
        fmt::print(stderr, "seal: {}", s.error().message);
        std::exit(1);
      }
      ++messages;
      entries += static_cast<std::int64_t>(ids.size());
      outbox->Acknowledge(m.message_id);  // as if the PUBACK came at once
      loop.Post(cycle);
    };
    const auto start = Steady::now();
    loop.Post(cycle);
    loop.RunUntil([&] { return done; }, 600'000);
    (void)outbox->Flush();
    const double seconds = SecondsSince(start);
    Line(
        "Peek(30) + Seal + Acknowledge: {:.0f} messages/s ({:.0f} entries/s), {} messages "
        "in {:.2f} s",
        static_cast<double>(messages) / seconds, static_cast<double>(entries) / seconds, messages,
        seconds);
  }
  {
    const int syncs = 50;
    double total = 0;
    for (int i = 0; i < syncs; ++i) {
      outbox->Add(MakeChange(i));
      (void)outbox->Flush();
      const auto start = Steady::now();
      (void)outbox->Sync();
      total += SecondsSince(start);
    }
    Line("Sync() (one WAL fsync): {:.2f} ms on average", total / syncs * 1e3);
  }
  Line("file after the run: {} bytes", outbox->Stats().file_bytes);
  return 0;
}
