// The iothub-connector daemon (DESIGN.md, issue 10): openHAB's items and things into IoT Hub
// within the message budget, losing nothing. It wires the parts together on one event loop:
//   ItemMirror → Replicator → Outbox → Dispatcher → DeviceSession → IoT Hub
//                     └──────→ TwinMirror ──────────────↗
// and owns the provisioning of the gateway device, the status server and shutdown. Not
// thread-safe: construct, use and destroy on the loop thread (the status server's threads
// only post to the loop).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "azure/connect_pacer.h"
#include "azure/device_session.h"
#include "azure/mosquitto_connection.h"
#include "common/backoff.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "common/http_client.h"
#include "common/http_stream.h"
#include "common/liveness.h"
#include "common/random.h"
#include "connector/audit_log.h"
#include "connector/budget.h"
#include "connector/command_router.h"
#include "connector/config.h"
#include "connector/dispatcher.h"
#include "connector/item_stats.h"
#include "connector/log.h"
#include "connector/outbox.h"
#include "connector/provisioning.h"
#include "connector/replicator.h"
#include "connector/status.h"
#include "connector/status_server.h"
#include "connector/twin_mirror.h"
#include "openhab/item_mirror.h"
#include "openhab/rest_client.h"

namespace iothub::connector {

inline constexpr std::string_view kVersion = "0.1.0";

struct ConnectorOptions {
  std::string config_file;                 // for the status ("" when run from flags)
  std::vector<std::string> warnings;       // from LoadConfig, shown in the status
  std::int64_t shutdown_grace_ms = 5'000;  // SIGTERM: how long acknowledgements are awaited
  // While the hub's quota is exhausted, how long the session waits before it tries again
  // (it also tries at 00:00 UTC): azure::DeviceSessionConfig::quota_probe_ms.
  std::int64_t quota_probe_ms = std::int64_t{30} * 60'000;
};

class Connector final : private azure::SessionListener {
 public:
  // Called once when the connector cannot go on (a refused credential, a store that cannot
  // be opened): the message says why and what to do. The caller stops the loop and exits 1.
  using Fatal = std::function<void(const std::string& message)>;

  // Checks what can be checked without I/O (the hub plan, the item patterns).
  static Result<std::unique_ptr<Connector>> Create(EventLoop& loop, const Clock& wall, Log& log,
                                                   Config config, ConnectorOptions options,
                                                   Fatal fatal);
  ~Connector() override;
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  // Opens the store and the status endpoint (errors are returned: nothing runs then), then
  // starts following openHAB and connecting to the hub.
  Status Start();
  // Stops reading openHAB, sends what the budget allows and waits up to shutdown_grace_ms
  // for the hub's acknowledgements, then closes everything; `done` runs on the loop. What is
  // left stays in the outbox for the next start.
  void Shutdown(std::function<void()> done);
  // SIGHUP: the item selection and per-item settings of `config` take effect without a
  // reconnect. Other changes are named in the log as needing a restart.
  void Reload(const Config& config);

  StatusSnapshot Snapshot();
  // The status endpoint's address ("" when off).
  std::string metrics_address() const;
  const HubPlan& plan() const { return plan_; }

 private:
  Connector(EventLoop& loop, const Clock& wall, Log& log, Config config, ConnectorOptions options,
            Fatal fatal, HubPlan plan, Selection selection);

  // azure::SessionListener
  void OnState(azure::SessionState state, std::string_view detail) override;
  void OnDelivered(std::string_view message_id) override;
  void OnTelemetryRefused(std::string_view message_id, const Error& why) override;
  void OnProblem(const Error& problem) override;
  void OnMethod(const azure::MethodRequest& request) override;
  void OnCloudMessage(const azure::CloudMessage& message) override;

  Status StartCommands();
  void ConnectHub();
  void Provision();
  void StartSession(const std::string& key);
  void Facts();
  void NoteError(const std::string& kind, const std::string& message);
  void ShutdownStep(std::int64_t deadline_ms, std::int64_t last_sealed, int quiet_steps);
  void FinishShutdown();
  void TrimHeap();

  EventLoop& loop_;
  const Clock& wall_;
  Log& log_;
  Config config_;
  ConnectorOptions options_;
  Fatal fatal_;
  HubPlan plan_;
  std::optional<Selection> initial_selection_;
  SystemRandom random_;
  std::int64_t started_ms_ = 0;

  Budget budget_;
  ItemBook book_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<TwinMirror> twin_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<HttpClient> openhab_http_;
  std::unique_ptr<HttplibStreamer> streamer_;
  std::unique_ptr<openhab::RestClient> rest_;
  std::unique_ptr<Replicator> replicator_;
  std::unique_ptr<openhab::ItemMirror> mirror_;
  // Commands from the cloud: their own HTTP client, so that a command never queues behind a
  // slow item-list read, and with the command timeout as its read timeout.
  std::unique_ptr<HttpClient> command_http_;
  std::unique_ptr<openhab::RestClient> command_rest_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<CommandRouter> router_;
  std::unique_ptr<HttpClient> hub_http_;
  std::unique_ptr<Provisioner> provisioner_;
  Backoff provision_backoff_;
  EventLoop::TimerId provision_timer_ = 0;
  std::unique_ptr<azure::MosquittoConnector> mqtt_;
  std::unique_ptr<azure::ConnectPacer> pacer_;
  std::unique_ptr<azure::DeviceSession> session_;
  std::unique_ptr<StatusServer> status_server_;

  std::string session_state_ = "starting";
  std::string session_detail_;
  std::int64_t session_since_ms_ = 0;
  std::map<std::string, StatusSnapshot::ErrorCount> errors_;
  bool stopping_ = false;
  bool ever_connected_ = false;  // a refusal before the first connection is fatal
  std::function<void()> shutdown_done_;
  EventLoop::TimerId shutdown_timer_ = 0;
  static constexpr std::int64_t kTrimIntervalMs = 5'000;
  EventLoop::TimerId trim_timer_ = 0;
  Liveness liveness_;  // last: callbacks check it before touching the members above
};

}  // namespace iothub::connector
