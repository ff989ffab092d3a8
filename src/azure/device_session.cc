#include "azure/device_session.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include "azure/connection_string.h"
#include "azure/sas_token.h"
#include "common/crypto.h"
#include "common/json_depth.h"
#include "common/url.h"

namespace iothub::azure {
namespace {

constexpr std::int64_t kTickMs = 1'000;
constexpr std::int64_t kDayMs = 86'400'000;
constexpr std::size_t kRecentCloudIds = 64;
constexpr std::size_t kMaxMessageIdBytes = 128;

Error TwinUnavailable() {
  return MakeError("twin_unavailable",
                   "this session does not use the device twin (basic tiers have none)");
}
constexpr std::size_t kMaxTopicBytes = 65'535;
constexpr int kMaxTwinAttempts = 6;
constexpr std::string_view kTwinResponsePrefix = "$iothub/twin/res/";
constexpr std::string_view kDesiredPrefix = "$iothub/twin/PATCH/properties/desired/";
constexpr std::string_view kMethodPrefix = "$iothub/methods/POST/";

std::optional<std::int64_t> ParseInt(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The MQTT topic of `message` under `prefix` ("devices/{id}/messages/events/"), or why the hub
// would refuse it.
Result<std::string> TelemetryTopic(std::string_view prefix, const TelemetryMessage& message) {
  for (const auto& p : message.properties) {
    if (IsSystemProperty(p.name)) {
      return MakeError(
          "bad_message",
          fmt::format("application property '{}' uses the reserved '$.' prefix", p.name));
    }
    if (p.name.empty()) return MakeError("bad_message", "an application property has no name");
  }
  if (message.message_id.empty()) return MakeError("bad_message", "the message has no id");
  if (message.message_id.size() > kMaxMessageIdBytes) {
    return MakeError("bad_message",
                     fmt::format("message id is {} bytes; IoT Hub accepts at most {}",
                                 message.message_id.size(), kMaxMessageIdBytes));
  }
  PropertyBag bag;
  bag.push_back({std::string(kMessageId), message.message_id});
  if (!message.correlation_id.empty()) {
    bag.push_back({std::string(kCorrelationId), message.correlation_id});
  }
  if (!message.content_type.empty()) {
    bag.push_back({std::string(kContentType), message.content_type});
  }
  if (!message.content_encoding.empty()) {
    bag.push_back({std::string(kContentEncoding), message.content_encoding});
  }
  if (!message.creation_time.empty()) {
    bag.push_back({std::string(kCreationTime), message.creation_time});
  }
  if (!message.component.empty()) bag.push_back({std::string(kComponent), message.component});
  for (const auto& p : message.properties) bag.push_back(p);
  // Counted with the names of the system properties too, more than the hub counts (§5): a
  // message the hub would refuse must never be sent, where it would block the window.
  std::size_t size = message.body.size();
  for (const auto& p : bag) size += p.name.size() + (p.value ? p.value->size() : 0);
  if (size > kMaxTelemetryBytes) {
    return MakeError("too_large", fmt::format("message is {} bytes with its properties; IoT Hub "
                                              "accepts at most {}",
                                              size, kMaxTelemetryBytes));
  }
  std::string topic = std::string(prefix) + EncodePropertyBag(bag);
  if (topic.size() > kMaxTopicBytes) {
    return MakeError("too_large", fmt::format("the encoded properties make a {}-byte MQTT topic; "
                                              "MQTT allows at most {}",
                                              topic.size(), kMaxTopicBytes));
  }
  return topic;
}

}  // namespace

Status CheckTelemetry(std::string_view device_id, const TelemetryMessage& message) {
  auto topic = TelemetryTopic("devices/" + std::string(device_id) + "/messages/events/", message);
  if (!topic) return topic.error();
  return Ok{};
}

std::string_view ToString(SessionState state) {
  switch (state) {
    case SessionState::kStopped:
      return "stopped";
    case SessionState::kConnecting:
      return "connecting";
    case SessionState::kConnected:
      return "connected";
    case SessionState::kBackingOff:
      return "backing-off";
    case SessionState::kQuotaExhausted:
      return "quota-exhausted";
    case SessionState::kRefused:
      return "refused";
  }
  return "unknown";
}

Result<DeviceSessionConfig> SessionConfigFromConnectionString(std::string_view text) {
  auto cs = ParseDeviceConnectionString(text);
  if (!cs) return cs.error();
  if (cs->x509) {
    return MakeError("unsupported",
                     "X.509 device authentication is not supported yet; use a "
                     "connection string with SharedAccessKey");
  }
  if (!cs->module_id.empty()) {
    return MakeError("unsupported",
                     "module identities are not supported yet; use a device "
                     "connection string (without ModuleId)");
  }
  DeviceSessionConfig config;
  config.host_name = cs->host_name;
  config.device_id = cs->device_id;
  config.key = cs->key;
  config.sas_token = cs->shared_access_signature;
  config.connect_host = cs->gateway_host;
  if (cs->gateway_port) config.port = *cs->gateway_port;
  return config;
}

Result<std::unique_ptr<DeviceSession>> DeviceSession::Create(
    EventLoop& loop, MqttConnector& connector, ConnectPacer& pacer, const Clock& wall,
    Random& random, DeviceSessionConfig config, SessionListener& listener) {
  auto invalid = [](std::string message) { return MakeError("bad_config", std::move(message)); };
  if (config.host_name.empty()) return invalid("host_name is empty");
  if (!IsMqttDeviceId(config.device_id)) {
    return invalid(
        fmt::format("device id '{}' cannot be used over MQTT (1-128 of A-Z a-z 0-9 and "
                    "-:.%_*?!(),=@;$'; no '+' or '#')",
                    config.device_id));
  }
  if (config.key.empty() == config.sas_token.empty()) {
    return invalid("give exactly one of a device key or a SAS token");
  }
  if (!config.key.empty() && !MakeSasToken("probe", config.key, 0).ok()) {
    return invalid("the device key is not valid base64");
  }
  if (!config.sas_token.empty() && !ParseSasToken(config.sas_token).ok()) {
    return invalid(
        "the SAS token is malformed (expected 'SharedAccessSignature sr=..&sig=..&se=..')");
  }
  if (!config.model_id.empty() && !config.model_id.starts_with("dtmi:")) {
    return invalid(fmt::format("model id '{}' must start with 'dtmi:'", config.model_id));
  }
  if (config.port <= 0 || config.port > 65535) return invalid("port must be 1-65535");
  if (config.keepalive_s < 5 || config.keepalive_s > 1177) {
    return invalid("keepalive_s must be 5-1177 (the hub's maximum, reference §3)");
  }
  if (config.token_ttl_s < 60) return invalid("token_ttl_s must be at least 60");
  if (!(config.renew_at > 0.0 && config.renew_at < 1.0))
    return invalid("renew_at must be in (0, 1)");
  if (config.max_in_flight == 0) return invalid("max_in_flight must be at least 1");
  if (config.quota_strikes < 1) return invalid("quota_strikes must be at least 1");
  return std::unique_ptr<DeviceSession>(
      new DeviceSession(loop, connector, pacer, wall, random, std::move(config), listener));
}

DeviceSession::DeviceSession(EventLoop& loop, MqttConnector& connector, ConnectPacer& pacer,
                             const Clock& wall, Random& random, DeviceSessionConfig config,
                             SessionListener& listener)
    : loop_(loop),
      connector_(connector),
      pacer_(pacer),
      wall_(wall),
      random_(random),
      config_(std::move(config)),
      listener_(listener),
      backoff_(config_.reconnect, random),
      topic_prefix_("devices/" + config_.device_id + "/messages/events/"),
      c2d_prefix_("devices/" + config_.device_id + "/messages/devicebound") {}

DeviceSession::~DeviceSession() {
  if (tick_timer_ != 0) loop_.Cancel(tick_timer_);
  if (reconnect_timer_ != 0) loop_.Cancel(reconnect_timer_);
  if (pacer_ticket_ != 0) pacer_.Cancel(pacer_ticket_);
  for (auto& r : twin_requests_) {
    if (r.retry_timer != 0) loop_.Cancel(r.retry_timer);
  }
  if (connection_) connection_->Close();
}

void DeviceSession::Start() {
  if (state_ != SessionState::kStopped) return;
  // Timers are armed before the listener hears of a state, so a Stop() from inside the
  // callback cancels them.
  tick_timer_ = loop_.RunAfter(kTickMs, [this] { OnTick(); });
  SetState(SessionState::kConnecting, "starting");
  RequestConnect();
}

void DeviceSession::Stop() {
  if (state_ == SessionState::kStopped) return;
  SetState(SessionState::kStopped, "stopped by the application");
  if (tick_timer_ != 0) loop_.Cancel(tick_timer_);
  if (reconnect_timer_ != 0) loop_.Cancel(reconnect_timer_);
  if (pacer_ticket_ != 0) pacer_.Cancel(pacer_ticket_);
  tick_timer_ = reconnect_timer_ = 0;
  pacer_ticket_ = 0;
  renewing_ = false;
  DropConnection();
  auto requests = std::move(twin_requests_);
  twin_requests_.clear();
  for (auto& r : requests) {
    if (r.retry_timer != 0) loop_.Cancel(r.retry_timer);
    const Error stopped = MakeError("stopped", "the session was stopped");
    if (r.on_twin) r.on_twin(stopped);
    if (r.on_reported) r.on_reported(stopped);
  }
}

void DeviceSession::SetState(SessionState state, std::string_view detail) {
  if (state == state_ && state != SessionState::kBackingOff) return;
  state_ = state;
  listener_.OnState(state, detail);
}

void DeviceSession::SetTelemetrySource(TelemetrySource* source) {
  source_ = source;
  Pump();
}

void DeviceSession::TelemetryReady() { Pump(); }

DeviceSession::TwinRequest DeviceSession::MakeTwinRequest(TwinKind kind, Json patch,
                                                          TwinCallback on_twin,
                                                          ReportedCallback on_reported) {
  TwinRequest r;
  r.kind = kind;
  r.patch = std::move(patch);
  r.on_twin = std::move(on_twin);
  r.on_reported = std::move(on_reported);
  return r;
}

void DeviceSession::GetTwin(TwinCallback done) {
  if (!config_.twin) {
    done(TwinUnavailable());
    return;
  }
  twin_requests_.push_back(MakeTwinRequest(TwinKind::kGet, Json(), std::move(done), nullptr));
  if (connack_ && !renewing_) SendTwinRequest(twin_requests_.back());
}

void DeviceSession::UpdateReported(Json patch, ReportedCallback done) {
  if (!patch.is_object()) {
    done(MakeError("bad_patch", "a reported-properties patch must be a JSON object"));
    return;
  }
  if (!config_.twin) {
    done(TwinUnavailable());
    return;
  }
  twin_requests_.push_back(
      MakeTwinRequest(TwinKind::kReported, std::move(patch), nullptr, std::move(done)));
  if (connack_ && !renewing_) SendTwinRequest(twin_requests_.back());
}

Status DeviceSession::RespondMethod(std::string_view request_id, int status,
                                    std::string_view payload) {
  if (!payload.empty() && !ParseUntrustedJson(payload)) {
    return MakeError("bad_payload", "a method response payload must be JSON (or empty)");
  }
  if (!connack_) {
    return MakeError("not_connected", "the connection that carried the request is gone");
  }
  const std::string topic =
      fmt::format("$iothub/methods/res/{}/?$rid={}", status, UrlEncode(request_id));
  auto sent = connection_->Publish(topic, payload, 0);
  if (!sent) return sent.error();
  return Ok{};
}

void DeviceSession::RequestConnect() {
  // A listener may have stopped the session from inside OnState while a timer was armed.
  if (state_ == SessionState::kStopped || pacer_ticket_ != 0 || connection_) return;
  pacer_ticket_ = pacer_.Request([this] {
    pacer_ticket_ = 0;
    Connect();
  });
  if (state_ != SessionState::kConnecting) {
    SetState(SessionState::kConnecting, "waiting for a slot");
  }
}

Result<std::string> DeviceSession::Password() {
  if (!config_.sas_token.empty()) {
    auto token = ParseSasToken(config_.sas_token);
    if (!token) return token.error();
    token_expiry_wall_ms_ = token->expiry * 1000;
    renew_wall_ms_ = 0;  // a fixed token cannot be renewed
    if (token_expiry_wall_ms_ <= wall_.NowMs()) {
      return MakeError("token_expired",
                       "the configured SAS token has expired; supply a new one "
                       "or configure the device key instead");
    }
    return config_.sas_token;
  }
  const std::int64_t now_s = wall_.NowSeconds();
  const std::int64_t expiry = now_s + config_.token_ttl_s;
  auto token =
      MakeSasToken(config_.host_name + "/devices/" + config_.device_id, config_.key, expiry);
  if (!token) return token.error();
  token_expiry_wall_ms_ = expiry * 1000;
  renew_wall_ms_ = (now_s + static_cast<std::int64_t>(static_cast<double>(config_.token_ttl_s) *
                                                      config_.renew_at)) *
                   1000;
  return std::move(token).value();
}

void DeviceSession::Connect() {
  if (state_ == SessionState::kStopped) return;
  auto password = Password();
  if (!password) {
    // Only a fixed token fails here, and it will not get any younger: no retries.
    SetState(SessionState::kRefused, password.error().message);
    return;
  }
  MqttConnectOptions options;
  options.host = config_.connect_host.empty() ? config_.host_name : config_.connect_host;
  options.port = config_.port;
  options.client_id = config_.device_id;
  options.username = fmt::format("{}/{}/?api-version={}&DeviceClientType={}", config_.host_name,
                                 config_.device_id, kApiVersion, UrlEncode(kClientType));
  if (!config_.model_id.empty()) options.username += "&model-id=" + UrlEncode(config_.model_id);
  options.password = std::move(password).value();
  options.keepalive_s = config_.keepalive_s;
  options.clean_session = false;
  options.connect_timeout_ms = config_.connect_timeout_ms;
  connack_ = false;
  acked_this_connection_ = false;
  billable_this_connection_ = false;
  connection_ = connector_.Create(*this);
  const Status started = connection_->Connect(options);
  if (!started) ConnectionEnded(started.error().message, false);
}

void DeviceSession::OnConnack(int code) {
  if (code != 0) {
    const bool credentials = code == 4 || code == 5;
    if (code == 3) backoff_.AtLeast(config_.throttled_floor_ms);
    ConnectionEnded(fmt::format("the hub refused the connection (CONNACK {}{})", code,
                                credentials ? ": bad credentials or a disabled device" : ""),
                    credentials);
    return;
  }
  connack_ = true;
  connected_ms_ = loop_.NowMs();
  ++counters_.connects;
  std::vector<std::string> topics;
  if (config_.receive_cloud) topics.push_back(c2d_prefix_ + "/#");
  if (config_.twin) topics.emplace_back("$iothub/twin/res/#");
  if (config_.receive_cloud && config_.twin) topics.push_back(std::string(kDesiredPrefix) + "#");
  if (config_.receive_cloud || config_.receive_methods) {
    topics.push_back(std::string(kMethodPrefix) + "#");
  }
  if (!topics.empty()) (void)connection_->Subscribe(topics, 1);
  SetState(SessionState::kConnected, "connected");
  desired_.OnReconnect();
  FullGetIfNeeded();
  SendTwinRequests();
  Pump();
}

void DeviceSession::OnConnectionLost(std::string_view why) { ConnectionEnded(why, false); }

void DeviceSession::DropConnection() {
  if (connection_) {
    connection_->Close();
    // The connection may be calling us right now: destroy it once the loop is back on top.
    std::shared_ptr<MqttConnection> retired(std::move(connection_));
    loop_.Post([retired] {});
  }
  connack_ = false;
  in_flight_.clear();
  next_unsent_ = window_.begin();
  for (auto& r : twin_requests_) {
    r.rid.clear();
    if (r.kind == TwinKind::kInternalGet && r.retry_timer != 0) loop_.Cancel(r.retry_timer);
  }
  std::erase_if(twin_requests_,
                [](const TwinRequest& r) { return r.kind == TwinKind::kInternalGet; });
  internal_get_pending_ = false;
}

void DeviceSession::ConnectionEnded(std::string_view why, bool refused_credentials) {
  const bool was_connected = connack_;
  if (was_connected) ++counters_.connection_losses;
  renewing_ = false;
  DropConnection();
  if (state_ == SessionState::kStopped) return;
  if (was_connected) {
    // §5: at quota exhaustion the hub accepts the CONNECT but closes the connection at the
    // first billable operation without answering it. A network fault rarely looks like that
    // several times in a row.
    if (billable_this_connection_ && !acked_this_connection_) {
      ++quota_strikes_;
      if (quota_strikes_ >= config_.quota_strikes || quota_resume_wall_ms_ != 0) {
        EnterQuotaExhausted();
        return;
      }
    } else if (acked_this_connection_) {
      quota_strikes_ = 0;
    }
  }
  const std::string detail = std::string(why);
  if (refused_credentials) {
    ScheduleReconnect(std::max(backoff_.NextDelayMs(), config_.throttled_floor_ms),
                      SessionState::kRefused, detail);
    return;
  }
  ScheduleReconnect(backoff_.NextDelayMs(), SessionState::kBackingOff, detail);
}

void DeviceSession::ScheduleReconnect(std::int64_t delay_ms, SessionState state,
                                      std::string_view detail) {
  if (reconnect_timer_ != 0) loop_.Cancel(reconnect_timer_);
  reconnect_timer_ = loop_.RunAfter(delay_ms, [this] {
    reconnect_timer_ = 0;
    RequestConnect();
  });
  SetState(state, fmt::format("{}; reconnecting in {} ms", detail, delay_ms));
}

void DeviceSession::EnterQuotaExhausted() {
  const std::int64_t now = wall_.NowMs();
  // Spread many devices over the first half minute of the new day.
  const auto jitter = static_cast<std::int64_t>(random_.Uniform() * 30'000.0);
  quota_resume_wall_ms_ = (now / kDayMs + 1) * kDayMs + jitter;
  const std::int64_t probe_ms = std::min(quota_resume_wall_ms_ - now, config_.quota_probe_ms);
  if (reconnect_timer_ != 0) loop_.Cancel(reconnect_timer_);
  // The wall clock is checked on every tick too: it may jump (or be advanced by a test).
  reconnect_timer_ = loop_.RunAfter(probe_ms, [this] {
    reconnect_timer_ = 0;
    RequestConnect();
  });
  SetState(SessionState::kQuotaExhausted,
           fmt::format("the hub's daily message quota is exhausted; resuming at {}",
                       FormatIsoTime(quota_resume_wall_ms_)));
}

void DeviceSession::OnTick() {
  tick_timer_ = loop_.RunAfter(kTickMs, [this] { OnTick(); });
  const std::int64_t now = loop_.NowMs();
  if (state_ == SessionState::kQuotaExhausted) {
    if (wall_.NowMs() >= quota_resume_wall_ms_ && reconnect_timer_ != 0) {
      loop_.Cancel(reconnect_timer_);
      reconnect_timer_ = 0;
      RequestConnect();
    }
    return;
  }
  if (!connack_) return;
  if (now - connected_ms_ >= config_.stable_after_ms) backoff_.Reset();
  // A PUBACK that never comes means a dead connection (or the quota, see ConnectionEnded).
  for (const auto& [packet_id, flight] : in_flight_) {
    if (now - flight.sent_ms >= config_.puback_timeout_ms) {
      ConnectionEnded(fmt::format("no PUBACK within {} ms", config_.puback_timeout_ms), false);
      return;
    }
  }
  // One at a time from the start: completing a request runs its callback, which may send,
  // stop the session or otherwise change the list.
  for (;;) {
    const auto expired =
        std::find_if(twin_requests_.begin(), twin_requests_.end(), [&](const TwinRequest& r) {
          return !r.rid.empty() && now - r.sent_ms >= config_.twin_timeout_ms;
        });
    if (expired == twin_requests_.end()) break;
    CompleteTwin(expired, 0, "", 0);
    if (!connack_) return;
  }
  if (renew_wall_ms_ != 0 && !renewing_ && wall_.NowMs() >= renew_wall_ms_) {
    renewing_ = true;
    renew_started_ms_ = now;
  }
  if (renewing_) {
    const bool drained =
        in_flight_.empty() && std::none_of(twin_requests_.begin(), twin_requests_.end(),
                                           [](const TwinRequest& r) { return !r.rid.empty(); });
    if (drained || now - renew_started_ms_ >= config_.drain_timeout_ms) {
      ++counters_.renewals;
      renewing_ = false;
      DropConnection();
      SetState(SessionState::kConnecting, "renewing the SAS token");
      RequestConnect();
    }
  }
}

bool DeviceSession::TakeFromSource() {
  while (source_ != nullptr) {
    std::optional<TelemetryMessage> next = source_->NextTelemetry();
    if (!next) return false;
    auto topic = TelemetryTopic(topic_prefix_, *next);
    if (!topic) {
      listener_.OnTelemetryRefused(next->message_id, topic.error());
      continue;
    }
    window_.push_back(Outgoing{std::move(topic).value(), std::move(next->body),
                               std::move(next->message_id), false});
    next_unsent_ = std::prev(window_.end());
    return true;
  }
  return false;
}

void DeviceSession::Pump() {
  // The source and the listener may call back in (TelemetryReady, Stop): one pump at a time,
  // and the connection checked again after every call out.
  if (pumping_) return;
  pumping_ = true;
  while (connack_ && !renewing_ && in_flight_.size() < config_.max_in_flight) {
    if (next_unsent_ == window_.end() && !TakeFromSource()) break;
    if (!connack_ || next_unsent_ == window_.end()) break;
    auto sent = connection_->Publish(next_unsent_->topic, next_unsent_->body, 1);
    if (!sent) break;  // the connection is failing; its loss event follows
    if (in_flight_.contains(sent.value())) {
      // libmosquitto's 16-bit packet ids wrapped around a message still unacknowledged:
      // its PUBACK could no longer be told apart. Start afresh.
      pumping_ = false;
      ConnectionEnded("packet id reused while still in flight", false);
      return;
    }
    in_flight_[sent.value()] = InFlight{next_unsent_, loop_.NowMs()};
    ++counters_.sent;
    if (next_unsent_->sent_once) ++counters_.resent;
    next_unsent_->sent_once = true;
    billable_this_connection_ = true;
    ++next_unsent_;
  }
  pumping_ = false;
}

void DeviceSession::OnPuback(int packet_id) {
  const auto it = in_flight_.find(packet_id);
  if (it == in_flight_.end()) return;  // a QoS 0 publish (twin request, method response)
  std::string message_id = std::move(it->second.message->message_id);
  window_.erase(it->second.message);
  in_flight_.erase(it);
  ++counters_.delivered;
  HubAnswered();
  listener_.OnDelivered(message_id);
  Pump();
}

void DeviceSession::HubAnswered() {
  // The hub answered a billable operation: whatever the quota was, it is not exhausted now.
  acked_this_connection_ = true;
  quota_strikes_ = 0;
  quota_resume_wall_ms_ = 0;
  backoff_.Reset();
}

void DeviceSession::SendTwinRequests() {
  for (auto& r : twin_requests_) {
    if (!connack_ || renewing_) return;
    if (r.rid.empty() && r.retry_timer == 0) SendTwinRequest(r);
  }
}

bool DeviceSession::SendTwinRequest(TwinRequest& request) {
  request.rid = std::to_string(next_rid_++);
  request.sent_ms = loop_.NowMs();
  std::string topic;
  std::string payload;
  if (request.kind == TwinKind::kReported) {
    topic = "$iothub/twin/PATCH/properties/reported/?$rid=" + request.rid;
    payload = request.patch.dump();
  } else {
    topic = "$iothub/twin/GET/?$rid=" + request.rid;
  }
  if (!connection_->Publish(topic, payload, 0)) {
    request.rid.clear();
    return false;
  }
  billable_this_connection_ = true;
  return true;
}

void DeviceSession::FullGetIfNeeded() {
  if (!connack_ || internal_get_pending_ || !desired_.NeedsFullGet()) return;
  if (!config_.twin || !config_.receive_cloud) return;
  internal_get_pending_ = true;
  twin_requests_.push_front(MakeTwinRequest(TwinKind::kInternalGet, Json(), nullptr, nullptr));
  if (!renewing_) SendTwinRequest(twin_requests_.front());
}

void DeviceSession::RetryTwinLater(std::list<TwinRequest>::iterator it, std::int64_t delay_ms) {
  it->rid.clear();
  it->retry_timer = loop_.RunAfter(delay_ms, [this, it] {
    it->retry_timer = 0;
    if (connack_ && !renewing_) SendTwinRequest(*it);
  });
}

std::int64_t DeviceSession::TwinRetryDelayMs(int attempts) {
  const std::int64_t base = std::min<std::int64_t>(1'000LL << std::min(attempts, 5), 30'000);
  return base / 2 + static_cast<std::int64_t>(random_.Uniform() * static_cast<double>(base) / 2);
}

void DeviceSession::CompleteTwin(std::list<TwinRequest>::iterator it, int status,
                                 std::string_view body, std::int64_t version) {
  TwinRequest& r = *it;
  const bool internal = r.kind == TwinKind::kInternalGet;
  std::optional<Error> error;
  std::optional<Json> doc;
  bool transient = false;
  if (status == 429 || status >= 500 || status == 0) {
    transient = true;
    if (status == 429) {
      ++counters_.throttled;
      backoff_.AtLeast(config_.throttled_floor_ms);
    }
    error = MakeError(status == 429 ? "throttled"
                      : status == 0 ? "timeout"
                                    : "server_error",
                      status == 0
                          ? fmt::format("no twin response within {} ms", config_.twin_timeout_ms)
                          : fmt::format("the hub answered {} to the twin request", status));
  } else if (r.kind != TwinKind::kReported && status == 200) {
    doc = ParseUntrustedJson(body);
    if (!doc || !doc->is_object() || !doc->contains("desired") || !(*doc)["desired"].is_object()) {
      Problem("bad_twin", "the hub's twin document is not valid JSON with a desired section");
      error = MakeError("bad_twin", "the hub sent a malformed twin document");
      doc.reset();
    }
  } else if (r.kind == TwinKind::kReported && (status == 200 || status == 204)) {
    // accepted
  } else {
    error =
        MakeError("twin_rejected", fmt::format("the hub answered {} to the twin {}", status,
                                               r.kind == TwinKind::kReported ? "patch" : "GET"));
  }
  // The session's own GET never gives up (desired properties depend on it), but waits
  // longer each time: every GET counts against the daily quota.
  if (error && (internal || (transient && ++r.attempts < kMaxTwinAttempts))) {
    if (internal) ++r.attempts;
    RetryTwinLater(it, TwinRetryDelayMs(r.attempts));
    return;
  }
  if (r.retry_timer != 0) loop_.Cancel(r.retry_timer);
  TwinRequest done = std::move(r);
  twin_requests_.erase(it);
  if (done.kind != TwinKind::kReported) {
    if (internal) internal_get_pending_ = false;
    if (doc) {
      if (auto change = desired_.OnFullDocument((*doc)["desired"])) listener_.OnDesired(*change);
    }
    if (done.on_twin) done.on_twin(doc ? Result<Json>(std::move(*doc)) : Result<Json>(*error));
  } else if (done.on_reported) {
    done.on_reported(error ? Result<std::int64_t>(*error) : Result<std::int64_t>(version));
  }
}

void DeviceSession::OnMessage(std::string_view topic, std::string_view payload) {
  if (topic.starts_with(kTwinResponsePrefix)) {
    HandleTwinResponse(topic.substr(kTwinResponsePrefix.size()), payload);
  } else if (topic.starts_with(kDesiredPrefix)) {
    HandleDesiredPatch(payload);
  } else if (topic.starts_with(kMethodPrefix)) {
    HandleMethod(topic.substr(kMethodPrefix.size()), payload);
  } else if (topic.starts_with(c2d_prefix_)) {
    std::string_view bag = topic.substr(c2d_prefix_.size());
    if (!bag.empty() && bag.front() == '/') bag.remove_prefix(1);
    HandleCloudMessage(bag, payload);
  } else {
    Problem("unexpected_topic", fmt::format("message on unexpected topic '{}' ignored", topic));
  }
}

void DeviceSession::HandleTwinResponse(std::string_view rest, std::string_view payload) {
  // "{status}/?$rid={rid}[&$version={v}]"
  const std::size_t slash = rest.find('/');
  const auto status = ParseInt(rest.substr(0, slash));
  const std::size_t query = rest.find('?');
  auto bag = ParsePropertyBag(query == std::string_view::npos ? "" : rest.substr(query + 1));
  const auto rid = bag ? FindProperty(*bag, "$rid") : std::nullopt;
  if (!status || !rid || rid->empty()) {
    Problem("bad_twin_response", fmt::format("malformed twin response topic '{}'", rest));
    return;
  }
  // §5: a hub out of quota may answer twin requests 403 with IotHubQuotaExceeded (403002)
  // instead of closing the connection: that is no sign the quota is back.
  const auto answer = *status == 403 ? ParseUntrustedJson(payload) : std::nullopt;
  const bool quota_gone = answer && answer->is_object() && answer->contains("errorCode") &&
                          (*answer)["errorCode"] == 403002;
  if (!quota_gone) HubAnswered();
  const auto it =
      std::find_if(twin_requests_.begin(), twin_requests_.end(),
                   [&](const TwinRequest& r) { return !r.rid.empty() && r.rid == *rid; });
  if (it != twin_requests_.end()) {
    std::int64_t version = 0;
    if (auto v = FindProperty(*bag, "$version")) version = ParseInt(*v).value_or(0);
    CompleteTwin(it, static_cast<int>(*status), payload, version);
  }
  // The callback may have stopped the session or ended the connection.
  if (quota_gone && connack_ && state_ != SessionState::kStopped) {
    DropConnection();
    EnterQuotaExhausted();
  }
}

void DeviceSession::HandleDesiredPatch(std::string_view payload) {
  auto patch = ParseUntrustedJson(payload);
  if (!patch || !patch->is_object() || !patch->contains("$version")) {
    Problem("bad_desired_patch",
            "the hub pushed a desired patch that is not JSON with $version; "
            "fetching the whole twin instead");
    desired_.OnReconnect();  // only a full GET can tell what the patch said
    FullGetIfNeeded();
    return;
  }
  for (const auto& change : desired_.OnPatch(*patch)) listener_.OnDesired(change);
  FullGetIfNeeded();
}

void DeviceSession::HandleMethod(std::string_view rest, std::string_view payload) {
  // "{name}/?$rid={rid}"
  const std::size_t query = rest.find("/?");
  auto bag = ParsePropertyBag(query == std::string_view::npos ? "" : rest.substr(query + 2));
  const auto rid = bag ? FindProperty(*bag, "$rid") : std::nullopt;
  if (query == std::string_view::npos || query == 0 || !rid) {
    Problem("bad_method", fmt::format("malformed method request topic '{}'", rest));
    return;
  }
  auto name = UrlDecode(rest.substr(0, query));
  listener_.OnMethod(
      MethodRequest{name.value_or(std::string(rest.substr(0, query))), *rid, std::string(payload)});
}

void DeviceSession::HandleCloudMessage(std::string_view bag_text, std::string_view payload) {
  if (payload.size() > config_.max_cloud_message_bytes) {
    Problem("cloud_message_too_large",
            fmt::format("dropped a {}-byte cloud-to-device message (limit {})", payload.size(),
                        config_.max_cloud_message_bytes));
    return;
  }
  auto bag = ParsePropertyBag(bag_text);
  if (!bag) {
    Problem("bad_cloud_message",
            "dropped a cloud-to-device message with a malformed property "
            "bag: " +
                bag.error().message);
    return;
  }
  CloudMessage message{std::string(payload), std::move(bag).value(), ""};
  message.message_id = FindProperty(message.properties, kMessageId).value_or("");
  if (!message.message_id.empty()) {
    if (std::find(recent_cloud_ids_.begin(), recent_cloud_ids_.end(), message.message_id) !=
        recent_cloud_ids_.end()) {
      ++counters_.duplicate_cloud_messages;
      return;
    }
    recent_cloud_ids_.push_back(message.message_id);
    if (recent_cloud_ids_.size() > kRecentCloudIds) recent_cloud_ids_.pop_front();
  }
  ++counters_.cloud_messages;
  listener_.OnCloudMessage(message);
}

void DeviceSession::Problem(std::string code, std::string message) {
  ++counters_.problems;
  listener_.OnProblem(MakeError(std::move(code), std::move(message)));
}

}  // namespace iothub::azure
