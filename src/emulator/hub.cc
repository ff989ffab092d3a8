#include "emulator/hub.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "azure/property_bag.h"
#include "azure/sas_token.h"
#include "common/crypto.h"
#include "common/json_depth.h"
#include "common/url.h"

namespace iothub::emulator {
namespace {

constexpr std::int64_t kDefaultMethodTimeoutS = 30;
constexpr std::size_t kMaxMethodPayloadBytes = 128UL * 1024;

std::string NewKey() { return Base64Encode(RandomBytes(32)); }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// IoT Hub prints never-set times as the .NET minimum.
std::string TimeOrMin(std::int64_t ms) {
  return ms == 0 ? "0001-01-01T00:00:00Z" : FormatIsoTime(ms);
}

// Maps a property bag's system keys to the names services see (§3).
std::string SystemPropertyName(std::string_view key) {
  static const std::map<std::string_view, std::string_view> kNames = {
      {"$.mid", "message-id"},
      {"$.cid", "correlation-id"},
      {"$.ct", "content-type"},
      {"$.ce", "content-encoding"},
      {"$.exp", "absolute-expiry-time"},
      {"$.to", "to"},
      {"$.uid", "user-id"},
      {"$.sub", "dt-subject"},
      {"$.ifid", "iothub-interface-id"}};
  auto it = kNames.find(key);
  return it == kNames.end() ? std::string(key) : std::string(it->second);
}

struct ParsedUsername {
  std::string host;
  std::string device_id;
  std::string module_id;
  std::string model_id;
};

// "{host}/{deviceId}/?api-version=..&model-id=..&DeviceClientType=.." (§3); modules add
// "/{moduleId}". The query may be missing.
std::optional<ParsedUsername> ParseUsername(const std::string& username) {
  std::string path = username;
  std::string query;
  if (const auto q = username.find("/?"); q != std::string::npos) {
    path = username.substr(0, q);
    query = username.substr(q + 2);
  }
  while (!path.empty() && path.back() == '/') path.pop_back();
  ParsedUsername out;
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    parts.push_back(path.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty())
    return std::nullopt;
  out.host = parts[0];
  out.device_id = parts[1];
  if (parts.size() == 3) out.module_id = parts[2];
  if (auto model = TopicQueryParam("?" + query, "model-id")) {
    out.model_id = UrlDecode(*model).value_or("");
  }
  return out;
}

// A Digital Twin Model Identifier (§7): "dtmi:" segments of letters, digits and underscores
// (starting with a letter, not ending with '_') separated by ':', then ";" and a version
// number; at most 128 characters.
bool IsValidDtmi(std::string_view id) {
  constexpr std::string_view kScheme = "dtmi:";
  if (id.size() > 128 || id.substr(0, kScheme.size()) != kScheme) return false;
  id.remove_prefix(kScheme.size());
  const auto semicolon = id.rfind(';');
  if (semicolon == std::string_view::npos) return false;
  const std::string_view version = id.substr(semicolon + 1);
  if (version.empty() || version.size() > 9 ||
      !std::all_of(version.begin(), version.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  std::string_view path = id.substr(0, semicolon);
  while (true) {
    const auto colon = path.find(':');
    const std::string_view segment = path.substr(0, colon);
    if (segment.empty() || !std::isalpha(static_cast<unsigned char>(segment.front())) ||
        segment.back() == '_' || !std::all_of(segment.begin(), segment.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        })) {
      return false;
    }
    if (colon == std::string_view::npos) return true;
    path.remove_prefix(colon + 1);
  }
}

}  // namespace

std::vector<SharedAccessPolicy> DefaultPolicies() {
  return {{"iothubowner", NewKey(), NewKey(),
           kRegistryRead | kRegistryWrite | kServiceConnect | kDeviceConnect},
          {"service", NewKey(), NewKey(), kServiceConnect},
          {"device", NewKey(), NewKey(), kDeviceConnect},
          {"registryRead", NewKey(), NewKey(), kRegistryRead},
          {"registryReadWrite", NewKey(), NewKey(), kRegistryRead | kRegistryWrite}};
}

ServiceReply ErrorReply(int status, int code, const std::string& name, const std::string& text,
                        std::int64_t now_ms) {
  ServiceReply reply;
  reply.status = status;
  const std::string tracking = Base64Encode(RandomBytes(12));
  reply.body = {
      {"Message", "ErrorCode:" + name + ";" + text},
      {"ExceptionMessage", "Tracking ID:" + tracking + "-G:0-TimeStamp:" + FormatIsoTime(now_ms)},
      {"errorCode", code}};
  reply.headers["iothub-errorcode"] = name;
  return reply;
}

Hub::Hub(HubConfig config, std::unique_ptr<DeviceRegistry> registry, MessageStore& messages,
         HubEnvironment env)
    : config_(std::move(config)),
      registry_(std::move(registry)),
      messages_(messages),
      env_(std::move(env)),
      quota_(config_.tier, config_.units),
      registry_bucket_(quota_.Limits().registry_per_minute / 60.0,
                       quota_.Limits().registry_per_minute),
      twin_read_bucket_(quota_.Limits().twin_reads_per_second,
                        quota_.Limits().twin_reads_per_second),
      twin_update_bucket_(quota_.Limits().twin_updates_per_second,
                          quota_.Limits().twin_updates_per_second),
      connect_bucket_(quota_.Limits().connections_per_second,
                      quota_.Limits().connections_per_second),
      c2d_bucket_(quota_.Limits().c2d_per_minute / 60.0, quota_.Limits().c2d_per_minute),
      method_bucket_(quota_.Limits().methods_per_second, quota_.Limits().methods_per_second) {
  if (config_.quota_day >= 0) quota_.Restore(config_.quota_day, config_.quota_used);
  // Connection state is not durable: after a restart every device starts disconnected.
  for (const auto& [id, device] : registry_->All()) stats_[id];
}

ServiceReply Hub::Error(int status, int code, const std::string& name,
                        const std::string& text) const {
  return ErrorReply(status, code, name, text, env_.wall.NowMs());
}

const SharedAccessPolicy* Hub::FindPolicy(const std::string& name) const {
  for (const auto& p : config_.policies) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

// ---- device side ----

AuthOutcome Hub::OnConnect(const void* connection, const std::string& client_id,
                           const std::string& username, const std::string& password,
                           bool clean_session) {
  const std::int64_t now_steady = env_.steady.NowMs();
  if (now_steady < refuse_until_ms_) return AuthOutcome::kUnavailable;
  if (!connect_bucket_.TryTake(now_steady)) {
    ++throttled_;
    return AuthOutcome::kUnavailable;
  }
  auto refuse = [&](const std::string& device_id) {
    if (registry_->Find(device_id)) ++stats_[device_id].refused_connects;
    return AuthOutcome::kNotAuthorized;
  };
  auto user = ParseUsername(username);
  if (!user || !EqualsIgnoreCase(user->host, config_.host_name)) return refuse(client_id);
  if (!user->module_id.empty() || user->device_id != client_id) return refuse(client_id);
  if (!user->model_id.empty() && !IsValidDtmi(user->model_id)) return refuse(client_id);
  Device* device = registry_->Find(client_id);
  if (device == nullptr || !device->enabled || device->auth_type != "sas") return refuse(client_id);
  auto token = azure::ParseSasToken(password);
  if (!token) return refuse(client_id);
  const std::int64_t now_s = env_.wall.NowSeconds();
  if (token->expiry <= now_s) return refuse(client_id);
  const std::string device_resource = config_.host_name + "/devices/" + client_id;
  std::string resource = token->resource;
  while (!resource.empty() && resource.back() == '/') resource.pop_back();
  bool valid = false;
  if (token->policy.empty()) {
    valid = EqualsIgnoreCase(resource, device_resource) &&
            (azure::VerifySasSignature(*token, device->primary_key) ||
             azure::VerifySasSignature(*token, device->secondary_key));
  } else if (const SharedAccessPolicy* policy = FindPolicy(token->policy);
             policy != nullptr && (policy->rights & kDeviceConnect) != 0) {
    valid = (EqualsIgnoreCase(resource, device_resource) ||
             EqualsIgnoreCase(resource, config_.host_name)) &&
            (azure::VerifySasSignature(*token, policy->primary_key) ||
             azure::VerifySasSignature(*token, policy->secondary_key));
  }
  if (!valid) return refuse(client_id);

  Session& session = sessions_[client_id];
  session = Session{};
  session.connection = connection;
  session.token_expiry_s = token->expiry;
  session.clean_session = clean_session;
  session.policy_token = !token->policy.empty();
  session.connected_ms = env_.wall.NowMs();
  bool dirty = false;
  if (clean_session && device->subscriptions != 0) {
    device->subscriptions = 0;
    dirty = true;
  }
  if (device->model_id != user->model_id) {
    device->model_id = user->model_id;
    dirty = true;
  }
  device->last_activity_ms = env_.wall.NowMs();
  if (dirty) (void)registry_->Save(client_id);
  ++stats_[client_id].connects;
  return AuthOutcome::kAccepted;
}

Hub::Session* Hub::SessionFor(const void* connection, const std::string& client_id) {
  auto it = sessions_.find(client_id);
  if (it == sessions_.end() || it->second.connection != connection) return nullptr;
  return &it->second;
}

bool Hub::Subscribed(const Device& device, Subscription s) const {
  return (device.subscriptions & static_cast<unsigned>(s)) != 0;
}

bool Hub::OnSubscribe(const void* connection, const std::string& client_id,
                      const std::string& filter) {
  Session* session = SessionFor(connection, client_id);
  Device* device = registry_->Find(client_id);
  if (session == nullptr || device == nullptr) return false;
  const Subscription kind = ClassifySubscription(client_id, filter);
  if (kind == Subscription::kNone) {
    ++stats_[client_id].closed_by_hub;
    return false;
  }
  if (!Subscribed(*device, kind)) {
    device->subscriptions |= static_cast<unsigned>(kind);
    (void)registry_->Save(client_id);
  }
  // Deliveries that waited for this subscription go out on the next tick, after the SUBACK.
  session->flush_pending = true;
  return true;
}

void Hub::OnUnsubscribe(const void* connection, const std::string& client_id,
                        const std::string& filter) {
  Device* device = registry_->Find(client_id);
  if (SessionFor(connection, client_id) == nullptr || device == nullptr) return;
  const auto bit = static_cast<unsigned>(ClassifySubscription(client_id, filter));
  if ((device->subscriptions & bit) != 0) {
    device->subscriptions &= ~bit;
    (void)registry_->Save(client_id);
  }
}

void Hub::Shutdown() {
  shutting_down_ = true;
  auto pending = std::move(methods_);
  methods_.clear();
  for (auto& [rid, p] : pending) {
    p.done(Error(503, 503001, "ServiceUnavailable", "The hub is shutting down."));
  }
}

void Hub::OnDisconnect(const void* connection, const std::string& client_id) {
  if (SessionFor(connection, client_id) == nullptr) return;  // an older, replaced connection
  sessions_.erase(client_id);
  if (Device* device = registry_->Find(client_id)) {
    device->last_activity_ms = env_.wall.NowMs();
  }
}

void Hub::CloseDevice(const std::string& device_id) {
  ++stats_[device_id].closed_by_hub;
  env_.broker.Kick(device_id);
}

bool Hub::ChargeQuota(std::int64_t bytes) {
  if (quota_.Charge(quota_.MessagesFor(bytes), env_.wall.NowMs())) return true;
  ++quota_rejections_;
  return false;
}

PublishVerdict Hub::OnPublish(const void* connection, const std::string& client_id,
                              const std::string& topic, const std::string& payload, int /*qos*/,
                              bool retain) {
  Session* session = SessionFor(connection, client_id);
  Device* device = registry_->Find(client_id);
  if (session == nullptr || device == nullptr) return PublishVerdict::kClose;
  device->last_activity_ms = env_.wall.NowMs();
  for (const std::string& key : {client_id, std::string()}) {
    auto it = withhold_acks_.find(key);
    if (it != withhold_acks_.end() && it->second != 0) {
      if (it->second > 0) --it->second;
      ++stats_[client_id].closed_by_hub;
      return PublishVerdict::kClose;  // dropped without PUBACK
    }
  }
  const DevicePublish kind = ClassifyPublish(client_id, topic);
  if (std::holds_alternative<ForbiddenTopic>(kind)) {
    ++stats_[client_id].closed_by_hub;
    return PublishVerdict::kClose;
  }
  // §5: once the quota is gone the hub stops acknowledging and closes the connection.
  if (quota_.Exhausted(env_.wall.NowMs())) {
    ++quota_rejections_;
    ++stats_[client_id].closed_by_hub;
    return PublishVerdict::kClose;
  }
  if (const auto* t = std::get_if<TelemetryTopic>(&kind)) {
    return HandleTelemetry(*device, *t, payload, retain);
  }
  if (const auto* t = std::get_if<TwinGetTopic>(&kind)) return HandleTwinGet(*device, t->rid);
  if (const auto* t = std::get_if<TwinReportedPatchTopic>(&kind)) {
    return HandleReportedPatch(*device, t->rid, payload);
  }
  return HandleMethodResponse(*device, std::get<MethodResponseTopic>(kind), payload);
}

PublishVerdict Hub::HandleTelemetry(Device& device, const TelemetryTopic& t,
                                    const std::string& payload, bool retain) {
  auto bag = azure::ParsePropertyBag(t.bag);
  if (!bag) return PublishVerdict::kClose;
  std::size_t size = payload.size();
  for (const auto& p : *bag) size += p.name.size() + (p.value ? p.value->size() : 0);
  if (size > config_.d2c_max_bytes) {
    ++stats_[device.id].closed_by_hub;
    return PublishVerdict::kClose;
  }
  if (!ChargeQuota(static_cast<std::int64_t>(size))) {
    ++stats_[device.id].closed_by_hub;
    return PublishVerdict::kClose;
  }
  const std::int64_t now = env_.wall.NowMs();
  StoredMessage m;
  m.device_id = device.id;
  m.enqueued_ms = now;
  m.body = payload;
  for (const auto& p : *bag) {
    const Json value = p.value ? Json(*p.value) : Json(nullptr);
    if (azure::IsSystemProperty(p.name)) {
      m.system_properties[SystemPropertyName(p.name)] = value;
    } else {
      m.properties[p.name] = value;
    }
  }
  if (retain) m.properties["mqtt-retain"] = "true";
  m.system_properties["iothub-connection-device-id"] = device.id;
  m.system_properties["iothub-connection-auth-method"] =
      fmt::format(R"({{"scope":"{}","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}})",
                  sessions_[device.id].policy_token ? "hub" : "device");
  m.system_properties["iothub-connection-auth-generation-id"] = device.generation_id;
  m.system_properties["iothub-enqueuedtime"] = FormatIsoTime(now);
  m.system_properties["iothub-message-source"] = "Telemetry";
  if (!device.model_id.empty()) m.system_properties["dt-dataschema"] = device.model_id;
  // Each property is a JSON map node besides its text: count ~64 bytes of overhead for it.
  m.footprint = size + 64 * (bag->size() + m.system_properties.size()) + 512;
  messages_.Append(std::move(m));
  auto& s = stats_[device.id];
  ++s.d2c_messages;
  s.d2c_bytes += static_cast<std::int64_t>(payload.size());
  return PublishVerdict::kAccept;
}

void Hub::TwinError(Device& device, const std::string& rid, int status, int code,
                    const std::string& message) {
  if (!Subscribed(device, Subscription::kTwinResponses)) return;
  const Json body = {{"errorCode", code}, {"message", message}};
  // `replace`: the message may quote a device-chosen key cut in the middle of a character.
  env_.broker.Publish(device.id, fmt::format("$iothub/twin/res/{}/?$rid={}", status, rid),
                      body.dump(-1, ' ', false, Json::error_handler_t::replace), 0);
}

PublishVerdict Hub::HandleTwinGet(Device& device, const std::string& rid) {
  if (!twin_read_bucket_.TryTake(env_.steady.NowMs())) {
    ++throttled_;
    TwinError(device, rid, 429, 429001, "Twin read throttled");
    return PublishVerdict::kAccept;
  }
  const Json twin = {{"desired", SectionForDevice(device.desired)},
                     {"reported", SectionForDevice(device.reported)}};
  std::string body = twin.dump();
  if (!ChargeQuota(static_cast<std::int64_t>(body.size()))) return PublishVerdict::kClose;
  ++stats_[device.id].twin_gets;
  if (Subscribed(device, Subscription::kTwinResponses)) {
    env_.broker.Publish(device.id, fmt::format("$iothub/twin/res/200/?$rid={}", rid),
                        std::move(body), 0);
  }
  return PublishVerdict::kAccept;
}

void Hub::TouchTwin(Device& device) {
  ++device.twin_version;
  ++device.twin_etag_counter;
}

PublishVerdict Hub::HandleReportedPatch(Device& device, const std::string& rid,
                                        const std::string& payload) {
  if (!twin_update_bucket_.TryTake(env_.steady.NowMs())) {
    ++throttled_;
    TwinError(device, rid, 429, 429001, "Twin update throttled");
    return PublishVerdict::kAccept;
  }
  if (!ChargeQuota(static_cast<std::int64_t>(payload.size()))) return PublishVerdict::kClose;
  const Json patch = JsonDepthWithin(payload, kMaxJsonDepth) ? Json::parse(payload, nullptr, false)
                                                             : Json(Json::value_t::discarded);
  if (patch.is_discarded()) {
    TwinError(device, rid, 400, 400004, "Reported properties patch is not valid JSON");
    return PublishVerdict::kAccept;
  }
  Status applied = ApplyTwinPatch(device.reported, patch, env_.wall.NowMs());
  if (!applied) {
    TwinError(device, rid, 400, 400004, applied.error().message);
    return PublishVerdict::kAccept;
  }
  TouchTwin(device);
  (void)registry_->Save(device.id);
  ++stats_[device.id].reported_patches;
  if (Subscribed(device, Subscription::kTwinResponses)) {
    env_.broker.Publish(
        device.id,
        fmt::format("$iothub/twin/res/204/?$rid={}&$version={}", rid, device.reported.version), "",
        0);
  }
  return PublishVerdict::kAccept;
}

PublishVerdict Hub::HandleMethodResponse(Device& device, const MethodResponseTopic& t,
                                         const std::string& payload) {
  auto it = methods_.find(t.rid);
  // A response nobody waits for (late, or unknown $rid) is ignored, as the hub does.
  if (it == methods_.end() || it->second.device_id != device.id || !it->second.sent) {
    return PublishVerdict::kAccept;
  }
  (void)ChargeQuota(static_cast<std::int64_t>(payload.size()));
  ServiceReply reply;
  auto done = std::move(it->second.done);
  methods_.erase(it);
  if (payload.size() > kMaxMethodPayloadBytes || !JsonDepthWithin(payload, kMaxJsonDepth)) {
    done(Error(400, 400004, "BadDeviceResponse",
               "the device's method response is larger than 128 KB or nested too deeply"));
    return PublishVerdict::kAccept;
  }
  Json parsed = payload.empty() ? Json(nullptr) : Json::parse(payload, nullptr, false);
  if (parsed.is_discarded()) parsed = payload;  // not JSON: passed on as a string
  reply.body = {{"status", t.status}, {"payload", std::move(parsed)}};
  done(std::move(reply));
  return PublishVerdict::kAccept;
}

void Hub::OnTick() {
  const std::int64_t now_s = env_.wall.NowSeconds();
  const std::int64_t now_steady = env_.steady.NowMs();
  std::vector<std::string> expired;
  std::vector<std::string> flush;
  for (auto& [id, session] : sessions_) {
    if (session.token_expiry_s <= now_s) expired.push_back(id);
    if (session.flush_pending) {
      session.flush_pending = false;
      flush.push_back(id);
    }
  }
  for (const auto& id : expired) {
    // §2: a live connection is closed when its token expires.
    sessions_.erase(id);
    CloseDevice(id);
  }
  for (const auto& id : flush) {
    if (!sessions_.count(id)) continue;
    FlushCloudToDevice(id);
    DispatchWaitingMethods(id);
  }
  // Cloud-to-device messages past their TTL leave the queue.
  const std::int64_t now_ms = env_.wall.NowMs();
  for (auto& [id, queue] : c2d_) {
    const auto before = queue.size();
    std::erase_if(queue, [&](const CloudMessage& m) { return m.expiry_ms <= now_ms; });
    stats_[id].c2d_expired += static_cast<std::int64_t>(before - queue.size());
  }
  // Method invocations that ran out of time.
  for (auto it = methods_.begin(); it != methods_.end();) {
    PendingMethod& p = it->second;
    if (!p.sent && now_steady >= p.connect_deadline_ms) {
      auto done = std::move(p.done);
      it = methods_.erase(it);
      done(Error(404, 404103, "DeviceNotOnline", "Timed out waiting for device to connect."));
    } else if (p.sent && now_steady >= p.response_deadline_ms) {
      auto done = std::move(p.done);
      it = methods_.erase(it);
      done(Error(504, 504101, "GatewayTimeout", "Timed out waiting for the response from device."));
    } else {
      ++it;
    }
  }
}

void Hub::FlushCloudToDevice(const std::string& device_id) {
  Device* device = registry_->Find(device_id);
  auto q = c2d_.find(device_id);
  if (device == nullptr || q == c2d_.end() || !Subscribed(*device, Subscription::kCloudToDevice)) {
    return;
  }
  const std::int64_t now = env_.wall.NowMs();
  while (!q->second.empty()) {
    CloudMessage m = std::move(q->second.front());
    q->second.pop_front();
    if (m.expiry_ms <= now) {
      ++stats_[device_id].c2d_expired;
      continue;
    }
    azure::PropertyBag bag;
    bag.push_back({"$.mid", m.message_id});
    bag.push_back({"$.to", "/devices/" + device_id + "/messages/devicebound"});
    bag.push_back({"$.exp", FormatIsoTime(m.expiry_ms)});
    for (auto& [k, v] : m.properties) bag.push_back({k, v});
    env_.broker.Publish(
        device_id,
        "devices/" + device_id + "/messages/devicebound/" + azure::EncodePropertyBag(bag),
        std::move(m.body), 1);
    ++stats_[device_id].c2d_delivered;
  }
}

void Hub::DispatchWaitingMethods(const std::string& device_id) {
  Device* device = registry_->Find(device_id);
  if (device == nullptr || !Subscribed(*device, Subscription::kMethods)) return;
  for (auto& [rid, pending] : methods_) {
    if (pending.device_id == device_id && !pending.sent) SendMethod(rid, pending);
  }
}

void Hub::SendMethod(const std::string& rid, PendingMethod& pending) {
  pending.sent = true;
  pending.response_deadline_ms = env_.steady.NowMs() + pending.response_timeout_ms;
  (void)ChargeQuota(static_cast<std::int64_t>(pending.payload.size()));
  env_.broker.Publish(pending.device_id,
                      fmt::format("$iothub/methods/POST/{}/?$rid={}", pending.name, rid),
                      pending.payload, 0);
}

void Hub::PushDesired(Device& device, const Json& patch) {
  if (!sessions_.count(device.id) || !Subscribed(device, Subscription::kDesiredPatches)) return;
  Json body = patch;
  body["$version"] = device.desired.version;
  std::string text = body.dump();
  (void)ChargeQuota(static_cast<std::int64_t>(text.size()));
  ++stats_[device.id].desired_pushes;
  env_.broker.Publish(
      device.id,
      fmt::format("$iothub/twin/PATCH/properties/desired/?$version={}", device.desired.version),
      std::move(text), 0);
}

// ---- service side ----

std::string Hub::QuotaSnapshot() const { return fmt::format("{} {}", quota_.day(), quota_.used()); }

bool Hub::AllowRegistryOperation() {
  if (registry_bucket_.TryTake(env_.steady.NowMs())) return true;
  ++throttled_;
  return false;
}

std::string Hub::ConnectionState(const std::string& id) const {
  return sessions_.count(id) ? "Connected" : "Disconnected";
}

Json Hub::DeviceJson(const Device& d) const {
  const auto queue = c2d_.find(d.id);
  Json j = {{"deviceId", d.id},
            {"moduleId", nullptr},
            {"generationId", d.generation_id},
            {"etag", d.Etag()},
            {"connectionState", ConnectionState(d.id)},
            {"status", d.enabled ? "enabled" : "disabled"},
            {"statusReason", d.status_reason.empty() ? Json(nullptr) : Json(d.status_reason)},
            {"connectionStateUpdatedTime", TimeOrMin(d.last_activity_ms)},
            {"statusUpdatedTime", TimeOrMin(d.status_updated_ms)},
            {"lastActivityTime", TimeOrMin(d.last_activity_ms)},
            {"cloudToDeviceMessageCount", queue == c2d_.end() ? 0 : queue->second.size()},
            {"authentication",
             {{"symmetricKey",
               {{"primaryKey", d.auth_type == "sas" ? Json(d.primary_key) : Json(nullptr)},
                {"secondaryKey", d.auth_type == "sas" ? Json(d.secondary_key) : Json(nullptr)}}},
              {"x509Thumbprint",
               {{"primaryThumbprint",
                 d.primary_thumbprint.empty() ? Json(nullptr) : Json(d.primary_thumbprint)},
                {"secondaryThumbprint",
                 d.secondary_thumbprint.empty() ? Json(nullptr) : Json(d.secondary_thumbprint)}}},
              {"type", d.auth_type}}},
            {"capabilities", {{"iotEdge", d.iot_edge}}}};
  return j;
}

Json Hub::TwinJson(const Device& d) const {
  return {
      {"deviceId", d.id},
      {"etag", d.TwinEtag()},
      {"deviceEtag", d.Etag()},
      {"status", d.enabled ? "enabled" : "disabled"},
      {"statusUpdateTime", TimeOrMin(d.status_updated_ms)},
      {"connectionState", ConnectionState(d.id)},
      {"lastActivityTime", TimeOrMin(d.last_activity_ms)},
      {"cloudToDeviceMessageCount", c2d_.count(d.id) ? c2d_.at(d.id).size() : 0},
      {"authenticationType", d.auth_type},
      {"x509Thumbprint", {{"primaryThumbprint", nullptr}, {"secondaryThumbprint", nullptr}}},
      {"modelId", d.model_id},
      {"version", d.twin_version},
      {"tags", d.tags.values},
      {"properties",
       {{"desired", SectionForService(d.desired)}, {"reported", SectionForService(d.reported)}}},
      {"capabilities", {{"iotEdge", d.iot_edge}}}};
}

ServiceReply Hub::ApplyDeviceUpdate(Device& d, const Json& body) {
  if (body.contains("status")) {
    const std::string status = body.value("status", "");
    if (status != "enabled" && status != "disabled") {
      return Error(400, 400004, "ArgumentInvalid", "status must be 'enabled' or 'disabled'");
    }
    const bool enabled = status == "enabled";
    if (enabled != d.enabled) d.status_updated_ms = env_.wall.NowMs();
    d.enabled = enabled;
  }
  if (body.contains("statusReason") && body["statusReason"].is_string()) {
    d.status_reason = body["statusReason"].get<std::string>();
  }
  if (body.contains("capabilities") && body["capabilities"].is_object()) {
    d.iot_edge = body["capabilities"].value("iotEdge", false);
  }
  if (body.contains("authentication") && body["authentication"].is_object()) {
    const Json& auth = body["authentication"];
    std::string type = auth.value("type", "sas");
    if (type != "sas" && type != "selfSigned" && type != "certificateAuthority" && type != "none") {
      return Error(400, 400004, "ArgumentInvalid", "unknown authentication type '" + type + "'");
    }
    d.auth_type = type;
    if (type == "sas") {
      const Json sk = auth.value("symmetricKey", Json::object());
      auto key = [&](const char* name, std::string& out) -> bool {
        const std::string given =
            sk.contains(name) && sk[name].is_string() ? sk[name].get<std::string>() : "";
        if (given.empty()) {
          if (out.empty()) out = NewKey();
          return true;
        }
        auto raw = Base64Decode(given);
        if (!raw || raw->size() < 16 || raw->size() > 64) return false;
        out = given;
        return true;
      };
      if (!key("primaryKey", d.primary_key) || !key("secondaryKey", d.secondary_key)) {
        return Error(400, 400004, "ArgumentInvalid",
                     "symmetric keys must be base64 of 16 to 64 bytes");
      }
    } else {
      d.primary_key.clear();
      d.secondary_key.clear();
      const Json tp = auth.value("x509Thumbprint", Json::object());
      // Thumbprints are optional strings; null (as the SDKs send) means none.
      auto thumbprint = [&](const char* name) {
        return tp.contains(name) && tp[name].is_string() ? tp[name].get<std::string>() : "";
      };
      d.primary_thumbprint = thumbprint("primaryThumbprint");
      d.secondary_thumbprint = thumbprint("secondaryThumbprint");
    }
  } else if (d.auth_type == "sas") {
    if (d.primary_key.empty()) d.primary_key = NewKey();
    if (d.secondary_key.empty()) d.secondary_key = NewKey();
  }
  ++d.etag_counter;
  return ServiceReply{};
}

ServiceReply Hub::CreateDevice(const std::string& id, const Json& body) {
  if (config_.tier == Tier::kFree && registry_->Count() >= 500) {
    return Error(403, 403005, "TooManyDevices", "The free tier allows at most 500 devices.");
  }
  Device d;
  d.id = id;
  d.generation_id = fmt::format(
      "638{:015}", static_cast<std::uint64_t>(env_.wall.NowMs()) % 1'000'000'000'000'000ULL);
  d.etag_counter = 0;
  d.status_updated_ms = 0;
  d.desired.last_updated_ms = d.reported.last_updated_ms = env_.wall.NowMs();
  d.etag_counter = -1;  // ApplyDeviceUpdate bumps it to 0, the first etag ("MA==")
  ServiceReply applied = ApplyDeviceUpdate(d, body);
  if (applied.status != 200) return applied;
  Status saved = registry_->Put(d);
  if (!saved) return Error(500, 500001, "ServerError", saved.error().message);
  stats_[id];
  return ServiceReply{200, DeviceJson(*registry_->Find(id)), {}};
}

ServiceReply Hub::PutDeviceUnchecked(const std::string& id, const Json& body,
                                     const std::string& if_match) {
  if (!IsValidDeviceId(id)) {
    return Error(400, 400004, "ArgumentInvalid",
                 "DeviceId '" + id.substr(0, 200) +
                     "' is invalid: up to 128 characters of letters, digits and -.%_*?!(),:=@$'");
  }
  if (!body.is_object())
    return Error(400, 400004, "ArgumentInvalid", "request body must be a device object");
  if (body.contains("deviceId") && body["deviceId"] != id) {
    return Error(400, 400004, "ArgumentInvalid", "deviceId in the body does not match the URL");
  }
  Device* existing = registry_->Find(id);
  if (if_match.empty()) {
    if (existing != nullptr) {
      return Error(409, 409001, "DeviceAlreadyExists",
                   "A device with ID '" + id + "' is already registered.");
    }
    return CreateDevice(id, body);
  }
  if (existing == nullptr) {
    return Error(404, 404001, "DeviceNotFound", "Device '" + id + "' is not registered.");
  }
  if (if_match != "*" && if_match != "\"*\"" && if_match != existing->Etag() &&
      if_match != "\"" + existing->Etag() + "\"") {
    return Error(412, 412002, "PreconditionFailed",
                 "Precondition failed: device etag does not match.");
  }
  Device updated = *existing;
  ServiceReply applied = ApplyDeviceUpdate(updated, body);
  if (applied.status != 200) return applied;
  const bool disabled_now = existing->enabled && !updated.enabled;
  Status saved = registry_->Put(updated);
  if (!saved) return Error(500, 500001, "ServerError", saved.error().message);
  if (disabled_now && sessions_.count(id)) {
    sessions_.erase(id);
    CloseDevice(id);
  }
  return ServiceReply{200, DeviceJson(*registry_->Find(id)), {}};
}

ServiceReply Hub::GetDevice(const std::string& id) {
  const Device* d = registry_->Find(id);
  if (d == nullptr)
    return Error(404, 404001, "DeviceNotFound", "Device '" + id + "' is not registered.");
  return ServiceReply{200, DeviceJson(*d), {}};
}

ServiceReply Hub::ListDevices(std::size_t top) {
  Json list = Json::array();
  for (const auto& [id, d] : registry_->All()) {
    if (list.size() >= top) break;
    list.push_back(DeviceJson(d));
  }
  return ServiceReply{200, std::move(list), {}};
}

ServiceReply Hub::DeleteDevice(const std::string& id, const std::string& if_match) {
  const Device* d = registry_->Find(id);
  if (d == nullptr)
    return Error(404, 404001, "DeviceNotFound", "Device '" + id + "' is not registered.");
  if (!if_match.empty() && if_match != "*" && if_match != "\"*\"" && if_match != d->Etag() &&
      if_match != "\"" + d->Etag() + "\"") {
    return Error(412, 412002, "PreconditionFailed",
                 "Precondition failed: device etag does not match.");
  }
  Status removed = registry_->Remove(id);
  if (!removed) return Error(500, 500001, "ServerError", removed.error().message);
  c2d_.erase(id);
  stats_.erase(id);
  if (sessions_.count(id)) {
    sessions_.erase(id);
    env_.broker.Kick(id);
  }
  return ServiceReply{204, Json(), {}};
}

ServiceReply Hub::BulkDevicesUnchecked(const Json& body) {
  if (!body.is_array() || body.empty() || body.size() > 100) {
    return Error(400, 400004, "ArgumentInvalid", "bulk registry operations take 1 to 100 devices");
  }
  Json errors = Json::array();
  for (const Json& entry : body) {
    if (!entry.is_object())
      return Error(400, 400004, "ArgumentInvalid", "bulk entries must be objects");
    const std::string id = entry.value("id", entry.value("deviceId", ""));
    const std::string etag = entry.value("eTag", "");
    std::string mode = entry.value("importMode", "create");
    std::transform(mode.begin(), mode.end(), mode.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    Json device = entry;  // the entry is a device description plus the bulk fields
    for (const char* bulk_field : {"id", "deviceId", "importMode", "eTag"})
      device.erase(bulk_field);
    ServiceReply r;
    if (mode == "create") {
      r = PutDevice(id, device, "");
    } else if ((mode == "updateifmatchetag" || mode == "deleteifmatchetag") && etag.empty()) {
      r = Error(400, 400004, "ArgumentInvalid", "importMode '" + mode + "' needs an eTag");
    } else if (mode == "update" || mode == "updateifmatchetag") {
      r = PutDevice(id, device, mode == "update" ? "*" : etag);
    } else if (mode == "createorupdate") {
      r = PutDevice(id, device, registry_->Find(id) ? "*" : "");
    } else if (mode == "delete" || mode == "deleteifmatchetag") {
      r = DeleteDevice(id, mode == "delete" ? "*" : etag);
    } else {
      r = Error(400, 400004, "ArgumentInvalid", "unknown importMode '" + mode + "'");
    }
    if (r.status >= 400) {
      errors.push_back({{"deviceId", id},
                        {"errorCode", r.headers["iothub-errorcode"]},
                        {"errorStatus", r.body.value("Message", "")}});
    }
  }
  const bool ok = errors.empty();
  return ServiceReply{
      ok ? 200 : 400, {{"isSuccessful", ok}, {"errors", errors}, {"warnings", Json::array()}}, {}};
}

ServiceReply Hub::GetTwin(const std::string& id) {
  const Device* d = registry_->Find(id);
  if (d == nullptr)
    return Error(404, 404001, "DeviceNotFound", "Device '" + id + "' is not registered.");
  return ServiceReply{200, TwinJson(*d), {{"ETag", "\"" + d->TwinEtag() + "\""}}};
}

ServiceReply Hub::UpdateTwinUnchecked(const std::string& id, const Json& body,
                                      const std::string& if_match, bool replace) {
  Device* d = registry_->Find(id);
  if (d == nullptr)
    return Error(404, 404001, "DeviceNotFound", "Device '" + id + "' is not registered.");
  if (!body.is_object())
    return Error(400, 400004, "ArgumentInvalid", "twin body must be a JSON object");
  if (!if_match.empty() && if_match != "*" && if_match != "\"*\"" && if_match != d->TwinEtag() &&
      if_match != "\"" + d->TwinEtag() + "\"") {
    return Error(412, 412002, "PreconditionFailed",
                 "Precondition failed: twin etag does not match.");
  }
  if (!twin_update_bucket_.TryTake(env_.steady.NowMs())) {
    ++throttled_;
    return Error(429, 429001, "ThrottlingException", "Twin updates are throttled.");
  }
  const std::int64_t now = env_.wall.NowMs();
  // A desired change notifies the device, a billable operation (§5).
  const bool changes_desired = body.contains("properties") && body["properties"].is_object() &&
                               body["properties"].contains("desired");
  if (changes_desired && quota_.Exhausted(now)) {
    ++quota_rejections_;
    return Error(403, 403002, "IotHubQuotaExceeded",
                 "Total number of messages on IotHub exceeded the allocated quota.");
  }
  Device next = *d;
  Json desired_patch;
  if (body.contains("tags") && !body["tags"].is_null()) {
    Status s = replace ? ReplaceTwinSection(next.tags, body["tags"], now, kTagLimits)
                       : ApplyTwinPatch(next.tags, body["tags"], now, kTagLimits);
    if (!s) return Error(400, 400004, "ArgumentInvalid", s.error().message);
  } else if (replace) {
    (void)ReplaceTwinSection(next.tags, Json::object(), now);
  }
  const Json props = body.value("properties", Json::object());
  if (!props.is_object())
    return Error(400, 400004, "ArgumentInvalid", "properties must be an object");
  if (props.contains("reported")) {
    return Error(400, 400004, "ArgumentInvalid",
                 "reported properties can only be changed by the device");
  }
  if (props.contains("desired") && !props["desired"].is_null()) {
    Json patch = props["desired"];
    if (patch.is_object()) {
      patch.erase("$metadata");
      patch.erase("$version");
    }
    Status s = replace ? ReplaceTwinSection(next.desired, patch, now)
                       : ApplyTwinPatch(next.desired, patch, now);
    if (!s) return Error(400, 400004, "ArgumentInvalid", s.error().message);
    desired_patch = replace ? next.desired.values : patch;
  }
  TouchTwin(next);
  Status saved = registry_->Put(next);
  if (!saved) return Error(500, 500001, "ServerError", saved.error().message);
  d = registry_->Find(id);
  if (!desired_patch.is_null()) PushDesired(*d, desired_patch);
  return ServiceReply{200, TwinJson(*d), {{"ETag", "\"" + d->TwinEtag() + "\""}}};
}

void Hub::InvokeMethodUnchecked(const std::string& id, const Json& body,
                                std::function<void(ServiceReply)>& done) {
  if (shutting_down_) {
    return done(Error(503, 503001, "ServiceUnavailable", "The hub is shutting down."));
  }
  const Device* d = registry_->Find(id);
  if (d == nullptr) {
    return done(Error(404, 404001, "DeviceNotFound", "Device '" + id + "' is not registered."));
  }
  if (!body.is_object() || !body.contains("methodName") || !body["methodName"].is_string() ||
      body["methodName"].get<std::string>().empty()) {
    return done(Error(400, 400004, "ArgumentInvalid", "methodName is required"));
  }
  auto seconds = [&](const char* name, std::int64_t fallback) -> std::optional<std::int64_t> {
    if (!body.contains(name) || body[name].is_null()) return fallback;
    if (!body[name].is_number_integer()) return std::nullopt;
    return body[name].get<std::int64_t>();
  };
  const auto response_timeout = seconds("responseTimeoutInSeconds", kDefaultMethodTimeoutS);
  const auto connect_timeout = seconds("connectTimeoutInSeconds", 0);
  if (!response_timeout || *response_timeout < 5 || *response_timeout > 300) {
    return done(Error(400, 400027, "ArgumentInvalid",
                      "responseTimeoutInSeconds must be between 5 and 300"));
  }
  if (!connect_timeout || *connect_timeout < 0 || *connect_timeout > 300) {
    return done(
        Error(400, 400027, "ArgumentInvalid", "connectTimeoutInSeconds must be between 0 and 300"));
  }
  const std::string payload = body.contains("payload") ? body["payload"].dump() : "null";
  if (payload.size() > kMaxMethodPayloadBytes) {
    return done(Error(413, 413001, "MessageTooLarge", "method payload exceeds 128 KB"));
  }
  if (!method_bucket_.TryTake(env_.steady.NowMs())) {
    ++throttled_;
    return done(Error(429, 429001, "ThrottlingException", "Method invocations are throttled."));
  }
  if (quota_.Exhausted(env_.wall.NowMs())) {
    ++quota_rejections_;
    return done(Error(403, 403002, "IotHubQuotaExceeded",
                      "Total number of messages on IotHub exceeded the allocated quota."));
  }
  const bool online = sessions_.count(id) && Subscribed(*d, Subscription::kMethods);
  if (!online && *connect_timeout == 0) {
    return done(Error(404, 404103, "DeviceNotOnline", "Timed out waiting for device to connect."));
  }
  PendingMethod pending;
  pending.device_id = id;
  pending.name = body["methodName"].get<std::string>();
  pending.payload = payload;
  pending.connect_deadline_ms = env_.steady.NowMs() + *connect_timeout * 1000;
  pending.response_timeout_ms = *response_timeout * 1000;
  pending.done = std::move(done);
  ++stats_[id].method_calls;
  const std::string rid = fmt::format("{:x}", next_rid_++);
  auto [it, inserted] = methods_.emplace(rid, std::move(pending));
  if (online) SendMethod(rid, it->second);
}

ServiceReply Hub::SendCloudToDeviceUnchecked(const std::string& id, const Json& body) {
  if (registry_->Find(id) == nullptr) {
    return Error(404, 404001, "DeviceNotFound", "Device '" + id + "' is not registered.");
  }
  if (!body.is_object() || !body.contains("body") || !body["body"].is_string()) {
    return Error(400, 400004, "ArgumentInvalid", "body must be {\"body\":\"<text>\",...}");
  }
  CloudMessage m;
  m.body = body["body"].get<std::string>();
  m.message_id = body.value("messageId", "");
  if (m.message_id.empty()) m.message_id = NewUuid();
  std::size_t size = m.body.size();
  if (body.contains("properties")) {
    if (!body["properties"].is_object())
      return Error(400, 400004, "ArgumentInvalid", "properties must be an object of strings");
    for (const auto& [k, v] : body["properties"].items()) {
      if (!v.is_string())
        return Error(400, 400004, "ArgumentInvalid", "property '" + k + "' must be a string");
      m.properties.emplace_back(k, v.get<std::string>());
      size += k.size() + v.get_ref<const std::string&>().size();
    }
  }
  if (size > config_.c2d_max_bytes) {
    return Error(413, 413001, "MessageTooLarge", "cloud-to-device messages are limited to 64 KB");
  }
  std::int64_t ttl_ms = config_.c2d_default_ttl_ms;
  if (body.contains("ttlSeconds")) {
    // IoT Hub allows cloud-to-device TTLs up to two days.
    if (!body["ttlSeconds"].is_number_integer() || body["ttlSeconds"].get<std::int64_t>() < 1 ||
        body["ttlSeconds"].get<std::int64_t>() > 172'800) {
      return Error(400, 400004, "ArgumentInvalid",
                   "ttlSeconds must be an integer from 1 to 172800");
    }
    ttl_ms = body["ttlSeconds"].get<std::int64_t>() * 1000;
  }
  auto& queue = c2d_[id];
  if (queue.size() >= config_.c2d_queue_limit) {
    return Error(403, 403004, "DeviceMaximumQueueDepthExceeded",
                 "The device already has 50 cloud-to-device messages waiting.");
  }
  if (!c2d_bucket_.TryTake(env_.steady.NowMs())) {
    ++throttled_;
    return Error(429, 429001, "ThrottlingException", "Cloud-to-device sends are throttled.");
  }
  if (!ChargeQuota(static_cast<std::int64_t>(size))) {
    return Error(403, 403002, "IotHubQuotaExceeded",
                 "Total number of messages on IotHub exceeded the allocated quota.");
  }
  m.enqueued_ms = env_.wall.NowMs();
  m.expiry_ms = m.enqueued_ms + ttl_ms;
  const std::string mid = m.message_id;
  queue.push_back(std::move(m));
  ++stats_[id].c2d_sent;
  if (sessions_.count(id)) FlushCloudToDevice(id);
  return ServiceReply{202, {{"messageId", mid}}, {}};
}

ServiceReply Hub::Stats() {
  const std::int64_t now = env_.wall.NowMs();
  Json devices = Json::object();
  for (const auto& [id, s] : stats_) {
    devices[id] = {{"connected", sessions_.count(id) > 0},
                   {"d2cMessages", s.d2c_messages},
                   {"d2cBytes", s.d2c_bytes},
                   {"c2dSent", s.c2d_sent},
                   {"c2dDelivered", s.c2d_delivered},
                   {"c2dExpired", s.c2d_expired},
                   {"c2dQueued", c2d_.count(id) ? c2d_.at(id).size() : 0},
                   {"twinGets", s.twin_gets},
                   {"reportedPatches", s.reported_patches},
                   {"desiredPushes", s.desired_pushes},
                   {"methodCalls", s.method_calls},
                   {"connects", s.connects},
                   {"refusedConnects", s.refused_connects},
                   {"closedByHub", s.closed_by_hub}};
  }
  const std::int64_t used = quota_.Used(now);
  return ServiceReply{200,
                      {{"now", FormatIsoTime(now)},
                       {"tier", TierName(quota_.tier())},
                       {"units", quota_.units()},
                       {"quota",
                        {{"dailyMessages", quota_.Total()},
                         {"chunkBytes", quota_.ChunkBytes()},
                         {"used", used},
                         {"remaining", std::max<std::int64_t>(0, quota_.Total() - used)},
                         {"exhausted", quota_.Exhausted(now)},
                         {"rejected", quota_rejections_},
                         {"resetsAt", FormatIsoTime(quota_.ResetsAtMs(now))}}},
                       {"throttled", throttled_},
                       {"devices", std::move(devices)}},
                      {}};
}

ServiceReply Hub::AdvanceClockUnchecked(const Json& body) {
  constexpr double kTenYears = 10.0 * 365 * 86400;
  if (!body.is_object() || !body.contains("seconds") || !body["seconds"].is_number() ||
      body["seconds"].get<double>() < 0 || body["seconds"].get<double>() > kTenYears) {
    return Error(400, 400004, "ArgumentInvalid",
                 "expected {\"seconds\": <number from 0 to 315360000>}");
  }
  env_.advance_clock(static_cast<std::int64_t>(body["seconds"].get<double>() * 1000));
  OnTick();
  return ServiceReply{200, {{"now", FormatIsoTime(env_.wall.NowMs())}}, {}};
}

ServiceReply Hub::FaultUnchecked(const std::string& kind, const Json& body) {
  if (!body.is_object())
    return Error(400, 400004, "ArgumentInvalid", "fault body must be a JSON object");
  const std::string device = body.value("deviceId", "");
  if (kind == "kick") {
    if (!sessions_.count(device)) {
      return Error(404, 404103, "DeviceNotOnline", "Device '" + device + "' is not connected.");
    }
    sessions_.erase(device);
    CloseDevice(device);
    return ServiceReply{200, {{"kicked", device}}, {}};
  }
  const double seconds = body.value("seconds", 0.0);
  if (kind == "refuse-connections") {
    refuse_until_ms_ = env_.steady.NowMs() + static_cast<std::int64_t>(seconds * 1000);
    return ServiceReply{200, {{"refusingForSeconds", seconds}}, {}};
  }
  if (kind == "withhold-puback") {
    const int count = body.value("count", -1);
    withhold_acks_[device] = count;
    return ServiceReply{200, {{"deviceId", device}, {"count", count}}, {}};
  }
  if (kind == "broker-down") {
    if (seconds <= 0 || seconds > 3600) {
      return Error(400, 400004, "ArgumentInvalid", "seconds must be in (0, 3600]");
    }
    env_.drop_broker(static_cast<int>(seconds + 0.999));
    return ServiceReply{202, {{"downForSeconds", seconds}}, {}};
  }
  return Error(404, 404000, "NotFound", "unknown fault '" + kind + "'");
}

// ---- request bodies are client input ----
// A member of the wrong type (json::value or get on a mistyped member) is the client's
// error: it is answered 400 here, so no exception leaves the Hub.

ServiceReply Hub::BadBody(const Json::exception& e) const {
  std::string what = e.what();
  if (const auto bracket = what.find("] "); bracket != std::string::npos)
    what.erase(0, bracket + 2);
  return Error(400, 400004, "ArgumentInvalid", "malformed request body: " + what);
}

ServiceReply Hub::Guarded(const std::function<ServiceReply()>& fn) const {
  try {
    return fn();
  } catch (const Json::exception& e) {
    return BadBody(e);
  }
}

ServiceReply Hub::PutDevice(const std::string& id, const Json& body, const std::string& if_match) {
  return Guarded([&] { return PutDeviceUnchecked(id, body, if_match); });
}
ServiceReply Hub::BulkDevices(const Json& body) {
  return Guarded([&] { return BulkDevicesUnchecked(body); });
}
ServiceReply Hub::UpdateTwin(const std::string& id, const Json& body, const std::string& if_match,
                             bool replace) {
  return Guarded([&] { return UpdateTwinUnchecked(id, body, if_match, replace); });
}
ServiceReply Hub::SendCloudToDevice(const std::string& id, const Json& body) {
  return Guarded([&] { return SendCloudToDeviceUnchecked(id, body); });
}
ServiceReply Hub::AdvanceClock(const Json& body) {
  return Guarded([&] { return AdvanceClockUnchecked(body); });
}
ServiceReply Hub::Fault(const std::string& kind, const Json& body) {
  return Guarded([&] { return FaultUnchecked(kind, body); });
}
void Hub::InvokeMethod(const std::string& id, const Json& body,
                       std::function<void(ServiceReply)> done) {
  try {
    InvokeMethodUnchecked(id, body, done);
  } catch (const Json::exception& e) {
    if (done) done(BadBody(e));
  }
}

}  // namespace iothub::emulator
