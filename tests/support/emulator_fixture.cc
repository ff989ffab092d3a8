#include "support/emulator_fixture.h"

#include <httplib.h>
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "azure/connection_string.h"
#include "azure/sas_token.h"

#ifndef IOTHUB_BIN_DIR
#error "IOTHUB_BIN_DIR must name the directory holding iothub-emulator"
#endif

namespace iothub::testing {
namespace {

std::int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct MosquittoLib {
  MosquittoLib() { mosquitto_lib_init(); }
};

}  // namespace

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "iothub-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (std::getenv("IOTHUB_TEST_KEEP") != nullptr) {  // for post-mortems: keep state and logs
    std::fprintf(stderr, "kept %s\n", path_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Result<std::unique_ptr<EmulatorProcess>> EmulatorProcess::Start(const std::string& state_dir,
                                                                std::vector<std::string> extra,
                                                                std::chrono::milliseconds timeout) {
  std::vector<std::string> args = {std::string(IOTHUB_BIN_DIR) + "/iothub-emulator",
                                   "--state-dir",
                                   state_dir,
                                   "--mqtt-port",
                                   "0",
                                   "--https-port",
                                   "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto child = ChildProcess::Start(std::move(args), timeout);
  if (!child) return child.error();
  auto process = std::unique_ptr<EmulatorProcess>(new EmulatorProcess());
  process->child_ = std::move(child).value();
  const Json& ready = process->child_->ready();
  EmulatorInfo& info = process->info_;
  info.host_name = ready.value("host_name", "");
  info.mqtt_port = ready.value("mqtt_port", 0);
  info.https_port = ready.value("https_port", 0);
  info.ca_file = ready.value("ca_file", "");
  info.service_connection_string = ready.value("service_connection_string", "");
  info.state_dir = state_dir;
  auto cs = azure::ParseServiceConnectionString(info.service_connection_string);
  if (!cs) return MakeError("Start", "bad service connection string: " + cs.error().message);
  info.owner_key = cs->key;
  return process;
}

ServiceClient::ServiceClient(const EmulatorInfo& info, std::string policy, std::string key)
    : info_(info),
      policy_(std::move(policy)),
      key_(key.empty() ? info.owner_key : std::move(key)) {}

std::string ServiceClient::Token() const {
  return azure::MakeSasToken(info_.host_name, key_, NowSeconds() + 3600, policy_).value();
}

ServiceClient::~ServiceClient() = default;

HttpReply ServiceClient::Request(const std::string& method, const std::string& path,
                                 const std::string& body,
                                 std::map<std::string, std::string> headers) {
  httplib::Headers h;
  if (!headers.count("Authorization")) h.emplace("Authorization", Token());
  for (auto& [k, v] : headers) {
    if (!(k == "Authorization" && v.empty())) h.emplace(k, v);
  }
  httplib::Request req;
  req.method = method;
  req.path = path;
  req.headers = h;
  req.body = body;
  if (!body.empty()) req.set_header("Content-Type", "application/json; charset=utf-8");
  httplib::Result res{nullptr, httplib::Error::Unknown};
  // A kept-alive connection may have been closed by the server (idle timeout, restart):
  // like any HTTP client with a connection pool, retry once on a fresh connection. A refused
  // connection is retried for up to 10 s: after a broker-down fault the MQTT side can be back
  // before the plugin's HTTPS listener is.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int attempt = 0; !res; ++attempt) {
    const bool refused = res.error() == httplib::Error::Connection;
    if (attempt >= 2 && !(refused && std::chrono::steady_clock::now() < deadline)) break;
    if (attempt >= 2) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!client_ || attempt > 0) {
      client_ = std::make_unique<httplib::SSLClient>("127.0.0.1", info_.https_port);
      client_->set_ca_cert_path(info_.ca_file.c_str());
      client_->enable_server_certificate_verification(true);
      client_->set_connection_timeout(5);
      client_->set_read_timeout(330);
      client_->set_keep_alive(true);
      client_->set_tcp_nodelay(true);
    }
    res = client_->send(req);
  }
  HttpReply reply;
  if (!res) return reply;
  reply.status = res->status;
  reply.text = res->body;
  for (const auto& [k, v] : res->headers) reply.headers[k] = v;
  if (!res->body.empty()) reply.body = Json::parse(res->body, nullptr, false);
  return reply;
}

std::string ServiceClient::CreateDevice(const std::string& id) {
  auto reply = Request("PUT", "/devices/" + id + "?api-version=2021-04-12", Json{{"deviceId", id}});
  if (reply.status != 200) {
    fprintf(stderr, "CreateDevice(%s) failed: %d %s\n", id.c_str(), reply.status,
            reply.text.c_str());
    std::abort();
  }
  return reply.body["authentication"]["symmetricKey"]["primaryKey"].get<std::string>();
}

std::string DeviceToken(const EmulatorInfo& info, const std::string& device_id,
                        const std::string& key, std::int64_t ttl_s) {
  return azure::MakeSasToken(info.host_name + "/devices/" + device_id, key, NowSeconds() + ttl_s)
      .value();
}

DeviceClient::DeviceClient(const EmulatorInfo& info, std::string device_id, std::string key)
    : DeviceClient(info, std::move(device_id), std::move(key), Options{}) {}

DeviceClient::DeviceClient(const EmulatorInfo& info, std::string device_id, std::string key,
                           Options options)
    : info_(info),
      device_id_(std::move(device_id)),
      key_(std::move(key)),
      options_(std::move(options)) {
  static MosquittoLib lib;
  const std::string client_id = options_.client_id.empty() ? device_id_ : options_.client_id;
  mosq_ = mosquitto_new(client_id.c_str(), options_.clean_session, this);
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_connect_callback_set(mosq_, OnConnect);
  mosquitto_disconnect_callback_set(mosq_, OnDisconnect);
  mosquitto_publish_callback_set(mosq_, OnPublish);
  mosquitto_message_callback_set(mosq_, OnMessage);
  mosquitto_subscribe_callback_set(mosq_, OnSubscribe);
  mosquitto_tls_set(mosq_, info_.ca_file.c_str(), nullptr, nullptr, nullptr, nullptr);
  mosquitto_max_inflight_messages_set(mosq_, 0);  // unlimited: benchmarks keep a window themselves
  mosquitto_threaded_set(mosq_, true);            // publishes come from the test thread
  if (!options_.will_topic.empty()) {
    mosquitto_will_set(mosq_, options_.will_topic.c_str(), 4, "will", 1, true);
  }
  network_ = std::thread([this] { NetworkLoop(); });
}

DeviceClient::~DeviceClient() {
  Disconnect();
  stop_ = true;
  network_.join();
  mosquitto_destroy(mosq_);
}

void DeviceClient::NetworkLoop() {
  while (!stop_) {
    if (connect_requested_.exchange(false)) {
      std::pair<std::string, std::string> credentials;
      {
        std::lock_guard lock(mutex_);
        credentials = pending_credentials_;
      }
      mosquitto_username_pw_set(mosq_, credentials.first.c_str(), credentials.second.c_str());
      if (mosquitto_connect_async(mosq_, info_.host_name.c_str(), info_.mqtt_port,
                                  options_.keepalive) != MOSQ_ERR_SUCCESS) {
        std::lock_guard lock(mutex_);
        connack_ = -1;
        changed_.notify_all();
      }
    }
    if (mosquitto_loop(mosq_, 5, 1) != MOSQ_ERR_SUCCESS) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // not connected: idle briefly
    }
  }
}

int DeviceClient::Connect(std::chrono::milliseconds timeout) {
  const std::string username = options_.username.empty()
                                   ? info_.host_name + "/" + device_id_ + "/?api-version=2021-04-12"
                                   : options_.username;
  const std::string password = options_.password.empty()
                                   ? DeviceToken(info_, device_id_, key_, options_.token_ttl_s)
                                   : options_.password;
  {
    std::lock_guard lock(mutex_);
    connack_ = -2;
    pending_credentials_ = {username, password};
  }
  connect_requested_ = true;
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return connack_ != -2; });
  return connack_ == -2 ? -1 : connack_;
}

void DeviceClient::Disconnect() { mosquitto_disconnect(mosq_); }

int DeviceClient::Subscribe(const std::string& filter, int qos, std::chrono::milliseconds timeout) {
  int mid = 0;
  std::unique_lock lock(mutex_);
  const int before = disconnects_;
  lock.unlock();
  if (mosquitto_subscribe(mosq_, &mid, filter.c_str(), qos) != MOSQ_ERR_SUCCESS) return -1;
  lock.lock();
  changed_.wait_for(lock, timeout, [&] { return granted_.count(mid) || disconnects_ != before; });
  return granted_.count(mid) ? granted_[mid] : -1;
}

bool DeviceClient::Publish(const std::string& topic, const std::string& payload, int qos,
                           bool retain, std::chrono::milliseconds timeout) {
  int mid = 0;
  std::unique_lock lock(mutex_);
  const int before = disconnects_;
  lock.unlock();
  if (mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                        payload.data(), qos, retain) != MOSQ_ERR_SUCCESS) {
    return false;
  }
  lock.lock();
  auto acked = [&] {
    return std::find(acked_mids_.begin(), acked_mids_.end(), mid) != acked_mids_.end();
  };
  changed_.wait_for(lock, timeout, [&] { return acked() || disconnects_ != before; });
  return acked() && disconnects_ == before;
}

int DeviceClient::PublishAsync(const std::string& topic, const std::string& payload, int qos) {
  int mid = 0;
  if (mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                        payload.data(), qos, false) != MOSQ_ERR_SUCCESS) {
    return -1;
  }
  return mid;
}

bool DeviceClient::WaitAcks(std::size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return acks_ >= count; });
}

std::size_t DeviceClient::acks() {
  std::lock_guard lock(mutex_);
  return acks_;
}

std::optional<ReceivedMessage> DeviceClient::WaitMessage(
    const std::function<bool(const ReceivedMessage&)>& match, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  std::optional<ReceivedMessage> found;
  changed_.wait_for(lock, timeout, [&] {
    for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
      if (match(*it)) {
        found = *it;
        inbox_.erase(it);
        return true;
      }
    }
    return false;
  });
  return found;
}

bool DeviceClient::WaitDisconnected(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return !connected_; });
}

bool DeviceClient::connected() {
  std::lock_guard lock(mutex_);
  return connected_;
}

void DeviceClient::OnConnect(mosquitto*, void* self_ptr, int rc) {
  auto* self = static_cast<DeviceClient*>(self_ptr);
  std::lock_guard lock(self->mutex_);
  self->connack_ = rc;
  self->connected_ = rc == 0;
  self->changed_.notify_all();
}

void DeviceClient::OnDisconnect(mosquitto*, void* self_ptr, int) {
  auto* self = static_cast<DeviceClient*>(self_ptr);
  std::lock_guard lock(self->mutex_);
  if (self->connack_ == -2) self->connack_ = -1;
  self->connected_ = false;
  ++self->disconnects_;
  self->changed_.notify_all();
}

void DeviceClient::OnPublish(mosquitto*, void* self_ptr, int mid) {
  auto* self = static_cast<DeviceClient*>(self_ptr);
  std::lock_guard lock(self->mutex_);
  ++self->acks_;
  self->acked_mids_.push_back(mid);
  if (self->acked_mids_.size() > 4096)
    self->acked_mids_.erase(self->acked_mids_.begin(), self->acked_mids_.begin() + 2048);
  self->changed_.notify_all();
}

void DeviceClient::OnMessage(mosquitto*, void* self_ptr, const mosquitto_message* m) {
  auto* self = static_cast<DeviceClient*>(self_ptr);
  std::lock_guard lock(self->mutex_);
  self->inbox_.push_back(
      {m->topic, std::string(static_cast<const char*>(m->payload), m->payloadlen), m->qos});
  self->changed_.notify_all();
}

void DeviceClient::OnSubscribe(mosquitto*, void* self_ptr, int mid, int count, const int* granted) {
  auto* self = static_cast<DeviceClient*>(self_ptr);
  std::lock_guard lock(self->mutex_);
  self->granted_[mid] = count > 0 ? granted[0] : -1;
  self->changed_.notify_all();
}

}  // namespace iothub::testing
