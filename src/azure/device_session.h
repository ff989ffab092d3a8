// One device's connection to IoT Hub over MQTT 3.1.1 (shared/reference/azure-iothub.md §3):
// telemetry with a bounded in-flight window, cloud-to-device messages, the twin (GET, reported
// patches, desired properties in version order) and direct methods, kept alive tirelessly:
// SAS renewal before expiry, reconnects with capped jittered backoff, and a distinct state
// when the daily quota is exhausted (§5), which resumes at 00:00 UTC.
//
// Delivery contract: the session keeps no telemetry queue of its own. It pulls the next
// message from its TelemetrySource whenever its in-flight window has room, and reports each
// acknowledgement by message id (SessionListener::OnDelivered). A message it has taken stays
// in its window until the hub acknowledges it, across reconnects and renewals; after a
// connection ends with messages unacknowledged they are sent again, first and in order, with
// the same message id ($.mid), so a consumer that deduplicates on message id sees each
// exactly once.
//
// Not thread-safe: the session, its listener callbacks and the MqttConnector all live on one
// EventLoop thread. Hundreds of sessions can share that loop and one ConnectPacer.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "azure/connect_pacer.h"
#include "azure/desired_tracker.h"
#include "azure/mqtt_connection.h"
#include "azure/property_bag.h"
#include "common/backoff.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "common/random.h"
#include "common/result.h"

namespace iothub::azure {

using Json = nlohmann::json;

inline constexpr std::string_view kApiVersion = "2021-04-12";
// The DeviceClientType the hub sees (shown in its metrics and logs).
inline constexpr std::string_view kClientType = "iothub-connector/0.1.0";
// §3: a message's body plus its property names and values.
inline constexpr std::size_t kMaxTelemetryBytes = std::size_t{256} * 1024;

struct DeviceSessionConfig {
  std::string host_name;     // the hub: SAS resource, MQTT username and TLS name
  std::string connect_host;  // where to connect; empty: host_name
  int port = 8883;
  std::string device_id;
  std::string key;        // base64 device key: tokens are made and renewed from it
  std::string sas_token;  // or a fixed token (cannot be renewed: once expired, refused for good)
  std::string model_id;   // IoT Plug and Play model id (dtmi:...), optional
  int keepalive_s = 120;
  std::int64_t connect_timeout_ms = 15'000;  // TCP + TLS + CONNACK
  std::int64_t token_ttl_s = 3600;
  double renew_at = 0.8;           // renew when this fraction of the token's life has passed
  std::size_t max_in_flight = 16;  // unacknowledged telemetry publishes at once
  std::int64_t puback_timeout_ms = 60'000;  // then the connection is considered dead
  std::int64_t twin_timeout_ms = 30'000;
  std::int64_t drain_timeout_ms = 5'000;  // renewal waits this long for acknowledgements
  std::int64_t stable_after_ms = 10'000;  // a connection this old resets the backoff
  BackoffPolicy reconnect{1'000, 60'000, 2.0, 0.5};
  std::int64_t throttled_floor_ms = 30'000;  // backoff floor after the hub throttled us
  // Connections in a row closed by the hub right after a billable operation with nothing
  // acknowledged before the session calls the quota exhausted (§5).
  int quota_strikes = 3;
  // While exhausted, try again at 00:00 UTC or after this long, whichever comes first (so a
  // misread never stalls a device for a day).
  std::int64_t quota_probe_ms = std::int64_t{30} * 60'000;
  std::size_t max_cloud_message_bytes = std::size_t{256} * 1024;  // larger deliveries are dropped
  // Which cloud features the session subscribes to. A device that only publishes needs none
  // of the cloud-to-device paths: without `receive_cloud` it subscribes to no C2D, desired or
  // method topic and makes no twin GET of its own after connecting (each one is billed, §5).
  // Without `twin` (basic tiers: a twin request gets the device disconnected) GetTwin and
  // UpdateReported fail at once with "twin_unavailable".
  bool receive_cloud = true;
  // Direct methods alone, without receive_cloud: a device that answers every call (if only
  // to say it takes no commands) but consumes no cloud-to-device message and reads no twin.
  bool receive_methods = false;
  bool twin = true;
};

// A configuration from a device connection string (§1): HostName, DeviceId and the key or
// token; GatewayHostName (host or host:port) becomes where to connect. X.509 and module
// identities are refused with a clear error (not supported yet).
Result<DeviceSessionConfig> SessionConfigFromConnectionString(std::string_view text);

enum class SessionState {
  kStopped,     // not started, or Stop() called
  kConnecting,  // waiting for a pacer slot, TCP/TLS, or the CONNACK
  kConnected,
  kBackingOff,      // waiting to reconnect after a failure
  kQuotaExhausted,  // the hub's daily quota is used up; waiting for 00:00 UTC
  kRefused,         // the hub refused the credentials (retrying slowly), or a fixed token expired
};
std::string_view ToString(SessionState state);

struct TelemetryMessage {
  std::string body;
  PropertyBag properties;        // application properties (no "$." names)
  std::string message_id;        // required: acknowledgements and resends refer to it
  std::string content_type;      // e.g. "application/json"
  std::string content_encoding;  // e.g. "utf-8"
  std::string component;         // IoT Plug and Play component ($.sub)
  std::string creation_time;     // iothub-creation-time-utc (ISO 8601), optional
  std::string correlation_id;    // $.cid, e.g. the id of the cloud-to-device message answered
};

// Whether device `device_id` can send `message` as it is, so that a producer refuses it
// before making it durable. Errors: "too_large" (over 256 KB with all properties, or an MQTT
// topic over 64 KB), "bad_message" (no message id or one over 128 bytes, a "$." or empty
// application property name). Thread-safe (pure).
Status CheckTelemetry(std::string_view device_id, const TelemetryMessage& message);

// Where a session's telemetry comes from: its owner's queue (in the connector, the durable
// outbox). The session calls NextTelemetry() on its loop whenever it is connected and its
// in-flight window has room; the owner calls DeviceSession::TelemetryReady() when it has
// something new. A message handed out is the session's to send, resend and acknowledge
// (OnDelivered) or refuse (OnTelemetryRefused) for as long as the session lives; a new
// session starts with an empty window, so a source that outlives a session hands its
// unacknowledged messages out again.
class TelemetrySource {
 public:
  virtual ~TelemetrySource() = default;
  // The next message to send, or nullopt when there is none now.
  virtual std::optional<TelemetryMessage> NextTelemetry() = 0;
};

struct CloudMessage {
  std::string body;
  PropertyBag properties;  // system ("$.mid", "$.to", ...) and application properties
  std::string message_id;
};

struct MethodRequest {
  std::string name;
  std::string request_id;  // $rid, needed for the response
  std::string payload;     // JSON text (may be empty)
};

struct SessionCounters {
  std::int64_t connects = 0;  // CONNACK 0 received
  std::int64_t connection_losses = 0;
  std::int64_t renewals = 0;
  std::int64_t sent = 0;       // telemetry publishes, including resends
  std::int64_t resent = 0;     // of which resends of an unacknowledged message
  std::int64_t delivered = 0;  // acknowledged telemetry
  std::int64_t cloud_messages = 0;
  std::int64_t duplicate_cloud_messages = 0;  // redeliveries dropped by message id
  std::int64_t problems = 0;                  // garbage from the hub, reported to OnProblem
  std::int64_t throttled = 0;
};

// What a session tells its owner. All callbacks run on the loop thread; they may call the
// session back (Send, Respond...), but must not destroy it.
class SessionListener {
 public:
  virtual ~SessionListener() = default;
  // `detail` says why (e.g. the connection error, or when the quota resumes).
  virtual void OnState(SessionState /*state*/, std::string_view /*detail*/) {}
  // The hub acknowledged the telemetry message (its PUBACK).
  virtual void OnDelivered(std::string_view /*message_id*/) {}
  // A message the source handed out cannot be sent (CheckTelemetry's errors); it is dropped.
  virtual void OnTelemetryRefused(std::string_view /*message_id*/, const Error& /*why*/) {}
  virtual void OnCloudMessage(const CloudMessage& /*message*/) {}
  // Desired properties changed: a merge patch, in version order, exactly once.
  virtual void OnDesired(const DesiredTracker::Change& /*change*/) {}
  // A direct method call; answer with DeviceSession::RespondMethod.
  virtual void OnMethod(const MethodRequest& /*request*/) {}
  // The hub sent something the session cannot use (bad JSON, unknown topic, oversized
  // message). It is dropped; the session carries on.
  virtual void OnProblem(const Error& /*problem*/) {}
};

class DeviceSession final : private MqttHandler {
 public:
  using TwinCallback = std::function<void(Result<Json>)>;
  using ReportedCallback = std::function<void(Result<std::int64_t>)>;  // the new reported $version

  // Validates the configuration (clear errors naming the field).
  static Result<std::unique_ptr<DeviceSession>> Create(EventLoop& loop, MqttConnector& connector,
                                                       ConnectPacer& pacer, const Clock& wall,
                                                       Random& random, DeviceSessionConfig config,
                                                       SessionListener& listener);
  ~DeviceSession() override;
  DeviceSession(const DeviceSession&) = delete;
  DeviceSession& operator=(const DeviceSession&) = delete;

  void Start();
  // Closes the connection. Unacknowledged telemetry stays in the window (see window()) and is
  // resent after the next Start().
  void Stop();

  // Where telemetry is pulled from (none: the session sends none). Must outlive the session
  // or be replaced first.
  void SetTelemetrySource(TelemetrySource* source);
  // The source has new messages: pull while the window has room.
  void TelemetryReady();
  // The full twin ({"desired":..,"reported":..}). Requests made while disconnected wait for
  // the connection; the timeout counts from when the request is sent.
  void GetTwin(TwinCallback done);
  // Patches reported properties (null deletes). Resent after reconnects until answered;
  // timeouts, 429 and 5xx answers are retried up to six attempts in all. `done` runs exactly
  // once: with the new version, or with the error the session gave up on ("timeout",
  // "throttled", "server_error", "twin_rejected", "stopped"), so the caller can retry from
  // its own durable state.
  void UpdateReported(Json patch, ReportedCallback done);
  // Answers a direct method. `payload` must be JSON text or empty.
  Status RespondMethod(std::string_view request_id, int status, std::string_view payload);

  SessionState state() const { return state_; }
  const SessionCounters& counters() const { return counters_; }
  std::size_t window() const { return window_.size(); }  // taken, not yet acknowledged
  std::size_t in_flight() const { return in_flight_.size(); }
  const DesiredTracker& desired() const { return desired_; }
  const std::string& device_id() const { return config_.device_id; }
  // Wall-clock time (ms since the epoch) at which a quota-exhausted session resumes (0 when
  // the quota is not known to be exhausted).
  std::int64_t quota_resume_wall_ms() const { return quota_resume_wall_ms_; }

 private:
  struct Outgoing {
    std::string topic;
    std::string body;
    std::string message_id;
    bool sent_once = false;
  };
  struct InFlight {
    std::list<Outgoing>::iterator message;
    std::int64_t sent_ms = 0;
  };
  enum class TwinKind { kGet, kReported, kInternalGet };
  struct TwinRequest {
    TwinKind kind = TwinKind::kGet;
    Json patch;
    TwinCallback on_twin;
    ReportedCallback on_reported;
    std::string rid;  // empty while not sent on the current connection
    std::int64_t sent_ms = 0;
    int attempts = 0;
    EventLoop::TimerId retry_timer = 0;
  };

  DeviceSession(EventLoop& loop, MqttConnector& connector, ConnectPacer& pacer, const Clock& wall,
                Random& random, DeviceSessionConfig config, SessionListener& listener);

  // MqttHandler
  void OnConnack(int code) override;
  void OnConnectionLost(std::string_view why) override;
  void OnPuback(int packet_id) override;
  void OnMessage(std::string_view topic, std::string_view payload) override;

  void SetState(SessionState state, std::string_view detail);
  void RequestConnect();
  void Connect();
  void ConnectionEnded(std::string_view why, bool refused_credentials);
  void DropConnection();
  void ScheduleReconnect(std::int64_t delay_ms, SessionState state, std::string_view detail);
  void OnTick();
  void Pump();
  // Takes the next sendable message from the source into the window; false when none.
  bool TakeFromSource();
  static TwinRequest MakeTwinRequest(TwinKind kind, Json patch, TwinCallback on_twin,
                                     ReportedCallback on_reported);
  void SendTwinRequests();
  bool SendTwinRequest(TwinRequest& request);
  void CompleteTwin(std::list<TwinRequest>::iterator it, int status, std::string_view body,
                    std::int64_t version);
  std::int64_t TwinRetryDelayMs(int attempts);
  void RetryTwinLater(std::list<TwinRequest>::iterator it, std::int64_t delay_ms);
  void FullGetIfNeeded();
  void HandleCloudMessage(std::string_view bag, std::string_view payload);
  void HandleTwinResponse(std::string_view rest, std::string_view payload);
  void HandleDesiredPatch(std::string_view payload);
  void HandleMethod(std::string_view rest, std::string_view payload);
  void Problem(std::string code, std::string message);
  Result<std::string> Password();
  void EnterQuotaExhausted();
  void HubAnswered();

  EventLoop& loop_;
  MqttConnector& connector_;
  ConnectPacer& pacer_;
  const Clock& wall_;
  Random& random_;
  DeviceSessionConfig config_;
  SessionListener& listener_;
  Backoff backoff_;
  std::string topic_prefix_;  // "devices/{id}/messages/events/"
  std::string c2d_prefix_;    // "devices/{id}/messages/devicebound/"

  SessionState state_ = SessionState::kStopped;
  std::unique_ptr<MqttConnection> connection_;
  bool connack_ = false;            // the current connection is accepted
  bool pumping_ = false;            // Pump() is running (the source may call back in)
  bool renewing_ = false;           // draining before a token renewal
  std::int64_t connected_ms_ = 0;   // loop time of the CONNACK
  std::int64_t renew_wall_ms_ = 0;  // wall time at which to renew the token
  std::int64_t token_expiry_wall_ms_ = 0;
  std::int64_t renew_started_ms_ = 0;
  bool acked_this_connection_ = false;
  bool billable_this_connection_ = false;
  int quota_strikes_ = 0;
  std::int64_t quota_resume_wall_ms_ = 0;
  EventLoop::TimerId tick_timer_ = 0;
  EventLoop::TimerId reconnect_timer_ = 0;
  ConnectPacer::Ticket pacer_ticket_ = 0;

  TelemetrySource* source_ = nullptr;
  // Taken from the source and not yet acknowledged (at most max_in_flight), oldest first;
  // the ones sent on the current connection are at the front.
  std::list<Outgoing> window_;
  std::list<Outgoing>::iterator next_unsent_ = window_.end();
  std::unordered_map<int, InFlight> in_flight_;  // by packet id

  std::list<TwinRequest> twin_requests_;
  std::uint64_t next_rid_ = 1;
  DesiredTracker desired_;
  bool internal_get_pending_ = false;
  std::deque<std::string> recent_cloud_ids_;  // for dropping redeliveries

  SessionCounters counters_;
};

}  // namespace iothub::azure
