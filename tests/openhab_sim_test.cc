// The connector's openHAB client against the real openhab-sim program (a child process):
// REST, auth modes and roles, commands, the event stream with its filters, and every fault
// the sim can stage (dropped and stalled streams, restarts, slow answers, items that come
// and go). Waits are bounded conditions on the real loop, never fixed sleeps.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include "common/clock.h"
#include "common/event_loop.h"
#include "common/http_stream.h"
#include "common/httplib_client.h"
#include "common/random.h"
#include "openhab/event.h"
#include "openhab/item_mirror.h"
#include "openhab/rest_client.h"
#include "support/openhab_sim_fixture.h"
#include "support/run_command.h"

namespace iothub::openhab {
namespace {

using iothub::testing::SimProcess;

std::unique_ptr<SimProcess> StartSim(std::vector<std::string> extra = {}) {
  auto sim = SimProcess::Start(std::move(extra));
  EXPECT_TRUE(sim.ok()) << sim.error().message;
  return sim.ok() ? std::move(sim).value() : nullptr;
}

// The client's real transport to the sim, on a loop the test drives.
struct Client {
  explicit Client(int port, RestClientConfig rest_config = {})
      : config(Config(port)),
        http(HttplibClient::Create(loop, config)),
        streamer(loop, config),
        rest(loop, *http, std::move(rest_config)) {}
  static HttpClientConfig Config(int port) {
    HttpClientConfig c;
    c.host = "127.0.0.1";
    c.port = port;
    c.tls = false;
    return c;
  }
  template <typename T>
  Result<T> Wait(const std::function<void(std::function<void(Result<T>)>)>& call) {
    std::optional<Result<T>> out;
    call([&](Result<T> r) { out.emplace(std::move(r)); });
    if (!loop.RunUntil([&] { return out.has_value(); }, 20'000)) {
      return MakeError("timeout", "no answer");
    }
    return std::move(*out);
  }
  Status Command(const std::string& item, const std::string& command) {
    return Wait<Ok>([&](auto done) { rest.SendCommand(item, command, std::move(done)); });
  }
  Status Update(const std::string& item, const std::string& state) {
    return Wait<Ok>([&](auto done) { rest.UpdateState(item, state, std::move(done)); });
  }
  Result<ItemList> Items() {
    return Wait<ItemList>([&](auto done) { rest.GetItems(std::move(done)); });
  }
  Result<ServerInfo> Info() {
    return Wait<ServerInfo>([&](auto done) { rest.GetServerInfo(std::move(done)); });
  }

  PollLoop loop;
  HttpClientConfig config;
  std::unique_ptr<HttpClient> http;
  HttplibStreamer streamer;
  RestClient rest;
  SystemRandom random{7};
};

struct Recorder final : MirrorListener {
  void OnItemAdded(const Item& item) override { added.push_back(item.name); }
  void OnItemRemoved(const std::string& name) override { removed.push_back(name); }
  void OnItemUpdated(const Item& item) override { updated.push_back(item.name + ":" + item.label); }
  void OnStateChanged(const Item& item, const StateChange& change) override {
    changes.push_back(item.name + "=" + item.state +
                      (change.source == ChangeSource::kResync ? " (resync)" : ""));
    typed.emplace_back(item.name, change);
  }
  void OnCommand(const std::string& item, const std::string&, const std::string& value) override {
    commands.push_back(item + " " + value);
  }
  void OnConnection(bool up, std::string_view detail) override {
    connection.push_back((up ? "up: " : "down: ") + std::string(detail));
  }
  void OnProblem(const Error& problem) override { problems.push_back(problem.message); }
  std::size_t Count(const std::string& change) const {
    return static_cast<std::size_t>(std::count(changes.begin(), changes.end(), change));
  }
  std::vector<std::string> added, removed, updated, changes, commands, connection, problems;
  std::vector<std::pair<std::string, StateChange>> typed;
};

// A mirror on the client's loop, started and synchronised.
struct Mirror {
  Mirror(Client& client, MirrorConfig config = {})
      : client(client),
        mirror(client.loop, client.streamer, client.rest, client.random, config, recorder) {
    mirror.Start();
    EXPECT_TRUE(client.loop.RunUntil([&] { return mirror.synced(); }, 20'000));
    recorder.added.clear();
  }
  ~Mirror() { mirror.Stop(); }
  bool WaitFor(const std::function<bool()>& done, std::int64_t ms = 20'000) {
    return client.loop.RunUntil(done, ms);
  }
  std::string State(const std::string& item) const {
    const auto it = mirror.items().find(item);
    return it == mirror.items().end() ? "<missing>" : it->second.state;
  }
  Client& client;
  Recorder recorder;
  ItemMirror mirror;
};

MirrorConfig FastReconnect() {
  MirrorConfig config;
  config.reconnect = {300, 2'000, 2.0, 0.2};
  return config;
}

TEST(OpenHabSimTest, ReportsTheVersionItImitates) {
  for (const auto& [version, semantics, alive] : {std::tuple{"3.2.0", FilterSemantics::kPrefix, 0},
                                                  {"3.3.0", FilterSemantics::kRegex, 120},
                                                  {"4.3.0", FilterSemantics::kRegex, 10},
                                                  {"5.0.1", FilterSemantics::kRegex, 10}}) {
    auto sim = StartSim({"--openhab-version", version});
    ASSERT_TRUE(sim);
    Client client(sim->port());
    auto info = client.Info();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->runtime_version, version);
    EXPECT_EQ(info->filter_semantics, semantics) << version;
    EXPECT_EQ(info->alive_interval_s, alive) << version;
  }
}

TEST(OpenHabSimTest, StateChangesArriveTypedWithOpenHabsChangeTime) {
  for (const char* version : {"4.3.0", "5.0.1"}) {
    auto sim = StartSim({"--openhab-version", version});
    ASSERT_TRUE(sim);
    Client client(sim->port());
    Mirror m(client);
    ASSERT_EQ(m.mirror.server()->runtime_version, version) << "the mirror read the server's facts";
    const std::int64_t before_ms = SystemClock().NowMs();
    ASSERT_TRUE(client.Update("Living_Temperature", "22.5 °C").ok());
    const StateChange* change = nullptr;
    ASSERT_TRUE(m.WaitFor([&] {
      for (const auto& [name, c] : m.recorder.typed) {
        if (name == "Living_Temperature") change = &c;
      }
      return change != nullptr;
    })) << version;
    EXPECT_EQ(change->value.kind, StateKind::kQuantity) << version;
    EXPECT_EQ(change->value.number, 22.5);
    EXPECT_EQ(change->value.unit, "°C");
    EXPECT_EQ(change->value_type, "Quantity");
    EXPECT_EQ(change->text, "22.5 °C");
    EXPECT_EQ(change->source, ChangeSource::kEvent);
    if (std::string(version) == "5.0.1") {
      // openHAB 5 sends lastStateChange with the event.
      EXPECT_GE(change->changed_ms, before_ms - 2'000) << version;
      EXPECT_LE(change->changed_ms, SystemClock().NowMs() + 2'000) << version;
    } else {
      EXPECT_EQ(change->changed_ms, 0) << "4.x events carry no change time";
    }
  }
}

TEST(OpenHabSimTest, ItemsCommandsAndStateUpdatesThroughTheRestClient) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  Client client(sim->port());
  auto items = client.Items();
  ASSERT_TRUE(items.ok()) << items.error().message;
  EXPECT_EQ(items->items.size(), sim->ready()["items"].get<std::size_t>());
  EXPECT_TRUE(items->skipped.empty());
  const auto temp = std::find_if(items->items.begin(), items->items.end(),
                                 [](const Item& i) { return i.name == "Living_Temperature"; });
  ASSERT_NE(temp, items->items.end());
  ASSERT_TRUE(temp->azure.has_value());
  EXPECT_EQ(temp->azure->value, "telemetry");
  EXPECT_EQ(temp->unit_symbol, "°C");
  EXPECT_TRUE(temp->read_only);

  EXPECT_TRUE(client.Command("Living_Light", "ON").ok());
  EXPECT_EQ(sim->http().Get("/rest/items/Living_Light/state")->body, "ON");
  EXPECT_EQ(client.Command("Living_Light", "50").error().code, "rejected");
  EXPECT_EQ(client.Command("Living_Window", "OPEN").error().code, "rejected");  // a Contact
  const auto missing = client.Command("No_Such_Item", "ON");
  EXPECT_EQ(missing.error().code, "not_found");
  EXPECT_NE(missing.error().message.find("Item No_Such_Item does not exist!"), std::string::npos);
  EXPECT_TRUE(client.Update("Living_Window", "OPEN").ok());
  EXPECT_EQ(sim->http().Get("/rest/items/Living_Window/state")->body, "OPEN");
  EXPECT_EQ(client.Update("Living_Window", "AJAR").error().code, "rejected");
  EXPECT_TRUE(client.Command("Living_Dimmer", "INCREASE").ok());
  // MetadataSelectorMatcher's pattern is "(selector)$", searched: `iothub` selects azureiothub.
  const Json selected = sim->GetJson("/rest/items/Living_Temperature?metadata=iothub");
  EXPECT_TRUE(selected["metadata"].contains("azureiothub")) << selected.dump();
  EXPECT_FALSE(sim->GetJson("/rest/items/Living_Temperature?metadata=none").contains("metadata"));
  // A JSON body is plain text to openHAB before 5.0.
  EXPECT_EQ(sim->Post("/rest/items/Living_Light", R"({"value":"OFF"})", "application/json"), 400);
  // Names outside openHAB's path pattern match no resource at all.
  EXPECT_EQ(sim->http().Get("/rest/items/Bad-Name")->status, 404);
  const auto log = sim->GetJson("/sim/commands");
  ASSERT_EQ(log.size(), 2U);
  EXPECT_EQ(log[0]["item"], "Living_Light");
  EXPECT_EQ(log[1]["command"], "INCREASE");
}

TEST(OpenHabSimTest, OpenHab5TakesJsonBodies) {
  auto sim = StartSim({"--openhab-version", "5.0.0"});
  ASSERT_TRUE(sim);
  EXPECT_EQ(sim->Post("/rest/items/Living_Light", R"({"value":"ON","source":"test"})",
                      "application/json"),
            200);
  EXPECT_EQ(sim->http().Get("/rest/items/Living_Light/state")->body, "ON");
  EXPECT_EQ(sim->http()
                .Put("/rest/items/Living_Window/state", R"({"value":"OPEN"})", "application/json")
                ->status,
            202);
  EXPECT_EQ(sim->Post("/rest/items/Living_Light", R"({"no":"value"})", "application/json"), 400);
  const Json item = sim->GetJson("/rest/items/Living_Light");
  EXPECT_EQ(item["lastState"], "OFF");
  EXPECT_TRUE(item.contains("lastStateChange"));
}

TEST(OpenHabSimTest, AuthModesAndRoles) {
  auto sim = StartSim(
      {"--token", "oh.admin.t0k3n", "--user-token", "oh.user.t0k3n", "--no-implicit-user"});
  ASSERT_TRUE(sim);
  Client anonymous(sim->port());
  EXPECT_EQ(anonymous.Items().error().code, "unauthorized");
  Client wrong(sim->port(), {"oh.admin.wrong"});
  const auto refused = wrong.Items();
  EXPECT_EQ(refused.error().code, "unauthorized");
  EXPECT_NE(refused.error().message.find("Invalid credentials"), std::string::npos);
  EXPECT_EQ(refused.error().message.find("oh.admin.wrong"), std::string::npos);
  for (const AuthMode mode : {AuthMode::kBearer, AuthMode::kBasic, AuthMode::kHeader}) {
    Client user(sim->port(), {.token = "oh.user.t0k3n", .auth = mode});
    EXPECT_TRUE(user.Items().ok());
    EXPECT_TRUE(user.Command("Kitchen_Light", "ON").ok());
    const auto things =
        user.Wait<ThingList>([&](auto done) { user.rest.GetThings(std::move(done)); });
    EXPECT_EQ(things.error().code, "forbidden");  // things need the ADMIN role
    Client admin(sim->port(), {.token = "oh.admin.t0k3n", .auth = mode});
    const auto all =
        admin.Wait<ThingList>([&](auto done) { admin.rest.GetThings(std::move(done)); });
    ASSERT_TRUE(all.ok()) << all.error().message;
    EXPECT_EQ(all->things.size(), 4U);
    EXPECT_TRUE(all->skipped.empty());
    const auto links =
        admin.Wait<LinkList>([&](auto done) { admin.rest.GetLinks(std::move(done)); });
    ASSERT_TRUE(links.ok());
    EXPECT_EQ(links->links.size(), 5U);
  }
  // The event stream checks the same credentials, in every mode.
  Client header(sim->port(), {.token = "oh.user.t0k3n", .auth = AuthMode::kHeader});
  Mirror mirror(header);
  EXPECT_TRUE(mirror.mirror.synced());
}

TEST(OpenHabSimTest, MirrorReportsAWrongTokenWithOpenHabsMessage) {
  auto sim = StartSim({"--token", "oh.admin.t0k3n"});
  ASSERT_TRUE(sim);
  Client client(sim->port(), {"oh.admin.wrong"});
  Recorder recorder;
  ItemMirror mirror(client.loop, client.streamer, client.rest, client.random, MirrorConfig{},
                    recorder);
  mirror.Start();
  ASSERT_TRUE(client.loop.RunUntil([&] { return !recorder.connection.empty(); }, 20'000));
  EXPECT_NE(recorder.connection[0].find("401: Invalid credentials"), std::string::npos)
      << recorder.connection[0];
  EXPECT_EQ(recorder.connection[0].find("oh.admin.wrong"), std::string::npos);
  mirror.Stop();
}

TEST(OpenHabSimTest, EventStreamFiltersAndTheirErrors) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  httplib::Client raw("127.0.0.1", sim->port());
  EXPECT_EQ(raw.Get("/rest/events?topics=openhab/items/(Lamp)")->status, 400);
  EXPECT_EQ(raw.Get("/rest/events?topics=openhab/items/$")->status, 400);
  // A thing filter sees the thing's status change and nothing of the items.
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::string received;
  std::thread reader([&] {
    httplib::Client stream("127.0.0.1", sim->port());
    stream.Get("/rest/events?topics=openhab/things/*", [&](const char* data, std::size_t size) {
      std::lock_guard lock(mutex);
      received.append(data, size);
      return !stop.load();
    });
  });
  const auto has = [&](const std::string& text) {
    std::lock_guard lock(mutex);
    return received.find(text) != std::string::npos;
  };
  const auto wait_until = [](const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return done();
  };
  // Once the sim has registered the reader's stream, one item change and one status change.
  ASSERT_TRUE(wait_until([&] { return sim->GetJson("/sim/stats").value("streams", 0) == 1; }));
  sim->Post("/sim/items/Kitchen_Light/state", "ON");
  sim->Post("/sim/things/mqtt:topic:home:living_climate/status",
            R"({"status":"OFFLINE","statusDetail":"COMMUNICATION_ERROR","description":"gone"})",
            "application/json");
  EXPECT_TRUE(wait_until([&] { return has("statuschanged"); }));
  stop = true;
  sim->Post("/sim/things/mqtt:topic:home:living_climate/status", R"({"status":"UNKNOWN"})",
            "application/json");
  reader.join();
  std::lock_guard lock(mutex);
  EXPECT_EQ(received.find("openhab/items/"), std::string::npos);
  // Decode the first status change the way the connector does.
  struct One final : SseHandler {
    void OnEvent(SseEvent&& sse) override {
      auto event = DecodeEvent(sse);
      if (event && event->kind == EventKind::kThingStatusChanged && !first) first = *event;
    }
    void OnError(const Error&) override {}
    std::optional<Event> first;
  } one;
  SseParser parser;
  parser.Feed(received, one);
  ASSERT_TRUE(one.first.has_value()) << received;
  EXPECT_EQ(one.first->thing_uid, "mqtt:topic:home:living_climate");
}

TEST(OpenHabSimTest, MirrorFollowsCommandsGroupsAndAutoupdate) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  Client client(sim->port());
  Mirror m(client);
  EXPECT_EQ(m.State("gLights"), "OFF");
  ASSERT_TRUE(client.Command("gLights", "ON").ok());
  for (const char* light : {"Living_Light", "Kitchen_Light", "Bathroom_Light", "Entrance_Light"}) {
    EXPECT_TRUE(m.WaitFor([&] { return m.State(light) == "ON"; })) << light;
  }
  EXPECT_TRUE(m.WaitFor([&] { return m.State("gLights") == "ON"; }));
  EXPECT_TRUE(m.WaitFor([&] {
    return std::count(m.recorder.commands.begin(), m.recorder.commands.end(), "Living_Light ON") ==
           1;
  }));
  ASSERT_TRUE(client.Command("Bedroom_Shutter", "UP").ok());
  EXPECT_TRUE(m.WaitFor([&] { return m.State("Bedroom_Shutter") == "0"; }));
  EXPECT_EQ(m.recorder.Count("Living_Light=ON"), 1U);
  EXPECT_TRUE(m.recorder.problems.empty()) << m.recorder.problems.front();
}

TEST(OpenHabSimTest, ChangesWhileTheStreamIsDownArriveExactlyOnceAfterReconnect) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  Client client(sim->port());
  MirrorConfig config;
  config.reconnect = {1'500, 3'000, 2.0, 0.0};  // time enough to change things while down
  Mirror m(client, config);
  ASSERT_EQ(sim->Post("/sim/items/Kitchen_Temperature/state", "22.5"), 200);
  ASSERT_TRUE(m.WaitFor([&] { return m.recorder.Count("Kitchen_Temperature=22.5 °C") == 1; }));

  ASSERT_EQ(sim->Post("/sim/streams/drop"), 200);
  ASSERT_TRUE(m.WaitFor([&] { return !m.mirror.synced(); }));
  // Published with no stream open: these events reach nobody.
  ASSERT_EQ(sim->Post("/sim/items/Kitchen_Temperature/state", "23.1"), 200);
  ASSERT_EQ(sim->Post("/sim/items/Living_Window/state", "OPEN"), 200);
  ASSERT_EQ(sim->Post("/rest/items/Living_Light", "ON"), 200);
  // Changed and changed back: no net change, nothing to report.
  ASSERT_EQ(sim->Post("/sim/items/Bedroom_Window/state", "OPEN"), 200);
  ASSERT_EQ(sim->Post("/sim/items/Bedroom_Window/state", "CLOSED"), 200);
  ASSERT_FALSE(m.mirror.synced()) << "the client reconnected before the changes were made";
  m.recorder.changes.clear();

  ASSERT_TRUE(m.WaitFor([&] { return m.mirror.synced(); }));
  // One more change after the reconnect comes as an event, once.
  ASSERT_EQ(sim->Post("/sim/items/Kitchen_Temperature/state", "23.4"), 200);
  ASSERT_TRUE(m.WaitFor([&] { return m.recorder.Count("Kitchen_Temperature=23.4 °C") == 1; }));
  m.WaitFor([] { return false; }, 300);  // anything doubled would show up by now
  std::vector<std::string> changes;
  std::size_t average_changes = 0;  // the group average moves with each temperature
  for (const auto& change : m.recorder.changes) {
    if (change.starts_with("gTemperatures="))
      ++average_changes;
    else
      changes.push_back(change);
  }
  EXPECT_EQ(average_changes, 2U);
  std::sort(changes.begin(), changes.end());
  EXPECT_EQ(changes, (std::vector<std::string>{
                         "Kitchen_Temperature=23.1 °C (resync)",
                         "Kitchen_Temperature=23.4 °C",
                         "Living_Light=ON (resync)",
                         "Living_Window=OPEN (resync)",
                         "gLights=ON (resync)",
                         "gWindows=OPEN (resync)",
                     }));
  EXPECT_EQ(m.mirror.counters().connects, 2);
}

TEST(OpenHabSimTest, StalledStreamIsReplacedAndCatchesUp) {
  auto sim = StartSim({"--alive", "1"});
  ASSERT_TRUE(sim);
  Client client(sim->port());
  MirrorConfig config = FastReconnect();
  config.alive_interval_s = 1;
  config.alive_margin_ms = 1'000;
  Mirror m(client, config);
  // Keep-alives keep a quiet stream up for several intervals.
  m.WaitFor([] { return false; }, 3'500);
  EXPECT_EQ(m.mirror.counters().stalls, 0);
  EXPECT_EQ(m.mirror.counters().connects, 1);
  ASSERT_EQ(sim->Post("/sim/streams/stall"), 200);
  ASSERT_EQ(sim->Post("/sim/items/Presence/state", "OFF"), 200);  // lost in the stall
  ASSERT_TRUE(m.WaitFor([&] { return m.mirror.counters().stalls >= 1; }));
  ASSERT_EQ(sim->Post("/sim/streams/stall?stalled=false"), 200);
  ASSERT_TRUE(m.WaitFor([&] { return m.mirror.synced() && m.State("Presence") == "OFF"; }));
  EXPECT_EQ(m.recorder.Count("Presence=OFF (resync)"), 1U);
  ASSERT_EQ(sim->Post("/sim/items/Presence/state", "ON"), 200);
  EXPECT_TRUE(m.WaitFor([&] { return m.recorder.Count("Presence=ON") == 1; }));
}

TEST(OpenHabSimTest, RestartReloadsTheHomeAndTheMirrorCatchesUp) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  Client client(sim->port());
  Mirror m(client, FastReconnect());
  ASSERT_TRUE(client.Command("Living_Light", "ON").ok());
  ASSERT_TRUE(m.WaitFor([&] { return m.State("Living_Light") == "ON"; }));
  const auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(sim->Post("/sim/restart?downtime_ms=1500"), 200);
  EXPECT_EQ(sim->http().Get("/rest/items")->status, 503);
  ASSERT_TRUE(m.WaitFor([&] { return !m.mirror.synced(); }));
  ASSERT_TRUE(m.WaitFor([&] { return m.mirror.synced(); }));
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1'400));
  EXPECT_EQ(m.State("Living_Light"), "OFF");  // as the home file has it
  EXPECT_EQ(m.recorder.Count("Living_Light=OFF (resync)"), 1U);
}

TEST(OpenHabSimTest, ItemsThatComeChangeAndGo) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  Client client(sim->port());
  Mirror m(client);
  ASSERT_EQ(
      sim->Post("/sim/items",
                R"({"name":"Garage_Door","type":"Contact","groups":["gEntrance"],"state":"OPEN"})",
                "application/json"),
      200);
  ASSERT_TRUE(
      m.WaitFor([&] { return m.recorder.added == std::vector<std::string>{"Garage_Door"}; }));
  ASSERT_EQ(sim->Post("/sim/items", R"({"name":"Garage_Door","type":"Contact","label":"Garage"})",
                      "application/json"),
            200);
  ASSERT_TRUE(m.WaitFor([&] { return m.recorder.updated.size() == 1; }));
  EXPECT_EQ(m.recorder.updated[0], "Garage_Door:Garage");
  ASSERT_EQ(sim->http().Delete("/sim/items/Garage_Door")->status, 200);
  ASSERT_TRUE(
      m.WaitFor([&] { return m.recorder.removed == std::vector<std::string>{"Garage_Door"}; }));
  EXPECT_EQ(m.State("Garage_Door"), "<missing>");
  EXPECT_EQ(sim->Post("/sim/items", R"({"name":"1bad","type":"Switch"})", "application/json"), 400);
}

TEST(OpenHabSimTest, SlowAnswersAreWaitedFor) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  ASSERT_EQ(sim->Post("/sim/delay?ms=1200&path=/rest/items"), 200);
  Client client(sim->port());
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.Items().ok());
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1'150));
  ASSERT_EQ(sim->Post("/sim/delay?ms=0"), 200);
}

TEST(OpenHabSimTest, FailuresAreServedUnderTheirPathAsOftenAsAsked) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  ASSERT_EQ(sim->Post("/sim/fail?status=500&path=/rest/items/Living_Light&count=2"), 200);
  for (int i = 0; i < 2; ++i) {
    auto res = sim->http().Post("/rest/items/Living_Light", "ON", "text/plain");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 500);
    EXPECT_NE(res->body.find("\"http-code\":500"), std::string::npos) << res->body;
  }
  // Other paths are served, and after `count` failures the path is again.
  EXPECT_EQ(sim->http().Get("/rest/items/Kitchen_Light")->status, 200);
  EXPECT_EQ(sim->http().Post("/rest/items/Living_Light", "ON", "text/plain")->status, 200);
  ASSERT_EQ(sim->Post("/sim/fail?status=503"), 200);
  EXPECT_EQ(sim->http().Get("/rest/items")->status, 503);
  ASSERT_EQ(sim->Post("/sim/fail?status=0"), 200);
  EXPECT_EQ(sim->http().Get("/rest/items")->status, 200);
}

TEST(OpenHabSimTest, OldServersWithPrefixFiltersAndNoKeepAlives) {
  auto sim = StartSim({"--openhab-version", "3.2.0"});
  ASSERT_TRUE(sim);
  Client client(sim->port());
  MirrorConfig config;
  config.alive_interval_s = 0;
  Mirror m(client, config);
  ASSERT_EQ(sim->Post("/sim/items/Living_Window/state", "OPEN"), 200);
  EXPECT_TRUE(m.WaitFor([&] { return m.recorder.Count("Living_Window=OPEN") == 1; }));
  // Before 4.0 openHAB has no unitSymbol; the client still reads the unit from the state.
  EXPECT_EQ(m.mirror.items().at("Living_Temperature").unit_symbol, "");
}

TEST(OpenHabSimTest, TraceAndSeriesReplayReachTheMirrorInOrder) {
  const std::string trace_path =
      ::testing::TempDir() + "/sim_trace_" + std::to_string(::getpid()) + ".jsonl";
  {
    std::ofstream trace(trace_path);
    trace << R"({"openhab-trace":1,"source":"test"})"
          << "\n";
    // Two seconds of trace at speed 4: half a second of real time.
    for (int i = 0; i < 8; ++i) {
      trace << Json{{"t", 0.5 + i * 0.25},
                    {"item", "Kitchen_Fridge_Magnetic"},
                    {"state", i % 2 ? "CLOSED" : "OPEN"}}
                   .dump()
            << "\n";
    }
  }
  auto sim = StartSim({"--trace", trace_path, "--speed", "4", "--seed", "3"});
  ASSERT_TRUE(sim);
  EXPECT_EQ(sim->ready()["trace_entries"], 8);
  EXPECT_EQ(sim->ready()["series"], 12);
  Client client(sim->port());
  Mirror m(client);
  // The demo home's power meter reports every 5 s: at speed 4, more than once in 3 s.
  ASSERT_TRUE(m.WaitFor([&] {
    return std::count_if(m.recorder.changes.begin(), m.recorder.changes.end(),
                         [](const auto& c) { return c.starts_with("House_Power="); }) >= 2;
  }));
  std::vector<std::string> fridge;
  for (const auto& change : m.recorder.changes) {
    if (change.starts_with("Kitchen_Fridge_Magnetic=")) fridge.push_back(change);
  }
  // The stream may open after the first changes went out; those come as the resync's state.
  ASSERT_GE(fridge.size(), 1U);
  EXPECT_EQ(fridge.back(), "Kitchen_Fridge_Magnetic=CLOSED");
  for (std::size_t i = 1; i < fridge.size(); ++i) EXPECT_NE(fridge[i], fridge[i - 1]);
  EXPECT_EQ(m.State("Kitchen_Fridge_Magnetic"), "CLOSED");
  std::remove(trace_path.c_str());
}

TEST(OpenHabSimTest, BadStartsAreExplained) {
  const auto run = [](const std::string& args) {
    const auto output = iothub::testing::RunCommand(
        std::string(IOTHUB_BIN_DIR) + "/openhab-sim --port 0 " + args + " 2>&1 </dev/null");
    return std::to_string(output.status) + " " + output.out;
  };
  const std::string home = SimProcess::DemoHome();
  EXPECT_EQ(run("--home /nonexistent.json").substr(0, 2), "2 ");
  EXPECT_EQ(run("--home " + home + " --openhab-version 4.x").substr(0, 2), "1 ");
  const std::string bad_trace = ::testing::TempDir() + "/bad_" + std::to_string(::getpid());
  {
    std::ofstream(bad_trace) << R"({"openhab-trace":1})"
                             << "\n"
                             << R"({"t":0,"item":"Nope","state":"ON"})"
                             << "\n";
  }
  const std::string out = run("--home " + home + " --trace " + bad_trace);
  EXPECT_NE(out.find("items not in the home"), std::string::npos) << out;
  EXPECT_NE(out.find("Nope"), std::string::npos) << out;
  std::remove(bad_trace.c_str());
}

}  // namespace
}  // namespace iothub::openhab
