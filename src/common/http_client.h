// The HTTP seam (STYLE.md §2): components that call a REST API take an HttpClient, the real
// one talks HTTPS through cpp-httplib, and unit tests answer requests by hand
// (tests/support/fake_http_client.h).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/event_loop.h"
#include "common/liveness.h"
#include "common/result.h"

namespace httplib {
class ClientImpl;
}

namespace iothub {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;
  std::string path;  // already percent-encoded, with the query: "/devices/a%2Fb?api-version=.."
  HttpHeaders headers;
  std::string body;
};

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;

  // The first header called `name`, compared case-insensitively.
  std::optional<std::string> Header(std::string_view name) const;
};

// Sends requests to one server. Every request completes by calling its `done` exactly once,
// on the EventLoop thread, never synchronously inside Send(). An HTTP error status is a
// response, not an Error; transport failures (refused, timed out, TLS) are
// Error{"http_transport", ...} with a message naming host:port. Implementations say whether
// Send() is thread-safe.
class HttpClient {
 public:
  using Done = std::function<void(Result<HttpResponse>)>;

  virtual ~HttpClient() = default;
  virtual void Send(HttpRequest request, Done done) = 0;
};

struct HttpClientConfig {
  std::string host;
  int port = 443;
  std::string ca_file;  // PEM bundle of CAs trusted besides the system's
  std::int64_t connect_timeout_ms = 10'000;
  std::int64_t read_timeout_ms = 30'000;
  bool tls = true;  // false: plain HTTP (a local openHAB on :8080); ca_file is then unused
};

// `http://HOST[:PORT][/]` or `https://HOST[:PORT][/]` (IPv6 hosts in brackets): a server's
// root as a client configuration, the port defaulting to `default_http_port` for http and 443
// for https. nullopt when the text is no such URL or its port is not 1-65535: the caller says
// what it expected. Thread-safe (pure).
std::optional<HttpClientConfig> ParseRootUrl(std::string_view url, int default_http_port);

// HTTPS (or plain HTTP) through cpp-httplib on one worker thread this object owns: requests run one
// at a time in the order sent, over one kept-alive connection, and completions are posted to the
// loop. With TLS, the server certificate is verified against the system's CAs and `ca_file` and
// must name `host`. Send() must be called on the loop thread, and the object destroyed there,
// before the loop. Destruction drops the queued requests and interrupts the one in flight: no
// `done` is called after the destructor starts, including completions already posted to the loop.
// It joins the worker, which takes up to connect_timeout_ms while a connection is being opened
// (and, in the rare race with a request just starting, up to that request's timeouts).
class HttplibClient final : public HttpClient {
 public:
  static std::unique_ptr<HttpClient> Create(EventLoop& loop, HttpClientConfig config);

  HttplibClient(EventLoop& loop, HttpClientConfig config);
  ~HttplibClient() override;
  HttplibClient(const HttplibClient&) = delete;
  HttplibClient& operator=(const HttplibClient&) = delete;

  void Send(HttpRequest request, Done done) override;

 private:
  struct Job {
    HttpRequest request;
    Done done;
  };

  void WorkerMain();
  Result<HttpResponse> Perform(const HttpRequest& request);

  EventLoop& loop_;
  const HttpClientConfig config_;
  // Completions posted to the loop drop themselves once this object is gone. The worker
  // copies `watch_` (made once, read-only) into them; they check it on the loop thread.
  Liveness liveness_;
  const Liveness::Watch watch_ = liveness_.watch();
  std::unique_ptr<httplib::ClientImpl> client_;  // used by the worker; stop() by the destructor

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;  // guarded by mutex_
  bool stopping_ = false;  // guarded by mutex_
  std::thread worker_;     // started last, joined by the destructor
};

}  // namespace iothub
