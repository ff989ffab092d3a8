// The item mirror with a fake stream, a fake REST transport and a fake loop: resync after
// every connect reports exactly the changes missed, events racing the resync are neither lost
// nor doubled, and a stalled stream is replaced.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "openhab/item_mirror.h"
#include "support/fake_http_client.h"
#include "support/fake_http_streamer.h"
#include "support/manual_loop.h"

namespace iothub::openhab {
namespace {

using iothub::testing::FakeHttpClient;
using iothub::testing::FakeHttpStreamer;
using iothub::testing::ManualLoop;

struct Recorder final : MirrorListener {
  void OnItemAdded(const Item& item) override { log.push_back("added " + item.name); }
  void OnItemRemoved(const std::string& name) override { log.push_back("removed " + name); }
  void OnItemUpdated(const Item& item) override { log.push_back("updated " + item.name); }
  void OnStateChanged(const Item& item, const StateChange& change) override {
    log.push_back(fmt::format("{} {}->{} ({})", item.name, change.old_text, item.state,
                              change.source == ChangeSource::kEvent ? "event" : "resync"));
    changes.push_back(change);
  }
  void OnServerInfo(const ServerInfo& info) override { servers.push_back(info.runtime_version); }
  void OnCommand(const std::string& item, const std::string&, const std::string& value) override {
    log.push_back("command " + item + " " + value);
  }
  void OnConnection(bool up, std::string_view detail) override {
    connection.push_back(std::string(up ? "up: " : "down: ") + std::string(detail));
  }
  void OnProblem(const Error& e) override { problems.push_back(e.code); }
  std::vector<std::string> log;
  std::vector<std::string> connection;
  std::vector<std::string> problems;
  std::vector<StateChange> changes;
  std::vector<std::string> servers;
};

constexpr char kServerInfo[] = R"({"version":"8","runtimeInfo":{"version":"4.3.0"}})";

std::string StateChanged(const std::string& item, const std::string& type, const std::string& value,
                         const std::string& old) {
  const Json payload = {{"type", type}, {"value", value}, {"oldType", type}, {"oldValue", old}};
  const Json data = {{"topic", "openhab/items/" + item + "/statechanged"},
                     {"payload", payload.dump()},
                     {"type", "ItemStateChangedEvent"}};
  return "event: message\ndata: " + data.dump() + "\n\n";
}

std::string Items(std::initializer_list<std::pair<const char*, const char*>> items) {
  Json list = Json::array();
  for (const auto& [name, state] : items) {
    list.push_back({{"type", "Switch"}, {"name", name}, {"state", state}});
  }
  return list.dump();
}

class ItemMirrorTest : public ::testing::Test {
 protected:
  ItemMirrorTest()
      : random_({0.0}),
        rest_(loop_, http_, {.token = "oh.t.x"}),
        mirror_(loop_, streamer_, rest_, random_, MirrorConfig{}, recorder_) {}

  // Starts the mirror and answers its first server-info GET.
  void Start() {
    mirror_.Start();
    AnswerServerInfo();
  }
  // Answers the GET /rest/ that begins every connect, if one is waiting.
  void AnswerServerInfo() {
    const auto& requests = http_.requests();
    for (std::size_t i = answered_info_; i < requests.size(); ++i) {
      if (requests[i].path != "/rest/") continue;
      http_.Reply(i, 200, kServerInfo);
      answered_info_ = i + 1;
      loop_.RunReady();
      return;
    }
  }
  // Opens the current stream and answers its resync with `items`.
  void OpenAndSync(const std::string& items) {
    AnswerServerInfo();
    streamer_.OpenLast();
    loop_.RunReady();
    http_.ReplyNext(200, items);
    loop_.RunReady();
  }

  ManualLoop loop_;
  FakeHttpStreamer streamer_;
  FakeHttpClient http_{loop_};
  ScriptedRandom random_;
  RestClient rest_;
  Recorder recorder_;
  ItemMirror mirror_;
  std::size_t answered_info_ = 0;
};

TEST_F(ItemMirrorTest, FirstSyncReportsEveryItemThenEventsReportChanges) {
  Start();
  ASSERT_EQ(streamer_.streams.size(), 1u);
  const HttpRequest& request = streamer_.last().request;
  EXPECT_EQ(request.path, "/rest/events?topics=" + ClientTopicFilter());
  EXPECT_EQ(http_.requests().size(), 1u) << "the resync waits for the stream to be open";
  EXPECT_EQ(http_.requests()[0].path, "/rest/");
  EXPECT_EQ(recorder_.servers, (std::vector<std::string>{"4.3.0"}));
  OpenAndSync(Items({{"Lamp", "OFF"}, {"Fan", "ON"}}));
  EXPECT_TRUE(mirror_.synced());
  streamer_.Send(StateChanged("Lamp", "OnOff", "ON", "OFF"));
  streamer_.Send("event: alive\ndata: {\"type\":\"ALIVE\",\"interval\":10}\n\n");
  EXPECT_EQ(recorder_.log,
            (std::vector<std::string>{"added Lamp", "added Fan", "Lamp OFF->ON (event)"}))
      << "in the order openHAB lists them";
  EXPECT_EQ(recorder_.connection.back(), "up: synchronised 2 items");
  ASSERT_EQ(recorder_.changes.size(), 1u);
  const StateChange& change = recorder_.changes[0];
  EXPECT_EQ(change.value.kind, StateKind::kOnOff) << "typed, not text";
  EXPECT_EQ(change.value.word, Word::kOn);
  EXPECT_EQ(change.old_value.word, Word::kOff);
  EXPECT_EQ(change.value_type, "OnOff");
  EXPECT_EQ(change.changed_ms, 0) << "this event carries no change time";
}

TEST_F(ItemMirrorTest, DestroyedWhileItsResyncIsInFlightHearsNothingMore) {
  Recorder recorder;
  auto mirror =
      std::make_unique<ItemMirror>(loop_, streamer_, rest_, random_, MirrorConfig{}, recorder);
  mirror->Start();
  AnswerServerInfo();
  streamer_.OpenLast();
  loop_.RunReady();
  ASSERT_EQ(http_.unanswered(), 1u) << "the resync GET is in flight";
  mirror.reset();
  http_.ReplyNext(200, Items({{"Lamp", "ON"}}));
  loop_.RunReady();  // before the fix: OnResync ran on the destroyed mirror (heap-use-after-free)
  EXPECT_TRUE(recorder.log.empty());
}

TEST_F(ItemMirrorTest, EventsDuringTheResyncAreAppliedAfterItOnce) {
  Start();
  streamer_.OpenLast();
  loop_.RunReady();
  // Two changes arrive while the GET is in flight; the GET saw the first but not the second.
  streamer_.Send(StateChanged("Lamp", "OnOff", "ON", "OFF"));
  streamer_.Send(StateChanged("Lamp", "OnOff", "OFF", "ON"));
  http_.ReplyNext(200, Items({{"Lamp", "ON"}}));
  loop_.RunReady();
  EXPECT_EQ(recorder_.log, (std::vector<std::string>{"added Lamp", "Lamp ON->OFF (event)"}));
  EXPECT_EQ(mirror_.items().at("Lamp").state, "OFF");
}

TEST_F(ItemMirrorTest, AReconnectReportsExactlyWhatWasMissed) {
  Start();
  OpenAndSync(Items({{"Lamp", "OFF"}, {"Fan", "ON"}, {"Old", "ON"}}));
  recorder_.log.clear();
  streamer_.End(MakeError("http_transport", "connection reset"));
  EXPECT_TRUE(streamer_.last().closed);
  EXPECT_NE(recorder_.connection.back().find("connection reset"), std::string::npos);
  loop_.Advance(1'000);  // the backoff
  AnswerServerInfo();
  ASSERT_EQ(streamer_.streams.size(), 2u);
  OpenAndSync(Items({{"Lamp", "ON"}, {"Fan", "ON"}, {"New", "OFF"}}));
  EXPECT_EQ(recorder_.log,
            (std::vector<std::string>{"Lamp OFF->ON (resync)", "added New", "removed Old"}));
  ASSERT_EQ(recorder_.changes.size(), 1u);
  EXPECT_EQ(recorder_.changes[0].value.word, Word::kOn) << "typed by the item's type";
  EXPECT_EQ(recorder_.changes[0].value_type, "");
  EXPECT_EQ(mirror_.counters().resyncs, 2);
}

TEST_F(ItemMirrorTest, ASilentStreamIsReplaced) {
  Start();
  OpenAndSync(Items({{"Lamp", "OFF"}}));
  loop_.Advance(14'000);
  EXPECT_EQ(mirror_.counters().stalls, 0) << "10 s interval + 5 s margin";
  loop_.Advance(2'000);
  EXPECT_EQ(mirror_.counters().stalls, 1);
  EXPECT_TRUE(streamer_.streams[0]->closed);
  loop_.Advance(1'000);
  AnswerServerInfo();
  EXPECT_EQ(streamer_.streams.size(), 2u);
}

TEST_F(ItemMirrorTest, RefusalsAndGarbageAreReportedAndRetried) {
  Start();
  streamer_.OpenLast(401);
  HttpResponse refused;
  refused.status = 401;
  refused.body = R"({"error":{"message":"Invalid credentials","http-code":401}})";
  streamer_.End(refused);
  EXPECT_NE(recorder_.connection.back().find("Invalid credentials"), std::string::npos);
  EXPECT_EQ(http_.requests().size(), 1u) << "the server info only: no resync";
  loop_.Advance(1'000);
  OpenAndSync(Items({{"Lamp", "OFF"}}));
  streamer_.Send("data: {not json\n\n");
  streamer_.Send(
      "event: message\ndata: "
      "{\"topic\":\"x\",\"payload\":\"{}\",\"type\":\"ItemStateChangedEvent\"}\n\n");
  streamer_.Send(StateChanged("Lamp", "OnOff", "ON", "OFF"));
  EXPECT_EQ(recorder_.problems, (std::vector<std::string>{"bad_event", "bad_event"}));
  EXPECT_EQ(mirror_.items().at("Lamp").state, "ON");
}

TEST_F(ItemMirrorTest, ItemLifecycleAndCommandEvents) {
  Start();
  OpenAndSync(Items({{"Lamp", "OFF"}}));
  const Json item = {{"type", "Dimmer"}, {"name", "Dim"}, {"label", "Dimmer"}};
  auto event = [](const std::string& topic, const std::string& payload, const std::string& type) {
    return "data: " + Json{{"topic", topic}, {"payload", payload}, {"type", type}}.dump() + "\n\n";
  };
  streamer_.Send(event("openhab/items/Dim/added", item.dump(), "ItemAddedEvent"));
  streamer_.Send(
      event("openhab/items/Lamp/command", R"({"type":"OnOff","value":"ON"})", "ItemCommandEvent"));
  streamer_.Send(event("openhab/items/Dim/removed", item.dump(), "ItemRemovedEvent"));
  EXPECT_EQ(recorder_.log, (std::vector<std::string>{"added Lamp", "added Dim", "command Lamp ON",
                                                     "removed Dim"}));
}

}  // namespace
}  // namespace iothub::openhab
