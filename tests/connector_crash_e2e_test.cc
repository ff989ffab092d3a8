// iothub-connector's durability end to end (issue 10, "Durability" and the acceptance's kill -9
// test): the real connector killed with SIGKILL at random moments while openHAB's changes
// stream in, and restarted on the same store each time. Between a kill and the restart the
// test reads the store itself (Outbox::Open on the same directory): what it holds there was
// accepted (pending entries and sealed messages), and all of it must reach the hub. What
// reached the hub is read from the emulator's own records.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "connector/outbox.h"
#include "support/connector_rig.h"
#include "support/hub_meter.h"
#include "support/manual_loop.h"

namespace iothub::testing {
namespace {

using namespace std::chrono_literals;

// What the store held after one kill.
struct Accepted {
  std::int64_t hub_seq = 0;  // the hub's newest message when the store was read
  std::vector<connector::Entry> pending;
  std::map<std::string, connector::SealedMessage> sealed;  // by message id
};

// Reads the store the killed connector left: every committed entry and sealed message.
Accepted ReadStore(const std::string& dir, std::int64_t hub_seq) {
  Accepted accepted;
  accepted.hub_seq = hub_seq;
  ManualLoop loop;
  connector::OutboxOptions options;
  options.dir = dir;
  auto outbox = connector::Outbox::Open(loop, options);
  EXPECT_TRUE(outbox.ok()) << (outbox.ok() ? "" : outbox.error().message);
  if (!outbox.ok()) return accepted;
  accepted.pending = (*outbox)->Peek(10'000'000);
  for (auto& message : (*outbox)->Sealed()) {
    std::string id = message.message_id;
    accepted.sealed.emplace(std::move(id), std::move(message));
  }
  return accepted;
}

// One state of an item or thing in a message at the hub.
struct HubState {
  const HubMessage* message = nullptr;
  nlohmann::json value;
  std::int64_t time_ms = -1;
  std::int64_t since_ms = -1;  // merged: the oldest change it stands for; else time_ms
};

std::multimap<std::string, HubState> States(const std::vector<HubMessage>& messages) {
  std::multimap<std::string, HubState> out;
  for (const auto& m : messages) {
    if (!m.body.is_object()) continue;
    for (const char* member : {"items", "things"}) {
      if (!m.body.contains(member)) continue;
      for (const auto& element : m.body[member].items()) {
        const std::string& key = element.key();
        const nlohmann::json& head = element.value();
        const auto add = [&](const nlohmann::json& state) {
          HubState s;
          s.message = &m;
          s.value = state.contains("value") ? state["value"] : state;
          s.time_ms = ParseIsoMs(state.value("time", ""));
          s.since_ms =
              state.contains("merged") ? ParseIsoMs(state["merged"].value("since", "")) : s.time_ms;
          out.emplace(key, std::move(s));
        };
        for (const auto& old : head.value("history", nlohmann::json::array())) add(old);
        add(head);
      }
    }
  }
  return out;
}

// A thing's status as a message writes it: the entry's value without the message's "time".
nlohmann::json Comparable(const nlohmann::json& value) {
  nlohmann::json v = value;
  if (v.is_object()) {
    v.erase("time");
    v.erase("merged");
    v.erase("history");
  }
  return v;
}

// Whether the hub has `entry`: exactly (its value at its time, as the newest state of a
// message or in a history), or, when `allow_merged`, inside a merged state that stands for
// changes from before it to after it. A snapshot may also be replaced by a newer state.
bool Reached(const std::multimap<std::string, HubState>& states, const connector::Entry& entry,
             bool allow_merged) {
  const std::int64_t first = entry.first_ms != 0 ? entry.first_ms : entry.time_ms;
  const auto [begin, end] = states.equal_range(entry.key);
  for (auto it = begin; it != end; ++it) {
    const HubState& s = it->second;
    if (s.time_ms == entry.time_ms && Comparable(s.value) == Comparable(entry.value)) return true;
    if (allow_merged && s.since_ms <= first && entry.time_ms <= s.time_ms &&
        s.since_ms != s.time_ms) {
      return true;
    }
    if (entry.kind == connector::EntryKind::kSnapshot && s.time_ms >= entry.time_ms) return true;
  }
  return false;
}

// Kills the connector `kills` times at random moments under the sensor log's and meters'
// load, restarting it on the same store, then checks every guarantee from the hub's records.
void KillUnderLoad(const std::string& quota, int kills, bool allow_merged, unsigned seed) {
  ConnectorRig rig({"--tier", quota.find("S1") != std::string::npos ? "S1" : "free"},
                   {"--trace", std::string(IOTHUB_SOURCE_DIR) + "/data/ordonez-a.trace.jsonl",
                    "--speed", "3600"});
  ASSERT_TRUE(rig.ok()) << rig.error();
  const std::string config = rig.BaseConfig() + quota;
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> pause_ms(300, 1'500);
  std::vector<Accepted> kept;
  for (int k = 0; k < kills; ++k) {
    ASSERT_TRUE(rig.StartConnector(config)) << rig.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(random)));
    // Three ways to die: at a random moment; with messages the hub never acknowledged (it
    // withholds its PUBACKs and drops them); with messages the hub took but whose PUBACKs the
    // frozen process never read (they come again after the restart: the only duplicates).
    switch (k % 3) {
      case 0:
        break;
      case 1: {
        const auto closed = [&] {
          return rig.Stats()["devices"]["openhab"].value("closedByHub", std::int64_t{0});
        };
        const std::int64_t closed_before = closed();
        ASSERT_EQ(rig.service()
                      .Request("POST", "/emulator/faults/withhold-puback",
                               nlohmann::json{{"deviceId", "openhab"}, {"count", 3}})
                      .status,
                  200);
        // Killed before the session reconnects to resend.
        EXPECT_TRUE(WaitUntil([&] { return closed() > closed_before; }, 10s));
        break;
      }
      case 2: {
        // A burst fills the in-flight window: freeze with publishes unacknowledged.
        std::thread burst([port = rig.sim().port()] {
          httplib::Client sim("127.0.0.1", port);
          sim.set_read_timeout(30, 0);
          sim.Post("/sim/burst?count=3000", "", "text/plain");
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(random) / 20));
        rig.SignalConnector(SIGSTOP);
        std::this_thread::sleep_for(300ms);
        rig.KillConnector();
        burst.join();
        break;
      }
    }
    rig.KillConnector();
    ASSERT_EQ(rig.service()
                  .Request("POST", "/emulator/faults/withhold-puback",
                           nlohmann::json{{"deviceId", "openhab"}, {"count", 0}})
                  .status,
              200);
    // Everything the dead process wrote has reached the hub once the hub saw it go.
    ASSERT_TRUE(WaitUntil(
        [&] { return !rig.Stats()["devices"]["openhab"].value("connected", true); }, 10s));
    const std::vector<HubMessage> before = rig.Messages("openhab");
    kept.push_back(ReadStore(rig.store_dir(), before.empty() ? 0 : before.back().seq));
    std::printf(
        "kill %d: %zu messages at the hub, %zu entries pending, %zu sealed unacknowledged\n", k + 1,
        before.size(), kept.back().pending.size(), kept.back().sealed.size());
  }
  // The last start: everything accepted before any kill arrives.
  ASSERT_TRUE(rig.StartConnector(config)) << rig.error();
  std::vector<HubMessage> messages;
  std::size_t missing = 0;
  WaitUntil(
      [&] {
        messages = rig.Messages("openhab");
        std::set<std::string> ids;
        for (const auto& m : messages) ids.insert(m.message_id);
        const auto states = States(messages);
        missing = 0;
        for (const auto& accepted : kept) {
          for (const auto& [id, sealed] : accepted.sealed) missing += ids.count(id) == 0 ? 1 : 0;
          for (const auto& entry : accepted.pending) {
            missing += Reached(states, entry, allow_merged) ? 0 : 1;
          }
        }
        return missing == 0;
      },
      40s);
  EXPECT_EQ(rig.StopConnector(), 0) << rig.Log();
  messages = rig.Messages("openhab");
  const auto states = States(messages);

  // Every accepted change reached the hub: the entries pending at each kill...
  std::int64_t pending_total = 0, sealed_total = 0;
  for (std::size_t k = 0; k < kept.size(); ++k) {
    for (const auto& entry : kept[k].pending) {
      ++pending_total;
      EXPECT_TRUE(Reached(states, entry, allow_merged))
          << "kill " << k + 1 << ": accepted " << connector::ToString(entry.kind) << " of "
          << entry.key << " = " << entry.value.dump() << " at " << entry.time_ms
          << " never reached the hub";
    }
  }
  // ... and the messages sealed but unacknowledged, with the same id and body.
  std::map<std::string, std::vector<const HubMessage*>> by_id;
  for (const auto& m : messages) by_id[m.message_id].push_back(&m);
  std::set<std::string> resendable;
  for (std::size_t k = 0; k < kept.size(); ++k) {
    for (const auto& [id, sealed] : kept[k].sealed) {
      ++sealed_total;
      resendable.insert(id);
      const auto it = by_id.find(id);
      ASSERT_NE(it, by_id.end()) << "kill " << k + 1 << ": sealed message " << id << " lost";
      for (const HubMessage* m : it->second) EXPECT_EQ(m->body_text, sealed.body) << id;
    }
  }
  // The only duplicates are resends of sealed messages, with the same body; no id carries two.
  std::size_t duplicates = 0;
  for (const auto& [id, copies] : by_id) {
    if (copies.size() < 2) continue;
    duplicates += copies.size() - 1;
    EXPECT_EQ(resendable.count(id), 1u)
        << id << " arrived " << copies.size() << " times without being resent after a restart";
    for (const HubMessage* m : copies) EXPECT_EQ(m->body_text, copies.front()->body_text) << id;
  }
  // A message the hub acknowledged, whose acknowledgement the store committed, is never sent
  // again: what reached the hub before a kill and was no longer sealed in the store after it
  // does not arrive after that kill.
  for (std::size_t k = 0; k < kept.size(); ++k) {
    std::set<std::string> done;
    for (const auto& m : messages) {
      if (m.seq <= kept[k].hub_seq && kept[k].sealed.count(m.message_id) == 0) {
        done.insert(m.message_id);
      }
    }
    for (const auto& m : messages) {
      if (m.seq > kept[k].hub_seq && done.count(m.message_id) != 0) {
        ADD_FAILURE() << "kill " << k + 1 << ": message " << m.message_id
                      << " was sent again after its acknowledgement was committed";
      }
    }
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_GT(pending_total + sealed_total, 0) << "no kill found anything in flight";
  std::printf(
      "%zu kills: %lld accepted entries and %lld sealed messages at the kills, all at the "
      "hub; %zu messages, %zu duplicates (all resends)\n",
      kept.size(), static_cast<long long>(pending_total), static_cast<long long>(sealed_total),
      messages.size(), duplicates);
}

TEST(ConnectorCrashE2e, KillNineOnAnAmpleBudgetLosesNothing) {
  KillUnderLoad("\n[quota]\ntier = \"S1\"\n", 6, /*allow_merged=*/false, 20261202);
}

TEST(ConnectorCrashE2e, KillNineOnATightBudgetLosesNothing) {
  // Free chunks, 20 messages per 10-s window: history waits and is merged between the kills.
  KillUnderLoad("\n[quota]\ntier = \"free\"\ndaily_messages = 20\nwindow_seconds = 10\n", 4,
                /*allow_merged=*/true, 7);
}

}  // namespace
}  // namespace iothub::testing
