// The MQTT topic property bag of IoT Hub messages (shared/reference/azure-iothub.md §3):
// URL-encoded `k=v&k2=v2` after `devices/{id}/messages/events/` (device-to-cloud) or
// `devices/{id}/messages/devicebound/` (cloud-to-device). Thread-safe (pure functions).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace iothub::azure {

// One property. `value` is nullopt for a bare key (`k`, "null"), "" for `k=`.
struct Property {
  std::string name;
  std::optional<std::string> value;
  bool operator==(const Property&) const = default;
};

// Properties in wire order; system properties keep their `$.` names (`$.mid`, `$.ct`...),
// application properties their own names.
using PropertyBag = std::vector<Property>;

// Parses a bag. Names and values are percent-decoded; `%24.mid` and `$.mid` both yield
// `$.mid`. Empty input (or a lone trailing '/') is an empty bag. Errors: bad escapes,
// empty names.
Result<PropertyBag> ParsePropertyBag(std::string_view bag);

// Encodes a bag the way the official SDKs do: names and values percent-encoded with
// uppercase hex (so `$` becomes `%24`), `k` for a null value, `k=` for an empty one.
std::string EncodePropertyBag(const PropertyBag& bag);

// Well-known system property names (wire form, decoded).
inline constexpr std::string_view kMessageId = "$.mid";
inline constexpr std::string_view kCorrelationId = "$.cid";
inline constexpr std::string_view kContentType = "$.ct";
inline constexpr std::string_view kContentEncoding = "$.ce";
inline constexpr std::string_view kExpiryTime = "$.exp";
inline constexpr std::string_view kTo = "$.to";
inline constexpr std::string_view kUserId = "$.uid";
inline constexpr std::string_view kComponent = "$.sub";
inline constexpr std::string_view kCreationTime = "$.ctime";  // iothub-creation-time-utc

// True for names starting with "$." (system properties).
bool IsSystemProperty(std::string_view name);

// The value of the first property called `name`, if present and non-null.
std::optional<std::string> FindProperty(const PropertyBag& bag, std::string_view name);

}  // namespace iothub::azure
