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

namespace iothub::openhab {
namespace {

class TinyOpenHab {
 public:
  TinyOpenHab() {
    server_.Get("/rest/items", [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(mutex_);
      Json list = Json::array();
      for (const auto& [name, state] : states_) {
        list.push_back({{"type", "Switch"}, {"name", name}, {"state", state}});
      }
      res.set_content(list.dump(), "application/json");
    });
    server_.Get("/rest/events", [this](const httplib::Request& req, httplib::Response& res) {
      if (req.get_header_value("Authorization") != "Bearer oh.test.token") {
        res.status = 401;
        res.set_content(R"({"error":{"message":"Invalid credentials","http-code":401}})",
                        "application/json");
        return;
      }
      std::uint64_t generation;
      {
        std::lock_guard lock(mutex_);
        generation = ++generation_;
        ++streams_;
      }
      res.set_chunked_content_provider(
          "text/event-stream", [this, generation](std::size_t, httplib::DataSink& sink) {
            std::unique_lock lock(mutex_);
            cv_.wait_for(lock, std::chrono::milliseconds(200),
                         [&] { return !outbox_.empty() || generation != generation_; });
            if (generation != generation_) return false;  // dropped
            while (!outbox_.empty()) {
              const std::string chunk = std::move(outbox_.front());
              outbox_.pop_front();
              if (!sink.write(chunk.data(), chunk.size())) return false;
            }
            return true;
          });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~TinyOpenHab() {
    Drop();
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  int streams() {
    std::lock_guard lock(mutex_);
    return streams_;
  }
  // Changes a state; with `announce`, the change is sent on the stream.
  void Change(const std::string& item, const std::string& state, bool announce) {
    std::lock_guard lock(mutex_);
    const std::string old = states_[item];
    states_[item] = state;
    if (!announce) return;
    const Json payload = {
        {"type", "OnOff"}, {"value", state}, {"oldType", "OnOff"}, {"oldValue", old}};
    const Json data = {{"topic", "openhab/items/" + item + "/statechanged"},
                       {"payload", payload.dump()},
                       {"type", "ItemStateChangedEvent"}};
    outbox_.push_back("event: message\r\ndata: " + data.dump() + "\r\n\r\n");
    cv_.notify_all();
  }
  // Ends the current stream, as an openHAB restart or a proxy would.
  void Drop() {
    std::lock_guard lock(mutex_);
    ++generation_;
    cv_.notify_all();
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, std::string> states_ = {{"Lamp", "OFF"}, {"Fan", "OFF"}};
  std::deque<std::string> outbox_;
  std::uint64_t generation_ = 0;
  int streams_ = 0;
};

struct Changes final : MirrorListener {
  void OnStateChanged(const Item& item, const std::string&, ChangeSource) override {
    log.push_back(item.name + "=" + item.state);
  }
  std::vector<std::string> log;
};

TEST(ItemMirrorHttpTest, FollowsChangesAndResyncsExactlyOnceAfterADroppedStream) {
  TinyOpenHab openhab;
  PollLoop loop;
  HttpClientConfig http_config;
  http_config.host = "127.0.0.1";
  http_config.port = openhab.port();
  http_config.tls = false;
  auto http = HttplibClient::Create(loop, http_config);
  HttplibStreamer streamer(loop, http_config);
  RestClient rest(loop, *http, {"oh.test.token", false});
  SystemRandom random(1);
  MirrorConfig config;
  config.reconnect = {100, 1'000, 2.0, 0.5};
  Changes changes;
  ItemMirror mirror(loop, streamer, rest, random, config, changes);
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
  PollLoop loop;
  HttpClientConfig http_config;
  http_config.host = "127.0.0.1";
  http_config.port = openhab.port();
  http_config.tls = false;
  auto http = HttplibClient::Create(loop, http_config);
  HttplibStreamer streamer(loop, http_config);
  RestClient rest(loop, *http, {"oh.wrong.token", false});
  SystemRandom random(1);
  struct Down final : MirrorListener {
    void OnConnection(bool, std::string_view detail) override { detail_ = std::string(detail); }
    std::string detail_;
  } down;
  ItemMirror mirror(loop, streamer, rest, random, MirrorConfig{}, down);
  mirror.Start();
  ASSERT_TRUE(loop.RunUntil([&] { return !down.detail_.empty(); }, 10'000));
  EXPECT_NE(down.detail_.find("401: Invalid credentials"), std::string::npos) << down.detail_;
  mirror.Stop();
}

}  // namespace
}  // namespace iothub::openhab
