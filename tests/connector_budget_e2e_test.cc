// iothub-connector's message budget end to end (issue 10, "The budget", properties 1-5, and
// the acceptance's replay of the real sensor log and the basic tier): the real connector
// between the real openhab-sim and the real iothub-emulator, with short budget windows. Every
// figure is asserted from the emulator's own records and meter (/emulator/messages metered by
// the rule the emulator bills by, checked against /emulator/stats), never from the
// connector's word alone. The connector's windows follow its wall clock (00:00 UTC aligned),
// which is this machine's system clock, so the windows are computed here from the same clock.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "connector/message_format.h"
#include "openhab/state.h"
#include "support/connector_rig.h"
#include "support/hub_meter.h"

namespace iothub::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kFreeChunk = 512;

std::string Quota(const std::string& tier, std::int64_t daily_messages, std::int64_t window_s) {
  return "\n[quota]\ntier = \"" + tier + "\"\ndaily_messages = " + std::to_string(daily_messages) +
         "\nwindow_seconds = " + std::to_string(window_s) + "\n";
}

std::int64_t WindowStart(std::int64_t t_ms, std::int64_t window_ms) {
  return t_ms / window_ms * window_ms;
}

// What the budget of one window is made of (docs/budget.md).
struct Figures {
  std::int64_t budget, reserve, main, burst, window_ms;
};
Figures BudgetFigures(std::int64_t budget, double reserve, std::int64_t window_s) {
  Figures f{};
  f.budget = budget;
  f.reserve = std::llround(static_cast<double>(budget) * reserve);
  f.main = budget - f.reserve;
  f.burst = std::min(f.main, std::max<std::int64_t>(2, (f.main + 99) / 100));
  f.window_ms = window_s * 1000;
  return f;
}

// The hub's billed figures of kinds other than telemetry (twin updates, reads, ...) at a
// sample: quota.used less the telemetry.
std::int64_t OtherBilled(const nlohmann::json& stats) {
  const auto& quota = stats["quota"];
  return quota.value("used", std::int64_t{0}) - quota["billed"].value("telemetry", std::int64_t{0});
}

// The non-telemetry billing the hub had certainly done by `t_ms`: that of the last sample
// answered before it (samples are in time order).
std::int64_t OtherBilledBy(const std::vector<StatsSampler::Sample>& samples, std::int64_t t_ms) {
  std::int64_t by = 0;
  for (const auto& s : samples) {
    if (s.after_ms <= t_ms) by = OtherBilled(s.stats);
  }
  return by;
}

// ... and at most by `t_ms`: that of the first sample asked after it (or `final_stats`).
std::int64_t OtherBilledUpTo(const std::vector<StatsSampler::Sample>& samples,
                             const nlohmann::json& final_stats, std::int64_t t_ms) {
  for (const auto& s : samples) {
    if (s.before_ms >= t_ms) return OtherBilled(s.stats);
  }
  return OtherBilled(final_stats);
}

// Non-telemetry billing in [from_ms, to_ms]: at most (for totals that must stay under a
// limit) and at least (for a line that must not be crossed at to_ms).
std::int64_t OtherBilledAtMost(const std::vector<StatsSampler::Sample>& samples,
                               const nlohmann::json& final_stats, std::int64_t from_ms,
                               std::int64_t to_ms) {
  return OtherBilledUpTo(samples, final_stats, to_ms) - OtherBilledBy(samples, from_ms);
}
std::int64_t OtherBilledAtLeast(const std::vector<StatsSampler::Sample>& samples,
                                const nlohmann::json& final_stats, std::int64_t from_ms,
                                std::int64_t to_ms) {
  return std::max<std::int64_t>(
      0, OtherBilledBy(samples, to_ms) - OtherBilledUpTo(samples, final_stats, from_ms));
}

// Properties 1 and 2 under a load far above the budget, across window boundaries: the sensor
// log at 3,600x with the home's meters (thousands of changes a second) against 20 billed
// messages per 10-second window (reserve 2, main 18, burst 2).
TEST(ConnectorBudgetE2e, NeverOverTheBudgetAndPacedUnderHeavyLoad) {
  ConnectorRig rig({"--tier", "free"},
                   {"--trace", std::string(IOTHUB_SOURCE_DIR) + "/data/ordonez-a.trace.jsonl",
                    "--speed", "3600"});
  ASSERT_TRUE(rig.ok()) << rig.error();
  const Figures f = BudgetFigures(20, 0.1, 10);
  StatsSampler sampler(rig.hub_info(), 50ms);
  const std::int64_t started_ms = WallNowMs();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + Quota("free", f.budget, 10))) << rig.error();
  // The first whole window after the start, and the boundaries on both sides of it.
  const std::int64_t first_full = WindowStart(started_ms, f.window_ms) + f.window_ms;
  const std::int64_t end_ms = first_full + f.window_ms + 700;
  std::this_thread::sleep_for(
      std::chrono::milliseconds(std::max<std::int64_t>(0, end_ms - WallNowMs())));
  const nlohmann::json status = rig.Status();
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
  sampler.Stop();
  const nlohmann::json stats = rig.Stats();
  const std::vector<HubMessage> messages = rig.Messages();
  const std::vector<MeteredMessage> metered = Meter(messages, kFreeChunk);
  ASSERT_FALSE(metered.empty()) << rig.Log();

  // The metering here is the emulator's: same total, same count.
  std::int64_t telemetry_chunks = 0;
  for (const auto& m : metered) telemetry_chunks += m.chunks;
  EXPECT_EQ(telemetry_chunks, stats["quota"]["billed"].value("telemetry", -1)) << stats.dump();
  EXPECT_EQ(static_cast<std::int64_t>(metered.size()),
            stats["devices"]["openhab"].value("d2cMessages", -1));
  // The creation time the connector stamps is when it built (and spent for) the message: the
  // hub's own clock confirms it to within the loopback's delay.
  for (const auto& m : metered) {
    ASSERT_GE(m.enqueued_ms, m.created_ms - 50) << m.message->body_text;
    ASSERT_LE(m.enqueued_ms, m.created_ms + 5'000) << m.message->body_text;
  }

  // Per window, by the time each message was built (the connector's spending time) and, as
  // the hub's meter sees it, by the time it was enqueued.
  std::map<std::int64_t, std::int64_t> by_created, by_enqueued;
  for (const auto& m : metered) {
    by_created[WindowStart(m.created_ms, f.window_ms)] += m.chunks;
    by_enqueued[WindowStart(m.enqueued_ms, f.window_ms)] += m.chunks;
  }
  const auto samples = sampler.samples();
  ASSERT_GT(samples.size(), 20u);
  for (const auto& [start, chunks] : by_created) {
    const std::int64_t other = OtherBilledAtMost(samples, stats, start, start + f.window_ms);
    EXPECT_LE(chunks + other, f.budget)
        << "window " << start << ": " << chunks << " telemetry + " << other << " other";
  }
  for (const auto& [start, chunks] : by_enqueued) {
    const std::int64_t other = OtherBilledAtMost(samples, stats, start, start + f.window_ms);
    EXPECT_LE(chunks + other, f.budget) << "hub window " << start;
  }
  // The load was far above the budget: the whole window was spent (all but the pace line's
  // last step) on telemetry and reported-property patches, and changes were merged.
  EXPECT_GE(by_created[first_full] +
                OtherBilledAtMost(samples, stats, first_full, first_full + f.window_ms),
            f.main - 2)
      << rig.Log();
  EXPECT_GT(status["outbox"].value("merged", 0), 1000) << status.dump();
  // The twin's patches, several chunks each, still got their share: telemetry taking each
  // chunk as the pace freed it did not starve them (Budget::Claim).
  EXPECT_GE(status["twin"].value("patches_sent", 0), 2) << status.dump();
  EXPECT_GE(status["twin"].value("last_patch_ms", std::int64_t{0}), first_full) << status.dump();

  // Property 2: at every message, what its window has spent so far is under the pace line.
  std::map<std::int64_t, std::int64_t> spent;
  std::int64_t closest = f.main;  // how near the line it came
  for (const auto& m : metered) {
    const std::int64_t start = WindowStart(m.created_ms, f.window_ms);
    spent[start] += m.chunks;
    const std::int64_t other = OtherBilledAtLeast(samples, stats, start, m.created_ms);
    const std::int64_t line = PaceLine(f.main, f.burst, f.window_ms, m.created_ms - start);
    EXPECT_LE(spent[start] + other, line) << "at " << m.created_ms - start << " ms into window "
                                          << start << " (" << m.message->message_id << ")";
    closest = std::min(closest, line - spent[start] - other);
  }
  EXPECT_LE(closest, 1) << "never near the pace line: the load did not test it";
  // The same from the emulator's meter sampled over time: quota.used since the last sample
  // before the window began, against the pace line at the sample's answer, less what the hub
  // enqueued (by its own clock) between that sample and the window's start.
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    const std::int64_t start = WindowStart(s.before_ms, f.window_ms);
    if (WindowStart(s.after_ms, f.window_ms) != start) continue;
    const StatsSampler::Sample* base = nullptr;
    for (const auto& b : samples) {
      if (b.after_ms <= start) base = &b;
    }
    if (base == nullptr) continue;
    std::int64_t before_start = 0;
    for (const auto& m : metered) {
      if (m.enqueued_ms >= base->before_ms && m.enqueued_ms < start) before_start += m.chunks;
    }
    const std::int64_t used = s.stats["quota"].value("used", std::int64_t{0}) -
                              base->stats["quota"].value("used", std::int64_t{0}) - before_start;
    EXPECT_LE(used, PaceLine(f.main, f.burst, f.window_ms, s.after_ms - start))
        << "sample at " << s.after_ms - start << " ms into window " << start;
  }
}

// One state of an item in a message: the newest ("value") or one of its "history".
struct HubEntry {
  std::string item;
  nlohmann::json value;
  std::int64_t time_ms = -1;   // of the state
  std::int64_t since_ms = -1;  // of the oldest change it stands for (merged), else time_ms
  const MeteredMessage* message = nullptr;
};

std::vector<HubEntry> Entries(const std::vector<MeteredMessage>& messages) {
  std::vector<HubEntry> out;
  for (const auto& m : messages) {
    const auto& body = m.message->body;
    if (!body.is_object() || !body.contains("items")) continue;
    for (const auto& member : body["items"].items()) {
      const std::string& name = member.key();
      const nlohmann::json& item = member.value();
      const auto add = [&](const nlohmann::json& state) {
        const std::int64_t time = ParseIsoMs(state.value("time", ""));
        const std::int64_t since =
            state.contains("merged") ? ParseIsoMs(state["merged"].value("since", "")) : time;
        out.push_back({name, state["value"], time, since, &m});
      };
      for (const auto& old : item.value("history", nlohmann::json::array())) add(old);
      add(item);
    }
  }
  return out;
}

// The value the connector writes for openHAB's item `item` (a GET /rest/items element) in
// state `text`: the same codec the connector uses.
nlohmann::json ExpectedValue(const nlohmann::json& item, const std::string& text) {
  std::string type = item.value("type", "");
  if (type == "Group" && !item.value("groupType", "").empty()) type = item.value("groupType", "");
  return connector::EncodeValue(type, openhab::ParseStateTolerant(type, text)).value;
}

std::map<std::string, nlohmann::json> SimItems(ConnectorRig& rig) {
  std::map<std::string, nlohmann::json> items;
  const nlohmann::json list = rig.sim().GetJson("/rest/items");
  if (!list.is_array()) return items;
  for (const auto& item : list) items[item.value("name", "")] = item;
  return items;
}

// Which of `metered` (in seq order) the budget held back: built the moment the pace line let
// them go (their window's spending, theirs and the twin's patches included, reached the line).
// The others went at once, on allowance saved up in the window, each filled with what was
// pending then. The twin's spending counts as far as the samples prove it, so a message
// counted as held back was.
std::vector<bool> AtThePaceLine(const std::vector<MeteredMessage>& metered, const Figures& f,
                                const std::vector<StatsSampler::Sample>& samples,
                                const nlohmann::json& final_stats) {
  std::vector<bool> out;
  std::map<std::int64_t, std::int64_t> spent;
  for (const auto& m : metered) {
    const std::int64_t start = WindowStart(m.created_ms, f.window_ms);
    spent[start] += m.chunks;
    const std::int64_t other = OtherBilledAtLeast(samples, final_stats, start, m.created_ms);
    out.push_back(spent[start] + other >=
                  PaceLine(f.main, f.burst, f.window_ms, m.created_ms - start));
  }
  return out;
}

// Property 3: with a backlog, every message is filled up to the 512-byte chunk before another
// is spent, and a high-priority change overtakes the normal ones waiting before it.
TEST(ConnectorBudgetE2e, MessagesAreFilledToTheChunkAndHighPriorityGoesFirst) {
  ConnectorRig rig({"--tier", "free"},
                   {"--trace", std::string(IOTHUB_SOURCE_DIR) + "/data/ordonez-a.trace.jsonl",
                    "--speed", "3600"});
  ASSERT_TRUE(rig.ok()) << rig.error();
  const Figures f = BudgetFigures(60, 0.1, 10);  // main 54: 5.4 messages a second
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + Quota("free", f.budget, 10) +
                                 "\n[[item]]\nmatch = \"Living_Light\"\npriority = \"high\"\n"))
      << rig.error();
  StatsSampler sampler(rig.hub_info(), 50ms);
  // The window's saved-up allowance is spent and the pace line holds a backlog back.
  const auto paced = [&] {
    const auto messages = rig.Messages();
    const auto at_line =
        AtThePaceLine(Meter(messages, kFreeChunk), f, sampler.samples(), rig.Stats());
    return std::count(at_line.begin(), at_line.end(), true);
  };
  ASSERT_TRUE(WaitUntil([&] { return paced() >= 5; }, 30s)) << rig.Log();
  // A change of a high-priority item, made while older normal changes wait.
  const std::string before = rig.sim().http().Get("/rest/items/Living_Light/state")->body;
  const std::string flipped = before == "ON" ? "OFF" : "ON";
  const std::int64_t posted_ms = WallNowMs();
  ASSERT_EQ(rig.sim().Post("/sim/items/Living_Light/state", flipped), 200);
  const auto carries_it = [&](const HubMessage& m) {
    return m.kind == "changes" && m.body["items"].contains("Living_Light") &&
           m.body["items"]["Living_Light"]["value"] == flipped;
  };
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const auto& m : rig.Messages()) {
          if (carries_it(m)) return true;
        }
        return false;
      },
      20s))
      << rig.Log();
  std::this_thread::sleep_for(3s);  // the backlog goes on behind it
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
  const std::vector<HubMessage> messages = rig.Messages();
  const std::vector<MeteredMessage> metered = Meter(messages, kFreeChunk);
  std::int64_t billed = 0;
  for (const auto& m : metered) billed += m.chunks;
  EXPECT_EQ(billed, rig.Stats()["quota"]["billed"].value("telemetry", -1));

  // Overtaking: the high-priority change went within a message or two of the pace, ahead of
  // normal changes accepted before it.
  const MeteredMessage* high = nullptr;
  for (const auto& m : metered) {
    if (carries_it(*m.message)) high = &m;
  }
  ASSERT_NE(high, nullptr);
  EXPECT_LE(high->created_ms - posted_ms, 1'000) << "the high-priority change waited";
  bool overtaken = false;
  for (const auto& e : Entries(metered)) {
    if (e.message->message->seq > high->message->seq && e.item != "Living_Light" &&
        e.since_ms >= 0 && e.since_ms < posted_ms) {
      overtaken = true;
    }
  }
  EXPECT_TRUE(overtaken) << "no normal change accepted before it was still waiting: the test "
                            "had no backlog";

  // Filling: a message the budget held back (so a backlog was there) took every pending entry
  // that fitted: no item new to it in the next message of its kind had been waiting when it
  // was built and would have fitted into the room it left (8 bytes spare for a value that
  // grew a digit since). The last message before the stop is not checked.
  sampler.Stop();
  const std::vector<bool> at_line = AtThePaceLine(metered, f, sampler.samples(), rig.Stats());
  int checked = 0;
  for (std::size_t i = 0; i + 1 < metered.size(); ++i) {
    const auto& m = metered[i];
    const auto& next = metered[i + 1];
    EXPECT_EQ(m.chunks, 1) << m.message->body_text;
    if (!at_line[i] || next.message->kind != m.message->kind) continue;
    ++checked;
    const std::int64_t room = m.chunks * kFreeChunk - m.bytes;
    for (const auto& [name, item] : next.message->body["items"].items()) {
      if (m.message->body["items"].contains(name)) continue;
      const std::int64_t waiting_since = item.contains("merged")
                                             ? ParseIsoMs(item["merged"].value("since", ""))
                                             : ParseIsoMs(item.value("time", ""));
      if (waiting_since >= m.created_ms) continue;
      nlohmann::json head = item;
      head.erase("history");
      const auto size = static_cast<std::int64_t>(name.size() + 4 + head.dump().size());
      EXPECT_GE(size + 8, room) << "message " << m.message->seq << " (" << m.bytes
                                << " B) left room for " << name << " (" << size
                                << " B), which waited: " << m.message->body_text << "\n"
                                << next.message->body_text;
    }
  }
  EXPECT_GE(checked, 15);
  std::printf("%d paced messages checked\n", checked);
}

// Property 4 on an ample budget (S1): a change is on its way at once, not batched.
TEST(ConnectorBudgetE2e, ChangesReachTheHubWithinMillisecondsOnAnAmpleBudget) {
  ConnectorRig rig({"--tier", "S1"});
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + Quota("S1", 0, 86'400))) << rig.error();
  ASSERT_TRUE(WaitUntil([&] {
    const nlohmann::json status = rig.Status();
    return status.is_object() && rig.LatestValues(rig.Messages()).size() >= 40 &&
           status["outbox"].value("pending_entries", -1) == 0 &&
           status["outbox"].value("sealed_messages", -1) == 0;
  })) << rig.Log();
  std::vector<std::int64_t> latencies;
  for (int i = 1; i <= 30; ++i) {
    const double value = 20.0 + i / 100.0;
    const std::string text = fmt::format("{:.2f} °C", value);
    const std::int64_t before = WallNowMs();
    ASSERT_EQ(rig.sim().Post("/sim/items/Living_Temperature/state", text), 200);
    const HubMessage* found = nullptr;
    std::vector<HubMessage> messages;
    ASSERT_TRUE(WaitUntil(
        [&] {
          messages = rig.Messages();
          for (const auto& m : messages) {
            if (m.kind == "changes" && m.body["items"].contains("Living_Temperature") &&
                m.body["items"]["Living_Temperature"]["value"] == value) {
              found = &m;
              return true;
            }
          }
          return false;
        },
        10s))
        << text << "\n"
        << rig.Log();
    latencies.push_back(ParseIsoMs(found->system_properties.value("iothub-enqueuedtime", "")) -
                        before);
  }
  std::sort(latencies.begin(), latencies.end());
  const std::int64_t p50 = latencies[latencies.size() / 2];
  const std::int64_t worst = latencies.back();
  std::printf("openHAB change to hub enqueue on S1: p50 %lld ms, max %lld ms (%zu changes)\n",
              static_cast<long long>(p50), static_cast<long long>(worst), latencies.size());
  EXPECT_LT(p50, 100);
  EXPECT_LT(worst, 500);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// Property 4 on a tight budget: under the meters' load, every item's state at a moment reaches
// the hub within the staleness bound the connector reports (budget.staleness_bound_seconds),
// whatever else is waiting.
TEST(ConnectorBudgetE2e, EveryLatestStateArrivesWithinTheReportedStalenessBound) {
  ConnectorRig rig({"--tier", "free"},
                   {"--trace", std::string(IOTHUB_SOURCE_DIR) + "/data/ordonez-a.trace.jsonl",
                    "--speed", "3600"});
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + Quota("free", 20, 10))) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return rig.Messages().size() >= 3; })) << rig.Log();
  // Items nothing else changes get a new state; the meters and the sensor log change the rest.
  const std::map<std::string, std::string> posts = {
      {"Living_Light", "ON"},    {"Living_Dimmer", "73"},    {"Living_Shutter", "55"},
      {"Living_Player", "PLAY"}, {"Kitchen_Light", "ON"},    {"Bedroom_Light", "31"},
      {"Bedroom_Shutter", "12"}, {"Bathroom_Light", "ON"},   {"Entrance_Light", "ON"},
      {"Presence", "OFF"},       {"Alarm_Message", "Armed"}, {"Heating_Setpoint", "22.5 °C"},
      {"Living_Window", "OPEN"}, {"Kitchen_Window", "OPEN"}, {"Bedroom_Window", "OPEN"}};
  const nlohmann::json status = rig.Status();
  ASSERT_TRUE(status.is_object());
  const double bound_s = status["budget"].value("staleness_bound_seconds", -1.0);
  const std::int64_t t0 = WallNowMs();  // before the changes below
  for (const auto& [name, text] : posts) {
    ASSERT_EQ(rig.sim().Post("/sim/items/" + name + "/state", text), 200) << name;
  }
  const std::map<std::string, nlohmann::json> at_t0 = SimItems(rig);
  const std::int64_t t1 = WallNowMs();  // every state above was openHAB's by then
  ASSERT_GT(bound_s, 0.0) << status.dump();
  EXPECT_LT(bound_s, 60.0) << "a bound too loose to mean anything";
  const std::int64_t deadline = t1 + static_cast<std::int64_t>(bound_s * 1000.0);
  std::printf("staleness bound reported: %.1f s (%zu items, changed and read in %lld ms)\n",
              bound_s, at_t0.size(), static_cast<long long>(t1 - t0));

  // Which items the hub has a state of at t0 (or a newer one) from, by `limit`.
  const auto late = [&](const std::vector<MeteredMessage>& metered, std::int64_t limit) {
    std::set<std::string> seen;
    for (const auto& e : Entries(metered)) {
      if (e.message->created_ms > limit) continue;
      const auto item = at_t0.find(e.item);
      if (item == at_t0.end()) continue;
      if (e.time_ms >= t1 ||
          e.value == ExpectedValue(item->second, item->second.value("state", ""))) {
        seen.insert(e.item);
      }
    }
    std::vector<std::string> missing;
    for (const auto& [name, value] : rig.LatestValues(rig.Messages())) {
      if (at_t0.count(name) != 0 && seen.count(name) == 0) missing.push_back(name);
    }
    return missing;
  };
  std::vector<HubMessage> messages;
  std::vector<MeteredMessage> metered;
  WaitUntil(
      [&] {
        messages = rig.Messages();
        metered = Meter(messages, kFreeChunk);
        return late(metered, deadline).empty() && rig.LatestValues(messages).size() >= 40;
      },
      std::chrono::milliseconds(deadline - WallNowMs() + 3'000));
  const std::vector<std::string> missing = late(metered, deadline);
  std::int64_t slowest = 0;  // the time the last item's state took to reach the hub
  for (std::int64_t limit = t1; limit <= deadline && !late(metered, limit).empty(); limit += 100) {
    slowest = limit + 100 - t1;
  }
  std::printf("every item's state was at the hub %.1f s after it was openHAB's\n",
              static_cast<double>(slowest) / 1000.0);
  for (const auto& name : missing) ADD_FAILURE() << name << ": not at the hub within the bound";
  EXPECT_GE(rig.LatestValues(messages).size(), 40u);
  for (const auto& [name, text] : posts) {
    EXPECT_EQ(rig.LatestValues(messages)[name], ExpectedValue(at_t0.at(name), text)) << name;
  }
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

// Runs property 5 with the emulator answering twin requests of an exhausted hub `twin_answer`
// ("close" or "403").
void ExhaustedHubThenNextDay(const std::string& twin_answer) {
  ConnectorRig rig({"--tier", "free", "--quota-twin-answer", twin_answer});
  ASSERT_TRUE(rig.ok()) << rig.error();
  // The hub's clock moves to its next midnight below: the connector's token must outlive that
  // (a device connection string with a ready token of three days).
  const EmulatorInfo& info = rig.hub_info();
  const std::string key = rig.service().CreateDevice("openhab");
  const std::string connection_string = "HostName=" + info.host_name +
                                        ";DeviceId=openhab;SharedAccessSignature=" +
                                        DeviceToken(info, "openhab", key, std::int64_t{3} * 86'400);
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig(connection_string) + Quota("free", 600, 60),
                                 {"--quota-probe", "2"}))
      << rig.error();
  ASSERT_TRUE(WaitUntil([&] {
    const nlohmann::json status = rig.Status();
    return status.is_object() && rig.LatestValues(rig.Messages()).size() >= 40 &&
           status["outbox"].value("pending_entries", -1) == 0 &&
           status["outbox"].value("sealed_messages", -1) == 0;
  })) << rig.Log();
  const std::size_t items = rig.LatestValues(rig.Messages()).size();

  // Another device of the same hub spends the rest of the day's quota (8,000 on Free).
  const std::string other_key = rig.service().CreateDevice("other");
  DeviceClient::Options options;
  options.token_ttl_s = std::int64_t{3} * 86'400;
  DeviceClient other(info, "other", other_key, options);
  ASSERT_EQ(other.Connect(), 0);
  const std::string large(std::size_t{250} * 1024, 'x');  // 500 chunks
  for (int i = 0; i < 40 && !rig.Stats()["quota"].value("exhausted", false); ++i) {
    other.Publish("devices/other/messages/events/", large, 1, false, 10s);
  }
  ASSERT_TRUE(rig.Stats()["quota"].value("exhausted", false)) << rig.Stats().dump();
  const std::size_t before_exhaustion = rig.Messages("openhab").size();

  // Changes go on. The connector finds the quota gone, stops sending and merges.
  const std::vector<std::string> changed = {"Living_Dimmer",    "Living_Shutter",
                                            "Bedroom_Light",    "Living_Temperature",
                                            "Heating_Setpoint", "Alarm_Message"};
  int round = 0;
  const auto change_all = [&] {
    ++round;
    for (const auto& name : changed) {
      std::string text = std::to_string(round % 100);
      if (name == "Living_Temperature" || name == "Heating_Setpoint") {
        text = fmt::format("{}.5 °C", 10 + round);
      } else if (name == "Alarm_Message") {
        text = "round " + std::to_string(round);
      }
      ASSERT_EQ(rig.sim().Post("/sim/items/" + name + "/state", text), 200) << name;
    }
  };
  ASSERT_TRUE(WaitUntil(
      [&] {
        change_all();
        std::this_thread::sleep_for(200ms);
        const nlohmann::json status = rig.Status();
        return status.is_object() && status["hub"].value("quota_state", "") == "exhausted";
      },
      40s))
      << rig.Log();
  const std::int64_t exhausted_ms = WallNowMs();
  std::int64_t most_pending = 0;
  for (int i = 0; i < 20; ++i) {
    change_all();
    std::this_thread::sleep_for(150ms);
    const nlohmann::json status = rig.Status();
    ASSERT_TRUE(status.is_object());
    most_pending =
        std::max<std::int64_t>(most_pending, status["outbox"].value("pending_entries", 0));
  }
  const int last_round = round;
  std::printf(
      "quota exhausted after %d rounds of changes; at most %lld entries pending while "
      "%zu more changes were made\n",
      round - 20, static_cast<long long>(most_pending), changed.size() * 20);
  // Durably coalesced: about one entry per changed item (and the temperatures' group) waits,
  // with the last round or two not merged yet, not every change.
  EXPECT_LE(most_pending, static_cast<std::int64_t>(changed.size() + 1) * 3)
      << "changes pile up while the hub is exhausted (" << changed.size() * 20 << " changes made)";
  const nlohmann::json exhausted_status = rig.Status();
  EXPECT_EQ(exhausted_status["hub"].value("quota_state", ""), "exhausted");
  EXPECT_GT(exhausted_status["outbox"].value("merged", 0), 0);
  EXPECT_EQ(rig.Messages("openhab").size(), before_exhaustion) << "the exhausted hub took more";
  // A probe (every 2 s here) comes after the last change.
  std::this_thread::sleep_for(2500ms);

  // The hub's day ends: its quota resets.
  const nlohmann::json stats = rig.Stats();
  const std::int64_t to_midnight_s =
      (ParseIsoMs(stats["quota"].value("resetsAt", "")) - ParseIsoMs(stats.value("now", ""))) /
          1000 +
      1;
  ASSERT_GT(to_midnight_s, 0) << stats.dump();
  ASSERT_EQ(
      rig.service()
          .Request("POST", "/emulator/clock/advance", nlohmann::json{{"seconds", to_midnight_s}})
          .status,
      200);
  ASSERT_FALSE(rig.Stats()["quota"].value("exhausted", true));
  std::map<std::string, nlohmann::json> latest;
  const auto sim_items = SimItems(rig);
  ASSERT_TRUE(WaitUntil(
      [&] {
        latest = rig.LatestValues(rig.Messages("openhab"));
        for (const auto& name : changed) {
          const auto& item = sim_items.at(name);
          if (latest[name] != ExpectedValue(item, item.value("state", ""))) return false;
        }
        return true;
      },
      30s))
      << rig.Log();
  EXPECT_TRUE(WaitUntil([&] { return rig.Status()["hub"].value("quota_state", "") == "ok"; }));

  // After the reset the latest states went first: of the messages built since the connector
  // knew the quota was gone, the first one carrying a changed item carries its latest state.
  const std::vector<HubMessage> messages = rig.Messages("openhab");
  const std::vector<MeteredMessage> metered = Meter(messages, kFreeChunk);
  std::set<std::string> first_seen;
  for (const auto& e : Entries(metered)) {
    if (e.message->created_ms < exhausted_ms) continue;
    if (std::find(changed.begin(), changed.end(), e.item) == changed.end()) continue;
    if (!first_seen.insert(e.item).second) continue;
    const auto& item = sim_items.at(e.item);
    EXPECT_EQ(e.value, ExpectedValue(item, item.value("state", "")))
        << e.item << ": an older state went first (last round " << last_round << ")";
  }
  EXPECT_EQ(first_seen.size(), changed.size());
  EXPECT_LE(messages.size() - before_exhaustion, items) << "more than a round of messages";
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
  if (::testing::Test::HasFailure() || std::getenv("BUDGET_DEBUG") != nullptr) {
    for (std::size_t i = before_exhaustion; i < messages.size(); ++i) {
      std::printf("after: created %+lld ms: %s\n",
                  static_cast<long long>(metered[i].created_ms - exhausted_ms),
                  messages[i].body_text.c_str());
    }
    std::printf("%s\n", rig.Log().c_str());
  }
}

TEST(ConnectorBudgetE2e, ExhaustedHubStopsMergesAndResumesWithLatestStates) {
  ExhaustedHubThenNextDay("close");
}

TEST(ConnectorBudgetE2e, ExhaustedHubAnsweringTwin403StopsMergesAndResumes) {
  ExhaustedHubThenNextDay("403");
}

// Acceptance: six hours of the real sensor log and the home's meters, at 1,440x (a day a
// minute), through a Free-tier budget scaled to it (a day's 8,000 messages per 60-s window):
// every item's final state arrives and nothing is over the budget or ahead of its pace.
TEST(ConnectorBudgetE2e, RealSensorLogAndMetersWithinAScaledFreeBudget) {
  TempDir files;
  // The meters as a trace of their own (openhab-trace series), merged with the sensor log's
  // busy morning: a replay that ends, so that final states exist.
  constexpr double kFrom = 21'600;     // 08:27:59 on the log's first day
  constexpr double kSeconds = 21'600;  // six hours
  const std::string home_path = SimProcess::DemoHome();
  const std::string series_path = files.path() + "/series.jsonl";
  const std::string command = std::string(IOTHUB_BIN_DIR) + "/openhab-trace series '" + home_path +
                              "' --duration " + std::to_string(kSeconds) +
                              " --start 2011-11-28T08:27:59 -o '" + series_path + "' 2>/dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  struct Line {
    double t;
    int source;
    std::size_t order;
    std::string json;
  };
  std::vector<Line> lines;
  std::string header;
  {
    std::ifstream log(std::string(IOTHUB_SOURCE_DIR) + "/data/ordonez-a.trace.jsonl");
    std::string text;
    std::getline(log, header);
    while (std::getline(log, text)) {
      nlohmann::json change = nlohmann::json::parse(text);
      const double t = change["t"].get<double>();
      if (t < kFrom || t >= kFrom + kSeconds) continue;
      change["t"] = t - kFrom;
      lines.push_back({t - kFrom, 0, lines.size(), change.dump()});
    }
    std::ifstream series(series_path);
    std::getline(series, text);
    while (std::getline(series, text)) {
      if (text.empty()) continue;
      lines.push_back({nlohmann::json::parse(text)["t"].get<double>(), 1, lines.size(), text});
    }
  }
  std::sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
    return std::tie(a.t, a.source, a.order) < std::tie(b.t, b.source, b.order);
  });
  const std::string trace_path = files.path() + "/replay.jsonl";
  {
    std::ofstream out(trace_path);
    out << "{\"openhab-trace\":1,\"source\":\"ordonez-a and the demo meters\"}\n";
    for (const auto& line : lines) out << line.json << "\n";
  }
  nlohmann::json home = nlohmann::json::parse(ReadFile(home_path));
  home.erase("series");  // in the trace now
  const std::string replay_home = files.path() + "/home.json";
  std::ofstream(replay_home) << home.dump();

  constexpr double kSpeed = 1'440;
  const std::int64_t replay_ms = static_cast<std::int64_t>(kSeconds / kSpeed * 1000.0);
  const std::int64_t sim_started = WallNowMs();
  ConnectorRig rig({"--tier", "free"}, {"--trace", trace_path, "--speed", "1440"}, replay_home);
  ASSERT_TRUE(rig.ok()) << rig.error();
  StatsSampler sampler(rig.hub_info(), 100ms);
  const Figures f = BudgetFigures(8'000, 0.1, 60);
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + Quota("free", f.budget, 60) +
                                 "\n[[item]]\nmatch = \"*_Power\"\npriority = \"low\"\n"))
      << rig.error();
  std::this_thread::sleep_for(
      std::chrono::milliseconds(std::max<std::int64_t>(0, sim_started + replay_ms - WallNowMs())));
  // The replay is over once openHAB's event count stands still.
  std::int64_t events = -1;
  ASSERT_TRUE(WaitUntil(
      [&] {
        const std::int64_t now = rig.sim().GetJson("/sim/stats").value("events", std::int64_t{0});
        const bool still = now == events;
        events = now;
        if (!still) std::this_thread::sleep_for(300ms);
        return still;
      },
      20s));
  const std::map<std::string, nlohmann::json> final_items = SimItems(rig);
  std::map<std::string, std::string> wrong;
  ASSERT_TRUE(WaitUntil(
      [&] {
        wrong.clear();
        const auto latest = rig.LatestValues(rig.Messages());
        for (const auto& [name, item] : final_items) {
          const auto it = latest.find(name);
          if (it == latest.end()) continue;
          const nlohmann::json expected = ExpectedValue(item, item.value("state", ""));
          if (it->second != expected)
            wrong[name] = it->second.dump() + " instead of " + expected.dump();
        }
        return wrong.empty() && latest.size() >= 40;
      },
      30s))
      << ::testing::PrintToString(wrong) << rig.Log();
  const nlohmann::json status = rig.Status();
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
  sampler.Stop();
  const nlohmann::json stats = rig.Stats();
  const std::vector<HubMessage> messages = rig.Messages();
  EXPECT_EQ(static_cast<std::int64_t>(rig.LatestValues(messages).size()),
            status["openhab"].value("items_selected", -1));

  // Nothing over the budget, nothing ahead of the pace line.
  const std::vector<MeteredMessage> metered = Meter(messages, kFreeChunk);
  std::int64_t billed = 0;
  std::map<std::int64_t, std::int64_t> spent;
  const auto samples = sampler.samples();
  for (const auto& m : metered) {
    billed += m.chunks;
    const std::int64_t start = WindowStart(m.created_ms, f.window_ms);
    spent[start] += m.chunks;
    const std::int64_t other = OtherBilledAtLeast(samples, stats, start, m.created_ms);
    EXPECT_LE(spent[start] + other, PaceLine(f.main, f.burst, f.window_ms, m.created_ms - start))
        << "at " << m.created_ms - start << " ms into window " << start;
  }
  EXPECT_EQ(billed, stats["quota"]["billed"].value("telemetry", -1));
  for (const auto& [start, chunks] : spent) {
    EXPECT_LE(chunks + OtherBilledAtMost(samples, stats, start, start + f.window_ms), f.budget);
  }
  std::printf("replay: %lld openHAB events, %zu messages, %lld billed, %lld changes merged\n",
              static_cast<long long>(events), messages.size(), static_cast<long long>(billed),
              static_cast<long long>(status["outbox"].value("merged", 0)));
}

// A basic-tier hub has no twin: telemetry works, the twin is switched off with a clear log
// line, and the device never makes a twin request (which would get it disconnected).
TEST(ConnectorBudgetE2e, BasicTierSendsTelemetryWithoutTheTwin) {
  ConnectorRig rig({"--tier", "B1"});
  ASSERT_TRUE(rig.ok()) << rig.error();
  ASSERT_TRUE(rig.StartConnector(rig.BaseConfig() + Quota("B1", 0, 86'400))) << rig.error();
  ASSERT_TRUE(WaitUntil([&] { return rig.LatestValues(rig.Messages()).size() >= 40; }))
      << rig.Log();
  ASSERT_EQ(rig.sim().Post("/sim/items/Living_Temperature/state", "24.75 °C"), 200);
  ASSERT_TRUE(WaitUntil([&] {
    return rig.LatestValues(rig.Messages())["Living_Temperature"] == 24.75;
  })) << rig.Log();
  std::this_thread::sleep_for(1500ms);  // time for a twin update, if one were made
  const nlohmann::json status = rig.Status();
  EXPECT_FALSE(status["twin"].value("enabled", true));
  EXPECT_NE(rig.Log().find("tier has no device twins"), std::string::npos) << rig.Log();
  const nlohmann::json stats = rig.Stats();
  const nlohmann::json& device = stats["devices"]["openhab"];
  EXPECT_EQ(device.value("twinGets", -1), 0);
  EXPECT_EQ(device.value("reportedPatches", -1), 0);
  EXPECT_EQ(device.value("closedByHub", -1), 0);
  EXPECT_EQ(device.value("connects", -1), 1) << "no disconnects";
  EXPECT_EQ(stats["quota"]["billed"].value("twinReads", -1), 0);
  EXPECT_EQ(stats["quota"]["billed"].value("twinUpdates", -1), 0);
  EXPECT_EQ(status["hub"].value("connection_losses", -1), 0);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
}

}  // namespace
}  // namespace iothub::testing
