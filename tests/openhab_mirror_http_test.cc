// The item mirror over real HTTP: cpp-httplib's server plays a small openHAB (items and an
// SSE event stream it can drop), and the mirror runs on the real loop with the real
// streamer. Until openhab-sim exists this is the end-to-end check of the stream client.
#include <gtest/gtest.h>
#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "openhab/item_mirror.h"
#include "support/tiny_openhab.h"

namespace iothub::openhab {
namespace {

using iothub::testing::TinyOpenHab;

struct Changes final : MirrorListener {
  void OnStateChanged(const Item& item, const std::string&, ChangeSource) override {
    log.push_back(item.name + "=" + item.state);
  }
  std::vector<std::string> log;
};

// The real transport to the stand-in, on a loop the test drives.
struct Wiring {
  explicit Wiring(const TinyOpenHab& openhab, const std::string& token)
      : config(Config(openhab.port())),
        http(HttplibClient::Create(loop, config)),
        streamer(loop, config),
        rest(loop, *http, {token, false}) {}
  static HttpClientConfig Config(int port) {
    HttpClientConfig c;
    c.host = "127.0.0.1";
    c.port = port;
    c.tls = false;
    return c;
  }
  PollLoop loop;
  HttpClientConfig config;
  std::unique_ptr<HttpClient> http;
  HttplibStreamer streamer;
  RestClient rest;
  SystemRandom random{1};
};

TEST(ItemMirrorHttpTest, FollowsChangesAndResyncsExactlyOnceAfterADroppedStream) {
  TinyOpenHab openhab;
  Wiring w(openhab, "oh.test.token");
  PollLoop& loop = w.loop;
  MirrorConfig config;
  config.reconnect = {100, 1'000, 2.0, 0.5};
  Changes changes;
  ItemMirror mirror(loop, w.streamer, w.rest, w.random, config, changes);
  mirror.Start();
  ASSERT_TRUE(loop.RunUntil([&] { return mirror.synced(); }, 10'000));
  openhab.Change("Lamp", "ON", /*announce=*/true);
  ASSERT_TRUE(loop.RunUntil([&] { return changes.log.size() == 1; }, 10'000));
  EXPECT_EQ(changes.log[0], "Lamp=ON");
  // While the stream is down, two changes happen that no event will ever report.
  openhab.Drop();
  ASSERT_TRUE(loop.RunUntil([&] { return !mirror.synced(); }, 10'000));
  openhab.Change("Fan", "ON", false);
  openhab.Change("Lamp", "OFF", false);
  ASSERT_TRUE(loop.RunUntil([&] { return mirror.synced(); }, 10'000));
  loop.RunUntil([] { return false; }, 300);
  EXPECT_EQ(changes.log, (std::vector<std::string>{"Lamp=ON", "Fan=ON", "Lamp=OFF"}));
  EXPECT_EQ(openhab.streams(), 2);
  mirror.Stop();
}

TEST(ItemMirrorHttpTest, WrongTokenIsReportedWithOpenHabsMessage) {
  TinyOpenHab openhab;
  Wiring w(openhab, "oh.wrong.token");
  PollLoop& loop = w.loop;
  struct Down final : MirrorListener {
    void OnConnection(bool, std::string_view detail) override { detail_ = std::string(detail); }
    std::string detail_;
  } down;
  ItemMirror mirror(loop, w.streamer, w.rest, w.random, MirrorConfig{}, down);
  mirror.Start();
  ASSERT_TRUE(loop.RunUntil([&] { return !down.detail_.empty(); }, 10'000));
  EXPECT_NE(down.detail_.find("401: Invalid credentials"), std::string::npos) << down.detail_;
  mirror.Stop();
}

}  // namespace
}  // namespace iothub::openhab
