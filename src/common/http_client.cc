#include "common/http_client.h"

#include <fmt/format.h>
#include <httplib.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <regex>

#include "common/httplib_client.h"
#include "common/strings.h"

namespace iothub {
namespace {

// What went wrong, in words, for an httplib transport error.
std::string Describe(httplib::Error error, const HttpClientConfig& config) {
  const std::string where = fmt::format("{}:{}", config.host, config.port);
  switch (error) {
    case httplib::Error::Connection:
      return fmt::format("cannot connect to {} (refused, unreachable or name not resolved)", where);
    case httplib::Error::ConnectionTimeout:
      return fmt::format("connecting to {} timed out after {} ms", where,
                         config.connect_timeout_ms);
    case httplib::Error::Read:
      return fmt::format(
          "no complete response from {} (connection closed, or no answer within {} ms)", where,
          config.read_timeout_ms);
    case httplib::Error::Write:
      return fmt::format("sending the request to {} failed (connection closed)", where);
    case httplib::Error::SSLConnection:
      return fmt::format("TLS handshake with {} failed", where);
    case httplib::Error::SSLLoadingCerts:
      return fmt::format("cannot load the trusted CA certificates ({}) to talk to {}",
                         config.ca_file.empty() ? "system store" : config.ca_file, where);
    case httplib::Error::SSLServerVerification:
      return fmt::format(
          "the TLS certificate of {} was rejected (not signed by a trusted CA, or not issued "
          "for host '{}')",
          where, config.host);
    case httplib::Error::Canceled:
      return fmt::format("the request to {} was cancelled", where);
    default:
      return fmt::format("request to {} failed: {}", where, httplib::to_string(error));
  }
}

std::pair<time_t, time_t> SecondsAndMicros(std::int64_t ms) {
  return {static_cast<time_t>(ms / 1000), static_cast<time_t>((ms % 1000) * 1000)};
}

}  // namespace

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

std::optional<HttpClientConfig> ParseRootUrl(std::string_view url, int default_http_port) {
  static const std::regex kUrl(
      R"(^(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(?::(\d{1,5}))?/?$)");
  const std::string text(url);
  std::smatch m;
  if (!std::regex_match(text, m, kUrl)) return std::nullopt;
  HttpClientConfig config;
  config.tls = m[1] == "https";
  config.host = m[2];
  if (config.host.front() == '[') config.host = config.host.substr(1, config.host.size() - 2);
  config.port = m[3].matched ? std::stoi(m[3]) : (config.tls ? 443 : default_http_port);
  if (config.port < 1 || config.port > 65535) return std::nullopt;
  return config;
}

std::unique_ptr<HttpClient> HttplibClient::Create(EventLoop& loop, HttpClientConfig config) {
  return std::make_unique<HttplibClient>(loop, std::move(config));
}

std::unique_ptr<httplib::ClientImpl> MakeHttplibClient(const HttpClientConfig& config) {
  std::unique_ptr<httplib::ClientImpl> client;
  if (config.tls) {
    auto tls = std::make_unique<httplib::SSLClient>(config.host, config.port);
    // A private CA is trusted in addition to the system's store (its directory), never
    // instead of it.
    if (!config.ca_file.empty()) {
      tls->set_ca_cert_path(config.ca_file.c_str(), X509_get_default_cert_dir());
    }
    tls->enable_server_certificate_verification(true);
    SSL_CTX* ctx = tls->ssl_context();
    if (ctx == nullptr) {
      std::fprintf(stderr, "fatal: cannot create an OpenSSL client context\n");
      std::abort();
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // OpenSSL checks the certificate's names during the handshake, and httplib then refuses a
    // failed verification. httplib 0.11's own name check is not enough on its own: for an IP
    // address it compares uninitialised memory, so it can accept a certificate for another IP.
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, config.host.c_str()) != 1) {
      X509_VERIFY_PARAM_set1_host(param, config.host.c_str(), config.host.size());
    }
    client = std::move(tls);
  } else {
    client = std::make_unique<httplib::ClientImpl>(config.host, config.port);
  }
  const auto [connect_s, connect_us] = SecondsAndMicros(config.connect_timeout_ms);
  client->set_connection_timeout(connect_s, connect_us);
  const auto [read_s, read_us] = SecondsAndMicros(config.read_timeout_ms);
  client->set_read_timeout(read_s, read_us);
  client->set_write_timeout(read_s, read_us);
  client->set_tcp_nodelay(true);
  client->set_url_encode(false);  // paths arrive encoded; encoding again would corrupt '%'
  return client;
}

HttplibClient::HttplibClient(EventLoop& loop, HttpClientConfig config)
    : loop_(loop), config_(std::move(config)), client_(MakeHttplibClient(config_)) {
  client_->set_keep_alive(true);
  worker_ = std::thread([this] { WorkerMain(); });
}

HttplibClient::~HttplibClient() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  client_->stop();  // thread-safe in httplib: shuts down the socket of a request in flight
  worker_.join();
}

void HttplibClient::Send(HttpRequest request, Done done) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(Job{std::move(request), std::move(done)});
  }
  wake_.notify_one();
}

void HttplibClient::WorkerMain() {
  // OpenSSL writes to a connection the server has closed raise SIGPIPE, which kills the
  // process. Blocked in this thread (the only one writing to these sockets), such a write fails
  // with EPIPE and httplib reports it as an error; the signal stays pending here, harmlessly.
  // The process-wide disposition is left to the program.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Result<HttpResponse> result = Perform(job.request);
    // Moved on, not copied: an item list is hundreds of kilobytes.
    loop_.Post([watch = watch_, done = std::move(job.done), result = std::move(result)]() mutable {
      if (!watch.alive()) return;
      done(std::move(result));
    });
  }
}

Result<HttpResponse> HttplibClient::Perform(const HttpRequest& request) {
  httplib::Request req;
  req.method = request.method;
  req.path = request.path;
  req.body = request.body;
  for (const auto& [key, value] : request.headers) req.headers.emplace(key, value);
  std::optional<httplib::Result> sent;
  try {
    sent.emplace(client_->send(req));
  } catch (const std::exception& e) {  // a hostile answer must not end the worker thread
    return MakeError("http_transport", fmt::format("request to {}:{} failed: {}", config_.host,
                                                   config_.port, e.what()));
  }
  httplib::Result& res = *sent;
  if (!res) return MakeError("http_transport", Describe(res.error(), config_));
  HttpResponse response;
  response.status = res->status;
  response.body = std::move(res->body);
  response.headers.assign(res->headers.begin(), res->headers.end());
  return response;
}

}  // namespace iothub
