// The connector's observability endpoint on `[metrics].listen` (docs/metrics.md):
//   GET /metrics   Prometheus text format 0.0.4
//   GET /status    the status JSON (`?items=N` or `?items=all`; default: the 1,000 most urgent)
//   GET /healthz   200 "ok" when the event loop answers
//   GET /          a short index of the above
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "common/event_loop.h"
#include "common/result.h"
#include "connector/status.h"

namespace httplib {
class Server;
}

namespace iothub::connector {

// `[metrics].listen` taken apart: "127.0.0.1:9464", "[::1]:9464", "localhost:9464",
// "0.0.0.0:9464" (every interface). Port 0 (not allowed in the config file, used by tests)
// lets the system pick one.
struct ListenAddress {
  std::string host;  // without brackets
  int port = 0;
};
// Error "metrics_listen" quoting `listen` and saying what is expected.
Result<ListenAddress> ParseListenAddress(std::string_view listen);
// "HOST:PORT", with brackets around an IPv6 host.
std::string FormatHostPort(const ListenAddress& address);
// The URL a client on this machine reaches `address` at: a wildcard host (0.0.0.0, ::) becomes
// the loopback address. "http://127.0.0.1:9464".
std::string LocalUrl(const ListenAddress& address);

struct StatusServerOptions {
  std::string listen = "127.0.0.1:9464";
  // How long a request waits for the loop to take a snapshot before answering 503.
  std::int64_t loop_timeout_ms = 2000;
  std::size_t default_status_items = 1000;  // /status without ?items=
  int threads = 2;                          // concurrent requests: a scrape and a `status`
};

// Serves the endpoints on cpp-httplib's threads. Those threads never touch the daemon's state:
// each request posts `snapshot` to the loop (EventLoop::Post), waits up to loop_timeout_ms for
// the result, and renders it on its own thread; a loop that does not answer in time gets a
// 503 whose body says the loop is stuck.
//
// Lifetimes: the handlers and the tasks they post share one state block (shared_ptr, because a
// task posted by a request that gave up may run on the loop after this object is gone). Stop()
// marks it stopped, releases the waiting requests (503 "shutting down") and destroys
// `snapshot`, so that no task runs it once Stop() has returned; then it stops httplib and joins
// its threads. Each connection serves one request, so Stop() does not wait for idle
// keep-alive connections; it waits at most the 2 s read timeout for a client that connected but
// has not sent its request.
//
// Thread-safety: Start, Stop, port and address may be called from any one thread at a time;
// Stop() may run on the loop thread (it never waits for the loop) but not inside `snapshot`.
// `loop` must outlive Stop().
class StatusServer {
 public:
  using SnapshotFn = std::function<StatusSnapshot()>;

  // Binds options.listen and serves on a background thread. Errors ("metrics_listen") name the
  // address and why it could not be bound (in use, not an address of this host, permission).
  static Result<std::unique_ptr<StatusServer>> Start(EventLoop& loop, SnapshotFn snapshot,
                                                     StatusServerOptions options);
  ~StatusServer();  // Stop()
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Idempotent.
  void Stop();

  int port() const { return address_.port; }
  // "127.0.0.1:43125": the address bound, with the port the system picked for port 0.
  std::string address() const { return FormatHostPort(address_); }

 private:
  struct Shared;
  StatusServer(EventLoop& loop, StatusServerOptions options, std::shared_ptr<Shared> shared);
  Status Bind();
  void Routes();

  EventLoop& loop_;
  const StatusServerOptions options_;
  ListenAddress address_;
  std::shared_ptr<Shared> shared_;  // shared with posted tasks: see the class comment
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace iothub::connector
