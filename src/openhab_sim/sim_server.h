// openhab-sim's HTTP server (docs/openhab-sim.md): openHAB's REST API and event stream over a
// Home, with openHAB's status codes, error bodies and roles (shared/reference/openhab.md §1-§4),
// and the control endpoints under /sim/ that tests use to break things on purpose.
// Thread-safe: cpp-httplib serves each connection on its own thread; one mutex guards the
// home, and the streams are thread-safe themselves.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "openhab_sim/event_streams.h"
#include "openhab_sim/home.h"

namespace iothub::sim {

struct SimOptions {
  std::string home_path;  // read again by /sim/restart; empty: the home given stays
  OpenHabVersion version;
  std::string admin_token;         // an API token with the ADMIN role ("" for none)
  std::string user_token;          // an API token with the USER role ("" for none)
  bool implicit_user_role = true;  // anonymous requests get the USER role, openHAB's default
  int alive_interval_s = -1;       // -1: what the version sends (10 s, 120 s on 3.3, none before)
  std::string bind_host = "127.0.0.1";
};

struct ReceivedCommand {
  std::string item;
  std::string command;
  std::int64_t at_ms = 0;
};

class SimServer {
 public:
  using NowMs = std::function<std::int64_t()>;  // wall clock (epoch ms), for lastStateUpdate

  SimServer(Home home, SimOptions options, NowMs now_ms);
  ~SimServer();
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  // Binds (port 0 picks a free port) and serves on a thread of its own; returns the port.
  Result<int> Start(int port);
  // Closes every stream and stops serving.
  void Stop();

  // A state update from a "binding" (a trace, a series): as openHAB's ItemStateEvent.
  Status Update(const std::string& item, const std::string& state);
  // Sends `event: alive` to every stream; the owner calls it every alive_interval_s().
  void SendAlive();
  int alive_interval_s() const { return alive_interval_s_; }

 private:
  enum class Role { kNone, kUser, kAdmin };
  void Routes();
  // openHAB's AuthFilter and RolesAllowed: false (with 401/403 written) when refused.
  bool Authorize(const httplib::Request& req, httplib::Response& res, Role needed) const;
  void Publish(const std::vector<SimEvent>& events);
  std::string BaseUrl(const httplib::Request& req) const;
  // The shape GET /rest/items[/{name}] asks for (metadata, recursive, fields).
  ItemView View(const httplib::Request& req, bool recursive_by_default);
  bool Unavailable(httplib::Response& res);  // during a simulated restart

  SimOptions options_;
  NowMs now_ms_;
  int alive_interval_s_;
  httplib::Server server_;
  std::thread thread_;
  EventStreams streams_;

  std::mutex mutex_;  // guards home_, commands_, delay_, fail_, down_until_ms_
  Home home_;
  std::deque<ReceivedCommand> commands_;
  std::int64_t delay_ms_ = 0;
  std::string delay_path_;
  int fail_status_ = 0;  // POST /sim/fail: answer this under fail_path_; 0: off
  std::string fail_path_;
  std::int64_t fail_left_ = 0;  // how many more; -1: until told otherwise
  std::int64_t down_until_ms_ = 0;
  std::atomic<std::uint64_t> requests_{0};
};

}  // namespace iothub::sim
