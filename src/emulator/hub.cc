#include "emulator/hub.h"

#include <fmt/format.h>

#include "common/crypto.h"
#include "emulator/hub_internal.h"

namespace iothub::emulator {

namespace detail {

std::string NewKey() { return Base64Encode(RandomBytes(32)); }

std::string TimeOrMin(std::int64_t ms) {
  return ms == 0 ? "0001-01-01T00:00:00Z" : FormatIsoTime(ms);
}

bool IfMatchAccepts(const std::string& if_match, const std::string& etag) {
  return if_match.empty() || if_match == "*" || if_match == "\"*\"" || if_match == etag ||
         if_match == "\"" + etag + "\"";
}

}  // namespace detail

std::vector<SharedAccessPolicy> DefaultPolicies() {
  using detail::NewKey;
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
      method_bucket_(quota_.Limits().method_steps_per_second,
                     quota_.Limits().method_steps_per_second) {
  if (config_.quota_day >= 0) quota_.Restore(config_.quota_day, config_.quota_used);
  // Connection state is not durable: after a restart every device starts disconnected.
  for (const auto& [id, device] : registry_->All()) stats_[id];
}

bool Hub::Charge(Billed kind, std::int64_t bytes) {
  const std::int64_t messages = quota_.MessagesFor(bytes);
  if (!quota_.Charge(messages, env_.wall.NowMs())) {
    ++quota_rejections_;
    return false;
  }
  billed_[kind] += messages;
  return true;
}

bool Hub::QuotaExhausted() {
  if (!quota_.Exhausted(env_.wall.NowMs())) return false;
  ++quota_rejections_;
  return true;
}

void Hub::OnTick() {
  const std::int64_t now_s = env_.wall.NowSeconds();
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
  ExpireCloudToDevice();
  ExpireMethods();
}

ServiceReply Hub::Error(int status, int code, const std::string& name,
                        const std::string& text) const {
  return ErrorReply(status, code, name, text, env_.wall.NowMs());
}

ServiceReply Hub::DeviceNotFound(const std::string& id) const {
  return Error(404, 404001, "DeviceNotFound", "Device '" + id + "' is not registered.");
}

ServiceReply Hub::QuotaExceeded() const {
  return Error(403, 403002, "IotHubQuotaExceeded",
               "Total number of messages on IotHub exceeded the allocated quota. Send and "
               "Receive operations are blocked for this hub until the next UTC day.");
}

ServiceReply Hub::Throttled(const std::string& what) {
  ++throttled_;
  return Error(429, 429001, "ThrottlingException", what + " are throttled.");
}

ServiceReply Hub::NotInThisTier() const {
  // troubleshoot-error-codes: 403010 for a feature the hub's tier does not have.
  return Error(403, 403010, "OperationNotAvailableInCurrentTier",
               "The operation is not available in the current tier (" + TierName(config_.tier) +
                   ": device-to-cloud telemetry only).");
}

ServiceReply Hub::BadMember(const std::string& member, const std::string& expected) const {
  return Error(400, 400004, "ArgumentInvalid",
               "malformed request body: '" + member + "' must be " + expected);
}

std::string Hub::ConnectionState(const std::string& id) const {
  return sessions_.count(id) ? "Connected" : "Disconnected";
}

std::string Hub::QuotaSnapshot() const { return fmt::format("{} {}", quota_.day(), quota_.used()); }

}  // namespace iothub::emulator
