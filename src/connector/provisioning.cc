#include "connector/provisioning.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "common/atomic_file.h"

namespace iothub::connector {
namespace {

// host:port as config.cc validated it ([v6] in brackets).
void SplitEndpoint(const std::string& endpoint, std::string& host, int& port) {
  if (endpoint.empty()) return;
  const std::size_t colon = endpoint.rfind(':');
  host = endpoint.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const std::string_view digits = std::string_view(endpoint).substr(colon + 1);
  std::from_chars(digits.data(), digits.data() + digits.size(), port);
}

}  // namespace

Result<HubPlan> PlanHub(const Config& config) {
  const std::string& text = config.iothub.connection_string;
  if (text.empty()) {
    return MakeError("config",
                     "[iothub] connection_string: missing; give it in the file, as "
                     "--connection-string, or in IOTHUB_CONNECTION_STRING");
  }
  HubPlan plan;
  if (text.find("DeviceId=") != std::string::npos) {
    auto device = azure::ParseDeviceConnectionString(text);
    if (!device) {
      return MakeError("config", "[iothub] connection_string: " + device.error().message);
    }
    if (device->x509 || !device->module_id.empty()) {
      return MakeError("config",
                       "[iothub] connection_string: X.509 and module identities are not "
                       "supported; use a device connection string with SharedAccessKey");
    }
    plan.host_name = device->host_name;
    plan.device_id = device->device_id;
    plan.device_key = device->key;
    plan.device_token = device->shared_access_signature;
    plan.mqtt_host = device->gateway_host.empty() ? device->host_name : device->gateway_host;
    if (device->gateway_port) plan.mqtt_port = *device->gateway_port;
  } else {
    auto policy = azure::ParseServiceConnectionString(text);
    if (!policy) {
      return MakeError("config", "[iothub] connection_string: " + policy.error().message);
    }
    plan.host_name = policy->host_name;
    plan.device_id = config.iothub.gateway_device_id;
    plan.mqtt_host = policy->host_name;
    if (policy->policy_name == "iothubowner") {
      plan.advice =
          "the iothubowner policy grants far more than the connector needs (it can delete "
          "every device of the hub); a registryReadWrite policy, or the gateway device's own "
          "connection string (no registry rights at all), would do";
    }
    plan.policy = std::move(policy).value();
  }
  plan.https_host = plan.host_name;
  SplitEndpoint(config.iothub.mqtt_endpoint, plan.mqtt_host, plan.mqtt_port);
  SplitEndpoint(config.iothub.https_endpoint, plan.https_host, plan.https_port);
  return plan;
}

azure::DeviceSessionConfig SessionConfig(const HubPlan& plan, const Config& config,
                                         const std::string& key) {
  azure::DeviceSessionConfig session;
  session.host_name = plan.host_name;
  session.connect_host = plan.mqtt_host;
  session.port = plan.mqtt_port;
  session.device_id = plan.device_id;
  if (key.empty()) {
    session.sas_token = plan.device_token;
  } else {
    session.key = key;
  }
  const bool basic = azure::IsBasicTier(config.quota.tier);
  session.twin = !basic;
  session.receive_cloud = !basic && config.iothub.mode == Mode::kPublishCommand;
  // Publish mode answers methods 405 (saying why) but takes no cloud-to-device message: one
  // completed here would tell its sender it was delivered. Left alone, it expires at the hub,
  // and its sender's feedback says so.
  session.receive_methods = !basic;
  return session;
}

Provisioner::Provisioner(EventLoop& loop, HttpClient& https, const Clock& wall, Random& random,
                         HubPlan plan, std::string store_dir, Log& log)
    : plan_(std::move(plan)), store_dir_(std::move(store_dir)), log_(log) {
  if (plan_.policy) {
    registry_ = std::make_unique<azure::RegistryClient>(loop, https, *plan_.policy, wall, random);
  }
}

std::string Provisioner::CachePath(const std::string& store_dir) {
  return store_dir + "/device-key.json";
}

void Provisioner::Run(std::function<void(Result<std::string>)> done) {
  done_ = std::move(done);
  registry_->CreateIfMissing(plan_.device_id,
                             [this](Result<azure::Device> device) { Finish(std::move(device)); });
}

std::optional<std::string> Provisioner::CachedKey() const {
  std::ifstream in(CachePath(store_dir_));
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  const auto json = nlohmann::json::parse(text.str(), nullptr, false);
  if (!json.is_object() || json.value("hostName", "") != plan_.host_name ||
      json.value("deviceId", "") != plan_.device_id) {
    return std::nullopt;
  }
  std::string key = json.value("primaryKey", "");
  if (key.empty()) return std::nullopt;
  return key;
}

void Provisioner::Finish(Result<azure::Device> device) {
  auto done = std::move(done_);
  if (!device) {
    const Error& error = device.error();
    if (error.code == "unauthorized") {
      // IoT Hub answers 401 both to a wrong key and to a policy without the registry rights
      // (a `service` or `device` policy): name both causes and the way out.
      return done(MakeError(
          "unauthorized",
          fmt::format("the hub refused the policy '{}': {}. Either the key in [iothub] "
                      "connection_string is not the policy's current key, or the policy lacks "
                      "the registry read and write rights the connector needs to create its "
                      "device: use a policy with registryReadWrite rights, or the device's own "
                      "connection string",
                      plan_.policy->policy_name, error.message)));
    }
    if (error.code == "forbidden") {
      return done(MakeError(
          "forbidden", fmt::format("the policy '{}' may not read and create devices: {}; use a "
                                   "policy with registryReadWrite rights, or the device's own "
                                   "connection string",
                                   plan_.policy->policy_name, error.message)));
    }
    if (auto cached = CachedKey()) {
      log_.Warn("hub", "cannot reach the registry ({}); using the cached key of device '{}'",
                error.message, plan_.device_id);
      return done(std::move(*cached));
    }
    return done(MakeError("registry", fmt::format("cannot find or create device '{}': {}",
                                                  plan_.device_id, error.message)));
  }
  if (device->primary_key.empty()) {
    return done(
        MakeError("forbidden", fmt::format("device '{}' has no SAS key (an X.509 device?); the "
                                           "connector needs a device that uses symmetric keys",
                                           plan_.device_id)));
  }
  if (device->status == "disabled") {
    log_.Warn("hub", "device '{}' is disabled in the registry: the hub will refuse it",
              plan_.device_id);
  }
  log_.Info("hub", "{} device '{}' on {}",
            device->created ? "created the gateway" : "found the gateway", plan_.device_id,
            plan_.host_name);
  const nlohmann::json cache = {{"hostName", plan_.host_name},
                                {"deviceId", plan_.device_id},
                                {"primaryKey", device->primary_key}};
  ::mkdir(store_dir_.c_str(), 0700);
  if (auto written = WriteFileAtomically(CachePath(store_dir_), cache.dump(), 0600); !written) {
    return done(MakeError("store",
                          fmt::format("cannot cache the device key: {}", written.error().message)));
  }
  done(device->primary_key);
}

}  // namespace iothub::connector
