// The IoT Hub itself: device authentication, topic rules, telemetry, twins, direct methods,
// cloud-to-device messages, quotas and fault injection, independent of the MQTT engine it
// runs on (shared/reference/azure-iothub.md is the specification; section numbers below).
// One class, one face; its concerns live in their own files: hub_connections.cc (the MQTT
// device protocol and telemetry), hub_twins.cc, hub_methods.cc, hub_c2d.cc, hub_registry.cc,
// hub_control.cc (stats, clock and faults) and hub.cc (metering and what they share).
// Not thread-safe: everything runs on the broker's thread; HTTP threads post work to it
// (see loop_bridge.h).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "azure/property_bag.h"
#include "common/clock.h"
#include "emulator/device_registry.h"
#include "emulator/message_store.h"
#include "emulator/quota.h"
#include "emulator/topics.h"

namespace iothub::emulator {

// What the hub needs from the MQTT broker: per-client delivery and disconnects. Implemented
// over mosquitto's plugin API (plugin.cc) and by a recording fake in tests.
class BrokerPort {
 public:
  virtual ~BrokerPort() = default;
  // Delivers to exactly this client (or its persistent session), whatever it subscribed to.
  virtual void Publish(const std::string& client_id, const std::string& topic, std::string payload,
                       int qos) = 0;
  // Closes the client's connection.
  virtual void Kick(const std::string& client_id) = 0;
};

// Shared access policy rights (§4).
enum Right : unsigned {
  kRegistryRead = 1,
  kRegistryWrite = 2,
  kServiceConnect = 4,
  kDeviceConnect = 8,
};

struct SharedAccessPolicy {
  std::string name;
  std::string primary_key;
  std::string secondary_key;
  unsigned rights = 0;
};

// The five policies every hub starts with, with fresh keys.
std::vector<SharedAccessPolicy> DefaultPolicies();

struct HubConfig {
  std::string host_name = "localhost";
  Tier tier = Tier::kS1;
  int units = 1;
  std::vector<SharedAccessPolicy> policies;
  std::size_t c2d_queue_limit = 50;
  std::size_t c2d_max_bytes = 64UL * 1024;
  std::size_t d2c_max_bytes = 256UL * 1024;
  std::int64_t c2d_default_ttl_ms = 3'600'000;
  // Quota already used on `quota_day` (UTC day number), carried over a broker restart.
  std::int64_t quota_day = -1;
  std::int64_t quota_used = 0;
  QuotaTwinAnswer quota_twin_answer = QuotaTwinAnswer::kClose;
};

// What the hub is given to run: clocks, broker, and the process-level controls.
struct HubEnvironment {
  const Clock& wall;    // the emulator's clock: token expiry, quota day, timestamps
  const Clock& steady;  // real elapsed time: method timeouts, throttles, fault windows
  BrokerPort& broker;
  std::function<void(std::int64_t ms)> advance_clock;  // moves `wall` forward
  std::function<void(int seconds)> drop_broker;        // restarts the broker after a pause
};

// An answer to a service-side request, in HTTP terms.
struct ServiceReply {
  int status = 200;
  Json body;
  std::map<std::string, std::string> headers;
};

// IoT Hub's error answer: {"Message":"ErrorCode:<name>;<text>","ExceptionMessage":...}.
ServiceReply ErrorReply(int status, int code, const std::string& name, const std::string& text,
                        std::int64_t now_ms);

enum class AuthOutcome {
  kAccepted,
  kNotAuthorized,  // CONNACK 5
  kUnavailable,    // connection closed without CONNACK (broker refusing)
};

enum class PublishVerdict { kAccept, kClose };

class Hub {
 public:
  Hub(HubConfig config, std::unique_ptr<DeviceRegistry> registry, MessageStore& messages,
      HubEnvironment env);

  // Device side, called by the broker glue. `connection` identifies one network connection
  // (a second CONNECT for a device replaces the first).
  AuthOutcome OnConnect(const void* connection, const std::string& client_id,
                        const std::string& username, const std::string& password,
                        bool clean_session);
  // False: the filter is not allowed and the connection must close.
  bool OnSubscribe(const void* connection, const std::string& client_id, const std::string& filter);
  // `retain` is cleared by the hub (it becomes the mqtt-retain property).
  PublishVerdict OnPublish(const void* connection, const std::string& client_id,
                           const std::string& topic, const std::string& payload, int qos,
                           bool retain);
  void OnUnsubscribe(const void* connection, const std::string& client_id,
                     const std::string& filter);
  void OnDisconnect(const void* connection, const std::string& client_id);
  // Answers every waiting method invocation with 503: the hub is shutting down.
  void Shutdown();
  // Called often (at least every 100 ms): token expiry, timeouts, queued deliveries.
  void OnTick();

  // Service side (§4). Bodies are parsed JSON; `if_match` is empty when absent.
  ServiceReply PutDevice(const std::string& id, const Json& body, const std::string& if_match);
  ServiceReply GetDevice(const std::string& id);
  ServiceReply ListDevices(std::size_t top);
  ServiceReply DeleteDevice(const std::string& id, const std::string& if_match);
  ServiceReply BulkDevices(const Json& body);
  ServiceReply GetTwin(const std::string& id);
  ServiceReply UpdateTwin(const std::string& id, const Json& body, const std::string& if_match,
                          bool replace);
  // Answers through `done`, immediately or when the device answers or time runs out.
  void InvokeMethod(const std::string& id, const Json& body,
                    std::function<void(ServiceReply)> done);
  // Emulator-only endpoints (docs/emulator-api.md).
  ServiceReply SendCloudToDevice(const std::string& id, const Json& body);
  ServiceReply Stats();
  ServiceReply AdvanceClock(const Json& body);
  ServiceReply Fault(const std::string& kind, const Json& body);

  // Registry operations are throttled per minute, a bulk request by its number of devices;
  // false: answer 429.
  bool AllowRegistryOperation(std::size_t devices = 1);
  // "<day> <used>": the quota count, for the next broker after a restart.
  std::string QuotaSnapshot() const;
  const HubConfig& config() const { return config_; }

 private:
  struct Session {
    const void* connection = nullptr;
    std::int64_t token_expiry_s = 0;
    bool clean_session = true;
    bool policy_token = false;
    std::int64_t connected_ms = 0;
    bool flush_pending = true;
  };
  struct CloudMessage {
    std::string body;
    azure::PropertyBag properties;  // as delivered: system ($.mid, $.to, $.exp..), then the rest
    std::int64_t expiry_ms = 0;
  };
  struct PendingMethod {
    std::string device_id;
    std::string name;
    std::string payload;
    std::int64_t connect_deadline_ms = 0;   // steady; while waiting for the device
    std::int64_t response_deadline_ms = 0;  // steady; once sent
    bool sent = false;
    std::int64_t response_timeout_ms = 0;
    std::function<void(ServiceReply)> done;
  };
  struct DeviceStats {
    std::int64_t d2c_messages = 0;
    std::int64_t d2c_bytes = 0;
    std::int64_t c2d_sent = 0;
    std::int64_t c2d_delivered = 0;
    std::int64_t c2d_expired = 0;
    std::int64_t twin_gets = 0;
    std::int64_t reported_patches = 0;
    std::int64_t desired_pushes = 0;
    std::int64_t method_calls = 0;
    std::int64_t connects = 0;
    std::int64_t refused_connects = 0;
    std::int64_t closed_by_hub = 0;
  };
  // What a charge is for, for the per-kind counters of /emulator/stats.
  enum class Billed {
    kTelemetry,
    kCloudToDevice,
    kTwinRead,
    kTwinUpdate,
    kDesiredNotification,
    kMethod,
  };

  // hub.cc: metering and shared answers.
  // Charges the messages `bytes` meter as (§5); false once the quota is exhausted.
  bool Charge(Billed kind, std::int64_t bytes);
  bool QuotaExhausted();
  ServiceReply Error(int status, int code, const std::string& name, const std::string& text) const;
  ServiceReply DeviceNotFound(const std::string& id) const;
  ServiceReply QuotaExceeded() const;
  ServiceReply Throttled(const std::string& what);
  ServiceReply NotInThisTier() const;
  ServiceReply BadMember(const std::string& member, const std::string& expected) const;
  std::string ConnectionState(const std::string& id) const;

  // hub_connections.cc: the device protocol.
  Session* SessionFor(const void* connection, const std::string& client_id);
  bool Subscribed(const Device& device, Subscription s) const;
  void CloseDevice(const std::string& device_id);
  PublishVerdict HandleTelemetry(Device& device, const TelemetryTopic& t,
                                 const std::string& payload, bool retain);

  // hub_twins.cc
  PublishVerdict HandleTwinGet(Device& device, const std::string& rid);
  PublishVerdict HandleReportedPatch(Device& device, const std::string& rid,
                                     const std::string& payload);
  // The answer to a twin request over MQTT once the quota is gone (QuotaTwinAnswer).
  PublishVerdict TwinQuotaExhausted(Device& device, const std::string& rid);
  void TwinError(Device& device, const std::string& rid, int status, int code,
                 const std::string& message);
  void PushDesired(Device& device, const Json& patch);
  static void TouchTwin(Device& device);
  Json TwinJson(const Device& device) const;

  // hub_methods.cc
  PublishVerdict HandleMethodResponse(Device& device, const MethodResponseTopic& t,
                                      const std::string& payload);
  void DispatchWaitingMethods(const std::string& device_id);
  void SendMethod(const std::string& rid, PendingMethod& pending);
  void ExpireMethods();

  // hub_c2d.cc
  void FlushCloudToDevice(const std::string& device_id);
  void ExpireCloudToDevice();

  // hub_registry.cc
  Json DeviceJson(const Device& device) const;
  ServiceReply CreateDevice(const std::string& id, const Json& body);
  ServiceReply ApplyDeviceUpdate(Device& device, const Json& body);
  const SharedAccessPolicy* FindPolicy(const std::string& name) const;

  HubConfig config_;
  std::unique_ptr<DeviceRegistry> registry_;
  MessageStore& messages_;
  HubEnvironment env_;
  DailyQuota quota_;
  TokenBucket registry_bucket_;
  TokenBucket twin_read_bucket_;
  TokenBucket twin_update_bucket_;
  TokenBucket connect_bucket_;
  TokenBucket c2d_bucket_;
  TokenBucket method_bucket_;  // in 4 KB steps of request payload
  std::map<std::string, Session> sessions_;
  std::map<std::string, std::deque<CloudMessage>> c2d_;
  std::map<std::string, PendingMethod> methods_;  // by $rid
  std::map<std::string, DeviceStats> stats_;
  std::uint64_t next_rid_ = 1;
  std::int64_t refuse_until_ms_ = 0;          // steady
  std::map<std::string, int> withhold_acks_;  // device -> publishes left to withhold ("" = all)
  std::int64_t quota_rejections_ = 0;
  std::map<Billed, std::int64_t> billed_;  // messages charged, by kind
  std::int64_t throttled_ = 0;
  bool shutting_down_ = false;
};

}  // namespace iothub::emulator
