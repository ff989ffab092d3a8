// A tiny stand-in for openHAB on cpp-httplib's server, for tests of the stream client and
// `inspect` until openhab-sim exists: GET /rest/, /rest/items (two Switches and a
// temperature), and an SSE /rest/events that requires "Bearer oh.test.token" and that the
// test can feed and drop. Thread-safe (the server runs on its own thread).
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace iothub::testing {

using Json = nlohmann::json;

class TinyOpenHab {
 public:
  TinyOpenHab() {
    server_.Get("/rest/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"version":"8","runtimeInfo":{"version":"4.3.0"}})", "application/json");
    });
    server_.Get("/rest/items", [this](const httplib::Request&, httplib::Response& res) {
      Json list = Json::array();
      {
        std::lock_guard lock(mutex_);
        for (const auto& [name, state] : states_) {
          list.push_back({{"type", "Switch"}, {"name", name}, {"state", state}});
        }
      }
      list.push_back({{"type", "Number:Temperature"},
                      {"name", "LR_Temp"},
                      {"label", "Living temp"},
                      {"state", "21.5 °C"},
                      {"unitSymbol", "°C"},
                      {"stateDescription", {{"readOnly", true}}},
                      {"metadata", {{"azureiothub", {{"value", "telemetry"}}}}}});
      res.set_content(list.dump(), "application/json");
      if (after_items) {
        auto hook = std::move(after_items);
        after_items = nullptr;
        hook();
      }
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
  // Runs once, right after the next item list is served (on the server's thread, without
  // the lock held): a change made there can only reach the client as an event.
  std::function<void()> after_items;
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

}  // namespace iothub::testing
