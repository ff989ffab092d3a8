// The Hub's emulator-only controls (docs/emulator-api.md): statistics, the hub clock, and
// fault injection.
#include "common/json_fields.h"
#include "emulator/hub.h"

namespace iothub::emulator {

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
  auto billed = [this](Billed kind) {
    const auto it = billed_.find(kind);
    return it == billed_.end() ? std::int64_t{0} : it->second;
  };
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
                         {"resetsAt", FormatIsoTime(quota_.ResetsAtMs(now))},
                         // Since this broker started (not reset at midnight, unlike `used`).
                         {"billed",
                          {{"telemetry", billed(Billed::kTelemetry)},
                           {"cloudToDevice", billed(Billed::kCloudToDevice)},
                           {"twinReads", billed(Billed::kTwinRead)},
                           {"twinUpdates", billed(Billed::kTwinUpdate)},
                           {"desiredNotifications", billed(Billed::kDesiredNotification)},
                           {"methods", billed(Billed::kMethod)}}}}},
                       {"throttled", throttled_},
                       {"devices", std::move(devices)}},
                      {}};
}

ServiceReply Hub::AdvanceClock(const Json& body) {
  constexpr double kTenYears = 10.0 * 365 * 86400;
  double seconds = -1;
  if (!body.is_object() || !body.contains("seconds") ||
      !json::ReadNumber(body, "seconds", seconds) || seconds < 0 || seconds > kTenYears) {
    return Error(400, 400004, "ArgumentInvalid",
                 "expected {\"seconds\": <number from 0 to 315360000>}");
  }
  env_.advance_clock(static_cast<std::int64_t>(seconds * 1000));
  OnTick();
  return ServiceReply{200, {{"now", FormatIsoTime(env_.wall.NowMs())}}, {}};
}

ServiceReply Hub::Fault(const std::string& kind, const Json& body) {
  if (!body.is_object()) {
    return Error(400, 400004, "ArgumentInvalid", "fault body must be a JSON object");
  }
  std::string device;
  double seconds = 0;
  std::int64_t count = -1;
  if (!json::ReadString(body, "deviceId", device)) return BadMember("deviceId", "a string");
  if (!json::ReadNumber(body, "seconds", seconds)) return BadMember("seconds", "a number");
  if (!json::ReadInt(body, "count", count)) return BadMember("count", "an integer");
  if (kind == "kick") {
    if (!sessions_.count(device)) {
      return Error(404, 404103, "DeviceNotOnline", "Device '" + device + "' is not connected.");
    }
    sessions_.erase(device);
    CloseDevice(device);
    return ServiceReply{200, {{"kicked", device}}, {}};
  }
  if (kind == "refuse-connections") {
    refuse_until_ms_ = env_.steady.NowMs() + static_cast<std::int64_t>(seconds * 1000);
    return ServiceReply{200, {{"refusingForSeconds", seconds}}, {}};
  }
  if (kind == "withhold-puback") {
    withhold_acks_[device] = static_cast<int>(std::clamp<std::int64_t>(count, -1, 1'000'000'000));
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

}  // namespace iothub::emulator
