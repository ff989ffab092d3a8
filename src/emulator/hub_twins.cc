// The Hub's device twins (§3 "Twin", §4): the device's GET and reported patches over MQTT,
// desired notifications, and the service's twin read, update and replace.
#include <fmt/format.h>

#include "common/json_depth.h"
#include "common/json_fields.h"
#include "emulator/hub.h"
#include "emulator/hub_internal.h"

namespace iothub::emulator {

void Hub::TouchTwin(Device& device) {
  ++device.twin_version;
  ++device.twin_etag_counter;
}

void Hub::TwinError(Device& device, const std::string& rid, int status, int code,
                    const std::string& message) {
  if (!Subscribed(device, Subscription::kTwinResponses)) return;
  // The message may quote a device-chosen key cut in the middle of a character.
  env_.broker.Publish(device.id, fmt::format("$iothub/twin/res/{}/?$rid={}", status, rid),
                      DumpJson({{"errorCode", code}, {"message", message}}), 0);
}

PublishVerdict Hub::TwinQuotaExhausted(Device& device, const std::string& rid) {
  if (config_.quota_twin_answer == QuotaTwinAnswer::kStatus) {
    TwinError(device, rid, 403, 403002,
              "Total number of messages on IotHub exceeded the allocated quota.");
    return PublishVerdict::kAccept;
  }
  ++stats_[device.id].closed_by_hub;
  return PublishVerdict::kClose;
}

PublishVerdict Hub::HandleTwinGet(Device& device, const std::string& rid) {
  if (!twin_read_bucket_.TryTake(env_.steady.NowMs())) {
    ++throttled_;
    TwinError(device, rid, 429, 429001, "Twin read throttled");
    return PublishVerdict::kAccept;
  }
  const Json twin = {{"desired", SectionForDevice(device.desired)},
                     {"reported", SectionForDevice(device.reported)}};
  std::string body = DumpJson(twin);
  // Billed by the size of the twin returned (§5). OnPublish refused it if the quota was gone;
  // a charge that crosses the quota is still taken.
  (void)Charge(Billed::kTwinRead, static_cast<std::int64_t>(body.size()));
  ++stats_[device.id].twin_gets;
  if (Subscribed(device, Subscription::kTwinResponses)) {
    env_.broker.Publish(device.id, fmt::format("$iothub/twin/res/200/?$rid={}", rid),
                        std::move(body), 0);
  }
  return PublishVerdict::kAccept;
}

PublishVerdict Hub::HandleReportedPatch(Device& device, const std::string& rid,
                                        const std::string& payload) {
  if (!twin_update_bucket_.TryTake(env_.steady.NowMs())) {
    ++throttled_;
    TwinError(device, rid, 429, 429001, "Twin update throttled");
    return PublishVerdict::kAccept;
  }
  const auto patch = ParseUntrustedJson(payload);
  if (!patch) {
    TwinError(device, rid, 400, 400004, "Reported properties patch is not valid JSON");
    return PublishVerdict::kAccept;
  }
  Device next = device;
  if (Status applied = ApplyTwinPatch(next.reported, *patch, env_.wall.NowMs()); !applied) {
    TwinError(device, rid, 400, 400004, applied.error().message);
    return PublishVerdict::kAccept;
  }
  TouchTwin(next);
  if (Status saved = registry_->Put(next); !saved) {
    TwinError(device, rid, 500, 500001, "The hub could not store the update; retry it.");
    return PublishVerdict::kAccept;
  }
  // Only an update that happened is billed: a refused patch is answered for free (see
  // docs/emulator-api.md, "What is billed"). The quota was checked in OnPublish.
  (void)Charge(Billed::kTwinUpdate, static_cast<std::int64_t>(payload.size()));
  ++stats_[device.id].reported_patches;
  const Device& stored = *registry_->Find(device.id);
  if (Subscribed(stored, Subscription::kTwinResponses)) {
    env_.broker.Publish(
        device.id,
        fmt::format("$iothub/twin/res/204/?$rid={}&$version={}", rid, stored.reported.version), "",
        0);
  }
  return PublishVerdict::kAccept;
}

void Hub::PushDesired(Device& device, const Json& patch) {
  if (!sessions_.count(device.id) || !Subscribed(device, Subscription::kDesiredPatches)) return;
  Json body = patch;
  body["$version"] = device.desired.version;
  std::string text = DumpJson(body);
  // The notification is a billable operation of its own; a hub out of quota sends none.
  if (!Charge(Billed::kDesiredNotification, static_cast<std::int64_t>(text.size()))) return;
  ++stats_[device.id].desired_pushes;
  env_.broker.Publish(
      device.id,
      fmt::format("$iothub/twin/PATCH/properties/desired/?$version={}", device.desired.version),
      std::move(text), 0);
}

Json Hub::TwinJson(const Device& d) const {
  return {
      {"deviceId", d.id},
      {"etag", d.TwinEtag()},
      {"deviceEtag", d.Etag()},
      {"status", d.enabled ? "enabled" : "disabled"},
      {"statusUpdateTime", detail::TimeOrMin(d.status_updated_ms)},
      {"connectionState", ConnectionState(d.id)},
      {"lastActivityTime", detail::TimeOrMin(d.last_activity_ms)},
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

ServiceReply Hub::GetTwin(const std::string& id) {
  if (IsBasicTier(config_.tier)) return NotInThisTier();
  const Device* d = registry_->Find(id);
  if (d == nullptr) return DeviceNotFound(id);
  if (!twin_read_bucket_.TryTake(env_.steady.NowMs())) return Throttled("Twin reads");
  if (QuotaExhausted()) return QuotaExceeded();
  // Billed by the twin's tags and properties as the service reads them (§5), without the
  // $metadata the hub adds.
  const Json billed = {
      {"tags", d->tags.values},
      {"properties",
       {{"desired", SectionForDevice(d->desired)}, {"reported", SectionForDevice(d->reported)}}}};
  (void)Charge(Billed::kTwinRead, static_cast<std::int64_t>(DumpJson(billed).size()));
  return ServiceReply{200, TwinJson(*d), {{"ETag", "\"" + d->TwinEtag() + "\""}}};
}

ServiceReply Hub::UpdateTwin(const std::string& id, const Json& body, const std::string& if_match,
                             bool replace) {
  if (IsBasicTier(config_.tier)) return NotInThisTier();
  const Device* d = registry_->Find(id);
  if (d == nullptr) return DeviceNotFound(id);
  if (!body.is_object()) {
    return Error(400, 400004, "ArgumentInvalid", "twin body must be a JSON object");
  }
  Json tags;
  Json props;
  Json desired;
  if (!json::ReadObject(body, "tags", tags)) return BadMember("tags", "an object");
  if (!json::ReadObject(body, "properties", props)) return BadMember("properties", "an object");
  if (props.contains("reported")) {
    return Error(400, 400004, "ArgumentInvalid",
                 "reported properties can only be changed by the device");
  }
  if (!json::ReadObject(props, "desired", desired)) {
    return BadMember("properties.desired", "an object");
  }
  if (!detail::IfMatchAccepts(if_match, d->TwinEtag())) {
    return Error(412, 412002, "PreconditionFailed",
                 "Precondition failed: twin etag does not match.");
  }
  if (!twin_update_bucket_.TryTake(env_.steady.NowMs())) return Throttled("Twin updates");
  if (QuotaExhausted()) return QuotaExceeded();
  const std::int64_t now = env_.wall.NowMs();
  Device next = *d;
  if (!tags.is_null()) {
    Status s = replace ? ReplaceTwinSection(next.tags, tags, now, kTagLimits)
                       : ApplyTwinPatch(next.tags, tags, now, kTagLimits);
    if (!s) return Error(400, 400004, "ArgumentInvalid", s.error().message);
  } else if (replace) {
    (void)ReplaceTwinSection(next.tags, Json::object(), now);
  }
  Json desired_patch;
  if (!desired.is_null()) {
    desired.erase("$metadata");
    desired.erase("$version");
    Status s = replace ? ReplaceTwinSection(next.desired, desired, now)
                       : ApplyTwinPatch(next.desired, desired, now);
    if (!s) return Error(400, 400004, "ArgumentInvalid", s.error().message);
    desired_patch = replace ? next.desired.values : desired;
  }
  TouchTwin(next);
  if (Status saved = registry_->Put(next); !saved) {
    return Error(500, 500001, "ServerError", saved.error().message);
  }
  // Billed by the size of the update: its tags and properties as sent (§5).
  Json update = Json::object();
  if (!tags.is_null()) update["tags"] = tags;
  if (!props.is_null()) update["properties"] = props;
  (void)Charge(Billed::kTwinUpdate, static_cast<std::int64_t>(DumpJson(update).size()));
  Device& stored = *registry_->Find(id);
  if (!desired_patch.is_null()) PushDesired(stored, desired_patch);
  return ServiceReply{200, TwinJson(stored), {{"ETag", "\"" + stored.TwinEtag() + "\""}}};
}

}  // namespace iothub::emulator
