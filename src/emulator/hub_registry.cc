// The Hub's identity registry API (§4): devices created, read, updated, listed and deleted,
// one at a time or in bulk. Registry operations are never billed (§5).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "common/crypto.h"
#include "common/json_fields.h"
#include "emulator/hub.h"
#include "emulator/hub_internal.h"

namespace iothub::emulator {

bool Hub::AllowRegistryOperation(std::size_t devices) {
  // A bulk request takes one token per device in it (quotas page: "only two of these bulk
  // requests [of 50 devices] are accepted per minute" on one S1 unit).
  if (registry_bucket_.TryTake(env_.steady.NowMs(),
                               static_cast<double>(std::max<std::size_t>(1, devices)))) {
    return true;
  }
  ++throttled_;
  return false;
}

Json Hub::DeviceJson(const Device& d) const {
  const auto queue = c2d_.find(d.id);
  auto or_null = [](const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); };
  const bool sas = d.auth_type == "sas";
  return {{"deviceId", d.id},
          {"moduleId", nullptr},
          {"generationId", d.generation_id},
          {"etag", d.Etag()},
          {"connectionState", ConnectionState(d.id)},
          {"status", d.enabled ? "enabled" : "disabled"},
          {"statusReason", or_null(d.status_reason)},
          {"connectionStateUpdatedTime", detail::TimeOrMin(d.last_activity_ms)},
          {"statusUpdatedTime", detail::TimeOrMin(d.status_updated_ms)},
          {"lastActivityTime", detail::TimeOrMin(d.last_activity_ms)},
          {"cloudToDeviceMessageCount", queue == c2d_.end() ? 0 : queue->second.size()},
          {"authentication",
           {{"symmetricKey",
             {{"primaryKey", sas ? Json(d.primary_key) : Json(nullptr)},
              {"secondaryKey", sas ? Json(d.secondary_key) : Json(nullptr)}}},
            {"x509Thumbprint",
             {{"primaryThumbprint", or_null(d.primary_thumbprint)},
              {"secondaryThumbprint", or_null(d.secondary_thumbprint)}}},
            {"type", d.auth_type}}},
          {"capabilities", {{"iotEdge", d.iot_edge}}}};
}

ServiceReply Hub::ApplyDeviceUpdate(Device& d, const Json& body) {
  if (body.contains("status")) {
    std::string status;
    if (!json::ReadString(body, "status", status) ||
        (status != "enabled" && status != "disabled")) {
      return Error(400, 400004, "ArgumentInvalid", "status must be 'enabled' or 'disabled'");
    }
    const bool enabled = status == "enabled";
    if (enabled != d.enabled) d.status_updated_ms = env_.wall.NowMs();
    d.enabled = enabled;
  }
  if (!json::ReadString(body, "statusReason", d.status_reason)) {
    return BadMember("statusReason", "a string");
  }
  Json capabilities;
  if (!json::ReadObject(body, "capabilities", capabilities) ||
      !json::ReadBool(capabilities, "iotEdge", d.iot_edge)) {
    return BadMember("capabilities.iotEdge", "a boolean");
  }
  Json auth;
  if (!json::ReadObject(body, "authentication", auth)) {
    return BadMember("authentication", "an object");
  }
  if (auth.is_null()) {
    if (d.auth_type == "sas") {
      if (d.primary_key.empty()) d.primary_key = detail::NewKey();
      if (d.secondary_key.empty()) d.secondary_key = detail::NewKey();
    }
    ++d.etag_counter;
    return ServiceReply{};
  }
  std::string type = "sas";
  if (!json::ReadString(auth, "type", type)) return BadMember("authentication.type", "a string");
  if (type != "sas" && type != "selfSigned" && type != "certificateAuthority" && type != "none") {
    return Error(400, 400004, "ArgumentInvalid", "unknown authentication type '" + type + "'");
  }
  d.auth_type = type;
  if (type == "sas") {
    Json sk = Json::object();
    if (!json::ReadObject(auth, "symmetricKey", sk)) {
      return BadMember("authentication.symmetricKey", "an object");
    }
    // An empty or missing key is generated; a given one must be base64 of 16 to 64 bytes.
    auto key = [&](const char* name, std::string& out) -> bool {
      std::string given;
      if (!json::ReadString(sk, name, given)) return false;
      if (given.empty()) {
        if (out.empty()) out = detail::NewKey();
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
    Json tp = Json::object();
    d.primary_thumbprint.clear();
    d.secondary_thumbprint.clear();
    // Thumbprints are optional strings; null (as the SDKs send) means none.
    if (!json::ReadObject(auth, "x509Thumbprint", tp) ||
        !json::ReadString(tp, "primaryThumbprint", d.primary_thumbprint) ||
        !json::ReadString(tp, "secondaryThumbprint", d.secondary_thumbprint)) {
      return BadMember("authentication.x509Thumbprint", "an object of strings");
    }
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

ServiceReply Hub::PutDevice(const std::string& id, const Json& body, const std::string& if_match) {
  if (!IsValidDeviceId(id)) {
    return Error(400, 400004, "ArgumentInvalid",
                 "DeviceId '" + id.substr(0, 200) +
                     "' is invalid: up to 128 characters of letters, digits and -.%_*?!(),:=@$'");
  }
  if (!body.is_object()) {
    return Error(400, 400004, "ArgumentInvalid", "request body must be a device object");
  }
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
  if (existing == nullptr) return DeviceNotFound(id);
  if (!detail::IfMatchAccepts(if_match, existing->Etag())) {
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
  if (d == nullptr) return DeviceNotFound(id);
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
  if (d == nullptr) return DeviceNotFound(id);
  if (!detail::IfMatchAccepts(if_match, d->Etag())) {
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

ServiceReply Hub::BulkDevices(const Json& body) {
  if (!body.is_array() || body.empty() || body.size() > 100) {
    return Error(400, 400004, "ArgumentInvalid", "bulk registry operations take 1 to 100 devices");
  }
  Json errors = Json::array();
  for (const Json& entry : body) {
    if (!entry.is_object()) {
      return Error(400, 400004, "ArgumentInvalid", "bulk entries must be objects");
    }
    std::string id;
    std::string etag;
    std::string mode = "create";
    ServiceReply r;
    if (!json::ReadString(entry, "deviceId", id) || !json::ReadString(entry, "id", id) ||
        !json::ReadString(entry, "eTag", etag) || !json::ReadString(entry, "importMode", mode)) {
      r = BadMember("id, eTag and importMode", "strings");
    } else {
      std::transform(mode.begin(), mode.end(), mode.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      Json device = entry;  // the entry is a device description plus the bulk fields
      for (const char* bulk_field : {"id", "deviceId", "importMode", "eTag"}) {
        device.erase(bulk_field);
      }
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
    }
    if (r.status >= 400) {
      std::string message;
      (void)json::ReadString(r.body, "Message", message);
      errors.push_back({{"deviceId", id},
                        {"errorCode", r.headers["iothub-errorcode"]},
                        {"errorStatus", message}});
    }
  }
  const bool ok = errors.empty();
  return ServiceReply{
      ok ? 200 : 400, {{"isSuccessful", ok}, {"errors", errors}, {"warnings", Json::array()}}, {}};
}

}  // namespace iothub::emulator
