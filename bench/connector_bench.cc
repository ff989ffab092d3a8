// Benchmark of the iothub-connector daemon end to end (issue 10, "Acceptance", the benchmark):
// the real iothub-emulator, openhab-sim and iothub-connector as child processes
// (tests/support/connector_rig.h). Prints figures; not a test. Each figure is printed with the
// command line that reproduces it, and as a ratio against a baseline measured in the same run,
// because these machines are noisy.
//
// 1. Latency from an openhab-sim change to the hub's receipt at a fixed rate (1,000 changes/s)
//    with an unlimited budget (S3 x10 hub and budget): the bench PUTs
//    /rest/items/{name}/state over one kept-alive connection, spread over 20 Number items, each
//    change a unique value, and takes the time from each request (its wall clock) to the
//    emulator's enqueuedTime of the message carrying that value (items.<name>.value or its
//    history). Targets: p50 2 ms, p99 10 ms. Baseline: a bare libmosquitto QoS 1 publisher
//    (support/emulator_fixture.h DeviceClient) publishing the same values at the same rate
//    straight to the emulator, measured the same way.
// 2. Sustained maximum: /sim/burst?count=N through the connector, changes/s reaching the hub.
//    Baseline: the same burst read by a bare SSE reader (how fast the source can go).
// 3. Outbox: build/bin/outbox_bench, group commit against one transaction per change.
// 4. Memory: VmRSS (anonymous and file-backed), VmHWM and PSS of the connector with 1,000 items
//    after the snapshot, after the load and after the burst (target under 16 MB). Baseline: the
//    connector with the demo home (plus the 20 load items).
//
// --quick runs every phase with tiny sizes in a few seconds (a smoke test). The full run takes
// under a minute.
//
// The emulator stamps enqueuedTime in whole milliseconds (truncated), so a latency is taken as
// enqueued_ms + 0.5 - post time: unbiased, with +-0.5 ms of resolution.
//
//   build/bin/connector_bench [--quick] [--phases bare,demo,big,outbox] [--rate N]
//                             [--seconds S] [--items N] [--burst N] [--outbox-changes N]
//                             [--smaps DIR]
#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "openhab/topic_filter.h"
#include "support/connector_rig.h"
#include "support/emulator_fixture.h"

namespace {

using iothub::testing::ConnectorRig;
using iothub::testing::DeviceClient;
using iothub::testing::HubMessage;
using iothub::testing::TempDir;
using iothub::testing::WaitUntil;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr std::int64_t kValueBase = 100'000;  // load values: kValueBase + the change's index
constexpr int kLoadItems = 20;
const std::vector<std::string> kHub = {"--tier", "S3", "--units", "10"};
constexpr char kBudget[] = "[quota]\ntier = \"S3\"\nunits = 10\n";

// Prints a line at once, so that progress shows while the next figure is measured.
template <typename... Args>
void Line(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(format, std::forward<Args>(args)...);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}
const auto kProgramStart = std::chrono::steady_clock::now();

// Progress and problems, on stderr, with the seconds since the start.
template <typename... Args>
void Note(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(
      stderr, "[{:5.1f} s] ",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - kProgramStart).count());
  fmt::print(stderr, format, std::forward<Args>(args)...);
  std::fputc('\n', stderr);
}

double WallMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Options {
  bool quick = false;
  std::set<std::string> phases = {"bare", "demo", "big", "outbox"};
  double rate = 1000;
  double seconds = 10;
  int items = 1000;
  long burst = 50'000;
  long outbox_changes = 100'000;

  // The command line that repeats `phases` with these sizes.
  std::string Command(const std::string& which) const {
    return fmt::format(
        "build/bin/connector_bench --phases {} --rate {:g} --seconds {:g} --items {} --burst {} "
        "--outbox-changes {}",
        which, rate, seconds, items, burst, outbox_changes);
  }
};

std::string LoadName(int i) { return fmt::format("Load_{:02}", i); }

// ---------------------------------------------------------------------------------------------
// Homes

json LoadItem(int i) {
  return {{"name", LoadName(i)},
          {"type", "Number:Power"},
          {"label", fmt::format("Load {}", i)},
          {"state", "0 W"},
          {"unit", "W"},
          {"tags", {"Measurement", "Power"}},
          {"category", "energy"}};
}

// The demo home with the 20 load items added (none of the demo's Number items is free of
// azureiothub metadata and series, so the load gets its own).
std::string WriteDemoHome(const std::string& dir) {
  json home = json::parse(iothub::testing::ReadFile(iothub::testing::SimProcess::DemoHome()),
                          nullptr, false);
  if (!home.is_object() || !home.contains("items")) {
    Note("cannot read {}", iothub::testing::SimProcess::DemoHome());
    std::exit(1);
  }
  for (int i = 0; i < kLoadItems; ++i) home["items"].push_back(LoadItem(i));
  std::string path = dir + "/demo-plus-load.json";
  std::ofstream(path) << home.dump();
  return path;
}

// `n` replicated items (the 20 load items first, then a mix of numbers with units, switches,
// contacts, dimmers, texts and times) in 10 plain groups, which are not replicated. The number
// of Number items is kept off multiples of 50, so that /sim/burst (whose values repeat every 50
// updates) changes an item's state with every update.
std::string WriteBigHome(const std::string& dir, int n, std::set<std::string>* numbers) {
  struct Kind {
    const char* name;
    const char* type;
    const char* state;
  };
  static constexpr Kind kKinds[] = {
      {"Temperature", "Number:Temperature", "21.5 °C"},
      {"Power", "Number:Power", "120 W"},
      {"Energy", "Number:Energy", "1234.5 kWh"},
      {"Humidity", "Number:Dimensionless", "45 %"},
      {"Counter", "Number", "7"},
      {"Light", "Switch", "OFF"},
      {"Window", "Contact", "CLOSED"},
      {"Dimmer", "Dimmer", "40"},
      {"Mode", "String", "idle"},
      {"Seen", "DateTime", "2026-11-26T08:15:00.000+0000"},
  };
  json items = json::array();
  for (int g = 0; g < 10; ++g) {
    items.push_back({{"name", fmt::format("gZone{}", g)},
                     {"type", "Group"},
                     {"label", fmt::format("Zone {}", g)}});
  }
  numbers->clear();
  for (int i = 0; i < n; ++i) {
    json item;
    if (i < kLoadItems) {
      item = LoadItem(i);
    } else {
      const Kind& kind = kKinds[i % 10];
      item = {{"name", fmt::format("Zone{}_{}_{:04}", i % 10, kind.name, i)},
              {"type", kind.type},
              {"label", fmt::format("Zone {} {} {}", i % 10, kind.name, i)},
              {"state", kind.state},
              {"tags", {"Point"}}};
    }
    item["groups"] = {fmt::format("gZone{}", i % 10)};
    if (item["type"].get<std::string>().starts_with("Number")) {
      numbers->insert(item["name"].get<std::string>());
    }
    items.push_back(std::move(item));
  }
  if (numbers->size() % 50 == 0) {  // one number fewer: make the last item a text
    json& last = items.back();
    numbers->erase(last["name"].get<std::string>());
    last["type"] = "String";
    last["state"] = "idle";
  }
  const json home = {{"openhab-home", 1},
                     {"name", fmt::format("connector_bench: {} items", n)},
                     {"items", std::move(items)}};
  std::string path = dir + fmt::format("/home-{}.json", n);
  std::ofstream(path) << home.dump();
  return path;
}

// ---------------------------------------------------------------------------------------------
// Measuring

struct Memory {
  long rss_kb = -1;
  long hwm_kb = -1;
  long anon_kb = -1;  // of rss: heap, stacks, anonymous maps
  long file_kb = -1;  // of rss: mapped files (the program and its shared libraries)
  long pss_kb = -1;   // proportional set size: shared pages divided among their processes
};

// --smaps DIR: each reading also copies the connector's /proc/PID/smaps there, to see which
// mappings the resident set is made of.
std::string g_smaps_dir;
int g_smaps_count = 0;

Memory ReadMemory(pid_t pid) {
  if (!g_smaps_dir.empty()) {
    std::ifstream in(fmt::format("/proc/{}/smaps", pid));
    std::ofstream out(fmt::format("{}/smaps-{}.txt", g_smaps_dir, ++g_smaps_count));
    out << in.rdbuf();
  }
  Memory m;
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) m.rss_kb = std::strtol(line.c_str() + 6, nullptr, 10);
    if (line.starts_with("VmHWM:")) m.hwm_kb = std::strtol(line.c_str() + 6, nullptr, 10);
    if (line.starts_with("RssAnon:")) m.anon_kb = std::strtol(line.c_str() + 8, nullptr, 10);
    if (line.starts_with("RssFile:")) m.file_kb = std::strtol(line.c_str() + 8, nullptr, 10);
  }
  std::ifstream rollup(fmt::format("/proc/{}/smaps_rollup", pid));
  while (std::getline(rollup, line)) {
    if (line.starts_with("Pss:")) m.pss_kb = std::strtol(line.c_str() + 4, nullptr, 10);
  }
  return m;
}

double Mb(long kb) { return static_cast<double>(kb) / 1024.0; }

// The connector's status without per-item rows (cheap enough to poll).
json Status(const std::string& address) {
  if (address.empty()) return nullptr;
  httplib::Client client("http://" + address);
  client.set_read_timeout(5, 0);
  auto res = client.Get("/status?items=0");
  if (!res || res->status != 200) return nullptr;
  return json::parse(res->body, nullptr, false);
}

std::int64_t Field(const json& status, const char* section, const char* key) {
  if (!status.is_object() || !status.contains(section)) return -1;
  return status[section].value(key, std::int64_t{-1});
}

// Waits until the connector has read everything (its event count stands still for 300 ms),
// nothing is pending in the outbox and nothing is in flight. False after `timeout`.
bool WaitDrained(const std::string& address, std::chrono::milliseconds timeout) {
  std::int64_t last_events = -2;
  auto still_since = std::chrono::steady_clock::now();
  return WaitUntil(
      [&] {
        const json s = Status(address);
        const std::int64_t events = Field(s, "openhab", "events");
        const auto now = std::chrono::steady_clock::now();
        if (events != last_events) {
          last_events = events;
          still_since = now;
        }
        return events >= 0 && now - still_since >= 300ms &&
               Field(s, "outbox", "pending_entries") == 0 && Field(s, "hub", "in_flight") == 0 &&
               Field(s, "openhab", "items_selected") > 0;
      },
      timeout);
}

// Sends `count` changes, change k at start + (k + u) / rate with u uniform in [0, 1) (or at
// once when behind), calling `send(k)` and recording its wall time just before it. The jitter
// keeps the rate and spreads the send times over the millisecond, so that the hub's whole-ms
// enqueuedTime errs both ways alike (sent on the ms grid, every change would err the same way).
// Returns the seconds it took, or -1 when a send failed.
template <typename Send>
double Paced(std::int64_t count, double rate, std::vector<double>& post_ms, Send send) {
  post_ms.assign(static_cast<std::size_t>(count), 0.0);
  std::mt19937_64 random(20261202);
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t k = 0; k < count; ++k) {
    const double at = (static_cast<double>(k) + jitter(random)) / rate;
    std::this_thread::sleep_until(start +
                                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      std::chrono::duration<double>(at)));
    post_ms[static_cast<std::size_t>(k)] = WallMs();
    if (!send(k)) return -1;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Latency {
  std::string label;
  std::int64_t sent = 0;
  std::int64_t arrived = 0;  // as such: their own value, not merged into a later one
  std::int64_t merged = 0;   // observations that stand for several changes
  double achieved_rate = 0;
  std::vector<double> ms;  // sorted
  std::int64_t messages = 0;

  double Pct(double p) const {
    if (ms.empty()) return NAN;
    const auto rank =
        static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(ms.size())));
    return ms[std::min(ms.size() - 1, rank == 0 ? 0 : rank - 1)];
  }
};

// Calls `seen(value, merged)` for each state of `item` that message `m` carries: its history,
// oldest first, then its latest state.
template <typename Seen>
void ForEachState(const HubMessage& m, const std::string& item, Seen seen) {
  if (!m.body.is_object() || !m.body.contains("items") || !m.body["items"].contains(item)) return;
  const json& entry = m.body["items"][item];
  const auto one = [&](const json& o) {
    const auto value = o.find("value");
    const auto merged = o.find("merged");
    seen(value == o.end() ? json() : *value, merged != o.end() && !merged->is_null());
  };
  if (const auto history = entry.find("history"); history != entry.end()) {
    for (const json& earlier : *history) one(earlier);
  }
  one(entry);
}

// Finds each load value in `messages` (the first message carrying it) and fills `out`.
void CollectLatency(const std::vector<HubMessage>& messages, const std::vector<double>& post_ms,
                    Latency& out) {
  const auto count = static_cast<std::int64_t>(post_ms.size());
  std::vector<std::int64_t> enqueued(post_ms.size(), -1);
  for (const HubMessage& m : messages) {
    if (m.kind != "changes") continue;
    bool carried = false;
    for (int i = 0; i < kLoadItems; ++i) {
      ForEachState(m, LoadName(i), [&](const json& value, bool merged) {
        if (!value.is_number()) return;
        if (merged) ++out.merged;
        const std::int64_t k = std::llround(value.get<double>()) - kValueBase;
        if (k < 0 || k >= count) return;
        carried = true;
        auto& at = enqueued[static_cast<std::size_t>(k)];
        if (at < 0) at = m.enqueued_ms;
      });
    }
    if (carried) ++out.messages;
  }
  out.sent = count;
  for (std::size_t k = 0; k < enqueued.size(); ++k) {
    if (enqueued[k] < 0) continue;
    ++out.arrived;
    out.ms.push_back(static_cast<double>(enqueued[k]) + 0.5 - post_ms[k]);
  }
  std::sort(out.ms.begin(), out.ms.end());
}

// ---------------------------------------------------------------------------------------------
// Phases

// The bare publisher: the same values at the same rate, one QoS 1 message each, straight to the
// emulator.
std::optional<Latency> BareLatency(const Options& o) {
  ConnectorRig rig(kHub, {"--speed", "0.001"});
  if (!rig.ok()) {
    Note("bare: {}", rig.error());
    return std::nullopt;
  }
  const std::string id = "bench-bare";
  const std::string key = rig.service().CreateDevice(id);
  DeviceClient device(rig.hub_info(), id, key);
  if (const int rc = device.Connect(); rc != 0) {
    Note("bare: cannot connect (CONNACK {})", rc);
    return std::nullopt;
  }
  const auto count = static_cast<std::int64_t>(o.rate * o.seconds);
  std::vector<double> post_ms;
  const double seconds = Paced(count, o.rate, post_ms, [&](std::int64_t k) {
    const std::string name = LoadName(static_cast<int>(k % kLoadItems));
    const std::string body = fmt::format(
        R"({{"v":1,"kind":"changes","seq":{},"items":{{"{}":{{"type":"Number:Power","value":{},"unit":"W","time":"2026-12-02T12:00:00.000Z"}}}}}})",
        k, name, kValueBase + k);
    const std::string topic = fmt::format(
        "devices/{}/messages/events/%24.mid=bare-{}&%24.ct=application%2Fjson&%24.ce=utf-8&"
        "kind=changes",
        id, k);
    return device.PublishAsync(topic, body, 1) >= 0;
  });
  if (seconds < 0 || !device.WaitAcks(static_cast<std::size_t>(count), 60s)) {
    Note("bare: publishing failed ({} acks of {})", device.acks(), count);
    return std::nullopt;
  }
  Latency out;
  out.label = "bare libmosquitto QoS 1";
  out.achieved_rate = static_cast<double>(count) / seconds;
  CollectLatency(rig.Messages(id), post_ms, out);
  return out;
}

struct ConnectorRun {
  Latency latency;
  Memory after_snapshot;
  Memory after_load;
  Memory after_burst;
  std::int64_t selected = 0;
  std::int64_t snapshot_ms = 0;  // connector start to the snapshot delivered
  std::int64_t outbox_merged = 0;
  // The burst (big home only).
  long burst_count = 0;
  double source_rate = 0;    // the sim's burst to a bare SSE reader, updates/s
  double sim_read_rate = 0;  // the sim's burst with the connector reading, updates/s
  double hub_rate = 0;       // burst changes reaching the hub, changes/s
  std::int64_t burst_arrived = 0;
  std::int64_t burst_merged = 0;
  std::int64_t burst_messages = 0;
  double burst_seconds = 0;
  std::size_t log_bytes = 0;
};

// The sim's burst read by a bare SSE reader (bytes counted, nothing parsed): updates/s.
double SourceBurstRate(ConnectorRig& rig, long count) {
  std::atomic<bool> open{false};
  std::thread reader([&] {
    httplib::Client client("127.0.0.1", rig.sim().port());
    client.set_read_timeout(120, 0);
    client.Get(
        "/rest/events?topics=" + iothub::openhab::ClientTopicFilter(),
        [&](const httplib::Response&) {
          open = true;
          return true;
        },
        [&](const char*, std::size_t) { return true; });
    open = true;
  });
  WaitUntil([&] { return open.load(); }, 10s);
  auto res = rig.sim().http().Post(fmt::format("/sim/burst?count={}", count), "", "text/plain");
  double rate = 0;
  if (res && res->status == 200) {
    const json reply = json::parse(res->body, nullptr, false);
    if (reply.is_object()) rate = reply.value("updates", 0.0) / reply.value("seconds", 1.0);
  }
  // Ends the reader's stream and puts every state back to the file's.
  rig.sim().Post("/sim/restart?downtime_ms=0");
  reader.join();
  return rate;
}

std::optional<ConnectorRun> RunConnector(const Options& o, bool big) {
  TempDir home_dir;
  std::set<std::string> numbers;
  const std::string home =
      big ? WriteBigHome(home_dir.path(), o.items, &numbers) : WriteDemoHome(home_dir.path());
  std::vector<std::string> sim_args;
  if (!big) sim_args = {"--speed", "0.001"};  // the demo's meters slowed 1000-fold
  ConnectorRig rig(kHub, sim_args, home);
  if (!rig.ok()) {
    Note("{}: {}", big ? "big" : "demo", rig.error());
    return std::nullopt;
  }
  ConnectorRun run;
  Note("  emulator and openhab-sim started");
  if (big && o.burst > 0) run.source_rate = SourceBurstRate(rig, o.burst);

  const double start_ms = WallMs();
  if (!rig.StartConnector(rig.BaseConfig() + kBudget)) {
    Note("connector: {}", rig.error());
    return std::nullopt;
  }
  const std::string address = rig.metrics_address();
  const pid_t pid = rig.connector_pid();
  Note("  connector started, pid {}", pid);
  const bool snapshot_done = WaitUntil(
      [&] {
        const json s = Status(address);
        return Field(s, "outbox", "pending_entries") == 0 && Field(s, "hub", "in_flight") == 0 &&
               s["telemetry"]["by_kind"].value("snapshot", 0) > 0;
      },
      60s);
  if (!snapshot_done || !WaitDrained(address, 30s)) {
    Note("connector: no snapshot within 60 s\n{}", rig.Log());
    return std::nullopt;
  }
  {
    const json s = Status(address);
    run.selected = Field(s, "openhab", "items_selected");
    run.snapshot_ms =
        static_cast<std::int64_t>(s["telemetry"].value("last_delivered_ms", 0.0) - start_ms);
  }
  run.after_snapshot = ReadMemory(pid);
  Note("  snapshot delivered; load");

  // The load: openHAB's own state update, PUT /rest/items/{name}/state, which gives the same
  // events as a binding's update (docs/openhab-sim.md). Not POST /sim/items/{name}/state: the
  // sim writes that answer's body after its headers on a socket without TCP_NODELAY, so on a
  // kept-alive connection each answer waits ~40 ms for the client's delayed ACK; PUT's 202 has
  // no body and takes ~0.1 ms.
  httplib::Client sim("127.0.0.1", rig.sim().port());
  sim.set_keep_alive(true);
  sim.set_tcp_nodelay(true);
  sim.set_read_timeout(10, 0);
  const auto count = static_cast<std::int64_t>(o.rate * o.seconds);
  std::vector<double> post_ms;
  const double seconds = Paced(count, o.rate, post_ms, [&](std::int64_t k) {
    auto res =
        sim.Put(fmt::format("/rest/items/{}/state", LoadName(static_cast<int>(k % kLoadItems))),
                fmt::format("{} W", kValueBase + k), "text/plain");
    return res && res->status == 202;
  });
  if (seconds < 0) {
    Note("load: a state update to openhab-sim failed");
    return std::nullopt;
  }
  if (!WaitDrained(address, 60s)) Note("load: the connector did not drain within 60 s");
  run.after_load = ReadMemory(pid);
  Note("  load drained");
  run.latency.label = big ? fmt::format("connector, {} items", run.selected)
                          : fmt::format("connector, demo home ({} items)", run.selected);
  run.latency.achieved_rate = static_cast<double>(count) / seconds;
  const std::vector<HubMessage> messages = rig.Messages("openhab");
  CollectLatency(messages, post_ms, run.latency);

  if (big && o.burst > 0) {
    const std::int64_t seq_before = messages.empty() ? 0 : messages.back().seq;
    const double t0 = WallMs();
    auto res = sim.Post(fmt::format("/sim/burst?count={}", o.burst), "", "text/plain");
    if (res && res->status == 200) {
      const json reply = json::parse(res->body, nullptr, false);
      if (reply.is_object()) {
        run.sim_read_rate = reply.value("updates", 0.0) / reply.value("seconds", 1.0);
      }
    }
    if (!WaitDrained(address, 120s)) Note("burst: the connector did not drain within 120 s");
    run.after_burst = ReadMemory(pid);
    run.burst_count = o.burst;
    std::int64_t last_ms = 0;
    for (const HubMessage& m : rig.Messages("openhab")) {
      if (m.seq <= seq_before || m.kind != "changes" || !m.body.is_object()) continue;
      bool carried = false;
      for (const auto& [name, entry] : m.body["items"].items()) {
        if (numbers.count(name) == 0) continue;
        ForEachState(m, name, [&](const json& value, bool merged) {
          if (!value.is_number() || value.get<double>() >= kValueBase) return;
          carried = true;
          ++(merged ? run.burst_merged : run.burst_arrived);
        });
      }
      if (carried) {
        ++run.burst_messages;
        last_ms = std::max(last_ms, m.enqueued_ms);
      }
    }
    run.burst_seconds = (static_cast<double>(last_ms) + 0.5 - t0) / 1000.0;
    if (run.burst_seconds > 0) {
      run.hub_rate = static_cast<double>(run.burst_arrived) / run.burst_seconds;
    }
  }
  run.outbox_merged = Field(Status(address), "outbox", "merged");
  Note("  stopping");
  const int exit_status = rig.StopConnector();
  if (exit_status != 0) Note("connector: exit status {}", exit_status);
  run.log_bytes = rig.Log().size();
  Note("  connector stopped");
  return run;
}

// Runs outbox_bench and prints its output; returns (group commit 10/turn, one per change).
std::pair<double, double> RunOutboxBench(long changes) {
  const std::string command =
      fmt::format("'{}/outbox_bench' --changes {}", IOTHUB_BIN_DIR, changes);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {0, 0};
  double group = 0;
  double single = 0;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) {
    const std::string line = buffer;
    fmt::print("  | {}", line);
    const auto figure = [&](const char* prefix, double& into) {
      if (line.starts_with(prefix)) into = std::strtod(line.c_str() + 44, nullptr);
    };
    figure("group commit, 10 per loop turn", group);
    figure("one transaction per change", single);
  }
  std::fflush(stdout);
  ::pclose(pipe);
  return {group, single};
}

// ---------------------------------------------------------------------------------------------
// Report

void PrintLatencyHeader() {
  Line("{:<36} {:>7} {:>7} {:>6} {:>6} {:>8} {:>8} {:>8} {:>9}", "", "sent", "arrived", "merged",
       "msgs", "p50 ms", "p99 ms", "max ms", "rate/s");
}
void PrintLatency(const Latency& l) {
  Line("{:<36} {:>7} {:>7} {:>6} {:>6} {:>8.2f} {:>8.2f} {:>8.2f} {:>9.0f}", l.label, l.sent,
       l.arrived, l.merged, l.messages, l.Pct(50), l.Pct(99), l.ms.empty() ? NAN : l.ms.back(),
       l.achieved_rate);
}

std::string Verdict(double value, double target, const char* unit) {
  if (std::isnan(value)) return "not measured";
  if (value <= target) return fmt::format("met (target {:g} {})", target, unit);
  return fmt::format("MISSED by {:.2f} {} (target {:g} {})", value - target, unit, target, unit);
}

void PrintMemory(const char* label, const Memory& m) {
  Line(
      "  {:<22} VmRSS {:>5.1f} MB (anon {:>5.1f}, files {:>5.1f})  VmHWM {:>5.1f} MB  PSS {:>5.1f} "
      "MB",
      label, Mb(m.rss_kb), Mb(m.anon_kb), Mb(m.file_kb), Mb(m.hwm_kb), Mb(m.pss_kb));
}

int Usage(const char* argv0) {
  fmt::print(stderr,
             "usage: {} [--quick] [--phases bare,demo,big,outbox] [--rate N] [--seconds S] "
             "[--items N] [--burst N] [--outbox-changes N] [--smaps DIR]\n",
             argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // A stock Debian has no SSL_CERT_FILE; some hosts (this workplace's) set it to the system
  // bundle, and then OpenSSL parses all of it (~0.9 MB more heap in the connector). Measure
  // what a user's machine runs.
  if (const char* bundle = std::getenv("SSL_CERT_FILE")) {
    Note("SSL_CERT_FILE={} is unset for the programs measured, as on a stock Debian", bundle);
    unsetenv("SSL_CERT_FILE");
  }
  Options o;
  std::vector<std::pair<std::string, std::string>> flags;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--quick") {
      o.quick = true;
      o.rate = 500;
      o.seconds = 1;
      o.items = 100;
      o.burst = 2'000;
      o.outbox_changes = 2'000;
      continue;
    }
    if (i + 1 >= argc) return Usage(argv[0]);
    flags.emplace_back(flag, argv[++i]);
  }
  for (const auto& [flag, value] : flags) {  // after --quick, so that they override it
    if (flag == "--phases") {
      o.phases.clear();
      for (std::size_t at = 0; at <= value.size();) {
        const std::size_t comma = std::min(value.find(',', at), value.size());
        o.phases.insert(value.substr(at, comma - at));
        at = comma + 1;
      }
    } else if (flag == "--rate") {
      o.rate = std::atof(value.c_str());
    } else if (flag == "--seconds") {
      o.seconds = std::atof(value.c_str());
    } else if (flag == "--items") {
      o.items = std::atoi(value.c_str());
    } else if (flag == "--burst") {
      o.burst = std::atol(value.c_str());
    } else if (flag == "--outbox-changes") {
      o.outbox_changes = std::atol(value.c_str());
    } else if (flag == "--smaps") {
      g_smaps_dir = value;
    } else {
      return Usage(argv[0]);
    }
  }
  for (const auto& phase : o.phases) {
    if (phase != "bare" && phase != "demo" && phase != "big" && phase != "outbox") {
      return Usage(argv[0]);
    }
  }
  if (o.rate <= 0 || o.seconds <= 0 || o.items < kLoadItems || o.burst < 0 ||
      o.outbox_changes < 1) {
    fmt::print(stderr, "--rate and --seconds must be positive, --items at least {}\n", kLoadItems);
    return 2;
  }
  Line(
      "connector_bench{}: {:g} changes/s for {:g} s over {} Number items; {} items; burst {}; "
      "hub and budget S3 x10",
      o.quick ? " --quick" : "", o.rate, o.seconds, kLoadItems, o.items, o.burst);
  const auto bench_start = std::chrono::steady_clock::now();
  bool ok = true;

  std::optional<Latency> bare;
  std::optional<ConnectorRun> demo;
  std::optional<ConnectorRun> big;
  if (o.phases.count("bare") != 0) {
    Note("measuring: bare publisher ...");
    bare = BareLatency(o);
    ok = ok && bare.has_value();
  }
  if (o.phases.count("demo") != 0) {
    Note("measuring: connector on the demo home ...");
    demo = RunConnector(o, false);
    ok = ok && demo.has_value();
  }
  if (o.phases.count("big") != 0) {
    Note("measuring: connector on {} items ...", o.items);
    big = RunConnector(o, true);
    ok = ok && big.has_value();
  }

  if (bare || demo || big) {
    Line("");
    Line(
        "== 1. Latency: openhab-sim state PUT -> the emulator's enqueuedTime ({:g}/s for {:g} s, "
        "+-0.5 ms)",
        o.rate, o.seconds);
    Line(
        "  (enqueuedTime has whole milliseconds: figures under 1 ms, and ratios of them, are "
        "mostly resolution)");
    PrintLatencyHeader();
    if (bare) PrintLatency(*bare);
    if (demo) PrintLatency(demo->latency);
    if (big) PrintLatency(big->latency);
    const auto ratios = [&](const char* name, const Latency& l) {
      if (!bare || bare->ms.empty() || l.ms.empty()) return;
      Line("  {}/bare: p50 {:.1f}x  p99 {:.1f}x  max {:.1f}x", name, l.Pct(50) / bare->Pct(50),
           l.Pct(99) / bare->Pct(99), l.ms.back() / bare->ms.back());
    };
    if (demo) ratios("demo", demo->latency);
    if (big) ratios("big", big->latency);
    for (const auto* run : {demo ? &*demo : nullptr, big ? &*big : nullptr}) {
      if (run == nullptr) continue;
      Line("  {}: p50 {}; p99 {}", run->latency.label, Verdict(run->latency.Pct(50), 2, "ms"),
           Verdict(run->latency.Pct(99), 10, "ms"));
    }
    std::string which;
    for (const char* p : {"bare", "demo", "big"}) {
      if (o.phases.count(p) != 0) which += (which.empty() ? "" : ",") + std::string(p);
    }
    Line("  reproduce: {}", o.Command(which));
  }

  if (big && big->burst_count > 0) {
    Line("");
    Line("== 2. Sustained: /sim/burst?count={} over the {}-item home's Number items", o.burst,
         big->selected);
    Line("  source: the sim's burst to a bare SSE reader        {:>9.0f} updates/s",
         big->source_rate);
    Line("  the sim's burst with the connector reading          {:>9.0f} updates/s",
         big->sim_read_rate);
    Line(
        "  changes reaching the hub (burst start to last)      {:>9.0f} changes/s "
        "({} of {} as such, {} merged, {} messages, {:.2f} s)",
        big->hub_rate, big->burst_arrived, big->burst_count, big->burst_merged, big->burst_messages,
        big->burst_seconds);
    Line("  hub rate / source rate: {:.2f}x;  hub rate / the {:g}/s of figure 1: {:.1f}x",
         big->hub_rate / big->source_rate, o.rate, big->hub_rate / o.rate);
    Line("  reproduce: {}", o.Command("big"));
  }

  if (o.phases.count("outbox") != 0) {
    Line("");
    Line("== 3. Outbox: build/bin/outbox_bench --changes {}", o.outbox_changes);
    const auto [group, single] = RunOutboxBench(o.outbox_changes);
    if (group <= 0 || single <= 0) {
      ok = false;
      Line("  outbox_bench gave no figures");
    } else {
      Line(
          "  group commit (10 per turn) {:.0f} changes/s = {:.1f}x one transaction per change "
          "({:.0f}/s); target 10,000/s: {}",
          group, group / single, single, group >= 10'000 ? "met" : "MISSED");
    }
    Line("  reproduce: {}   (or: build/bin/outbox_bench --changes {})", o.Command("outbox"),
         o.outbox_changes);
  }

  if (demo || big) {
    Line("");
    Line("== 4. Memory of the connector (/proc/<pid>/status)");
    for (const auto* run : {demo ? &*demo : nullptr, big ? &*big : nullptr}) {
      if (run == nullptr) continue;
      Line(" {} (snapshot delivered {} ms after start, outbox merged {}, log {} bytes):",
           run->latency.label, run->snapshot_ms, run->outbox_merged, run->log_bytes);
      PrintMemory("after the snapshot", run->after_snapshot);
      PrintMemory(fmt::format("after {:g} s of load", o.seconds).c_str(), run->after_load);
      if (run->burst_count > 0) PrintMemory("after the burst", run->after_burst);
    }
    if (demo && big) {
      const auto ratio = [](long a, long b) {
        return static_cast<double>(a) / static_cast<double>(b);
      };
      const long more_items = big->selected - demo->selected;
      Line(
          "  {} items / demo home: VmRSS {:.2f}x after the snapshot, {:.2f}x after the load; "
          "anon +{:.1f} MB for {} more items ({:.1f} KB per item)",
          big->selected, ratio(big->after_snapshot.rss_kb, demo->after_snapshot.rss_kb),
          ratio(big->after_load.rss_kb, demo->after_load.rss_kb),
          Mb(big->after_load.anon_kb - demo->after_load.anon_kb), more_items,
          more_items <= 0
              ? 0.0
              : static_cast<double>(big->after_load.anon_kb - demo->after_load.anon_kb) /
                    static_cast<double>(more_items));
    }
    if (big) {
      Line(
          "  {} items against the 16 MB target: VmRSS after the load: {}; VmHWM through the load: "
          "{}",
          big->selected, Verdict(Mb(big->after_load.rss_kb), 16, "MB"),
          Verdict(Mb(big->after_load.hwm_kb), 16, "MB"));
      if (big->burst_count > 0) {
        Line("  (through the burst, beyond the target's conditions: VmHWM {:.1f} MB)",
             Mb(big->after_burst.hwm_kb));
      }
    }
    Line("  reproduce: {}", o.Command(demo && big ? "demo,big" : (big ? "big" : "demo")));
  }
  Line("");
  Line("total {:.0f} s",
       std::chrono::duration<double>(std::chrono::steady_clock::now() - bench_start).count());
  return ok ? 0 : 1;
}
