// IoT Hub connection strings (shared/reference/azure-iothub.md §1). Thread-safe (pure functions).
// Error messages name the missing or malformed part and never echo a key or signature.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace iothub::azure {

// `HostName=..;SharedAccessKeyName=..;SharedAccessKey=..`
struct ServiceConnectionString {
  std::string host_name;
  std::string policy_name;
  std::string key;  // base64, validated as base64
};

// `HostName=..;DeviceId=..;SharedAccessKey=..` plus optional ModuleId, GatewayHostName
// (`host` or `host:port`), SharedAccessSignature (a ready token) or x509=true.
struct DeviceConnectionString {
  std::string host_name;
  std::string device_id;
  std::string module_id;                      // empty if absent
  std::string gateway_host;                   // empty if absent; host part of GatewayHostName
  std::optional<std::uint16_t> gateway_port;  // port part of GatewayHostName, if given
  std::string key;                            // base64; empty when a token or x509 is used
  std::string shared_access_signature;        // empty if absent
  bool x509 = false;
};

// Split on ';', each element at its FIRST '=', last duplicate wins, empty elements ignored,
// keys matched case-sensitively as the SDKs do.
Result<ServiceConnectionString> ParseServiceConnectionString(std::string_view text);
// Requires HostName, DeviceId and exactly one of SharedAccessKey / SharedAccessSignature /
// x509=true.
Result<DeviceConnectionString> ParseDeviceConnectionString(std::string_view text);

// A device id a device can use over MQTT: IoT Hub's characters (ASCII letters and digits and
// - : . + % _ # * ? ! ( ) , = @ ; $ '), 1 to 128 of them, without '+' and '#', which are MQTT
// wildcards and cannot appear in a topic name.
bool IsMqttDeviceId(std::string_view id);

std::string FormatServiceConnectionString(const ServiceConnectionString& cs);
std::string FormatDeviceConnectionString(const DeviceConnectionString& cs);

}  // namespace iothub::azure
