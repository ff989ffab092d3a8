// The MQTT topics a device may use on IoT Hub (shared/reference/azure-iothub.md §3), parsed
// into what they mean. Thread-safe (pure functions).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace iothub::emulator {

struct TelemetryTopic {
  std::string bag;  // raw property bag (still URL-encoded), possibly empty
};
struct TwinGetTopic {
  std::string rid;
};
struct TwinReportedPatchTopic {
  std::string rid;
};
struct MethodResponseTopic {
  int status = 0;
  std::string rid;
};
// A topic outside the device's allowed set: the hub closes the connection.
struct ForbiddenTopic {
  std::string reason;
};

using DevicePublish = std::variant<TelemetryTopic, TwinGetTopic, TwinReportedPatchTopic,
                                   MethodResponseTopic, ForbiddenTopic>;

// Classifies a PUBLISH from device `device_id`.
DevicePublish ClassifyPublish(std::string_view device_id, std::string_view topic);

// The subscriptions a device may hold.
enum class Subscription : unsigned {
  kNone = 0,
  kCloudToDevice = 1,
  kTwinResponses = 2,
  kDesiredPatches = 4,
  kMethods = 8,
};

// Which subscription a SUBSCRIBE filter from `device_id` stands for; kNone if it is not
// allowed (the hub closes the connection).
Subscription ClassifySubscription(std::string_view device_id, std::string_view filter);

// The value of query parameter `name` in a topic's `?a=b&c=d` tail (not URL-decoded).
std::optional<std::string> TopicQueryParam(std::string_view topic, std::string_view name);

}  // namespace iothub::emulator
