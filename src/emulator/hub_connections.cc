// The Hub's MQTT device protocol (§2, §3): authentication, subscriptions, the topic rules,
// and device-to-cloud telemetry.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "azure/property_bag.h"
#include "azure/sas_token.h"
#include "common/strings.h"
#include "common/url.h"
#include "emulator/hub.h"

namespace iothub::emulator {
namespace {

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
      {"$.ctime", "iothub-creation-time-utc"},
      {"$.schema", "message-schema"},
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

const SharedAccessPolicy* Hub::FindPolicy(const std::string& name) const {
  for (const auto& p : config_.policies) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

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

  // A clean session forgets the stored subscriptions; the model id follows the username.
  // Both are durable: a session whose state cannot be written is not opened.
  if ((clean_session && device->subscriptions != 0) || device->model_id != user->model_id) {
    Device next = *device;
    if (clean_session) next.subscriptions = 0;
    next.model_id = user->model_id;
    if (!registry_->Put(next)) return AuthOutcome::kUnavailable;
    device = registry_->Find(client_id);
  }
  Session& session = sessions_[client_id];
  session = Session{};
  session.connection = connection;
  session.token_expiry_s = token->expiry;
  session.clean_session = clean_session;
  session.policy_token = !token->policy.empty();
  session.connected_ms = env_.wall.NowMs();
  device->last_activity_ms = env_.wall.NowMs();
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
    Device next = *device;
    next.subscriptions |= static_cast<unsigned>(kind);
    // A subscription that could not be made durable is refused (the connection closes).
    if (!registry_->Put(next)) {
      ++stats_[client_id].closed_by_hub;
      return false;
    }
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
  if ((device->subscriptions & bit) == 0) return;
  Device next = *device;
  next.subscriptions &= ~bit;
  if (!registry_->Put(next)) {
    // The broker has already dropped the subscription; a hub that still believed in it would
    // keep delivering. Closing makes the device subscribe afresh.
    sessions_.erase(client_id);
    CloseDevice(client_id);
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
  const bool twin_request = std::holds_alternative<TwinGetTopic>(kind) ||
                            std::holds_alternative<TwinReportedPatchTopic>(kind);
  // A basic hub has no twins: a device that uses one is disconnected (as reported for B1).
  if (std::holds_alternative<ForbiddenTopic>(kind) || (twin_request && IsBasicTier(config_.tier))) {
    ++stats_[client_id].closed_by_hub;
    return PublishVerdict::kClose;
  }
  // §5: once the quota is gone the hub stops acknowledging and closes the connection.
  if (QuotaExhausted()) {
    if (const auto* t = std::get_if<TwinGetTopic>(&kind))
      return TwinQuotaExhausted(*device, t->rid);
    if (const auto* t = std::get_if<TwinReportedPatchTopic>(&kind)) {
      return TwinQuotaExhausted(*device, t->rid);
    }
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
  // One measure for the size limit and the meter (§5, "messages-construct": body, system
  // property values, application property names and values).
  const std::int64_t size = MeteredBytes(payload, *bag);
  if (size > static_cast<std::int64_t>(config_.d2c_max_bytes) ||
      !Charge(Billed::kTelemetry, size)) {
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
  // The names of system properties are held too.
  std::size_t held = static_cast<std::size_t>(size);
  for (const auto& p : *bag) held += p.name.size();
  m.footprint = held + 64 * (bag->size() + m.system_properties.size()) + 512;
  messages_.Append(std::move(m));
  auto& s = stats_[device.id];
  ++s.d2c_messages;
  s.d2c_bytes += static_cast<std::int64_t>(payload.size());
  return PublishVerdict::kAccept;
}

}  // namespace iothub::emulator
