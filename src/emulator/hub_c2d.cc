// The Hub's cloud-to-device messages (§3 "Cloud-to-device"): the per-device queue, delivery
// at QoS 1, expiry. Sent through the emulator's REST endpoint, since the real service takes
// them over AMQP only.
#include "common/crypto.h"
#include "common/json_fields.h"
#include "emulator/hub.h"

namespace iothub::emulator {
namespace {

constexpr std::int64_t kMaxTtlSeconds = 172'800;  // IoT Hub allows TTLs up to two days

}  // namespace

ServiceReply Hub::SendCloudToDevice(const std::string& id, const Json& body) {
  if (IsBasicTier(config_.tier)) return NotInThisTier();
  if (registry_->Find(id) == nullptr) return DeviceNotFound(id);
  CloudMessage m;
  if (!body.is_object() || !body.contains("body") || !json::ReadString(body, "body", m.body)) {
    return Error(400, 400004, "ArgumentInvalid", "body must be {\"body\":\"<text>\",...}");
  }
  std::string message_id;
  std::string correlation_id;
  std::string content_type;
  std::string content_encoding;
  Json properties = Json::object();
  if (!json::ReadString(body, "messageId", message_id)) return BadMember("messageId", "a string");
  if (!json::ReadString(body, "correlationId", correlation_id)) {
    return BadMember("correlationId", "a string");
  }
  if (!json::ReadString(body, "contentType", content_type)) {
    return BadMember("contentType", "a string");
  }
  if (!json::ReadString(body, "contentEncoding", content_encoding)) {
    return BadMember("contentEncoding", "a string");
  }
  if (!json::ReadObject(body, "properties", properties)) {
    return BadMember("properties", "an object of strings");
  }
  std::int64_t ttl_ms = config_.c2d_default_ttl_ms;
  if (body.contains("ttlSeconds")) {
    std::int64_t ttl_s = 0;
    if (!json::ReadInt(body, "ttlSeconds", ttl_s) || ttl_s < 1 || ttl_s > kMaxTtlSeconds) {
      return Error(400, 400004, "ArgumentInvalid",
                   "ttlSeconds must be an integer from 1 to 172800");
    }
    ttl_ms = ttl_s * 1000;
  }
  m.expiry_ms = env_.wall.NowMs() + ttl_ms;
  if (message_id.empty()) message_id = NewUuid();
  m.properties.push_back({"$.mid", message_id});
  m.properties.push_back({"$.to", "/devices/" + id + "/messages/devicebound"});
  m.properties.push_back({"$.exp", FormatIsoTime(m.expiry_ms)});
  if (!correlation_id.empty()) m.properties.push_back({"$.cid", correlation_id});
  if (!content_type.empty()) m.properties.push_back({"$.ct", content_type});
  if (!content_encoding.empty()) m.properties.push_back({"$.ce", content_encoding});
  for (const auto& [k, v] : properties.items()) {
    if (!v.is_string()) return BadMember("properties." + k, "a string");
    m.properties.push_back({k, v.get<std::string>()});
  }
  // Limited and billed by the same measure as telemetry (§5).
  if (MeteredBytes(m.body, m.properties) > static_cast<std::int64_t>(config_.c2d_max_bytes)) {
    return Error(413, 413001, "MessageTooLarge", "cloud-to-device messages are limited to 64 KB");
  }
  auto& queue = c2d_[id];
  if (queue.size() >= config_.c2d_queue_limit) {
    return Error(403, 403004, "DeviceMaximumQueueDepthExceeded",
                 "The device already has 50 cloud-to-device messages waiting.");
  }
  if (!c2d_bucket_.TryTake(env_.steady.NowMs())) return Throttled("Cloud-to-device sends");
  if (QuotaExhausted()) return QuotaExceeded();
  queue.push_back(std::move(m));
  ++stats_[id].c2d_sent;
  if (sessions_.count(id)) FlushCloudToDevice(id);
  return ServiceReply{202, {{"messageId", message_id}}, {}};
}

void Hub::FlushCloudToDevice(const std::string& device_id) {
  Device* device = registry_->Find(device_id);
  auto q = c2d_.find(device_id);
  if (device == nullptr || q == c2d_.end() || !Subscribed(*device, Subscription::kCloudToDevice)) {
    return;
  }
  const std::int64_t now = env_.wall.NowMs();
  while (!q->second.empty()) {
    CloudMessage& m = q->second.front();
    if (m.expiry_ms <= now) {
      ++stats_[device_id].c2d_expired;
      q->second.pop_front();
      continue;
    }
    // Billed when the device receives it ("Receive Device Bound Notification" on the pricing
    // page): an expired message costs nothing, and a hub out of quota keeps it queued.
    if (!Charge(Billed::kCloudToDevice, MeteredBytes(m.body, m.properties))) return;
    env_.broker.Publish(
        device_id,
        "devices/" + device_id + "/messages/devicebound/" + azure::EncodePropertyBag(m.properties),
        std::move(m.body), 1);
    q->second.pop_front();
    ++stats_[device_id].c2d_delivered;
  }
}

void Hub::ExpireCloudToDevice() {
  const std::int64_t now_ms = env_.wall.NowMs();
  for (auto& [id, queue] : c2d_) {
    const auto before = queue.size();
    std::erase_if(queue, [&](const CloudMessage& m) { return m.expiry_ms <= now_ms; });
    stats_[id].c2d_expired += static_cast<std::int64_t>(before - queue.size());
  }
}

}  // namespace iothub::emulator
