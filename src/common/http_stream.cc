#include "common/http_stream.h"

#include <fmt/format.h>
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "common/httplib_client.h"
#include "common/liveness.h"

namespace iothub {
namespace {

constexpr std::size_t kMaxErrorBody = std::size_t{64} * 1024;

}  // namespace

// What a stream's thread owns. It outlives the stream's handle while the thread is still
// connecting or reading; the thread sets `finished` as the last thing it does.
struct StreamWorker {
  std::unique_ptr<httplib::ClientImpl> client;
  std::atomic<bool> cancelled{false};
  std::atomic<bool> finished{false};
  std::thread thread;
  // Interrupts the request from a thread of its own: cpp-httplib's stop() waits for a connect
  // in progress (it holds the socket lock while connecting), which the loop must never do.
  std::thread stopper;
  std::atomic<bool> stopped{false};

  void Cancel() {
    cancelled = true;
    stopper = std::thread([this] {
      // stop() only reaches a request that has its socket: repeat it until the thread is out.
      while (!finished) {
        client->stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      stopped = true;
    });
  }
  bool Ended() const { return finished && stopped; }
  void Join() {
    thread.join();
    stopper.join();
  }
};

// Joins the threads of closed streams once they have ended. Loop thread only.
class StreamReaper {
 public:
  // Waits for the threads still ending: at most about a connect timeout.
  ~StreamReaper() {
    for (auto& worker : retired_) worker->Join();
  }
  void Retire(std::shared_ptr<StreamWorker> worker) {
    Reap();
    retired_.push_back(std::move(worker));
  }
  // Joins the threads that have ended (their joins return at once).
  void Reap() {
    std::erase_if(retired_, [](const std::shared_ptr<StreamWorker>& worker) {
      if (!worker->Ended()) return false;
      worker->Join();
      return true;
    });
  }
  std::size_t size() const {
    return static_cast<std::size_t>(
        std::count_if(retired_.begin(), retired_.end(),
                      [](const std::shared_ptr<StreamWorker>& w) { return !w->Ended(); }));
  }

 private:
  std::vector<std::shared_ptr<StreamWorker>> retired_;
};

namespace {

class HttplibStream final : public HttpStreamHandle {
 public:
  HttplibStream(EventLoop& loop, StreamReaper& reaper, const HttpClientConfig& config,
                HttpRequest request, StreamHandlers handlers)
      : reaper_(reaper), worker_(std::make_shared<StreamWorker>()) {
    worker_->client = MakeHttplibClient(config);
    std::string what = fmt::format("{}:{}{}", config.host, config.port, request.path);
    // The thread holds the worker, not this handle: it may run on after the handle is gone.
    // What it posts to the loop is dropped there once the handle is gone.
    worker_->thread =
        std::thread([&loop, worker = worker_, watch = liveness_.watch(), what = std::move(what),
                     request = std::move(request), handlers = std::move(handlers)] {
          Run(loop, *worker, watch, what, request, handlers);
          worker->finished = true;
        });
  }
  ~HttplibStream() override {
    worker_->Cancel();
    reaper_.Retire(std::move(worker_));
  }
  HttplibStream(const HttplibStream&) = delete;
  HttplibStream& operator=(const HttplibStream&) = delete;

 private:
  static void Run(EventLoop& loop, StreamWorker& worker, const Liveness::Watch& watch,
                  const std::string& what, const HttpRequest& request,
                  const StreamHandlers& handlers) {
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
    httplib::Headers headers;
    for (const auto& [k, v] : request.headers) headers.emplace(k, v);
    int status = 0;
    std::string error_body;
    auto post = [&loop, watch](std::function<void()> task) {
      loop.Post([watch, task = std::move(task)] {
        if (watch.alive()) task();
      });
    };
    auto go_on = [&worker] { return !worker.cancelled.load(); };
    auto result = worker.client->Get(
        request.path, headers,
        [&](const httplib::Response& response) {
          status = response.status;
          HttpHeaders copy(response.headers.begin(), response.headers.end());
          post([on_open = handlers.on_open, s = status, copy = std::move(copy)] {
            if (on_open) on_open(s, copy);
          });
          return go_on();
        },
        [&](const char* data, std::size_t length) {
          if (status != 200) {
            error_body.append(
                data, std::min(length, kMaxErrorBody - std::min(kMaxErrorBody, error_body.size())));
            return go_on();
          }
          post([on_data = handlers.on_data, chunk = std::string(data, length)]() mutable {
            if (on_data) on_data(std::move(chunk));
          });
          return go_on();
        });
    if (worker.cancelled) return;  // nobody listens any more
    Result<HttpResponse> end = MakeError("http_transport", "");
    if (result.error() == httplib::Error::Success || status != 0) {
      HttpResponse response;
      response.status = status;
      response.body = std::move(error_body);
      end = std::move(response);
    } else {
      end = MakeError("http_transport",
                      fmt::format("{}: {}", what, httplib::to_string(result.error())));
    }
    post([on_end = handlers.on_end, end = std::move(end)] {
      if (on_end) on_end(end);
    });
  }

  StreamReaper& reaper_;
  std::shared_ptr<StreamWorker> worker_;
  Liveness liveness_;
};

}  // namespace

HttplibStreamer::HttplibStreamer(EventLoop& loop, HttpClientConfig config)
    : loop_(loop), config_(std::move(config)), reaper_(std::make_unique<StreamReaper>()) {}

HttplibStreamer::~HttplibStreamer() = default;

std::unique_ptr<HttpStreamHandle> HttplibStreamer::Open(HttpRequest request,
                                                        StreamHandlers handlers) {
  reaper_->Reap();
  return std::make_unique<HttplibStream>(loop_, *reaper_, config_, std::move(request),
                                         std::move(handlers));
}

std::size_t HttplibStreamer::ending() const { return reaper_->size(); }

}  // namespace iothub
