// The mosquitto plugin that turns Debian's mosquitto 2.0 into IoT Hub: it routes the broker's
// auth, ACL, message, tick and disconnect events to the Hub and serves the HTTPS API. Loaded
// by the mosquitto child that iothub-emulator starts (see emulator_main.cc); its options
// arrive as plugin_opt_* lines of the generated mosquitto.conf.
extern "C" {
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
}

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "emulator/device_registry.h"
#include "emulator/hub.h"
#include "emulator/loop_bridge.h"
#include "emulator/message_store.h"
#include "emulator/plugin_options.h"
#include "emulator/service_api.h"

namespace iothub::emulator {
namespace {

constexpr char kInternalUser[] = "$emulator-internal";

// Broker access through mosquitto's plugin API. Broker thread only.
class MosquittoBroker final : public BrokerPort {
 public:
  void Publish(const std::string& client_id, const std::string& topic, std::string payload,
               int qos) override {
    void* copy = nullptr;
    if (!payload.empty()) {
      copy = mosquitto_malloc(payload.size());
      if (copy == nullptr) return;
      std::memcpy(copy, payload.data(), payload.size());
    }
    mosquitto_broker_publish(client_id.c_str(), topic.c_str(), static_cast<int>(payload.size()),
                             copy, qos, false, nullptr);
  }
  void Kick(const std::string& client_id) override {
    mosquitto_kick_client_by_clientid(client_id.c_str(), false);
  }
};

// Everything the plugin owns; created in mosquitto_plugin_init, destroyed in cleanup.
// Broker thread only, except where a member says otherwise.
struct Plugin {
  PluginOptions options;
  mosquitto_plugin_id_t* id = nullptr;
  SystemClock system_clock;
  SteadyClock steady_clock;
  OffsetClock wall{system_clock};
  MosquittoBroker broker;
  std::unique_ptr<MessageStore> messages;  // thread-safe
  Doorbell doorbell;                       // thread-safe
  std::unique_ptr<LoopBridge> bridge;      // thread-safe
  std::unique_ptr<Hub> hub;
  std::unique_ptr<ServiceApi> api;  // thread-safe
  std::thread startup;
  const mosquitto* internal_client = nullptr;
  bool started = false;
  std::int64_t last_hub_tick_ms = 0;

  void Notify(const std::string& line) const {
    if (options.control_fd < 0) return;
    const std::string text = line + "\n";
    (void)!::write(options.control_fd, text.data(), text.size());
  }
};

// The last line of defence at the C boundary: an exception must never unwind into
// mosquitto. Expected failures are values inside the hub; this only catches bugs.
template <typename F>
int Guard(const char* event, int on_error, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "iothub-emulator: internal error in %s: %s", event,
                         e.what());
    return on_error;
  }
}

std::string ClientId(const mosquitto* client) {
  const char* id = mosquitto_client_id(client);
  return id ? id : "";
}

int OnBasicAuthImpl(void* event_data, void* userdata) {
  auto* plugin = static_cast<Plugin*>(userdata);
  auto* ev = static_cast<mosquitto_evt_basic_auth*>(event_data);
  const std::string username = ev->username ? ev->username : "";
  const std::string password = ev->password ? ev->password : "";
  if (ClientId(ev->client).rfind(kInternalUser, 0) == 0 && username != kInternalUser) {
    return MOSQ_ERR_AUTH;  // the doorbell's client id is reserved: nobody may take it over
  }
  if (username == kInternalUser) {
    if (password == plugin->options.internal_secret) {
      plugin->internal_client = ev->client;
      return MOSQ_ERR_SUCCESS;
    }
    return MOSQ_ERR_AUTH;
  }
  switch (plugin->hub->OnConnect(ev->client, ClientId(ev->client), username, password,
                                 mosquitto_client_clean_session(ev->client))) {
    case AuthOutcome::kAccepted:
      return MOSQ_ERR_SUCCESS;
    case AuthOutcome::kNotAuthorized:
      return MOSQ_ERR_AUTH;
    case AuthOutcome::kUnavailable:
      return MOSQ_ERR_UNKNOWN;  // mosquitto closes without a CONNACK
  }
  return MOSQ_ERR_AUTH;
}

int OnAclCheckImpl(void* event_data, void* userdata) {
  auto* plugin = static_cast<Plugin*>(userdata);
  auto* ev = static_cast<mosquitto_evt_acl_check*>(event_data);
  if (ev->client == plugin->internal_client) {
    return ev->access == MOSQ_ACL_WRITE && std::strcmp(ev->topic, "$emulator/doorbell") == 0
               ? MOSQ_ERR_SUCCESS
               : MOSQ_ERR_ACL_DENIED;
  }
  switch (ev->access) {
    case MOSQ_ACL_SUBSCRIBE:
      // Anything but ACL_DENIED makes mosquitto drop the connection, as the hub does.
      return plugin->hub->OnSubscribe(ev->client, ClientId(ev->client), ev->topic)
                 ? MOSQ_ERR_SUCCESS
                 : MOSQ_ERR_PROTOCOL;
    case MOSQ_ACL_UNSUBSCRIBE:
      plugin->hub->OnUnsubscribe(ev->client, ClientId(ev->client), ev->topic);
      return MOSQ_ERR_SUCCESS;
    case MOSQ_ACL_WRITE:
      // Also the only check mosquitto makes on a will (and on $CONTROL/ topics, which never
      // reach OnMessage): anything but SUCCESS drops the will or closes the connection.
      return std::holds_alternative<ForbiddenTopic>(
                 ClassifyPublish(ClientId(ev->client), ev->topic))
                 ? MOSQ_ERR_PROTOCOL
                 : MOSQ_ERR_SUCCESS;
    default:
      return MOSQ_ERR_SUCCESS;  // reads: our own per-client publishes
  }
}

int OnMessageImpl(void* event_data, void* userdata) {
  auto* plugin = static_cast<Plugin*>(userdata);
  auto* ev = static_cast<mosquitto_evt_message*>(event_data);
  if (ev->client == plugin->internal_client) {
    plugin->bridge->RunPending();
    return MOSQ_ERR_SUCCESS;
  }
  const std::string payload(static_cast<const char*>(ev->payload), ev->payloadlen);
  const PublishVerdict verdict = plugin->hub->OnPublish(ev->client, ClientId(ev->client), ev->topic,
                                                        payload, ev->qos, ev->retain);
  ev->retain = false;  // IoT Hub stores nothing retained (§3)
  // Any error but ACL_DENIED makes mosquitto close the connection without a PUBACK.
  return verdict == PublishVerdict::kAccept ? MOSQ_ERR_SUCCESS : MOSQ_ERR_PROTOCOL;
}

int OnDisconnectImpl(void* event_data, void* userdata) {
  auto* plugin = static_cast<Plugin*>(userdata);
  auto* ev = static_cast<mosquitto_evt_disconnect*>(event_data);
  if (ev->client == plugin->internal_client) {
    plugin->internal_client = nullptr;
    return MOSQ_ERR_SUCCESS;
  }
  const std::string id = ClientId(ev->client);
  if (!id.empty()) plugin->hub->OnDisconnect(ev->client, id);
  return MOSQ_ERR_SUCCESS;
}

// The first tick means the broker's listeners are up: start the HTTPS API and the doorbell
// on a helper thread (connecting the doorbell needs this thread to keep running).
void StartServices(Plugin* plugin) {
  plugin->started = true;
  plugin->startup = std::thread([plugin] {
    auto port = plugin->api->Start();
    if (!port) {
      plugin->Notify("error " + port.error().message);
      return;
    }
    Status bell = plugin->doorbell.Connect(plugin->options.internal_socket,
                                           kInternalUser + std::string("-bell"), kInternalUser,
                                           plugin->options.internal_secret, 5000);
    if (!bell) {
      plugin->Notify("error " + bell.error().message);
      return;
    }
    plugin->Notify(fmt::format("ready {}", *port));
  });
}

int OnTickImpl(void*, void* userdata) {
  auto* plugin = static_cast<Plugin*>(userdata);
  if (!plugin->started) StartServices(plugin);
  plugin->bridge->RunPending();  // fallback in case a doorbell ring was missed
  // The loop ticks after every batch of socket events; the hub's housekeeping needs less.
  const std::int64_t now = plugin->steady_clock.NowMs();
  if (now - plugin->last_hub_tick_ms >= 20) {
    plugin->last_hub_tick_ms = now;
    plugin->hub->OnTick();
  }
  return MOSQ_ERR_SUCCESS;
}

int OnBasicAuth(int, void* event_data, void* userdata) {
  return Guard("OnBasicAuth", MOSQ_ERR_UNKNOWN,
               [&] { return OnBasicAuthImpl(event_data, userdata); });
}

int OnAclCheck(int, void* event_data, void* userdata) {
  return Guard("OnAclCheck", MOSQ_ERR_PROTOCOL,
               [&] { return OnAclCheckImpl(event_data, userdata); });
}

int OnMessage(int, void* event_data, void* userdata) {
  return Guard("OnMessage", MOSQ_ERR_PROTOCOL, [&] { return OnMessageImpl(event_data, userdata); });
}

int OnDisconnect(int, void* event_data, void* userdata) {
  return Guard("OnDisconnect", MOSQ_ERR_SUCCESS,
               [&] { return OnDisconnectImpl(event_data, userdata); });
}

int OnTick(int, void* event_data, void* userdata) {
  return Guard("OnTick", MOSQ_ERR_SUCCESS, [&] { return OnTickImpl(event_data, userdata); });
}

}  // namespace
}  // namespace iothub::emulator

using iothub::emulator::Plugin;

extern "C" {

int mosquitto_plugin_version(int supported_version_count, const int* supported_versions) {
  for (int i = 0; i < supported_version_count; ++i) {
    if (supported_versions[i] == 5) return 5;
  }
  return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t* identifier, void** userdata,
                          struct mosquitto_opt* opts, int opt_count) {
  using namespace iothub::emulator;
  std::map<std::string, std::string> raw;
  for (int i = 0; i < opt_count; ++i) raw[opts[i].key] = opts[i].value ? opts[i].value : "";
  auto options = ParsePluginOptions(raw);
  if (!options) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "iothub-emulator: %s", options.error().message.c_str());
    return MOSQ_ERR_INVAL;
  }
  auto plugin = std::make_unique<Plugin>();
  plugin->options = std::move(options).value();
  plugin->id = identifier;
  auto registry = DeviceRegistry::Open(plugin->options.state_dir + "/registry.sqlite");
  if (!registry) {
    plugin->Notify("error " + registry.error().message);
    mosquitto_log_printf(MOSQ_LOG_ERR, "iothub-emulator: %s", registry.error().message.c_str());
    return MOSQ_ERR_INVAL;
  }
  plugin->wall.Advance(plugin->options.clock_offset_ms);
  plugin->messages = std::make_unique<MessageStore>(plugin->options.message_capacity);
  Plugin* raw_plugin = plugin.get();
  plugin->bridge = std::make_unique<LoopBridge>([raw_plugin] { raw_plugin->doorbell.Ring(); });
  HubConfig config;
  config.host_name = plugin->options.host_name;
  config.tier = plugin->options.tier;
  config.units = plugin->options.units;
  config.quota_twin_answer = plugin->options.quota_twin_answer;
  config.policies = plugin->options.policies;
  config.quota_day = plugin->options.quota_day;
  config.quota_used = plugin->options.quota_used;
  HubEnvironment env{
      plugin->wall, plugin->steady_clock, plugin->broker,
      [raw_plugin](std::int64_t ms) {
        raw_plugin->wall.Advance(ms);
        raw_plugin->Notify(fmt::format("clock {}", raw_plugin->wall.OffsetMs()));
      },
      [raw_plugin](int seconds) { raw_plugin->Notify(fmt::format("restart {}", seconds)); }};
  plugin->hub = std::make_unique<Hub>(config, std::move(registry).value(), *plugin->messages, env);
  ServiceApiOptions api;
  api.host_name = plugin->options.host_name;
  api.cert_file = plugin->options.cert_file;
  api.key_file = plugin->options.key_file;
  api.port = plugin->options.https_port;
  api.bind_address = plugin->options.bind_address;
  api.policies = plugin->options.policies;
  plugin->api = std::make_unique<ServiceApi>(api, *plugin->hub, *plugin->bridge, *plugin->messages,
                                             plugin->wall);

  using namespace iothub::emulator;
  mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, OnBasicAuth, nullptr, raw_plugin);
  mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, OnAclCheck, nullptr, raw_plugin);
  mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, OnMessage, nullptr, raw_plugin);
  mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, OnDisconnect, nullptr, raw_plugin);
  mosquitto_callback_register(identifier, MOSQ_EVT_TICK, OnTick, nullptr, raw_plugin);
  *userdata = plugin.release();
  return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void* userdata, struct mosquitto_opt*, int) {
  std::unique_ptr<Plugin> plugin(static_cast<Plugin*>(userdata));
  if (plugin->startup.joinable()) plugin->startup.join();
  plugin->hub->Shutdown();
  plugin->Notify("quota " + plugin->hub->QuotaSnapshot());  // the launcher hands it on
  plugin->messages->Close();                                // ends live message streams
  // HTTP workers may be waiting for the broker thread (this one): keep serving the bridge
  // until the server has stopped.
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    plugin->api->Stop();
    stopped = true;
  });
  while (!stopped) {
    plugin->bridge->RunPending();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // shutdown only, not a loop timer
  }
  stopper.join();
  plugin->bridge->RunPending();
  return MOSQ_ERR_SUCCESS;
}

}  // extern "C"
