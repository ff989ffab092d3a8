#include "connector/connector.h"

#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "connector/message_format.h"

namespace iothub::connector {
Result<std::unique_ptr<Connector>> Connector::Create(EventLoop& loop, const Clock& wall, Log& log,
                                                     Config config, ConnectorOptions options,
                                                     Fatal fatal) {
  auto plan = PlanHub(config);
  if (!plan) return plan.error();
  auto selection = MakeSelection(config);
  if (!selection) return selection.error();
  if (auto http = openhab::ParseServerUrl(config.openhab.url); !http) {
    return MakeError("config", "[openhab] url: " + http.error().message);
  }
  return std::unique_ptr<Connector>(
      new Connector(loop, wall, log, std::move(config), std::move(options), std::move(fatal),
                    std::move(plan).value(), std::move(selection).value()));
}

Connector::Connector(EventLoop& loop, const Clock& wall, Log& log, Config config,
                     ConnectorOptions options, Fatal fatal, HubPlan plan, Selection selection)
    : loop_(loop),
      wall_(wall),
      log_(log),
      config_(std::move(config)),
      options_(std::move(options)),
      fatal_(std::move(fatal)),
      plan_(std::move(plan)),
      initial_selection_(std::move(selection)),
      started_ms_(wall.NowMs()),
      budget_(BudgetPolicyFromConfig(config_)),
      provision_backoff_(BackoffPolicy{5'000, 300'000, 2.0, 0.5}, random_),
      session_since_ms_(wall.NowMs()) {
  log_.AddSecret(config_.iothub.connection_string);
  log_.AddSecret(config_.openhab.token);
  if (plan_.policy) log_.AddSecret(plan_.policy->key);
  log_.AddSecret(plan_.device_key);
  log_.AddSecret(plan_.device_token);
}

Connector::~Connector() {
  if (status_server_) status_server_->Stop();
  if (provision_timer_ != 0) loop_.Cancel(provision_timer_);
  if (shutdown_timer_ != 0) loop_.Cancel(shutdown_timer_);
  if (trim_timer_ != 0) loop_.Cancel(trim_timer_);
  if (session_) session_->Stop();
  if (mirror_) mirror_->Stop();
}

Status Connector::Start() {
  OutboxOptions store;
  store.dir = config_.store.dir;
  store.max_bytes = config_.store.max_bytes;
  store.clock = &wall_;
  auto outbox = Outbox::Open(loop_, store);
  if (!outbox) return outbox.error();
  outbox_ = std::move(outbox).value();

  TwinMirrorOptions twin;
  twin.enabled = !azure::IsBasicTier(config_.quota.tier);
  twin_ = std::make_unique<TwinMirror>(loop_, wall_, budget_, log_, twin);
  if (!twin.enabled) {
    log_.Info("twin", "the {} tier has no device twins: item states go to telemetry only",
              azure::TierName(config_.quota.tier));
  }

  DispatcherOptions dispatch;
  dispatch.device_id = plan_.device_id;
  dispatch.pack = PackOptionsFor(config_);
  // Enough entries to fill the chunk with the smallest ones, and no more: each pull reads
  // them all from the outbox.
  dispatch.peek_entries = static_cast<std::size_t>(
      std::max<std::int64_t>(32, azure::ChunkBytes(config_.quota.tier) / 32));
  // 80 % of the tier's device-to-cloud throttle (shared with other devices of the hub).
  dispatch.max_messages_per_second =
      0.8 * azure::LimitsFor(config_.quota.tier, config_.quota.units).d2c_per_second;
  if (twin.enabled) dispatch.main_share = 1.0 - kTwinShare;
  dispatcher_ =
      std::make_unique<Dispatcher>(loop_, wall_, *outbox_, budget_, book_, log_, dispatch);
  outbox_->SetCommitted(liveness_.Guard([this](std::size_t) {
    // The item count feeds the staleness bound and the merge decision.
    if (replicator_) dispatcher_->set_item_count(replicator_->telemetry_items());
    dispatcher_->Wake();
  }));

  auto http = openhab::ParseServerUrl(config_.openhab.url);
  if (!http) return http.error();
  openhab_http_ = HttplibClient::Create(loop_, *http);
  streamer_ = std::make_unique<HttplibStreamer>(loop_, openhab::EventStreamConfig(*http));
  rest_ = std::make_unique<openhab::RestClient>(
      loop_, *openhab_http_, openhab::RestClientConfig{.token = config_.openhab.token});
  replicator_ = std::make_unique<Replicator>(loop_, wall_, *outbox_, *twin_, book_, *rest_, log_,
                                             std::move(*initial_selection_));
  initial_selection_.reset();
  mirror_ = std::make_unique<openhab::ItemMirror>(loop_, *streamer_, *rest_, random_,
                                                  openhab::MirrorConfig{}, *replicator_);
  replicator_->SetMirror(mirror_.get());
  if (auto commands = StartCommands(); !commands) return commands;

  if (!config_.metrics.listen.empty()) {
    StatusServerOptions server;
    server.listen = config_.metrics.listen;
    // The server is stopped (and its function destroyed) before this object goes.
    auto started = StatusServer::Start(
        loop_, [this] { return Snapshot(); }, server);
    if (!started) return started.error();
    status_server_ = std::move(started).value();
  }

  auto mqtt = azure::MosquittoConnector::Create(
      loop_, azure::TlsOptions{config_.iothub.ca_file, plan_.host_name});
  if (!mqtt) return mqtt.error();
  mqtt_ = std::move(mqtt).value();
  pacer_ = std::make_unique<azure::ConnectPacer>(loop_, 1.0);

  log_.Info("connector",
            "iothub-connector {} starting: openHAB {} → IoT Hub {} as device '{}' "
            "({} mode, {} tier, {} messages per {} s window)",
            kVersion, RedactUrl(config_.openhab.url), plan_.host_name, plan_.device_id,
            ToString(config_.iothub.mode), azure::TierName(config_.quota.tier),
            config_.DailyBudget(), config_.quota.window_seconds);
  if (config_.iothub.mode == Mode::kPublishCommand) {
    log_.Warn("connector",
              "publish-command mode: direct methods and cloud-to-device messages reach "
              "openHAB; desired properties are not handled in this version yet");
  }
  if (!plan_.advice.empty()) log_.Warn("hub", "{}", plan_.advice);
  for (const auto& warning : options_.warnings) log_.Warn("config", "{}", warning);

  TrimHeap();
  mirror_->Start();
  ConnectHub();
  return Ok{};
}

Status Connector::StartCommands() {
  auto audit = AuditLog::Open(config_.store.dir, AuditLogOptions{});
  if (!audit) return audit.error();
  audit_ = std::move(audit).value();
  auto gate = CommandGate::Create(CommandGateOptions{.allow = config_.commands.allow,
                                                     .deny = config_.commands.deny,
                                                     .item_rate = config_.commands.item_rate,
                                                     .item_burst = config_.commands.item_burst,
                                                     .total_rate = config_.commands.rate,
                                                     .total_burst = config_.commands.burst});
  if (!gate) return gate.error();
  openhab::RestClient* rest = rest_.get();
  if (config_.iothub.mode == Mode::kPublishCommand) {
    auto http = openhab::ParseServerUrl(config_.openhab.url);
    if (!http) return http.error();
    // The router answers 504 at the command timeout; the request itself may take longer, so
    // that openHAB's late answer is still logged (and a slow openHAB is not hammered).
    http->read_timeout_ms = config_.commands.timeout_ms + 10'000;
    command_http_ = HttplibClient::Create(loop_, *http);
    command_rest_ = std::make_unique<openhab::RestClient>(
        loop_, *command_http_, openhab::RestClientConfig{.token = config_.openhab.token});
    rest = command_rest_.get();
  }
  CommandHome home;
  home.items = [this]() -> const ItemMap& { return mirror_->items(); };
  home.replicated = [this](const std::string& name) {
    return replicator_->selected().count(name) != 0;
  };
  home.respond = [this](std::string_view rid, int status, std::string_view payload) {
    if (!session_) return;
    if (auto sent = session_->RespondMethod(rid, status, payload); !sent) {
      log_.Warn("command", "cannot answer a direct method: {}", sent.error().message);
    }
  };
  home.report = [this](azure::TelemetryMessage message) {
    return dispatcher_->SendDirect(std::move(message));
  };
  router_ = std::make_unique<CommandRouter>(
      loop_, wall_, *rest, std::move(gate).value(), *audit_, budget_, log_, std::move(home),
      CommandRouterOptions{.mode = config_.iothub.mode,
                           .timeout_ms = config_.commands.timeout_ms,
                           .max_wait_ms = config_.commands.max_wait_ms,
                           .static_properties = config_.iothub.properties});
  replicator_->SetStateObserver([this](const openhab::Item& item) {
    if (router_) router_->OnItemState(item);
  });
  return Ok{};
}

void Connector::OnMethod(const azure::MethodRequest& request) {
  if (router_) router_->OnMethod(request);
}

void Connector::OnCloudMessage(const azure::CloudMessage& message) {
  if (router_) router_->OnCloudMessage(message);
}

void Connector::ConnectHub() {
  if (plan_.policy) {
    HttpClientConfig https;
    https.host = plan_.https_host;
    https.port = plan_.https_port;
    https.ca_file = config_.iothub.ca_file;
    hub_http_ = HttplibClient::Create(loop_, https);
    Provision();
    return;
  }
  StartSession(plan_.device_key);
}

void Connector::Provision() {
  provisioner_ = std::make_unique<Provisioner>(loop_, *hub_http_, wall_, random_, plan_,
                                               config_.store.dir, log_);
  provisioner_->Run(liveness_.Guard([this](const Result<std::string>& key) {
    if (key) {
      log_.AddSecret(*key);
      provision_backoff_.Reset();
      StartSession(*key);
      // Done for this run: the registry's HTTPS client (a TLS context and a thread) goes, after
      // this callback has returned.
      loop_.Post(liveness_.Guard([this] {
        provisioner_.reset();
        hub_http_.reset();
      }));
      return;
    }
    NoteError("provisioning", key.error().message);
    if (key.error().code != "registry") {
      fatal_(key.error().message);
      return;
    }
    const std::int64_t delay = provision_backoff_.NextDelayMs();
    log_.Warn("hub", "{}; trying again in {} s", key.error().message, delay / 1000);
    provision_timer_ = loop_.RunAfter(delay, [this] {
      provision_timer_ = 0;
      Provision();
    });
  }));
}

void Connector::StartSession(const std::string& key) {
  if (stopping_) return;
  azure::DeviceSessionConfig session_config = SessionConfig(plan_, config_, key);
  session_config.quota_probe_ms = options_.quota_probe_ms;
  auto session = azure::DeviceSession::Create(loop_, *mqtt_, *pacer_, wall_, random_,
                                              std::move(session_config), *this);
  if (!session) {
    fatal_(fmt::format("cannot use the hub's device: {}", session.error().message));
    return;
  }
  session_ = std::move(session).value();
  dispatcher_->Attach(session_.get());
  twin_->Attach(session_.get());
  Facts();
  session_->Start();
}

void Connector::Facts() {
  const BudgetFigures figures = budget_.Figures(wall_.NowMs());
  twin_->SetFacts({{"version", kVersion},
                   {"started", FormatIsoTimeMs(started_ms_)},
                   {"mode", ToString(config_.iothub.mode)},
                   {"budget",
                    {{"tier", azure::TierName(config_.quota.tier)},
                     {"messages", figures.budget},
                     {"reserve", figures.reserve},
                     {"windowSeconds", config_.quota.window_seconds}}}});
}

void Connector::OnState(azure::SessionState state, std::string_view detail) {
  session_state_ = std::string(azure::ToString(state));
  session_detail_ = std::string(detail);
  session_since_ms_ = wall_.NowMs();
  switch (state) {
    case azure::SessionState::kConnected:
      ever_connected_ = true;
      log_.Info("hub", "connected to {} as '{}'", plan_.host_name, plan_.device_id);
      break;
    case azure::SessionState::kQuotaExhausted:
      log_.Warn("hub",
                "the hub's daily message quota is exhausted (other devices may share it): "
                "changes are kept and merged; sending resumes at {}",
                FormatIsoTimeMs(session_ ? session_->quota_resume_wall_ms() : 0));
      NoteError("quota", std::string(detail));
      break;
    case azure::SessionState::kRefused:
      NoteError("hub_refused", std::string(detail));
      // Refused before it was ever accepted: the credential is wrong (or the device disabled);
      // retrying cannot help. Later refusals (a device disabled for a while) are retried.
      if (!ever_connected_) {
        fatal_(fmt::format(
            "the hub refused device '{}': {}; check the key in [iothub] connection_string and "
            "that the device is enabled",
            plan_.device_id, log_.Scrub(std::string(detail))));
        return;
      }
      log_.Error("hub", "the hub refused the device: {}", detail);
      break;
    case azure::SessionState::kBackingOff:
      log_.Warn("hub", "{}", detail);
      NoteError("hub_connection", std::string(detail));
      break;
    default:
      break;
  }
  if (dispatcher_) {
    dispatcher_->SessionState(state, session_ ? session_->quota_resume_wall_ms() : 0);
  }
  if (twin_) twin_->Connected(!stopping_ && state == azure::SessionState::kConnected);
}

void Connector::OnDelivered(std::string_view message_id) { dispatcher_->Delivered(message_id); }

void Connector::OnTelemetryRefused(std::string_view message_id, const Error& why) {
  NoteError("telemetry_refused", why.message);
  dispatcher_->Refused(message_id, why);
}

void Connector::OnProblem(const Error& problem) {
  NoteError("hub_problem", problem.message);
  log_.Warn("hub", "ignored from the hub ({}): {}", problem.code, problem.message);
}

void Connector::NoteError(const std::string& kind, const std::string& message) {
  auto& entry = errors_[kind];
  entry.kind = kind;
  ++entry.count;
  entry.last_message = log_.Scrub(message);
  entry.last_ms = wall_.NowMs();
}

void Connector::Reload(const Config& config) {
  auto selection = MakeSelection(config);
  if (!selection) {
    log_.Error("config", "reload refused, the running settings stay: {}",
               selection.error().message);
    return;
  }
  const bool other_changes =
      config.openhab.url != config_.openhab.url || config.openhab.token != config_.openhab.token ||
      config.iothub.connection_string != config_.iothub.connection_string ||
      config.iothub.mode != config_.iothub.mode || config.quota.tier != config_.quota.tier ||
      config.quota.daily_messages != config_.quota.daily_messages ||
      config.quota.reserve != config_.quota.reserve || config.store.dir != config_.store.dir ||
      config.metrics.listen != config_.metrics.listen;
  if (other_changes) {
    log_.Warn("config",
              "only openhab.items, openhab.exclude and [[item]] are reloaded; the other "
              "changes take effect at the next start");
  }
  config_.openhab.items = config.openhab.items;
  config_.openhab.exclude = config.openhab.exclude;
  config_.items = config.items;
  if (replicator_) replicator_->Reload(std::move(selection).value());
}

void Connector::TrimHeap() {
  // The item list of a resync and the bodies of a burst are parsed into short-lived objects;
  // glibc keeps the pages they took after they are freed. Giving them back every few seconds
  // costs well under a millisecond for this heap, and keeps the resident set at what is live.
  malloc_trim(0);
  trim_timer_ = loop_.RunAfter(kTrimIntervalMs, [this] { TrimHeap(); });
}

void Connector::Shutdown(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  shutdown_done_ = std::move(done);
  log_.Info("connector", "stopping: sending what the budget allows");
  if (mirror_) mirror_->Stop();
  // The budget left goes to telemetry, which is durable; the next start mirrors the twin anew.
  if (twin_) twin_->Connected(false);
  if (provision_timer_ != 0) loop_.Cancel(provision_timer_);
  provision_timer_ = 0;
  provisioner_.reset();
  if (outbox_) (void)outbox_->Flush();
  if (dispatcher_) dispatcher_->Wake();
  ShutdownStep(loop_.NowMs() + options_.shutdown_grace_ms, -1, 0);
}

void Connector::ShutdownStep(std::int64_t deadline_ms, std::int64_t last_sealed, int quiet_steps) {
  shutdown_timer_ = 0;
  const bool connected = session_ && session_->state() == azure::SessionState::kConnected;
  const OutboxStats stats = outbox_ ? outbox_->Stats() : OutboxStats{};
  const std::int64_t sealed = dispatcher_ ? dispatcher_->counters().messages_sealed : 0;
  quiet_steps = sealed == last_sealed ? quiet_steps + 1 : 0;
  const bool idle = dispatcher_ == nullptr || dispatcher_->in_flight() == 0 ||
                    (session_ && session_->window() == 0);
  // Done when nothing is in flight and either nothing is pending or the budget holds it back.
  if (!connected || loop_.NowMs() >= deadline_ms ||
      (idle && (stats.pending_entries == 0 || quiet_steps >= 6))) {
    FinishShutdown();
    return;
  }
  shutdown_timer_ = loop_.RunAfter(50, [this, deadline_ms, sealed, quiet_steps] {
    ShutdownStep(deadline_ms, sealed, quiet_steps);
  });
}

void Connector::FinishShutdown() {
  const OutboxStats stats = outbox_ ? outbox_->Stats() : OutboxStats{};
  if (session_) session_->Stop();
  if (outbox_) (void)outbox_->Flush();
  if (status_server_) status_server_->Stop();
  log_.Info("connector", "stopped; {} entries and {} unacknowledged messages wait in the outbox",
            stats.pending_entries, stats.sealed_messages);
  if (shutdown_done_) {
    auto done = std::move(shutdown_done_);
    done();
  }
}

std::string Connector::metrics_address() const {
  return status_server_ ? status_server_->address() : std::string();
}

StatusSnapshot Connector::Snapshot() {
  StatusSnapshot s;
  const std::int64_t now = wall_.NowMs();
  s.connector.version = std::string(kVersion);
  s.connector.started_ms = started_ms_;
  s.connector.now_ms = now;
  s.connector.mode = std::string(ToString(config_.iothub.mode));
  s.connector.layout = "gateway";
  s.connector.config_file = options_.config_file;
  s.connector.store_dir = config_.store.dir;
  s.connector.pid = ::getpid();
  s.connector.resident_bytes = ResidentMemoryBytes();
  s.connector.store_free_bytes = FreeDiskBytes(config_.store.dir);
  s.connector.warnings = options_.warnings;
  if (!plan_.advice.empty()) s.connector.warnings.push_back(plan_.advice);

  s.openhab.url = RedactUrl(config_.openhab.url);
  if (replicator_) {
    s.openhab.stream_up = replicator_->stream_up();
    s.openhab.stream_detail = replicator_->stream_detail();
    s.openhab.stream_since_ms = replicator_->stream_since_ms();
    if (replicator_->server()) s.openhab.server_version = replicator_->server()->runtime_version;
    s.openhab.admin = replicator_->admin().value_or(false);
    s.openhab.items_selected = replicator_->selected_items();
    s.openhab.problems = replicator_->counters().problems;
    s.openhab.last_event_ms = replicator_->last_event_ms();
  }
  if (mirror_) {
    s.openhab.items_known = static_cast<std::int64_t>(mirror_->items().size());
    s.openhab.resyncs = std::max<std::int64_t>(0, mirror_->counters().resyncs - 1);
    s.openhab.events = mirror_->counters().events;
    s.openhab.bad_events = mirror_->counters().bad_events;
  }

  s.hub.host_name = plan_.host_name;
  s.hub.device_id = plan_.device_id;
  s.hub.credential = plan_.policy ? "policy " + plan_.policy->policy_name : "device";
  s.hub.session_state = session_state_;
  s.hub.session_detail = log_.Scrub(session_detail_);
  s.hub.session_since_ms = session_since_ms_;
  if (session_) {
    const auto& c = session_->counters();
    s.hub.connects = c.connects;
    s.hub.connection_losses = c.connection_losses;
    s.hub.renewals = c.renewals;
    s.hub.throttled = c.throttled;
    s.hub.in_flight = static_cast<std::int64_t>(session_->in_flight());
    s.hub.quota_resumes_at_ms = session_->quota_resume_wall_ms();
    s.hub.quota_state =
        session_->state() == azure::SessionState::kQuotaExhausted ? "exhausted" : "ok";
    s.telemetry.messages_resent = c.resent;
  }

  const BudgetFigures b = budget_.Figures(now);
  s.budget.tier = azure::TierName(config_.quota.tier);
  s.budget.chunk_bytes = azure::ChunkBytes(config_.quota.tier);
  s.budget.daily_budget = b.budget;
  s.budget.reserve_fraction = config_.quota.reserve;
  s.budget.window_seconds = config_.quota.window_seconds;
  s.budget.window_start_ms = b.window_start_ms;
  s.budget.used = b.used;
  s.budget.left = b.left;
  s.budget.reserve_used = b.reserve_used;
  s.budget.pace_allowed = b.pace_allowed;
  s.budget.burst = b.burst;

  if (dispatcher_) {
    if (replicator_) dispatcher_->set_item_count(replicator_->telemetry_items());
    s.budget.staleness_bound_seconds = dispatcher_->StalenessBoundSeconds();
    const DispatcherCounters& d = dispatcher_->counters();
    s.telemetry.messages_sent = d.messages_sealed;
    s.telemetry.messages_delivered = d.messages_delivered;
    s.telemetry.messages_resent += d.messages_resent_after_restart;
    s.telemetry.entries_sent = d.entries_sent;
    s.telemetry.bytes = d.bytes;
    s.telemetry.billed_chunks = d.billed_chunks;
    s.telemetry.last_delivered_ms = d.last_delivered_ms;
    const auto kind = [&](EntryKind k) {
      const auto it = d.by_kind.find(k);
      return it == d.by_kind.end() ? 0 : it->second;
    };
    s.telemetry.by_kind = {kind(EntryKind::kChange), kind(EntryKind::kSnapshot),
                           kind(EntryKind::kThing)};
  }

  if (outbox_) {
    const OutboxStats o = outbox_->Stats();
    s.outbox.pending_entries = o.pending_entries + o.batched_entries;
    s.outbox.sealed_messages = o.sealed_messages;
    s.outbox.oldest_pending_age_ms = o.oldest_pending_ms == 0 ? 0 : now - o.oldest_pending_ms;
    s.outbox.file_bytes = o.file_bytes;
    s.outbox.max_bytes = config_.store.max_bytes;
    s.outbox.accepted = o.entries_accepted;
    s.outbox.merged = o.merged;
    s.outbox.full = o.full;
    if (outbox_->last_error()) s.outbox.last_error = outbox_->last_error()->message;
  }

  if (twin_) {
    s.twin.enabled = twin_->enabled();
    if (!twin_->enabled()) s.twin.disabled_reason = "basic tier: no device twins";
    const TwinCounters& t = twin_->counters();
    s.twin.patches_sent = t.patches;
    s.twin.patches_failed = t.failed;
    s.twin.items_left_out = static_cast<std::int64_t>(twin_->left_out().size());
    s.twin.reported_bytes = t.reported_bytes;
    s.twin.last_patch_ms = t.last_patch_ms;
  }

  s.commands.mode = std::string(ToString(config_.iothub.mode));
  if (router_) s.commands.pending = router_->pending();
  if (audit_) {
    s.commands.audit_errors = audit_->errors();
    for (const auto& [key, count] : audit_->counts()) {
      s.commands.counts.push_back({key.first, key.second, count});
    }
    for (const AuditRecord& r : audit_->recent()) {
      s.commands.recent.push_back(
          {r.time_ms, r.path, r.item, r.command, r.status, r.message, r.latency_ms});
    }
  }

  if (replicator_) {
    for (const auto& [uid, fingerprint] : replicator_->thing_status()) {
      ++s.things.known;
      ++s.things.by_status[fingerprint.substr(0, fingerprint.find('\n'))];
    }
  }

  const std::map<std::string, std::int64_t>* merged = outbox_ ? &outbox_->merged_by_key() : nullptr;
  s.items.reserve(book_.size());
  for (const auto& [name, stats] : book_) {
    StatusSnapshot::Item item;
    item.name = name;
    item.type = stats.type;
    item.last_change_ms = stats.last_change_ms;
    item.last_delivered_ms = stats.last_delivered_ms;
    item.staleness_ms = stats.pending_since_ms == 0 ? 0 : now - stats.pending_since_ms;
    item.suppressed = stats.suppressed;
    if (replicator_) {
      const auto policy = replicator_->selected().find(name);
      if (policy != replicator_->selected().end()) {
        item.priority = std::string(ToString(policy->second.priority));
        item.send = std::string(ToString(policy->second.send));
      }
    }
    if (merged != nullptr) {
      const auto it = merged->find(name);
      if (it != merged->end()) item.merged = it->second;
    }
    s.items.push_back(std::move(item));
  }
  for (const auto& [kind, error] : errors_) s.errors.push_back(error);
  return s;
}

}  // namespace iothub::connector
