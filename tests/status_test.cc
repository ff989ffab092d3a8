// The connector's observability surface: the status snapshot's renderers (Prometheus, JSON,
// text for people), the HTTP server that serves them from the event loop, and the `status`
// command run as a real child process.
#include "connector/status.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/event_loop.h"
#include "connector/status_server.h"
#include "support/emulator_fixture.h"
#include "support/run_command.h"

namespace iothub::connector {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t kNow = 1'765'000'000'000;  // 2025-12-06 05:46:40 UTC

StatusSnapshot::Item MakeItem(std::string name, std::string type, std::int64_t staleness_ms,
                              std::int64_t merged, std::int64_t suppressed = 0) {
  StatusSnapshot::Item item;
  item.name = std::move(name);
  item.type = std::move(type);
  item.priority = "normal";
  item.send = "telemetry";
  item.last_change_ms = kNow - staleness_ms - 1000;
  item.last_delivered_ms = staleness_ms > 0 ? kNow - 600'000 : kNow - 500;
  item.staleness_ms = staleness_ms;
  item.pending = staleness_ms > 0 ? 2 : 0;
  item.merged = merged;
  item.suppressed = suppressed;
  return item;
}

// Every field set, to a value unlike the others, with label-hostile text where text goes.
StatusSnapshot Filled() {
  StatusSnapshot s;
  s.connector.version = "0.1.0 \"dev\" \\ build\nnext";
  s.connector.started_ms = kNow - 7'384'000;  // up 2h 3m
  s.connector.now_ms = kNow;
  s.connector.mode = "publish";
  s.connector.layout = "gateway";
  s.connector.config_file = "/etc/iothub-connector/config.toml";
  s.connector.store_dir = "/var/lib/iothub-connector";
  s.connector.pid = 4242;
  s.connector.resident_bytes = 12'345'678;
  s.connector.store_free_bytes = 3'000'000'000;
  s.connector.loop_lag_ms = 3;
  s.connector.warnings = {"the config file is readable by other users"};

  s.openhab.url = "http://openhab.local:8080";
  s.openhab.stream_up = false;
  s.openhab.stream_detail = "connection refused";
  s.openhab.stream_since_ms = kNow - 65'000;
  s.openhab.server_version = "4.1.1";
  s.openhab.admin = true;
  s.openhab.items_known = 1204;
  s.openhab.items_selected = 310;
  s.openhab.resyncs = 2;
  s.openhab.events = 123'456;
  s.openhab.bad_events = 3;
  s.openhab.problems = 5;
  s.openhab.last_event_ms = kNow - 2000;

  s.hub.host_name = "myhub.azure-devices.net";
  s.hub.device_id = "openhab";
  s.hub.credential = "device";
  s.hub.session_state = "connected";
  s.hub.session_detail = "";
  s.hub.session_since_ms = kNow - 7'260'000;
  s.hub.connects = 7;
  s.hub.connection_losses = 6;
  s.hub.renewals = 11;
  s.hub.throttled = 1;
  s.hub.in_flight = 4;
  s.hub.quota_state = "exhausted";
  s.hub.quota_resumes_at_ms = 1'765'065'600'000;  // 2025-12-07 00:00:00 UTC

  s.budget.tier = "free";
  s.budget.chunk_bytes = 512;
  s.budget.daily_budget = 8000;
  s.budget.reserve_fraction = 0.1;
  s.budget.window_seconds = 86'400;
  s.budget.window_start_ms = 1'764'979'200'000;  // 2025-12-06 00:00:00 UTC
  s.budget.used = 3100;
  s.budget.left = 4900;
  s.budget.reserve_used = 12;
  s.budget.pace_allowed = 3300;
  s.budget.burst = 50;
  s.budget.staleness_bound_seconds = 108.5;

  s.telemetry.messages_sent = 3000;
  s.telemetry.messages_delivered = 2998;
  s.telemetry.messages_resent = 2;
  s.telemetry.entries_sent = 12'345;
  s.telemetry.bytes = 1'468'006;
  s.telemetry.billed_chunks = 3090;
  s.telemetry.last_delivered_ms = kNow - 1000;
  s.telemetry.by_kind = {2900, 90, 10};

  s.outbox.pending_entries = 12;
  s.outbox.sealed_messages = 2;
  s.outbox.oldest_pending_age_ms = 4200;
  s.outbox.file_bytes = 1'258'291;
  s.outbox.max_bytes = 67'108'864;
  s.outbox.accepted = 123'000;
  s.outbox.merged = 1200;
  s.outbox.full = true;
  s.outbox.last_error = "disk I/O error";

  s.twin.enabled = true;
  s.twin.disabled_reason = "";
  s.twin.patches_sent = 120;
  s.twin.patches_failed = 1;
  s.twin.items_left_out = 3;
  s.twin.reported_bytes = 31'000;
  s.twin.last_patch_ms = kNow - 5000;

  s.commands.mode = "publish-command";
  s.commands.pending = 1;
  s.commands.audit_errors = 2;
  s.commands.counts = {{"method", 200, 14}, {"method", 429, 3}, {"c2d", 403, 1}};
  s.commands.recent = {{kNow - 60'000, "method", "Living_Light", "ON", 200, "accepted", 12},
                       {kNow - 2'000, "c2d", "FrontDoor_Lock", "OFF", 403, "denied", 1}};

  s.things.known = 12;
  s.things.by_status = {{"ONLINE", 11}, {"OFFLINE", 1}};

  s.items = {MakeItem("Sensor_Power_Meter", "Number:Power", 0, 40, 7),
             MakeItem("Sensor_Temperature_Kitchen", "Number:Temperature", 62'000, 12),
             MakeItem("Light_Living", "Switch", 0, 0, 1),
             MakeItem("Door_Front", "Contact", 1500, 0)};
  s.errors = {{"openhab_stream", 3, "connect: connection refused", kNow - 300'000},
              {"weird \"kind\"\\", 1, "line one\nline two", kNow - 10}};
  return s;
}

// ---- a Prometheus text format 0.0.4 reader, strict about what the format allows ----------

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Family {
  std::string type;
  std::string help;
  std::vector<Sample> samples;
};

// Parses `{a="x",b="y\"z"}` starting at text[pos] == '{'; unescapes values. Adds a failure and
// returns false on anything the format does not allow.
bool ParseLabels(const std::string& text, std::size_t& pos,
                 std::map<std::string, std::string>& out) {
  static const std::regex kLabelName("[a-zA-Z_][a-zA-Z0-9_]*");
  ++pos;  // '{'
  while (pos < text.size() && text[pos] != '}') {
    const std::size_t eq = text.find('=', pos);
    if (eq == std::string::npos) return false;
    const std::string name = text.substr(pos, eq - pos);
    if (!std::regex_match(name, kLabelName)) {
      ADD_FAILURE() << "bad label name '" << name << "'";
      return false;
    }
    pos = eq + 1;
    if (pos >= text.size() || text[pos] != '"') return false;
    ++pos;
    std::string value;
    while (pos < text.size() && text[pos] != '"') {
      if (text[pos] == '\\') {
        if (pos + 1 >= text.size()) return false;
        const char next = text[pos + 1];
        if (next == '\\') {
          value += '\\';
        } else if (next == '"') {
          value += '"';
        } else if (next == 'n') {
          value += '\n';
        } else {
          ADD_FAILURE() << "bad escape \\" << next;
          return false;
        }
        pos += 2;
      } else if (text[pos] == '\n') {
        return false;
      } else {
        value += text[pos++];
      }
    }
    if (pos >= text.size()) return false;
    ++pos;  // closing quote
    if (!out.emplace(name, value).second) {
      ADD_FAILURE() << "label " << name << " twice";
      return false;
    }
    if (pos < text.size() && text[pos] == ',') ++pos;
  }
  if (pos >= text.size()) return false;
  ++pos;  // '}'
  return true;
}

// Reads an exposition, failing the test on every rule it breaks. Families by name, in order.
void ReadExposition(const std::string& text, std::map<std::string, Family>& families,
                    std::vector<std::string>* order) {
  static const std::regex kName("iothub_connector_[a-z0-9_]+");
  std::set<std::string> finished;  // families whose samples ended (they may not come back)
  std::string current;
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "the exposition ends with a newline";
  std::istringstream in(text);
  int line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    SCOPED_TRACE("line " + std::to_string(line_number) + ": " + line);
    ASSERT_FALSE(line.empty()) << "no blank lines";
    if (line.starts_with("# HELP ")) {
      const std::string rest = line.substr(7);
      const std::string name = rest.substr(0, rest.find(' '));
      ASSERT_TRUE(std::regex_match(name, kName)) << name;
      ASSERT_EQ(families.count(name), 0u) << "HELP once per family: " << name;
      if (!current.empty()) finished.insert(current);
      current = name;
      families[name].help = rest.substr(name.size() + 1);
      if (order != nullptr) order->push_back(name);
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      std::istringstream words(line.substr(7));
      std::string name;
      std::string type;
      words >> name >> type;
      ASSERT_EQ(name, current) << "TYPE follows its HELP";
      ASSERT_TRUE(families[name].type.empty()) << "TYPE once per family";
      ASSERT_TRUE(type == "counter" || type == "gauge") << type;
      families[name].type = type;
      if (type == "counter") {
        EXPECT_TRUE(name.ends_with("_total")) << "a counter ends in _total: " << name;
      } else {
        EXPECT_FALSE(name.ends_with("_total")) << "only counters end in _total: " << name;
      }
      continue;
    }
    ASSERT_NE(line.front(), '#') << "only HELP and TYPE comments";
    Sample sample;
    std::size_t pos = line.find_first_of("{ ");
    ASSERT_NE(pos, std::string::npos);
    sample.name = line.substr(0, pos);
    ASSERT_EQ(sample.name, current) << "a sample belongs to the family announced last";
    ASSERT_FALSE(families[current].type.empty()) << "TYPE before samples";
    if (line[pos] == '{') {
      ASSERT_TRUE(ParseLabels(line, pos, sample.labels));
    }
    ASSERT_LT(pos, line.size());
    ASSERT_EQ(line[pos], ' ');
    const std::string value = line.substr(pos + 1);
    ASSERT_FALSE(value.empty());
    std::size_t used = 0;
    if (value == "NaN" || value == "+Inf" || value == "-Inf") {
      used = value.size();
    } else {
      sample.value = std::stod(value, &used);
    }
    ASSERT_EQ(used, value.size()) << "the value is a number and nothing else: " << value;
    for (const auto& other : families[current].samples) {
      ASSERT_NE(other.labels, sample.labels) << "a label set once per family";
    }
    families[current].samples.push_back(sample);
  }
  for (const auto& [name, family] : families) {
    EXPECT_FALSE(family.type.empty()) << name;
    EXPECT_FALSE(family.help.empty()) << name;
  }
}

std::map<std::string, Family> ParseExposition(const std::string& text,
                                              std::vector<std::string>* order = nullptr) {
  std::map<std::string, Family> families;
  ReadExposition(text, families, order);
  return families;
}

// The value of `name` with exactly `labels`; fails the test when there is none.
double Value(const std::map<std::string, Family>& families, const std::string& name,
             const std::map<std::string, std::string>& labels = {}) {
  const auto it = families.find(name);
  if (it == families.end()) {
    ADD_FAILURE() << "no family " << name;
    return -1;
  }
  for (const auto& s : it->second.samples) {
    if (s.labels == labels) return s.value;
  }
  ADD_FAILURE() << "no sample of " << name << " with those labels";
  return -1;
}

TEST(StatusPrometheus, FilledSnapshotFollowsTheFormat) {
  std::vector<std::string> order;
  const auto families = ParseExposition(RenderPrometheus(Filled()), &order);
  ASSERT_FALSE(HasFailure());
  EXPECT_GE(families.size(), 60u);

  // Label values with quotes, backslashes and newlines come back as they were.
  const auto& info = families.at("iothub_connector_info").samples;
  ASSERT_EQ(info.size(), 1u);
  EXPECT_EQ(info[0].labels.at("version"), "0.1.0 \"dev\" \\ build\nnext");
  EXPECT_EQ(info[0].labels.at("mode"), "publish");
  EXPECT_EQ(Value(families, "iothub_connector_errors_total", {{"kind", "weird \"kind\"\\"}}), 1);
  EXPECT_EQ(Value(families, "iothub_connector_errors_total", {{"kind", "openhab_stream"}}), 3);
  EXPECT_EQ(
      Value(families, "iothub_connector_commands_total", {{"path", "method"}, {"status", "429"}}),
      3);
  EXPECT_EQ(
      Value(families, "iothub_connector_commands_total", {{"path", "c2d"}, {"status", "403"}}), 1);
  EXPECT_EQ(Value(families, "iothub_connector_commands_enabled"), 1);
  EXPECT_EQ(Value(families, "iothub_connector_commands_audit_errors_total"), 2);

  // Figures, with units in seconds and bytes.
  EXPECT_EQ(Value(families, "iothub_connector_budget_used_messages"), 3100);
  EXPECT_EQ(Value(families, "iothub_connector_budget_left_messages"), 4900);
  EXPECT_EQ(Value(families, "iothub_connector_budget_pace_allowed_messages"), 3300);
  EXPECT_EQ(Value(families, "iothub_connector_budget_reserve_ratio"), 0.1);
  EXPECT_EQ(Value(families, "iothub_connector_budget_staleness_bound_seconds"), 108.5);
  EXPECT_EQ(Value(families, "iothub_connector_budget_window_start_timestamp_seconds"),
            1'764'979'200.0);
  EXPECT_EQ(Value(families, "iothub_connector_openhab_stream_up"), 0);
  EXPECT_EQ(Value(families, "iothub_connector_openhab_events_total"), 123'456);
  EXPECT_EQ(Value(families, "iothub_connector_hub_connected"), 1);
  EXPECT_EQ(Value(families, "iothub_connector_hub_session_state", {{"state", "connected"}}), 1);
  EXPECT_EQ(Value(families, "iothub_connector_hub_quota_exhausted"), 1);
  EXPECT_EQ(Value(families, "iothub_connector_hub_quota_resume_timestamp_seconds"),
            1'765'065'600.0);
  EXPECT_EQ(Value(families, "iothub_connector_telemetry_messages_sent_by_kind_total",
                  {{"kind", "snapshot"}}),
            90);
  EXPECT_EQ(Value(families, "iothub_connector_telemetry_sent_bytes_total"), 1'468'006);
  EXPECT_EQ(Value(families, "iothub_connector_telemetry_billed_chunks_total"), 3090);
  EXPECT_EQ(Value(families, "iothub_connector_outbox_pending_entries"), 12);
  EXPECT_EQ(Value(families, "iothub_connector_outbox_oldest_pending_age_seconds"), 4.2);
  EXPECT_EQ(Value(families, "iothub_connector_outbox_full"), 1);
  EXPECT_EQ(Value(families, "iothub_connector_twin_items_left_out"), 3);
  EXPECT_EQ(Value(families, "iothub_connector_things_by_status", {{"status", "OFFLINE"}}), 1);
  EXPECT_EQ(Value(families, "iothub_connector_loop_lag_seconds"), 0.003);

  // Per-item series: only stale or merged items (not Light_Living), stalest first.
  EXPECT_EQ(Value(families, "iothub_connector_items_stale"), 2);
  EXPECT_EQ(Value(families, "iothub_connector_items_max_staleness_seconds"), 62);
  const auto& staleness = families.at("iothub_connector_item_staleness_seconds").samples;
  ASSERT_EQ(staleness.size(), 3u);
  EXPECT_EQ(staleness[0].labels.at("item"), "Sensor_Temperature_Kitchen");
  EXPECT_EQ(staleness[0].value, 62);
  EXPECT_EQ(staleness[1].labels.at("item"), "Door_Front");
  EXPECT_EQ(staleness[2].labels.at("item"), "Sensor_Power_Meter");
  EXPECT_EQ(staleness[2].value, 0);
  EXPECT_EQ(Value(families, "iothub_connector_item_merged_total", {{"item", "Sensor_Power_Meter"}}),
            40);
  EXPECT_EQ(
      Value(families, "iothub_connector_item_suppressed_total", {{"item", "Sensor_Power_Meter"}}),
      7);
  EXPECT_EQ(Value(families, "iothub_connector_item_series_omitted"), 0);
  EXPECT_EQ(Value(families, "iothub_connector_items_merged_total"), 52);
}

TEST(StatusPrometheus, EmptySnapshotIsStillValid) {
  const auto families = ParseExposition(RenderPrometheus(StatusSnapshot{}));
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(Value(families, "iothub_connector_hub_session_state", {{"state", "unknown"}}), 1);
  EXPECT_EQ(families.count("iothub_connector_item_staleness_seconds"), 0u);
  EXPECT_EQ(families.count("iothub_connector_errors_total"), 0u);
  EXPECT_EQ(families.count("iothub_connector_store_free_bytes"), 0u) << "-1: unknown";
}

TEST(StatusPrometheus, PerItemSeriesAreBoundedWithTenThousandItems) {
  StatusSnapshot s = Filled();
  s.items.clear();
  std::int64_t qualifying = 0;  // stale or merged
  for (int i = 0; i < 10'000; ++i) {
    // Half are stale, a few hundred merged, the rest delivered and quiet.
    const std::int64_t staleness = i % 2 == 0 ? 1000 + i : 0;
    const std::int64_t merged = i % 37 == 1 ? 5 : 0;
    if (staleness > 0 || merged > 0) ++qualifying;
    s.items.push_back(MakeItem("Item_" + std::to_string(i), "Number", staleness, merged, 3));
  }
  ASSERT_GT(qualifying, 5000);
  const std::string text = RenderPrometheus(s);
  const auto families = ParseExposition(text);
  ASSERT_FALSE(HasFailure());
  const auto& staleness = families.at("iothub_connector_item_staleness_seconds").samples;
  ASSERT_EQ(staleness.size(), kMaxItemSeries);
  EXPECT_EQ(staleness[0].labels.at("item"), "Item_9998") << "the stalest first";
  EXPECT_EQ(families.at("iothub_connector_item_merged_total").samples.size(), kMaxItemSeries);
  EXPECT_EQ(Value(families, "iothub_connector_item_series_omitted"),
            static_cast<double>(qualifying) - kMaxItemSeries);
  EXPECT_EQ(Value(families, "iothub_connector_items_stale"), 5000);
  EXPECT_EQ(Value(families, "iothub_connector_items_suppressed_total"), 30'000);
  EXPECT_LT(text.size(), 32u * 1024) << "a scrape stays small";
}

TEST(StatusJson, RoundTripsEveryField) {
  const StatusSnapshot s = Filled();
  const Json j = Json::parse(ToJson(s).dump());
  auto back = FromJson(j);
  ASSERT_TRUE(back.ok()) << back.error().message;
  StatusSnapshot expected = s;
  SortByAttention(expected.items);  // the document lists items by attention
  EXPECT_EQ(*back, expected);
  // Field names are a contract (docs/metrics.md).
  EXPECT_EQ(j["format"], 1);
  EXPECT_EQ(j["connector"]["now_ms"], kNow);
  EXPECT_EQ(j["openhab"]["items_selected"], 310);
  EXPECT_EQ(j["openhab"]["stream_up"], false);
  EXPECT_EQ(j["hub"]["session_state"], "connected");
  EXPECT_EQ(j["hub"]["quota_resumes_at_ms"], 1'765'065'600'000);
  EXPECT_EQ(j["budget"]["pace_allowed"], 3300);
  EXPECT_EQ(j["budget"]["reserve_fraction"], 0.1);
  EXPECT_EQ(j["telemetry"]["by_kind"]["changes"], 2900);
  EXPECT_EQ(j["outbox"]["oldest_pending_age_ms"], 4200);
  EXPECT_EQ(j["twin"]["items_left_out"], 3);
  EXPECT_EQ(j["things"]["by_status"]["ONLINE"], 11);
  EXPECT_EQ(j["items"][0]["name"], "Sensor_Temperature_Kitchen");
  EXPECT_EQ(j["items"][0]["staleness_ms"], 62'000);
  EXPECT_EQ(j["errors"][1]["last_message"], "line one\nline two");
  EXPECT_EQ(j["items_summary"]["total"], 4);
  EXPECT_EQ(j["items_summary"]["stale"], 2);
  EXPECT_EQ(j["items_summary"]["merged"], 52);
  EXPECT_EQ(j["items_summary"]["omitted"], 0);
}

TEST(StatusJson, CapsItemsAndKeepsTheSummary) {
  const Json j = ToJson(Filled(), 1);
  ASSERT_EQ(j["items"].size(), 1u);
  EXPECT_EQ(j["items"][0]["name"], "Sensor_Temperature_Kitchen");
  EXPECT_EQ(j["items_summary"]["total"], 4);
  EXPECT_EQ(j["items_summary"]["omitted"], 3);
  EXPECT_EQ(j["items_summary"]["max_staleness_ms"], 62'000);
}

TEST(StatusJson, ReadsOlderAndRejectsBrokenDocuments) {
  // Missing members keep their defaults; unknown ones are ignored.
  auto partial = FromJson(Json{{"budget", {{"used", 5}}}, {"from_the_future", 1}});
  ASSERT_TRUE(partial.ok()) << partial.error().message;
  EXPECT_EQ(partial->budget.used, 5);
  EXPECT_EQ(partial->hub.quota_state, "ok");
  EXPECT_EQ(partial->connector.store_free_bytes, -1);

  auto wrong_type = FromJson(Json{{"budget", {{"used", "five"}}}});
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.error().code, "status_json");
  auto newer = FromJson(Json{{"format", 2}});
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(newer.error().message.find("newer"), std::string::npos);
  EXPECT_FALSE(FromJson(Json::array()).ok());
}

// Display columns of UTF-8 text.
std::size_t Columns(const std::string& line) {
  std::size_t n = 0;
  for (const char c : line) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

TEST(StatusForPeople, ShowsTheKeyFiguresWithin80Columns) {
  StatusSnapshot s = Filled();
  s.items.push_back(MakeItem("An_Item_With_A_Very_Long_Name_That_Does_Not_Fit_The_Column",
                             "Number:ElectricCurrent", 30'000, 0));
  s.hub.session_detail = std::string(200, 'x');  // long details are cut, not wrapped
  const std::string text = RenderForPeople(ToJson(s));
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    EXPECT_LE(Columns(line), 80u) << line;
    EXPECT_EQ(line.find('\x1b'), std::string::npos) << "no colours unless asked";
  }
  for (const char* figure : {"iothub-connector 0.1.0",
                             "publish mode",
                             "up 2h 3m",
                             "pid 4242",
                             "/etc/iothub-connector/config.toml",
                             "http://openhab.local:8080 (openHAB 4.1.1, admin",
                             "DOWN for 1m 5s: connection refused",
                             "1,204 known, 310 selected",
                             "123,456 read, 3 bad, 2 resyncs",
                             "myhub.azure-devices.net, device openhab",
                             "connected for 2h 1m",
                             "exhausted, resumes 2025-12-07 00:00:00 UTC (in 18h 13m)",
                             "free tier: 8,000 messages per 24h, 512 B chunks, 10% reserve",
                             "since 2025-12-06 00:00:00 UTC",
                             "3,100 (38.8%), 4,900 left, 12 from the reserve",
                             "3,300 allowed now (burst 50): 200 under the pace line",
                             "bounded at 1m 48s",
                             "3,000 messages sent, 2,998 delivered, 2 resent",
                             "on: 18 received, 1 pending",
                             "14 × 200, 3 × 429",
                             "2 lines lost to disk errors",
                             "c2d FrontDoor_Lock OFF → 403 (1 ms)",
                             "2,900 changes, 90 snapshot, 10 things",
                             "12 pending entries in 2 sealed messages, oldest 4.2 s",
                             "123,000 accepted, 1,200 merged",
                             "at max_bytes",
                             "disk I/O error",
                             "120 patches (1 failed)",
                             "3 items (past the twin",
                             "12 known: 1 OFFLINE, 11 ONLINE",
                             "5 selected: 3 stale (longest 1m 2s)",
                             "Sensor_Temperature_Kitchen",
                             "An_Item_With_A_Very_Long_... Number:ElectricC...",
                             "connect: connection refused",
                             "the config file is readable by other users"}) {
    EXPECT_NE(text.find(figure), std::string::npos) << "missing: " << figure << "\n" << text;
  }
  // The stalest first; an item neither stale nor merged is not listed.
  EXPECT_LT(text.find("Sensor_Temperature_Kitchen"), text.find("An_Item_With"));
  EXPECT_LT(text.find("An_Item_With"), text.find("Door_Front"));
  EXPECT_LT(text.find("Door_Front"), text.find("Sensor_Power_Meter"));
  EXPECT_EQ(text.find("Light_Living"), std::string::npos);
  // A long detail is cut to the line.
  EXPECT_NE(text.find("xxx..."), std::string::npos);
}

TEST(StatusForPeople, TopTenOnlyAndColoursOnRequest) {
  StatusSnapshot s = Filled();
  s.items.clear();
  for (int i = 0; i < 30; ++i) {
    s.items.push_back(MakeItem(fmt::format("Item_{:02}", i), "Number", (i + 1) * 1000, 0));
  }
  s.budget.used = 3400;  // over the pace line
  const std::string text = RenderForPeople(ToJson(s));
  EXPECT_NE(text.find("Item_29"), std::string::npos);
  EXPECT_NE(text.find("Item_20"), std::string::npos);
  EXPECT_EQ(text.find("Item_19"), std::string::npos) << "ten items only";
  EXPECT_NE(text.find("100 OVER the pace line"), std::string::npos);
  const std::string coloured = RenderForPeople(ToJson(s), PeopleOptions{.colour = true});
  EXPECT_NE(coloured.find("\x1b[31m"), std::string::npos);
}

TEST(StatusForPeople, NothingStaleSaysSo) {
  StatusSnapshot s = Filled();
  s.items = {MakeItem("Light_Living", "Switch", 0, 0, 4)};
  const std::string text = RenderForPeople(ToJson(s));
  EXPECT_NE(text.find("none: every item's latest state is delivered"), std::string::npos) << text;
}

TEST(StatusForPeople, UnreadableStatusIsSaid) {
  EXPECT_NE(RenderForPeople(Json{{"format", 9}}).find("newer"), std::string::npos);
}

// ---- the server ---------------------------------------------------------------------------

TEST(ListenAddress, ParsesAndFormats) {
  auto v4 = ParseListenAddress("127.0.0.1:9464");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9464);
  auto v6 = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(FormatHostPort(*v6), "[::1]:0");
  EXPECT_EQ(LocalUrl({"0.0.0.0", 9464}), "http://127.0.0.1:9464");
  EXPECT_EQ(LocalUrl({"::", 9464}), "http://[::1]:9464");
  EXPECT_EQ(LocalUrl({"localhost", 1}), "http://localhost:1");
  for (const char* bad : {"9464", ":9464", "host:", "host:65536", "::1:9464", "host:x", "[]:1"}) {
    auto parsed = ParseListenAddress(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.error().message.find(std::string("\"") + bad + "\""), std::string::npos)
        << parsed.error().message;
  }
}

// A real PollLoop on its own thread, as the daemon runs it.
class LoopThread {
 public:
  LoopThread() : thread_([this] { loop_.Run(); }) {}
  ~LoopThread() {
    loop_.Stop();
    thread_.join();
  }
  PollLoop& loop() { return loop_; }
  std::thread::id id() const { return thread_.get_id(); }

 private:
  PollLoop loop_;
  std::thread thread_;
};

httplib::Result Get(int port, const std::string& path, int timeout_s = 10) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(timeout_s, 0);
  client.set_read_timeout(timeout_s, 0);
  return client.Get(path.c_str());
}

TEST(StatusServer, ServesTheSnapshotTakenOnTheLoop) {
  LoopThread loop;
  std::atomic<int> calls{0};
  std::atomic<bool> on_loop{true};
  auto server = StatusServer::Start(
      loop.loop(),
      [&] {
        ++calls;
        if (std::this_thread::get_id() != loop.id()) on_loop = false;
        return Filled();
      },
      StatusServerOptions{.listen = "127.0.0.1:0"});
  ASSERT_TRUE(server.ok()) << server.error().message;
  const int port = (*server)->port();
  ASSERT_GT(port, 0);
  EXPECT_EQ((*server)->address(), "127.0.0.1:" + std::to_string(port));

  auto metrics = Get(port, "/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const auto families = ParseExposition(metrics->body);
  EXPECT_EQ(Value(families, "iothub_connector_budget_used_messages"), 3100);
  EXPECT_GE(Value(families, "iothub_connector_loop_lag_seconds"), 0) << "filled by the server";

  auto status = Get(port, "/status");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->status, 200);
  EXPECT_EQ(status->get_header_value("Content-Type"), "application/json; charset=utf-8");
  const Json j = Json::parse(status->body);
  EXPECT_EQ(j["hub"]["host_name"], "myhub.azure-devices.net");
  EXPECT_EQ(j["items"].size(), 4u);
  auto back = FromJson(j);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->outbox, Filled().outbox);

  auto one = Get(port, "/status?items=1");
  ASSERT_TRUE(one);
  EXPECT_EQ(Json::parse(one->body)["items"].size(), 1u);
  auto all = Get(port, "/status?items=all");
  ASSERT_TRUE(all);
  EXPECT_EQ(Json::parse(all->body)["items"].size(), 4u);
  auto bad = Get(port, "/status?items=lots");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);

  auto health = Get(port, "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  auto index = Get(port, "/");
  ASSERT_TRUE(index);
  EXPECT_NE(index->body.find("/metrics"), std::string::npos);
  auto missing = Get(port, "/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  EXPECT_EQ(calls, 4) << "/metrics, /status three times (not the 400); /healthz takes none";
  EXPECT_TRUE(on_loop) << "the snapshot is taken on the loop thread";
  (*server)->Stop();
  (*server)->Stop();  // idempotent
  EXPECT_FALSE(Get(port, "/healthz", 1)) << "stopped: nothing answers";
}

TEST(StatusServer, ALoopThatDoesNotRunGets503WithinTheTimeout) {
  PollLoop loop;  // never run: stuck
  std::atomic<int> calls{0};
  auto server = StatusServer::Start(
      loop,
      [&] {
        ++calls;
        return Filled();
      },
      StatusServerOptions{.listen = "127.0.0.1:0", .loop_timeout_ms = 300});
  ASSERT_TRUE(server.ok()) << server.error().message;
  for (const char* path : {"/metrics", "/status", "/healthz"}) {
    const auto start = Clock::now();
    auto res = Get((*server)->port(), path);
    const auto took = Clock::now() - start;
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 503) << path;
    EXPECT_NE(res->body.find("did not answer within 300 ms"), std::string::npos) << res->body;
    EXPECT_GE(took, 300ms) << path;
    EXPECT_LT(took, 5s) << path;
  }
  (*server)->Stop();
  // The tasks the requests posted run late, after Stop: they must not take a snapshot.
  loop.RunUntil([] { return false; }, 50);
  EXPECT_EQ(calls, 0);
}

// An EventLoop whose posted tasks wait until the test runs them, from any thread.
class HeldLoop final : public EventLoop {
 public:
  std::int64_t NowMs() const override { return 0; }
  TimerId RunAfter(std::int64_t, Task) override { std::abort(); }
  void Cancel(TimerId) override { std::abort(); }
  void Post(Task task) override {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      tasks_.push_back(std::move(task));
    }
    posted_.notify_all();
  }
  void Watch(int, bool, bool, FdCallback) override { std::abort(); }
  void SetInterest(int, bool, bool) override { std::abort(); }
  void Unwatch(int) override { std::abort(); }

  bool WaitForPosted(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return posted_.wait_for(lock, timeout, [&] { return tasks_.size() >= n; });
  }
  void RunAll() {
    std::deque<Task> tasks;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      tasks.swap(tasks_);
    }
    for (auto& task : tasks) task();
  }

 private:
  std::mutex mutex_;
  std::condition_variable posted_;
  std::deque<Task> tasks_;
};

TEST(StatusServer, StopWhileARequestWaitsIsSafe) {
  HeldLoop loop;
  std::atomic<int> calls{0};
  auto started = StatusServer::Start(
      loop,
      [&] {
        ++calls;
        return Filled();
      },
      StatusServerOptions{.listen = "127.0.0.1:0", .loop_timeout_ms = 30'000});
  ASSERT_TRUE(started.ok()) << started.error().message;
  std::unique_ptr<StatusServer> server = std::move(started).value();
  const int port = server->port();
  std::optional<httplib::Result> answer;
  std::thread client([&] { answer.emplace(Get(port, "/status", 20)); });
  ASSERT_TRUE(loop.WaitForPosted(1, 10s)) << "the request reached the loop";

  const auto start = Clock::now();
  server.reset();  // Stop() and free the server while its request waits for the loop
  EXPECT_LT(Clock::now() - start, 5s) << "Stop releases the waiting request";
  client.join();
  ASSERT_TRUE(answer && *answer);
  EXPECT_EQ((*answer)->status, 503);
  EXPECT_EQ((*answer)->body, "iothub-connector is shutting down\n");

  loop.RunAll();  // the request's task runs after the server is gone
  EXPECT_EQ(calls, 0) << "no snapshot after Stop";
}

TEST(StatusServer, StopFromAnotherThreadWaitsForASnapshotInProgress) {
  LoopThread loop;
  std::mutex gate_mutex;
  std::condition_variable gate;
  bool entered = false;
  bool release = false;
  std::atomic<bool> finished{false};
  auto server = StatusServer::Start(
      loop.loop(),
      [&] {
        std::unique_lock<std::mutex> lock(gate_mutex);
        entered = true;
        gate.notify_all();
        gate.wait_for(lock, 10s, [&] { return release; });
        finished = true;
        return Filled();
      },
      StatusServerOptions{.listen = "127.0.0.1:0"});
  ASSERT_TRUE(server.ok());
  const int port = (*server)->port();
  std::optional<httplib::Result> answer;
  std::thread client([&] { answer.emplace(Get(port, "/status", 20)); });
  {
    std::unique_lock<std::mutex> lock(gate_mutex);
    ASSERT_TRUE(gate.wait_for(lock, 10s, [&] { return entered; }));
  }
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    (*server)->Stop();
    stopped = true;
  });
  // Stop() cannot return while the snapshot runs; release it only after a moment of trying.
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(stopped);
  {
    const std::lock_guard<std::mutex> lock(gate_mutex);
    release = true;
  }
  gate.notify_all();
  stopper.join();
  EXPECT_TRUE(finished);
  client.join();
  ASSERT_TRUE(answer && *answer);
  EXPECT_TRUE((*answer)->status == 200 || (*answer)->status == 503) << (*answer)->status;
}

TEST(StatusServer, BindErrorsNameTheAddress) {
  LoopThread loop;
  auto first = StatusServer::Start(
      loop.loop(), [] { return StatusSnapshot{}; }, StatusServerOptions{.listen = "127.0.0.1:0"});
  ASSERT_TRUE(first.ok());
  const std::string taken = (*first)->address();
  auto second = StatusServer::Start(
      loop.loop(), [] { return StatusSnapshot{}; }, StatusServerOptions{.listen = taken});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, "metrics_listen");
  EXPECT_NE(second.error().message.find("cannot listen on " + taken), std::string::npos)
      << second.error().message;
  EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;

  // 192.0.2.1 is TEST-NET-1: never an address of this machine.
  auto foreign = StatusServer::Start(
      loop.loop(), [] { return StatusSnapshot{}; }, StatusServerOptions{.listen = "192.0.2.1:0"});
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.error().message.find("192.0.2.1 is not an address of this machine"),
            std::string::npos)
      << foreign.error().message;

  auto unresolvable = StatusServer::Start(
      loop.loop(), [] { return StatusSnapshot{}; },
      StatusServerOptions{.listen = "no-such-host.invalid:0"});
  ASSERT_FALSE(unresolvable.ok());
  EXPECT_NE(unresolvable.error().message.find("no-such-host.invalid"), std::string::npos)
      << unresolvable.error().message;

  auto malformed = StatusServer::Start(
      loop.loop(), [] { return StatusSnapshot{}; }, StatusServerOptions{.listen = "9464"});
  ASSERT_FALSE(malformed.ok());
  EXPECT_NE(malformed.error().message.find("expected host:port"), std::string::npos);
}

// ---- the `status` command, the real program -------------------------------------------------

testing::CommandOutput Connector(const std::string& args) {
  return testing::RunCommand(std::string(IOTHUB_BIN_DIR) + "/iothub-connector " + args + " 2>&1");
}

// A TCP port on 127.0.0.1 that refuses connections while this object lives: bound, never
// listening.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~RefusingPort() { close(fd_); }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(StatusCommand, PrintsARunningConnectorsStatus) {
  LoopThread loop;
  auto server = StatusServer::Start(
      loop.loop(), [] { return Filled(); }, StatusServerOptions{.listen = "127.0.0.1:0"});
  ASSERT_TRUE(server.ok());
  const std::string url = "http://127.0.0.1:" + std::to_string((*server)->port());

  const auto people = Connector("status --url " + url);
  EXPECT_EQ(people.status, 0) << people.out;
  for (const char* figure :
       {"iothub-connector 0.1.0", "3,100 (38.8%), 4,900 left", "200 under the pace line",
        "12 pending entries", "Sensor_Temperature_Kitchen", "DOWN for 1m 5s"}) {
    EXPECT_NE(people.out.find(figure), std::string::npos) << figure << "\n" << people.out;
  }
  EXPECT_EQ(people.out.find('\x1b'), std::string::npos) << "stdout is a pipe: no colours";

  const auto json = Connector("status --json --url " + url + "/status");
  ASSERT_EQ(json.status, 0) << json.out;
  auto back = FromJson(Json::parse(json.out));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->budget, Filled().budget);

  // --config reads [metrics].listen; the file needs no connection string for this.
  testing::TempDir dir;
  const std::string config = dir.path() + "/connector.toml";
  std::ofstream(config) << "[metrics]\nlisten = \"" << (*server)->address() << "\"\n";
  const auto from_config = Connector("status --config " + config);
  EXPECT_EQ(from_config.status, 0) << from_config.out;
  EXPECT_NE(from_config.out.find("3,100 (38.8%)"), std::string::npos) << from_config.out;

  const std::string off = dir.path() + "/off.toml";
  std::ofstream(off) << "[metrics]\nlisten = \"\"\n";
  const auto metrics_off = Connector("status --config " + off);
  EXPECT_EQ(metrics_off.status, 2) << metrics_off.out;
  EXPECT_NE(metrics_off.out.find("[metrics] listen is \"\""), std::string::npos) << metrics_off.out;
}

TEST(StatusCommand, SaysSoWhenNothingAnswers) {
  RefusingPort refusing;
  ASSERT_GT(refusing.port(), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(refusing.port());
  const auto run = Connector("status --url " + url);
  EXPECT_EQ(run.status, 1) << run.out;
  EXPECT_NE(run.out.find("no connector answers at " + url), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("is it running? is [metrics].listen set"), std::string::npos) << run.out;

  const auto bad_url = Connector("status --url ftp://x");
  EXPECT_EQ(bad_url.status, 2) << bad_url.out;
  EXPECT_NE(bad_url.out.find("expected http://HOST:PORT"), std::string::npos) << bad_url.out;
}

TEST(StatusCommand, AStuckLoopIsReported) {
  PollLoop stuck;  // never run
  auto server = StatusServer::Start(
      stuck, [] { return Filled(); },
      StatusServerOptions{.listen = "127.0.0.1:0", .loop_timeout_ms = 200});
  ASSERT_TRUE(server.ok());
  const auto run = Connector("status --url http://127.0.0.1:" + std::to_string((*server)->port()));
  EXPECT_EQ(run.status, 1) << run.out;
  EXPECT_NE(run.out.find("answered 503: iothub-connector: its event loop did not answer within "
                         "200 ms"),
            std::string::npos)
      << run.out;
}

}  // namespace
}  // namespace iothub::connector
