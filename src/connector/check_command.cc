// `iothub-connector check`: validates the configuration, reads openHAB and the hub the way
// `run` would, prints what would be replicated and the expected message use per day, and
// sends nothing billable (issue 10 "Configuration"). Exit 0 when everything answered, 1 when
// openHAB or the hub did not, 2 for configuration errors.
#include <unistd.h>

#include <cmath>
#include <iostream>
#include <memory>
#include <optional>

#include "azure/connect_pacer.h"
#include "azure/device_session.h"
#include "azure/mosquitto_connection.h"
#include "azure/registry_client.h"
#include "common/event_loop.h"
#include "common/http_client.h"
#include "common/http_stream.h"
#include "common/random.h"
#include "common/signals.h"
#include "connector/budget.h"
#include "connector/command_config.h"
#include "connector/commands.h"
#include "connector/config.h"
#include "connector/item_filter.h"
#include "connector/item_selection.h"
#include "connector/log.h"
#include "connector/message_format.h"
#include "connector/provisioning.h"
#include "connector/replicator.h"
#include "openhab/item_mirror.h"
#include "openhab/rest_client.h"

namespace iothub::connector {
namespace {

struct CheckOptions {
  ConfigFlags config;
  double observe_s = 10;
  bool quiet_items = false;
};

// Follows the event stream and counts what the filters would let through.
class Observer final : public openhab::MirrorListener {
 public:
  Observer(PollLoop& loop, const Selection& selection) : loop_(loop), selection_(selection) {}
  void OnConnection(bool up, std::string_view detail) override {
    if (up) synced_ = true;
    if (!up) last_error_ = std::string(detail);
  }
  void OnStateChanged(const openhab::Item& item, const openhab::StateChange& change) override {
    if (!synced_ || !policies_.count(item.name)) return;
    ++changes_;
    const ItemPolicy& policy = policies_[item.name];
    if (policy.send != SendAs::kTelemetry && policy.send != SendAs::kBoth) return;
    Entry entry =
        MakeItemEntry(item, change.value, change.changed_ms, EntryKind::kChange, policy.priority);
    if (filter_.OnChange(entry, loop_.NowMs()).verdict == ItemFilter::Verdict::kSend) {
      entries_.push_back(std::move(entry));
    }
  }
  void Select(const std::map<std::string, openhab::Item>& items) {
    const GroupMembership groups(items);
    for (const auto& name : selection_.selector.SelectAll(items)) {
      ResolvedPolicy resolved = selection_.resolver.Resolve(items.at(name), groups);
      for (const auto& problem : resolved.problems) problems_.push_back(problem.message);
      policies_[name] = resolved.policy;
      filter_.Configure(name, resolved.policy);
    }
  }
  bool synced() const { return synced_; }
  const std::string& last_error() const { return last_error_; }
  std::map<std::string, ItemPolicy>& policies() { return policies_; }
  std::vector<Entry>& entries() { return entries_; }
  std::int64_t changes() const { return changes_; }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  PollLoop& loop_;
  const Selection& selection_;
  ItemFilter filter_;
  std::map<std::string, ItemPolicy> policies_;
  std::vector<Entry> entries_;
  std::vector<std::string> problems_;
  std::int64_t changes_ = 0;
  bool synced_ = false;
  std::string last_error_;
};

// Billed messages for `entries` packed as the connector packs them.
std::int64_t PackedMessages(std::vector<Entry> entries, const Config& config) {
  MessagePacker packer(PackOptionsFor(config));
  std::int64_t id = 1;
  for (auto& e : entries) e.id = id++;
  std::int64_t billed = 0;
  std::size_t at = 0;
  while (at < entries.size()) {
    std::vector<Entry> rest(entries.begin() + static_cast<std::ptrdiff_t>(at), entries.end());
    PackResult packed =
        packer.Pack(rest, MessageHeader{"00000000-0000-0000-0000-000000000000", 1, 0});
    if (!packed.message) {
      ++billed;
      ++at;
      continue;
    }
    billed += packed.message->billed_messages;
    std::set<std::int64_t> taken(packed.message->entry_ids.begin(),
                                 packed.message->entry_ids.end());
    std::vector<Entry> left;
    for (auto& e : rest) {
      if (!taken.count(e.id)) left.push_back(std::move(e));
    }
    entries = std::move(left);
    at = 0;
  }
  return billed;
}

bool CheckHub(PollLoop& loop, const Config& config, const HubPlan& plan, Log& log) {
  SystemClock wall;
  SystemRandom random;
  if (plan.policy) {
    HttpClientConfig https;
    https.host = plan.https_host;
    https.port = plan.https_port;
    https.ca_file = config.iothub.ca_file;
    auto http = HttplibClient::Create(loop, https);
    azure::RegistryOptions registry_options;
    registry_options.max_attempts = 2;
    azure::RegistryClient registry(loop, *http, *plan.policy, wall, random, registry_options);
    std::optional<Result<azure::Device>> answer;
    registry.Get(plan.device_id, [&](Result<azure::Device> device) { answer = std::move(device); });
    loop.RunUntil([&] { return answer.has_value(); }, 30'000);
    if (!answer) {
      std::cout << "IoT Hub: the registry at " << plan.https_host << ":" << plan.https_port
                << " did not answer in 30 s\n";
      return false;
    }
    if (answer->ok()) {
      std::cout << "IoT Hub: " << plan.host_name << " answers; device '" << plan.device_id
                << "' exists (" << (*answer)->status << ")\n";
      return true;
    }
    if (answer->error().code == "not_found") {
      std::cout << "IoT Hub: " << plan.host_name << " answers; device '" << plan.device_id
                << "' does not exist yet: `run` creates it (the policy needs registry write "
                   "rights)\n";
      return true;
    }
    std::cout << "IoT Hub: " << log.Scrub(answer->error().message) << "\n";
    return false;
  }
  // A device connection string: connect once, publish nothing (connections are not billed).
  auto mqtt = azure::MosquittoConnector::Create(
      loop, azure::TlsOptions{config.iothub.ca_file, plan.host_name});
  if (!mqtt) {
    std::cout << "IoT Hub: " << mqtt.error().message << "\n";
    return false;
  }
  azure::ConnectPacer pacer(loop, 1.0);
  struct Listener final : azure::SessionListener {
    std::optional<azure::SessionState> final_state;
    std::string detail;
    void OnState(azure::SessionState state, std::string_view why) override {
      if (state == azure::SessionState::kConnected || state == azure::SessionState::kRefused ||
          state == azure::SessionState::kBackingOff) {
        final_state = state;
        detail = std::string(why);
      }
    }
  } listener;
  azure::DeviceSessionConfig session_config = SessionConfig(plan, config, plan.device_key);
  session_config.receive_cloud = false;
  session_config.twin = false;
  auto session =
      azure::DeviceSession::Create(loop, **mqtt, pacer, wall, random, session_config, listener);
  if (!session) {
    std::cout << "IoT Hub: " << session.error().message << "\n";
    return false;
  }
  (*session)->Start();
  loop.RunUntil([&] { return listener.final_state.has_value(); }, 30'000);
  (*session)->Stop();
  if (listener.final_state == azure::SessionState::kConnected) {
    std::cout << "IoT Hub: device '" << plan.device_id << "' connected to " << plan.mqtt_host << ":"
              << plan.mqtt_port << " (nothing was sent)\n";
    return true;
  }
  std::cout << "IoT Hub: device '" << plan.device_id << "' could not connect: "
            << (listener.detail.empty() ? "no answer in 30 s" : log.Scrub(listener.detail)) << "\n";
  return false;
}

int Check(const CheckOptions& options) {
  SystemClock wall;
  Log log(wall, LogLevel::kWarning);
  auto sources = ToSources(options.config);
  if (!sources) {
    std::cerr << "check: " << sources.error().message << "\n";
    return 2;
  }
  auto loaded = LoadConfig(*sources);
  if (!loaded) {
    std::cout << "configuration: errors\n" << loaded.error().message << "\n";
    return 2;
  }
  const Config& config = loaded->config;
  for (const auto& warning : loaded->warnings)
    std::cout << "configuration: warning: " << warning << "\n";
  auto plan = PlanHub(config);
  if (!plan) {
    std::cout << "configuration: " << plan.error().message << "\n";
    return 2;
  }
  auto selection = MakeSelection(config);
  if (!selection) {
    std::cout << "configuration: " << selection.error().message << "\n";
    return 2;
  }
  log.AddSecret(config.iothub.connection_string);
  log.AddSecret(config.openhab.token);
  std::cout << "configuration: ok ("
            << (options.config.file.empty() ? "flags" : options.config.file) << ")\n";
  if (!plan->advice.empty()) std::cout << "configuration: advice: " << plan->advice << "\n";

  (void)BlockTerminationSignals();
  PollLoop loop;
  SystemRandom random;
  auto http = openhab::ParseServerUrl(config.openhab.url);
  auto rest_http = HttplibClient::Create(loop, *http);
  HttplibStreamer streamer(loop, openhab::EventStreamConfig(*http));
  openhab::RestClient rest(loop, *rest_http,
                           openhab::RestClientConfig{.token = config.openhab.token});
  Observer observer(loop, *selection);
  openhab::ItemMirror mirror(loop, streamer, rest, random, openhab::MirrorConfig{}, observer);
  mirror.Start();
  loop.RunUntil([&] { return observer.synced(); }, 20'000);
  bool ok = true;
  std::int64_t snapshot_messages = 0;
  if (!observer.synced()) {
    std::cout << "openHAB: cannot read items at " << RedactUrl(config.openhab.url) << ": "
              << log.Scrub(observer.last_error().empty() ? "no answer in 20 s"
                                                         : observer.last_error())
              << "\n";
    ok = false;
  } else {
    const auto& items = mirror.items();
    observer.Select(items);
    std::cout << "openHAB: " << (mirror.server() ? mirror.server()->runtime_version : "") << " at "
              << RedactUrl(config.openhab.url) << ", " << items.size() << " items, "
              << observer.policies().size() << " replicated\n";
    for (const auto& problem : observer.problems()) std::cout << "  metadata: " << problem << "\n";
    std::vector<Entry> snapshot;
    for (const auto& [name, policy] : observer.policies()) {
      const openhab::Item& item = items.at(name);
      if (!options.quiet_items) {
        std::cout << fmt::format("  {:<32} {:<22} send={:<9} priority={}{}\n", name, item.type,
                                 ToString(policy.send), ToString(policy.priority),
                                 policy.deadband ? " deadband" : "");
      }
      if (policy.send == SendAs::kTelemetry || policy.send == SendAs::kBoth) {
        Entry entry = MakeItemEntry(item, openhab::ParseStateTolerant(item.base_type(), item.state),
                                    wall.NowMs(), EntryKind::kSnapshot, policy.priority);
        snapshot.push_back(std::move(entry));
      }
    }
    snapshot_messages = PackedMessages(snapshot, config);
    if (options.observe_s > 0) {
      std::cout << "openHAB: watching changes for " << options.observe_s << " s ...\n"
                << std::flush;
      loop.RunUntil([] { return false; }, static_cast<std::int64_t>(options.observe_s * 1000));
    }
  }
  mirror.Stop();
  if (!CheckHub(loop, config, *plan, log)) ok = false;

  if (observer.synced()) {
    const Budget budget(BudgetPolicyFromConfig(config));
    const double day_s = 86'400;
    const double scale = options.observe_s > 0 ? day_s / options.observe_s : 0;
    const std::int64_t packed = PackedMessages(observer.entries(), config);
    const auto per_day =
        static_cast<std::int64_t>(std::llround(static_cast<double>(packed) * scale));
    const auto changes_per_day = static_cast<std::int64_t>(
        std::llround(static_cast<double>(observer.entries().size()) * scale));
    const std::int64_t main = static_cast<std::int64_t>(
        std::floor(static_cast<double>(config.DailyBudget()) * (1 - config.quota.reserve)));
    std::cout << fmt::format(
        "messages: a snapshot costs {} billed messages; {} changes seen in {} s (after the "
        "filters) → about {} changes and {} billed messages a day when packed\n",
        snapshot_messages, observer.entries().size(), options.observe_s, changes_per_day, per_day);
    std::cout << fmt::format(
        "budget: {} messages a day ({} tier, {} B chunks), {} for telemetry and the twin after "
        "the {:.0f} % reserve: {}\n",
        config.DailyBudget(), azure::TierName(config.quota.tier),
        azure::ChunkBytes(config.quota.tier), main, config.quota.reserve * 100,
        per_day <= main
            ? "every change fits"
            : "history will be merged (latest states still arrive; see docs/budget.md)");
  }
  std::cout << (ok ? "check: ok\n" : "check: problems found\n");
  return ok ? 0 : 1;
}

}  // namespace

void AddCheckCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<CheckOptions>();
  CLI::App* cmd = app.add_subcommand(
      "check",
      "Validate the configuration, read openHAB and reach the hub as `run` would, print what\n"
      "would be replicated and the expected message use per day. Sends nothing billable.");
  AddConfigFlags(*cmd, options->config);
  cmd->add_option("--observe", options->observe_s,
                  "Seconds to watch openHAB's changes for the estimate (0: none)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd->add_flag("--quiet-items", options->quiet_items, "Do not list the replicated items");
  cmd->callback([options, &exit_code] { exit_code = Check(*options); });
}

}  // namespace iothub::connector
