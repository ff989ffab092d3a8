// The seam for long-lived HTTP responses read as they arrive (an SSE event stream): the
// real one runs cpp-httplib on a thread per open stream and posts what it reads to the
// event loop; tests use a fake. Handlers always run on the loop thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/event_loop.h"
#include "common/http_client.h"
#include "common/result.h"

namespace iothub {

struct StreamHandlers {
  // The status line and headers arrived. For a status other than 200 the body is collected
  // (up to 64 KB) and handed to on_end as the response instead.
  std::function<void(int status, const HttpHeaders& headers)> on_open;
  std::function<void(std::string chunk)> on_data;
  // The stream ended: an Error for transport failures, else the final response (the status,
  // and the body for non-200 answers). Called once, last.
  std::function<void(Result<HttpResponse>)> on_end;
};

// An open stream. Destroying it closes the connection; no handler runs afterwards.
class HttpStreamHandle {
 public:
  virtual ~HttpStreamHandle() = default;
};

class HttpStreamer {
 public:
  virtual ~HttpStreamer() = default;
  // Starts a request; handlers run on the loop, never inside Open().
  virtual std::unique_ptr<HttpStreamHandle> Open(HttpRequest request, StreamHandlers handlers) = 0;
};

// cpp-httplib, one thread per open stream. Loop thread only (Open and handle destruction).
class HttplibStreamer final : public HttpStreamer {
 public:
  HttplibStreamer(EventLoop& loop, HttpClientConfig config)
      : loop_(loop), config_(std::move(config)) {}
  std::unique_ptr<HttpStreamHandle> Open(HttpRequest request, StreamHandlers handlers) override;

 private:
  EventLoop& loop_;
  HttpClientConfig config_;
};

}  // namespace iothub
