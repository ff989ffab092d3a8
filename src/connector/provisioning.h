// Who the connector is on the hub and where the hub is (issue 10 "Provisioning"): from the
// configured connection string and endpoint overrides to a device session's configuration.
// - A device connection string is used as it is: it needs no registry rights.
// - A shared access policy's (the old add-on's `iothubowner`) is used once at start to find or
//   create the gateway device in the registry; its key is cached in the store (mode 0600) so
//   that a start while the registry is unreachable still connects. A device is never deleted
//   and re-created (that would change its key and lose its twin).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "azure/connection_string.h"
#include "azure/device_session.h"
#include "azure/registry_client.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "common/http_client.h"
#include "common/random.h"
#include "common/result.h"
#include "connector/config.h"
#include "connector/log.h"

namespace iothub::connector {

// The hub as the configuration describes it. Thread-safe (plain data).
struct HubPlan {
  std::string host_name;  // the hub's name: SAS resource, MQTT user name, TLS name
  std::string device_id;  // the gateway device
  std::string mqtt_host;  // where to connect (host_name, GatewayHostName or mqtt_endpoint)
  int mqtt_port = 8883;
  std::string https_host;  // the registry (host_name or https_endpoint)
  int https_port = 443;
  std::optional<azure::ServiceConnectionString> policy;  // set: provision with it
  std::string device_key;                                // device connection strings
  std::string device_token;  // or a device connection string's SharedAccessSignature
  // Said once at start: the policy has more rights than the connector needs.
  std::string advice;
};

// Parses the connection string (a device's or a policy's) and applies the endpoint overrides.
// Errors name the configuration key; they never contain a key.
Result<HubPlan> PlanHub(const Config& config);

// The session configuration for the gateway device with `key` (or the plan's token).
azure::DeviceSessionConfig SessionConfig(const HubPlan& plan, const Config& config,
                                         const std::string& key);

// Finds or creates the gateway device with the plan's policy and learns its key, falling back
// to the key cached in the store when the registry cannot be reached. Not thread-safe: loop
// thread only. `done` runs once, on the loop, never inside Run(). Errors: "registry"
// (unreachable and nothing cached: the caller retries later), "forbidden" (the policy lacks
// the rights: fatal), "unauthorized" (a wrong key: fatal), "store" (the cache cannot be
// written: fatal). Destroying the provisioner abandons the operation (done is not called).
class Provisioner {
 public:
  Provisioner(EventLoop& loop, HttpClient& https, const Clock& wall, Random& random, HubPlan plan,
              std::string store_dir, Log& log);
  void Run(std::function<void(Result<std::string> key)> done);

  // The cache file: <store_dir>/device-key.json.
  static std::string CachePath(const std::string& store_dir);

 private:
  void Finish(Result<azure::Device> device);
  std::optional<std::string> CachedKey() const;

  HubPlan plan_;
  std::string store_dir_;
  Log& log_;
  std::unique_ptr<azure::RegistryClient> registry_;
  std::function<void(Result<std::string>)> done_;
};

}  // namespace iothub::connector
