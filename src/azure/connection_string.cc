#include "azure/connection_string.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <map>
#include <utility>

#include "azure/sas_token.h"
#include "common/crypto.h"
#include "common/strings.h"

namespace iothub::azure {
namespace {

constexpr std::string_view kErrorCode = "InvalidConnectionString";

Error Invalid(std::string message) {
  return MakeError(std::string(kErrorCode), std::move(message));
}

// The `name=value` elements of a connection string; an absent name reads as "".
class Fields {
 public:
  // Messages name elements by position only: an element without '=' may be a pasted key.
  static Result<Fields> Parse(std::string_view text) {
    Fields fields;
    for (int position = 1; !text.empty(); ++position) {
      const auto semicolon = text.find(';');
      const std::string_view element = text.substr(0, semicolon);
      text = semicolon == std::string_view::npos ? std::string_view{} : text.substr(semicolon + 1);
      if (element.empty()) {
        continue;
      }
      const auto eq = element.find('=');  // The first '=': base64 values end in '='.
      if (eq == std::string_view::npos) {
        return Invalid("connection string element " + std::to_string(position) + " has no '='");
      }
      if (eq == 0) {
        return Invalid("connection string element " + std::to_string(position) +
                       " has an empty name");
      }
      fields.values_[std::string(element.substr(0, eq))] = std::string(element.substr(eq + 1));
    }
    return fields;
  }

  std::string_view Get(std::string_view name) const {
    const auto it = values_.find(name);
    return it == values_.end() ? std::string_view{} : std::string_view(it->second);
  }

  // The value of a required element, or an error naming it.
  Result<std::string> Require(std::string_view name) const {
    const std::string_view value = Get(name);
    if (value.empty()) {
      return Invalid("connection string has no " + std::string(name));
    }
    return std::string(value);
  }

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

Status CheckKey(std::string_view key) {
  if (!Base64Decode(key)) {
    return Invalid("SharedAccessKey is not valid base64");
  }
  return Ok{};
}

// `host`, `host:port` or `[v6]:port` into `cs`.
Status ParseGateway(std::string_view text, DeviceConnectionString& cs) {
  const auto colon = text.rfind(':');
  const bool has_port =
      colon != std::string_view::npos && text.find(']', colon) == std::string_view::npos;
  cs.gateway_host = std::string(has_port ? text.substr(0, colon) : text);
  if (cs.gateway_host.empty()) {
    return Invalid("GatewayHostName has no host");
  }
  if (!has_port) {
    return Ok{};
  }
  const std::string_view port = text.substr(colon + 1);
  std::uint16_t value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0) {
    return Invalid("GatewayHostName port '" + std::string(port) + "' is not a number in 1-65535");
  }
  cs.gateway_port = value;
  return Ok{};
}

}  // namespace

Result<ServiceConnectionString> ParseServiceConnectionString(std::string_view text) {
  auto fields = Fields::Parse(text);
  if (!fields) {
    return fields.error();
  }
  auto host = fields->Require("HostName");
  if (!host) {
    return host.error();
  }
  auto policy = fields->Require("SharedAccessKeyName");
  if (!policy) {
    return policy.error();
  }
  auto key = fields->Require("SharedAccessKey");
  if (!key) {
    return key.error();
  }
  if (auto status = CheckKey(*key); !status) {
    return status.error();
  }
  return ServiceConnectionString{std::move(host).value(), std::move(policy).value(),
                                 std::move(key).value()};
}

Result<DeviceConnectionString> ParseDeviceConnectionString(std::string_view text) {
  auto fields = Fields::Parse(text);
  if (!fields) {
    return fields.error();
  }
  auto host = fields->Require("HostName");
  if (!host) {
    return host.error();
  }
  auto device = fields->Require("DeviceId");
  if (!device) {
    return device.error();
  }

  DeviceConnectionString cs;
  cs.host_name = std::move(host).value();
  cs.device_id = std::move(device).value();
  cs.module_id = std::string(fields->Get("ModuleId"));
  cs.key = std::string(fields->Get("SharedAccessKey"));
  cs.shared_access_signature = std::string(fields->Get("SharedAccessSignature"));
  const std::string_view x509 = fields->Get("x509");
  cs.x509 = EqualsIgnoreCase(x509, "true");
  if (!x509.empty() && !cs.x509 && !EqualsIgnoreCase(x509, "false")) {
    return Invalid("x509 must be 'true' or 'false'");
  }

  const int credentials =
      int(!cs.key.empty()) + int(!cs.shared_access_signature.empty()) + int(cs.x509);
  if (credentials == 0) {
    return Invalid(
        "connection string has no credential: it needs SharedAccessKey, SharedAccessSignature "
        "or x509=true");
  }
  if (credentials > 1) {
    return Invalid(
        "connection string has more than one credential: use exactly one of SharedAccessKey, "
        "SharedAccessSignature or x509=true");
  }
  if (!cs.key.empty()) {
    if (auto status = CheckKey(cs.key); !status) {
      return status.error();
    }
  }
  // The parser's own message is not passed on: it may quote part of the token.
  if (!cs.shared_access_signature.empty() && !ParseSasToken(cs.shared_access_signature)) {
    return Invalid("SharedAccessSignature is not a valid 'SharedAccessSignature sr=..' token");
  }
  if (const std::string_view gateway = fields->Get("GatewayHostName"); !gateway.empty()) {
    if (auto status = ParseGateway(gateway, cs); !status) {
      return status.error();
    }
  }
  return cs;
}

std::string FormatServiceConnectionString(const ServiceConnectionString& cs) {
  return "HostName=" + cs.host_name + ";SharedAccessKeyName=" + cs.policy_name +
         ";SharedAccessKey=" + cs.key;
}

std::string FormatDeviceConnectionString(const DeviceConnectionString& cs) {
  std::string out = "HostName=" + cs.host_name + ";DeviceId=" + cs.device_id;
  if (!cs.module_id.empty()) {
    out += ";ModuleId=" + cs.module_id;
  }
  if (!cs.key.empty()) {
    out += ";SharedAccessKey=" + cs.key;
  }
  if (!cs.shared_access_signature.empty()) {
    out += ";SharedAccessSignature=" + cs.shared_access_signature;
  }
  if (cs.x509) {
    out += ";x509=true";
  }
  if (!cs.gateway_host.empty()) {
    out += ";GatewayHostName=" + cs.gateway_host;
    if (cs.gateway_port) {
      out += ":" + std::to_string(*cs.gateway_port);
    }
  }
  return out;
}

bool IsMqttDeviceId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  constexpr std::string_view kAllowed = "-:.%_*?!(),=@;$'";
  return std::all_of(id.begin(), id.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           kAllowed.find(c) != std::string_view::npos;
  });
}

}  // namespace iothub::azure
