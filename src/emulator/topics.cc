#include "emulator/topics.h"

#include <charconv>

namespace iothub::emulator {
namespace {

bool ConsumePrefix(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// "devices/{id}/" for this device.
bool ConsumeDevicePrefix(std::string_view& s, std::string_view device_id) {
  std::string_view rest = s;
  if (!ConsumePrefix(rest, "devices/") || !ConsumePrefix(rest, device_id) ||
      !ConsumePrefix(rest, "/")) {
    return false;
  }
  s = rest;
  return true;
}

// Topics of the form "{prefix}?$rid=..." (and more params) yield the rid.
std::optional<std::string> RidAfter(std::string_view topic, std::string_view prefix) {
  if (topic.substr(0, prefix.size()) != prefix) return std::nullopt;
  auto rid = TopicQueryParam(topic.substr(prefix.size() - 1), "$rid");
  if (!rid) rid = TopicQueryParam(topic.substr(prefix.size() - 1), "%24rid");
  if (!rid || rid->empty()) return std::nullopt;
  return rid;
}

}  // namespace

std::optional<std::string> TopicQueryParam(std::string_view topic, std::string_view name) {
  const auto q = topic.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = topic.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return std::string(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

DevicePublish ClassifyPublish(std::string_view device_id, std::string_view topic) {
  std::string_view rest = topic;
  if (ConsumeDevicePrefix(rest, device_id)) {
    if (ConsumePrefix(rest, "messages/events/")) return TelemetryTopic{std::string(rest)};
    if (rest == "messages/events") return TelemetryTopic{};
    return ForbiddenTopic{"not a device-to-cloud topic"};
  }
  if (auto rid = RidAfter(topic, "$iothub/twin/GET/?")) return TwinGetTopic{*rid};
  if (auto rid = RidAfter(topic, "$iothub/twin/PATCH/properties/reported/?")) {
    return TwinReportedPatchTopic{*rid};
  }
  rest = topic;
  if (ConsumePrefix(rest, "$iothub/methods/res/")) {
    const auto slash = rest.find('/');
    int status = 0;
    const std::string_view digits = rest.substr(0, slash);
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), status);
    if (ec != std::errc{} || ptr != digits.data() + digits.size() || digits.empty() ||
        slash == std::string_view::npos) {
      return ForbiddenTopic{"method response without a numeric status"};
    }
    auto rid = RidAfter(rest.substr(slash), "/?");
    if (!rid) return ForbiddenTopic{"method response without $rid"};
    return MethodResponseTopic{status, *rid};
  }
  return ForbiddenTopic{"topic is not one a device may publish to"};
}

Subscription ClassifySubscription(std::string_view device_id, std::string_view filter) {
  std::string_view rest = filter;
  if (ConsumePrefix(rest, "devices/")) {
    if (!ConsumePrefix(rest, "+/") &&
        !(ConsumePrefix(rest, device_id) && ConsumePrefix(rest, "/"))) {
      return Subscription::kNone;
    }
    return rest == "messages/devicebound/#" ? Subscription::kCloudToDevice : Subscription::kNone;
  }
  if (filter == "$iothub/twin/res/#") return Subscription::kTwinResponses;
  if (filter == "$iothub/twin/PATCH/properties/desired/#") return Subscription::kDesiredPatches;
  if (filter == "$iothub/methods/POST/#") return Subscription::kMethods;
  return Subscription::kNone;
}

}  // namespace iothub::emulator
