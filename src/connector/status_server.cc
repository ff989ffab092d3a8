#include "connector/status_server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>

#include "common/json_depth.h"

namespace iothub::connector {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

std::int64_t MsBetween(SteadyTime from, SteadyTime to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

enum class Outcome { kAnswered, kTimedOut, kStopping };

constexpr char kIndex[] =
    "iothub-connector\n"
    "  /metrics  Prometheus metrics (text format 0.0.4)\n"
    "  /status   status JSON (?items=N or ?items=all)\n"
    "  /healthz  200 ok while the event loop answers\n"
    "docs/metrics.md describes them.\n";

// Why binding `address` failed, from the errno bind(2) left (cpp-httplib reports only
// failure) and, when that says nothing, whether the host resolves at all.
std::string BindFailure(const ListenAddress& address, int error) {
  switch (error) {
    case EADDRINUSE:
      return "the port is in use (is another connector running? choose another port)";
    case EADDRNOTAVAIL:
      return fmt::format("{} is not an address of this machine", address.host);
    case EACCES:
      return "permission denied (ports below 1024 need privileges)";
    default:
      break;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(address.host.c_str(), nullptr, &hints, &found);
  if (found != nullptr) freeaddrinfo(found);
  if (rc != 0) return fmt::format("cannot resolve {}: {}", address.host, gai_strerror(rc));
  if (error != 0) return std::strerror(error);
  return "the address cannot be bound";
}

}  // namespace

// The state handlers and the tasks they post to the loop share (see the class comment).
struct StatusServer::Shared : std::enable_shared_from_this<Shared> {
  std::mutex run_mutex;  // held while `snapshot` runs; taken before `mutex`
  SnapshotFn snapshot;   // guarded by run_mutex; empty once stopped

  std::mutex mutex;
  std::condition_variable answered;  // a task finished, or Stop() began
  bool stopping = false;             // guarded by mutex

  // Runs `work(snapshot)` on the loop and waits up to `timeout_ms` for its result.
  template <typename T>
  Outcome Ask(EventLoop& loop, std::int64_t timeout_ms, std::function<T(const SnapshotFn&)> work,
              T& out, std::int64_t& lag_ms) {
    struct Reply {
      std::optional<T> value;  // guarded by Shared::mutex
      std::int64_t lag_ms = 0;
    };
    // shared: the task may run after this request gave up waiting.
    auto reply = std::make_shared<Reply>();
    const SteadyTime posted = std::chrono::steady_clock::now();
    loop.Post([self = shared_from_this(), reply, posted, work = std::move(work)] {
      const SteadyTime started = std::chrono::steady_clock::now();
      std::optional<T> value;
      {
        const std::lock_guard<std::mutex> run(self->run_mutex);
        if (!self->snapshot) return;  // stopped
        value.emplace(work(self->snapshot));
      }
      {
        const std::lock_guard<std::mutex> lock(self->mutex);
        reply->value = std::move(value);
        reply->lag_ms = MsBetween(posted, started);
      }
      self->answered.notify_all();
    });
    std::unique_lock<std::mutex> lock(mutex);
    answered.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                      [&] { return reply->value.has_value() || stopping; });
    if (reply->value) {
      out = std::move(*reply->value);
      lag_ms = reply->lag_ms;
      return Outcome::kAnswered;
    }
    return stopping ? Outcome::kStopping : Outcome::kTimedOut;
  }
};

Result<ListenAddress> ParseListenAddress(std::string_view listen) {
  const auto bad = [listen] {
    return MakeError("metrics_listen",
                     fmt::format("[metrics] listen: expected host:port (e.g. 127.0.0.1:9464, "
                                 "[::1]:9464, 0.0.0.0:9464 for every interface), got \"{}\"",
                                 listen));
  };
  const auto colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad();
  std::string_view host = listen.substr(0, colon);
  const std::string_view port_text = listen.substr(colon + 1);
  int port = -1;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return bad();
  }
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return bad();  // an IPv6 address needs its brackets
  }
  return ListenAddress{std::string(host), port};
}

std::string FormatHostPort(const ListenAddress& address) {
  if (address.host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", address.host, address.port);
  }
  return fmt::format("{}:{}", address.host, address.port);
}

std::string LocalUrl(const ListenAddress& address) {
  ListenAddress local = address;
  if (local.host == "0.0.0.0" || local.host.empty()) local.host = "127.0.0.1";
  if (local.host == "::") local.host = "::1";
  return "http://" + FormatHostPort(local);
}

StatusServer::StatusServer(EventLoop& loop, StatusServerOptions options,
                           std::shared_ptr<Shared> shared)
    : loop_(loop), options_(std::move(options)), shared_(std::move(shared)) {}

StatusServer::~StatusServer() { Stop(); }

Result<std::unique_ptr<StatusServer>> StatusServer::Start(EventLoop& loop, SnapshotFn snapshot,
                                                          StatusServerOptions options) {
  auto address = ParseListenAddress(options.listen);
  if (!address) return address.error();
  auto shared = std::make_shared<Shared>();
  shared->snapshot = std::move(snapshot);
  std::unique_ptr<StatusServer> server(new StatusServer(loop, std::move(options), shared));
  server->address_ = *address;
  if (Status bound = server->Bind(); !bound) return bound.error();
  return server;
}

Status StatusServer::Bind() {
  server_ = std::make_unique<httplib::Server>();
  const int threads = options_.threads > 0 ? options_.threads : 1;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Only SO_REUSEADDR (a restart must not wait for TIME_WAIT); httplib's default also sets
  // SO_REUSEPORT, which would let a second connector share the port instead of failing.
  server_->set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // One request per connection: Stop() then never waits for an idle keep-alive connection.
  server_->set_keep_alive_max_count(1);
  server_->set_keep_alive_timeout(2);
  server_->set_read_timeout(2, 0);
  server_->set_write_timeout(5, 0);
  server_->set_tcp_nodelay(true);
  server_->set_payload_max_length(std::size_t{64} * 1024);
  Routes();

  errno = 0;
  int port = address_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(address_.host);
  } else if (!server_->bind_to_port(address_.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    const int error = errno;
    return MakeError("metrics_listen",
                     fmt::format("cannot listen on {} for metrics ([metrics] listen): {}",
                                 FormatHostPort(address_), BindFailure(address_, error)));
  }
  address_.port = port;
  auto finished = std::make_shared<std::atomic<bool>>(false);
  thread_ = std::thread([server = server_.get(), finished] {
    server->listen_after_bind();
    *finished = true;
  });
  // httplib's stop() does nothing until listen_after_bind() is running: wait for that here, so
  // that a Stop() right after Start() cannot be missed and leave the join hanging. It takes
  // microseconds.
  while (!server_->is_running() && !*finished) std::this_thread::yield();
  return Ok{};
}

void StatusServer::Stop() {
  {
    // Waits for a snapshot being taken right now (only when called off the loop thread).
    const std::lock_guard<std::mutex> run(shared_->run_mutex);
    shared_->snapshot = nullptr;
  }
  {
    const std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->stopping = true;
  }
  shared_->answered.notify_all();
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

void StatusServer::Routes() {
  using httplib::Request;
  using httplib::Response;

  // Takes a snapshot on the loop; answers 503 itself and returns nullopt when it cannot.
  auto snapshot = [this](Response& res) -> std::optional<StatusSnapshot> {
    StatusSnapshot status;
    std::int64_t lag_ms = 0;
    const Outcome outcome = shared_->Ask<StatusSnapshot>(
        loop_, options_.loop_timeout_ms, [](const SnapshotFn& fn) { return fn(); }, status, lag_ms);
    if (outcome == Outcome::kAnswered) {
      status.connector.loop_lag_ms = lag_ms;
      return status;
    }
    res.status = 503;
    if (outcome == Outcome::kStopping) {
      res.set_content("iothub-connector is shutting down\n", "text/plain; charset=utf-8");
    } else {
      res.set_content(
          fmt::format("iothub-connector: its event loop did not answer within {} ms: it is stuck "
                      "or overloaded (its log may say why)\n",
                      options_.loop_timeout_ms),
          "text/plain; charset=utf-8");
    }
    return std::nullopt;
  };

  server_->Get("/metrics", [snapshot](const Request&, Response& res) {
    if (auto status = snapshot(res)) {
      res.set_content(RenderPrometheus(*status), "text/plain; version=0.0.4; charset=utf-8");
    }
  });
  server_->Get("/status", [this, snapshot](const Request& req, Response& res) {
    std::size_t items = options_.default_status_items;
    if (req.has_param("items")) {
      const std::string text = req.get_param_value("items");
      std::size_t n = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (text == "all") {
        items = SIZE_MAX;
      } else if (ec == std::errc() && end == text.data() + text.size()) {
        items = n;
      } else {
        res.status = 400;
        res.set_content("items: expected a number or \"all\"\n", "text/plain; charset=utf-8");
        return;
      }
    }
    if (auto status = snapshot(res)) {
      res.set_content(DumpJson(ToJson(*status, items)) + "\n", "application/json; charset=utf-8");
    }
  });
  server_->Get("/healthz", [this](const Request&, Response& res) {
    bool alive = false;
    std::int64_t lag_ms = 0;
    const Outcome outcome = shared_->Ask<bool>(
        loop_, options_.loop_timeout_ms, [](const SnapshotFn&) { return true; }, alive, lag_ms);
    if (outcome == Outcome::kAnswered) {
      res.set_content("ok\n", "text/plain; charset=utf-8");
      return;
    }
    res.status = 503;
    res.set_content(
        outcome == Outcome::kStopping
            ? std::string("shutting down\n")
            : fmt::format("the event loop did not answer within {} ms\n", options_.loop_timeout_ms),
        "text/plain; charset=utf-8");
  });
  server_->Get("/", [](const Request&, Response& res) {
    res.set_content(kIndex, "text/plain; charset=utf-8");
  });
}

}  // namespace iothub::connector
