#include "common/http_stream.h"

#include <fmt/format.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>

#include "common/httplib_client.h"

namespace iothub {
namespace {

constexpr std::size_t kMaxErrorBody = std::size_t{64} * 1024;

class HttplibStream final : public HttpStreamHandle {
 public:
  HttplibStream(EventLoop& loop, const HttpClientConfig& config, HttpRequest request,
                StreamHandlers handlers)
      : loop_(loop),
        alive_(std::make_shared<std::atomic<bool>>(true)),
        client_(MakeHttplibClient(config)),
        what_(fmt::format("{}:{}{}", config.host, config.port, request.path)) {
    thread_ = std::thread([this, request = std::move(request), handlers = std::move(handlers)] {
      Run(request, handlers);
    });
  }
  ~HttplibStream() override {
    alive_->store(false);
    // stop() only reaches a request that already has its socket: repeat it until the
    // thread is out (a connect in progress ends within the connect timeout at worst).
    std::unique_lock lock(mutex_);
    while (!finished_) {
      client_->stop();
      finished_cv_.wait_for(lock, std::chrono::milliseconds(20));
    }
    lock.unlock();
    thread_.join();
  }
  HttplibStream(const HttplibStream&) = delete;
  HttplibStream& operator=(const HttplibStream&) = delete;

 private:
  void Run(const HttpRequest& request, const StreamHandlers& handlers) {
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
    httplib::Headers headers;
    for (const auto& [k, v] : request.headers) headers.emplace(k, v);
    int status = 0;
    std::string error_body;
    auto alive = alive_;
    auto post = [this, alive](std::function<void()> task) {
      loop_.Post([alive, task = std::move(task)] {
        if (alive->load()) task();
      });
    };
    auto result = client_->Get(
        request.path, headers,
        [&](const httplib::Response& response) {
          status = response.status;
          HttpHeaders copy(response.headers.begin(), response.headers.end());
          post([on_open = handlers.on_open, s = status, copy = std::move(copy)] {
            if (on_open) on_open(s, copy);
          });
          return alive->load();
        },
        [&](const char* data, std::size_t length) {
          if (status != 200) {
            error_body.append(
                data, std::min(length, kMaxErrorBody - std::min(kMaxErrorBody, error_body.size())));
            return alive->load();
          }
          post([on_data = handlers.on_data, chunk = std::string(data, length)]() mutable {
            if (on_data) on_data(std::move(chunk));
          });
          return alive->load();
        });
    Result<HttpResponse> end = MakeError("http_transport", "");
    if (result.error() == httplib::Error::Success || status != 0) {
      HttpResponse response;
      response.status = status;
      response.body = std::move(error_body);
      end = std::move(response);
    } else {
      end = MakeError("http_transport",
                      fmt::format("{}: {}", what_, httplib::to_string(result.error())));
    }
    post([on_end = handlers.on_end, end = std::move(end)] {
      if (on_end) on_end(end);
    });
    std::lock_guard lock(mutex_);
    finished_ = true;
    finished_cv_.notify_all();
  }

  EventLoop& loop_;
  std::shared_ptr<std::atomic<bool>> alive_;  // shared with posted tasks: they may outlive us
  std::unique_ptr<httplib::ClientImpl> client_;
  std::string what_;
  std::mutex mutex_;
  std::condition_variable finished_cv_;
  bool finished_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace

std::unique_ptr<HttpStreamHandle> HttplibStreamer::Open(HttpRequest request,
                                                        StreamHandlers handlers) {
  return std::make_unique<HttplibStream>(loop_, config_, std::move(request), std::move(handlers));
}

}  // namespace iothub
