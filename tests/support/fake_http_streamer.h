// A fake HttpStreamer: records opened streams and lets the test play the server (open,
// send chunks, end). Not thread-safe.
#pragma once

#include <memory>
#include <vector>

#include "common/http_stream.h"

namespace iothub::testing {

class FakeHttpStreamer final : public HttpStreamer {
 public:
  struct Stream {
    HttpRequest request;
    StreamHandlers handlers;
    bool closed = false;
  };

  std::unique_ptr<HttpStreamHandle> Open(HttpRequest request, StreamHandlers handlers) override {
    streams.push_back(std::make_unique<Stream>(Stream{std::move(request), std::move(handlers)}));
    return std::make_unique<Handle>(*streams.back());
  }
  Stream& last() { return *streams.back(); }
  void OpenLast(int status = 200) { last().handlers.on_open(status, {}); }
  void Send(const std::string& chunk) { last().handlers.on_data(chunk); }
  void End(Result<HttpResponse> end) { last().handlers.on_end(std::move(end)); }

  std::vector<std::unique_ptr<Stream>> streams;

 private:
  class Handle final : public HttpStreamHandle {
   public:
    explicit Handle(Stream& stream) : stream_(stream) {}
    ~Handle() override { stream_.closed = true; }

   private:
    Stream& stream_;
  };
};

}  // namespace iothub::testing
