#include "azure/mosquitto_connection.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include "common/trust_store.h"

namespace iothub::azure {
namespace {

constexpr std::int64_t kMiscIntervalMs = 1'000;

std::string OpenSslErrorText() {
  const unsigned long code = ERR_get_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return text;
}

// The two descriptor numbers the next socketpair(2) on this thread will get (the kernel hands
// out the lowest free numbers).
std::optional<std::pair<int, int>> NextSocketPairNumbers() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return std::nullopt;
  close(sv[0]);
  close(sv[1]);
  return std::make_pair(sv[0], sv[1]);
}

// What libmosquitto's wake-up pair looks like: an unnamed, non-blocking AF_UNIX stream socket
// whose peer is this very process (a socketpair), not a connection to another program.
bool IsWakeupSocket(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  int type = 0;
  socklen_t type_length = sizeof type;
  ucred peer{};
  socklen_t peer_length = sizeof peer;
  const int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_NONBLOCK) != 0 &&
         getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0 &&
         address.ss_family == AF_UNIX && length == sizeof(sa_family_t) &&
         getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_length) == 0 && type == SOCK_STREAM &&
         getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_length) == 0 && peer.pid == getpid();
}

// The identity of an open descriptor, to notice that its number now names something else.
std::optional<std::pair<dev_t, ino_t>> Identity(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return std::nullopt;
  return std::make_pair(st.st_dev, st.st_ino);
}

// One libmosquitto client object for one connection attempt. libmosquitto runs without its
// own thread: the loop watches the socket and calls loop_read/loop_write/loop_misc, and
// libmosquitto calls back from inside those calls, on the loop thread.
class MosquittoConnection final : public MqttConnection {
 public:
  MosquittoConnection(EventLoop& loop, SSL_CTX* ctx, Resolver& resolver, MqttHandler& handler)
      : loop_(loop), ctx_(ctx), resolver_(resolver), handler_(handler) {}
  ~MosquittoConnection() override { Teardown(); }
  MosquittoConnection(const MosquittoConnection&) = delete;
  MosquittoConnection& operator=(const MosquittoConnection&) = delete;

  Status Connect(const MqttConnectOptions& options) override {
    if (mosq_ != nullptr || resolving_) {
      return MakeError("mqtt_state", "connection already started");
    }
    connect_deadline_ms_ = loop_.NowMs() + options.connect_timeout_ms;
    if (IsNumericHost(options.host)) return Start(options, options.host);
    // libmosquitto would resolve the name inside its connect call, on the loop thread: for as
    // long as DNS takes. Resolve on the resolver's thread, then connect to the address (the
    // TLS name checked, and sent as SNI, stays the hub's: see MosquittoConnector::Create).
    resolving_ = true;
    misc_timer_ = loop_.RunAfter(
        options.connect_timeout_ms, [this, host = options.host, ms = options.connect_timeout_ms] {
          misc_timer_ = 0;
          if (!resolving_) return;
          resolving_ = false;
          Fail(fmt::format("cannot resolve host name '{}' within {} ms", host, ms));
        });
    resolver_.Resolve(options.host,
                      liveness_.Guard([this, options](Result<std::vector<std::string>> found) {
                        if (!resolving_ || closed_) return;
                        resolving_ = false;
                        if (misc_timer_ != 0) loop_.Cancel(misc_timer_);
                        misc_timer_ = 0;
                        if (!found) return Fail(found.error().message);
                        Status started = Start(options, found->front());
                        if (!started) Fail(started.error().message);
                      }));
    return Ok{};
  }

  Result<int> Publish(std::string_view topic, std::string_view payload, int qos) override {
    if (mosq_ == nullptr || closed_ || ended_) return MakeError("mqtt_state", "not connected");
    int mid = 0;
    const std::string topic_text(topic);
    const int rc = mosquitto_publish(mosq_, &mid, topic_text.c_str(),
                                     static_cast<int>(payload.size()), payload.data(), qos, false);
    if (rc != MOSQ_ERR_SUCCESS) {
      return MakeError("mqtt_publish", fmt::format("publish failed: {}", mosquitto_strerror(rc)));
    }
    UpdateInterest();
    return qos > 0 ? mid : 0;
  }

  Status Subscribe(const std::vector<std::string>& filters, int qos) override {
    if (mosq_ == nullptr || closed_ || ended_) return MakeError("mqtt_state", "not connected");
    std::vector<char*> list;
    list.reserve(filters.size());
    for (const auto& f : filters) list.push_back(const_cast<char*>(f.c_str()));
    const int rc = mosquitto_subscribe_multiple(mosq_, nullptr, static_cast<int>(list.size()),
                                                list.data(), qos, 0, nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      return MakeError("mqtt_subscribe",
                       fmt::format("subscribe failed: {}", mosquitto_strerror(rc)));
    }
    UpdateInterest();
    return Ok{};
  }

  void Close() override {
    closed_ = true;
    events_.clear();
    if (mosq_ != nullptr && connected_) mosquitto_disconnect(mosq_);
    connected_ = false;
    // The client object (and its socket) lives until destruction: Close() may be called from
    // inside a handler callback, with this object still on the stack.
    if (misc_timer_ != 0) loop_.Cancel(misc_timer_);
    misc_timer_ = 0;
    if (fd_ >= 0) loop_.Unwatch(fd_);
    fd_ = -1;
  }

 private:
  // Connects to `address` (numeric) with the rest of `options`.
  Status Start(const MqttConnectOptions& options, const std::string& address) {
    const auto pair = NextSocketPairNumbers();
    mosq_ = mosquitto_new(options.client_id.c_str(), options.clean_session, this);
    if (mosq_ == nullptr) return MakeError("mqtt_init", "mosquitto_new failed");
    // libmosquitto writes a byte to its own wake-up socket pair for every packet it queues,
    // for a select() loop we do not run; unread, each pair pins ~200 KB of kernel memory.
    // The API does not expose the pair, so find it where the kernel put it and drain it.
    if (pair && IsWakeupSocket(pair->first) && IsWakeupSocket(pair->second)) {
      wakeup_read_fd_ = pair->first;
      wakeup_identity_ = Identity(pair->first);
    }
    // The session keeps its own in-flight window; libmosquitto's default cap of 20 would
    // silently hold back larger ones.
    mosquitto_int_option(mosq_, MOSQ_OPT_SEND_MAXIMUM, 0);
    mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(mosq_, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_void_option(mosq_, MOSQ_OPT_SSL_CTX, ctx_);
    // The shared context is fully configured (CA store, peer and host-name checks); the
    // library must not load its defaults into it for every connection.
    mosquitto_int_option(mosq_, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    mosquitto_connect_callback_set(mosq_, &MosquittoConnection::OnConnectThunk);
    mosquitto_disconnect_callback_set(mosq_, &MosquittoConnection::OnDisconnectThunk);
    mosquitto_publish_callback_set(mosq_, &MosquittoConnection::OnPublishThunk);
    mosquitto_message_callback_set(mosq_, &MosquittoConnection::OnMessageThunk);
    mosquitto_log_callback_set(mosq_, &MosquittoConnection::OnLogThunk);
    int rc = mosquitto_username_pw_set(mosq_, options.username.c_str(), options.password.c_str());
    if (rc != MOSQ_ERR_SUCCESS) return MakeError("mqtt_init", mosquitto_strerror(rc));
    rc = mosquitto_connect_async(mosq_, address.c_str(), options.port, options.keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS) {
      const std::string why = rc == MOSQ_ERR_ERRNO ? std::string(std::strerror(errno))
                                                   : std::string(mosquitto_strerror(rc));
      return MakeError("mqtt_connect",
                       fmt::format("cannot connect to {}:{}{}: {}", options.host, options.port,
                                   address == options.host ? "" : " (" + address + ")", why));
    }
    fd_ = mosquitto_socket(mosq_);
    if (fd_ < 0) return MakeError("mqtt_connect", "no socket after connect");
    // Until the TCP connection is up, wait for writability: the TLS handshake cannot start
    // before it, and libmosquitto does not ask for it then.
    loop_.Watch(fd_, true, true,
                [this](bool readable, bool writable) { OnReady(readable, writable); });
    misc_timer_ = loop_.RunAfter(kMiscIntervalMs, [this] { OnMiscTimer(); });
    return Ok{};
  }

  // What libmosquitto reported, held until its call returns: handlers then run outside the
  // library's internal locks and may publish freely.
  struct Event {
    enum class Kind { kConnack, kLost, kPuback, kMessage } kind;
    int value = 0;
    std::string topic;
    std::string payload;
  };

  static MosquittoConnection& Self(void* obj) { return *static_cast<MosquittoConnection*>(obj); }
  static void OnConnectThunk(mosquitto*, void* obj, int rc) { Self(obj).OnConnect(rc); }
  static void OnDisconnectThunk(mosquitto*, void* obj, int rc) { Self(obj).OnDisconnect(rc); }
  static void OnPublishThunk(mosquitto*, void* obj, int mid) {
    Self(obj).Queue({Event::Kind::kPuback, mid, {}, {}});
  }
  static void OnMessageThunk(mosquitto*, void* obj, const mosquitto_message* m) {
    Self(obj).Queue({Event::Kind::kMessage, 0, m->topic,
                     std::string(static_cast<const char*>(m->payload),
                                 static_cast<std::size_t>(m->payloadlen))});
  }

  // libmosquitto reports why a TLS handshake failed only in its log.
  static void OnLogThunk(mosquitto*, void* obj, int level, const char* text) {
    if (level == MOSQ_LOG_ERR && text != nullptr) Self(obj).last_error_ = text;
  }

  void Queue(Event event) {
    if (!closed_ && !ended_) events_.push_back(std::move(event));
  }

  void OnConnect(int rc) {
    // The log is only read for handshake failures; afterwards each packet would pay for a
    // formatted debug line.
    mosquitto_log_callback_set(mosq_, nullptr);
    if (closed_ || ended_) return;
    Queue({Event::Kind::kConnack, rc, {}, {}});
    if (rc == 0) {
      connected_ = true;
    } else {
      ended_ = true;  // libmosquitto closes after a refusal; that is not a separate event
    }
  }

  void OnDisconnect(int rc) {
    // libmosquitto has already closed the socket: forget it before its number is reused.
    if (fd_ >= 0) loop_.Unwatch(fd_);
    fd_ = -1;
    if (closed_ || ended_) return;
    Queue({Event::Kind::kLost,
           0,
           {},
           rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc)});
    ended_ = true;
    connected_ = false;
  }

  void Dispatch() {
    std::vector<Event> events;
    events.swap(events_);
    for (auto& e : events) {
      if (closed_) return;  // the handler closed us: nothing more for it
      switch (e.kind) {
        case Event::Kind::kConnack:
          handler_.OnConnack(e.value);
          break;
        case Event::Kind::kLost:
          handler_.OnConnectionLost(e.payload);
          break;
        case Event::Kind::kPuback:
          handler_.OnPuback(e.value);
          break;
        case Event::Kind::kMessage:
          handler_.OnMessage(e.topic, e.payload);
          break;
      }
    }
  }

  void OnReady(bool /*readable*/, bool writable) {
    if (!tcp_up_) {
      // libmosquitto misreads a refused non-blocking connect as a TLS handshake still in
      // progress (and would wait forever): ask the socket itself.
      int error = 0;
      socklen_t length = sizeof error;
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
      if (error != 0) {
        Fail(std::strerror(error));
        return;
      }
      if (!writable) return;
      tcp_up_ = true;
    }
    // loop_read also advances a TLS handshake in progress, which loop_write would not.
    int rc = mosquitto_loop_read(mosq_, 1);
    if (rc == MOSQ_ERR_SUCCESS && fd_ >= 0 && writable && mosquitto_want_write(mosq_)) {
      rc = mosquitto_loop_write(mosq_, 1);
    }
    // A failed TLS handshake closes the socket without a disconnect callback: without this
    // the loop would poll a dead (or reused) descriptor number.
    if (fd_ >= 0 && mosquitto_socket(mosq_) < 0) {
      Fail(rc == MOSQ_ERR_TLS ? "TLS handshake failed: " + LastError()
                              : std::string(mosquitto_strerror(rc)));
      return;
    }
    DrainWakeups();
    Dispatch();
    UpdateInterest();
  }

  std::string LastError() const {
    return last_error_.empty() ? "see the server certificate, the CA file and the host name"
                               : last_error_;
  }

  void DrainWakeups() {
    if (wakeup_read_fd_ < 0) return;
    if (Identity(wakeup_read_fd_) != wakeup_identity_) {
      wakeup_read_fd_ = -1;  // not the descriptor we found: never read someone else's data
      return;
    }
    char buffer[512];
    while (read(wakeup_read_fd_, buffer, sizeof buffer) == static_cast<ssize_t>(sizeof buffer)) {
    }
  }

  void OnMiscTimer() {
    misc_timer_ = 0;
    if (mosq_ == nullptr || fd_ < 0) return;
    if (!connected_ && loop_.NowMs() >= connect_deadline_ms_) {
      Fail("no CONNACK in time");
      return;
    }
    misc_timer_ = loop_.RunAfter(kMiscIntervalMs, [this] { OnMiscTimer(); });
    mosquitto_loop_misc(mosq_);  // keep-alive PINGREQ, and closing a silent server
    DrainWakeups();
    Dispatch();
    UpdateInterest();
  }

  // Ends the attempt from our side (the socket stays with the client object until
  // destruction) and reports it lost.
  void Fail(const std::string& why) {
    if (misc_timer_ != 0) loop_.Cancel(misc_timer_);
    misc_timer_ = 0;
    if (fd_ >= 0) loop_.Unwatch(fd_);
    fd_ = -1;
    if (closed_ || ended_) return;
    Queue({Event::Kind::kLost, 0, {}, why});
    ended_ = true;
    connected_ = false;
    Dispatch();
  }

  void UpdateInterest() {
    if (fd_ < 0) return;
    bool want_write = true;
    if (tcp_up_) {
      // During the TLS handshake libmosquitto keeps saying it wants to write (its flag is
      // only cleared by a later packet write), which on an always-writable socket would spin
      // the loop until the server answers: ask OpenSSL instead.
      auto* ssl = static_cast<SSL*>(mosquitto_ssl_get(mosq_));
      want_write = ssl != nullptr && SSL_is_init_finished(ssl) == 0 ? SSL_want_write(ssl) != 0
                                                                    : mosquitto_want_write(mosq_);
    }
    loop_.SetInterest(fd_, true, want_write);
  }

  void Teardown() {
    if (misc_timer_ != 0) loop_.Cancel(misc_timer_);
    misc_timer_ = 0;
    if (fd_ >= 0) loop_.Unwatch(fd_);
    fd_ = -1;
    wakeup_read_fd_ = -1;
    if (mosq_ != nullptr) mosquitto_destroy(mosq_);
    mosq_ = nullptr;
  }

  EventLoop& loop_;
  SSL_CTX* ctx_;
  Resolver& resolver_;
  MqttHandler& handler_;
  bool resolving_ = false;  // waiting for the resolver (no client object yet)
  mosquitto* mosq_ = nullptr;
  int fd_ = -1;
  int wakeup_read_fd_ = -1;  // libmosquitto's; closed by mosquitto_destroy
  std::optional<std::pair<dev_t, ino_t>> wakeup_identity_;
  bool tcp_up_ = false;
  bool connected_ = false;
  bool closed_ = false;  // Close() called: no more events
  bool ended_ = false;   // refused or lost: the last event is queued
  std::vector<Event> events_;
  std::string last_error_;  // the library's last error-level log line
  std::int64_t connect_deadline_ms_ = 0;
  EventLoop::TimerId misc_timer_ = 0;
  Liveness liveness_;  // last: the resolver's answer checks it before touching the rest
};

// Sends the name the server certificate must carry as SNI, whatever address the connection
// was made to: libmosquitto sends the host it was given (here a numeric address), but a hub's
// front end picks the certificate by SNI. Runs before the ClientHello is written.
void SetServerNameIndication(const SSL* ssl, int where, int /*ret*/) {
  if ((where & SSL_CB_HANDSHAKE_START) == 0) return;
  auto* mutable_ssl = const_cast<SSL*>(ssl);
  const char* name = X509_VERIFY_PARAM_get0_host(SSL_get0_param(mutable_ssl), 0);
  if (name != nullptr) SSL_set_tlsext_host_name(mutable_ssl, name);
}

}  // namespace

Result<std::unique_ptr<MosquittoConnector>> MosquittoConnector::Create(EventLoop& loop,
                                                                       TlsOptions tls,
                                                                       Resolver* resolver) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return MakeError("tls", "cannot create a TLS context: " + OpenSslErrorText());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Idle sessions hold no read/write buffers: most of a TLS connection's memory.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  // A private CA is trusted in addition to the system's, never instead of them.
  if (std::string why; !AddSystemTrust(SSL_CTX_get_cert_store(ctx.get()), &why)) {
    return MakeError("tls", "cannot load the system's CA certificates: " + why);
  }
  if (!tls.ca_file.empty() &&
      SSL_CTX_load_verify_locations(ctx.get(), tls.ca_file.c_str(), nullptr) != 1) {
    return MakeError("tls", fmt::format("cannot load CA certificates from '{}': {}", tls.ca_file,
                                        OpenSslErrorText()));
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!tls.server_name.empty()) {
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, tls.server_name.c_str(), 0) != 1) {
      return MakeError("tls", fmt::format("invalid TLS server name '{}'", tls.server_name));
    }
    SSL_CTX_set_info_callback(ctx.get(), &SetServerNameIndication);
  }
  return std::unique_ptr<MosquittoConnector>(
      new MosquittoConnector(loop, std::move(ctx), resolver));
}

MosquittoConnector::MosquittoConnector(EventLoop& loop, SslCtxPtr ctx, Resolver* resolver)
    : loop_(loop),
      ctx_(std::move(ctx)),
      own_resolver_(resolver == nullptr ? std::make_unique<ThreadResolver>(loop) : nullptr),
      resolver_(resolver == nullptr ? *own_resolver_ : *resolver) {
  mosquitto_lib_init();
}

MosquittoConnector::~MosquittoConnector() { mosquitto_lib_cleanup(); }

std::unique_ptr<MqttConnection> MosquittoConnector::Create(MqttHandler& handler) {
  return std::make_unique<MosquittoConnection>(loop_, ctx_.get(), resolver_, handler);
}

}  // namespace iothub::azure
