// The seam for long-lived HTTP responses read as they arrive (an SSE event stream): the
// real one runs cpp-httplib on a thread per open stream and posts what it reads to the
// event loop; tests use a fake. Handlers always run on the loop thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

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

class StreamReaper;

// cpp-httplib, one thread per open stream. Loop thread only (Open and handle destruction).
// Destroying a handle never blocks the loop: it interrupts the stream and hands its thread
// to the streamer, which joins it once it has ended (a connect in progress ends within
// connect_timeout_ms). Handles must be destroyed before the streamer; the streamer's own
// destructor waits for the threads still ending (at most about connect_timeout_ms), and must
// run before the loop is destroyed.
class HttplibStreamer final : public HttpStreamer {
 public:
  HttplibStreamer(EventLoop& loop, HttpClientConfig config);
  ~HttplibStreamer() override;
  HttplibStreamer(const HttplibStreamer&) = delete;
  HttplibStreamer& operator=(const HttplibStreamer&) = delete;

  std::unique_ptr<HttpStreamHandle> Open(HttpRequest request, StreamHandlers handlers) override;
  // Threads of closed streams not yet ended (for tests and metrics).
  std::size_t ending() const;

 private:
  EventLoop& loop_;
  HttpClientConfig config_;
  std::unique_ptr<StreamReaper> reaper_;
};

}  // namespace iothub
