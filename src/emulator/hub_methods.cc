// The Hub's direct methods (§3 "Direct methods", §4): invocations from the service, their
// delivery to the device, its answers and the timeouts.
#include <fmt/format.h>

#include "common/json_depth.h"
#include "common/json_fields.h"
#include "emulator/hub.h"
#include "emulator/hub_internal.h"

namespace iothub::emulator {
namespace {

constexpr std::int64_t kDefaultMethodTimeoutS = 30;
constexpr std::size_t kMaxMethodPayloadBytes = 128UL * 1024;

}  // namespace

void Hub::InvokeMethod(const std::string& id, const Json& body,
                       std::function<void(ServiceReply)> done) {
  if (shutting_down_) {
    return done(Error(503, 503001, "ServiceUnavailable", "The hub is shutting down."));
  }
  if (IsBasicTier(config_.tier)) return done(NotInThisTier());
  const Device* d = registry_->Find(id);
  if (d == nullptr) return done(DeviceNotFound(id));
  std::string name;
  if (!body.is_object() || !json::ReadString(body, "methodName", name) || name.empty()) {
    return done(Error(400, 400004, "ArgumentInvalid", "methodName is required"));
  }
  std::int64_t response_timeout = kDefaultMethodTimeoutS;
  std::int64_t connect_timeout = 0;
  if (!json::ReadInt(body, "responseTimeoutInSeconds", response_timeout) || response_timeout < 5 ||
      response_timeout > 300) {
    return done(Error(400, 400027, "ArgumentInvalid",
                      "responseTimeoutInSeconds must be between 5 and 300"));
  }
  if (!json::ReadInt(body, "connectTimeoutInSeconds", connect_timeout) || connect_timeout < 0 ||
      connect_timeout > 300) {
    return done(
        Error(400, 400027, "ArgumentInvalid", "connectTimeoutInSeconds must be between 0 and 300"));
  }
  const auto payload_member = body.find("payload");
  std::string payload = payload_member == body.end() ? "null" : DumpJson(*payload_member);
  if (payload.size() > kMaxMethodPayloadBytes) {
    return done(Error(413, 413001, "MessageTooLarge", "method payload exceeds 128 KB"));
  }
  // Throttled by request payload in 4 KB steps, not by the number of calls (§5).
  const auto steps = static_cast<double>(ThrottleSteps(static_cast<std::int64_t>(payload.size())));
  if (!method_bucket_.TryTake(env_.steady.NowMs(), steps)) {
    return done(Throttled("Method invocations"));
  }
  if (QuotaExhausted()) return done(QuotaExceeded());
  ++stats_[id].method_calls;
  const bool online = sessions_.count(id) && Subscribed(*d, Subscription::kMethods);
  if (!online && connect_timeout == 0) {
    // Billed: the request, and one message for the answer that the device is not online.
    (void)Charge(Billed::kMethod, static_cast<std::int64_t>(payload.size()));
    (void)Charge(Billed::kMethod, 0);
    return done(Error(404, 404103, "DeviceNotOnline", "Timed out waiting for device to connect."));
  }
  PendingMethod pending;
  pending.device_id = id;
  pending.name = std::move(name);
  pending.payload = std::move(payload);
  pending.connect_deadline_ms = env_.steady.NowMs() + connect_timeout * 1000;
  pending.response_timeout_ms = response_timeout * 1000;
  pending.done = std::move(done);
  const std::string rid = fmt::format("{:x}", next_rid_++);
  auto [it, inserted] = methods_.emplace(rid, std::move(pending));
  if (online) SendMethod(rid, it->second);
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
  (void)Charge(Billed::kMethod, static_cast<std::int64_t>(pending.payload.size()));
  env_.broker.Publish(pending.device_id,
                      fmt::format("$iothub/methods/POST/{}/?$rid={}", pending.name, rid),
                      pending.payload, 0);
}

PublishVerdict Hub::HandleMethodResponse(Device& device, const MethodResponseTopic& t,
                                         const std::string& payload) {
  auto it = methods_.find(t.rid);
  // A response nobody waits for (late, or unknown $rid) is ignored, as the hub does.
  if (it == methods_.end() || it->second.device_id != device.id || !it->second.sent) {
    return PublishVerdict::kAccept;
  }
  // The response is billed as messages of its own; an empty one as one message.
  (void)Charge(Billed::kMethod, static_cast<std::int64_t>(payload.size()));
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

void Hub::ExpireMethods() {
  const std::int64_t now = env_.steady.NowMs();
  for (auto it = methods_.begin(); it != methods_.end();) {
    PendingMethod& p = it->second;
    if (!p.sent && now >= p.connect_deadline_ms) {
      (void)Charge(Billed::kMethod, static_cast<std::int64_t>(p.payload.size()));
      (void)Charge(Billed::kMethod, 0);
      auto done = std::move(p.done);
      it = methods_.erase(it);
      done(Error(404, 404103, "DeviceNotOnline", "Timed out waiting for device to connect."));
    } else if (p.sent && now >= p.response_deadline_ms) {
      auto done = std::move(p.done);
      it = methods_.erase(it);
      done(Error(504, 504101, "GatewayTimeout", "Timed out waiting for the response from device."));
    } else {
      ++it;
    }
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

}  // namespace iothub::emulator
