// Test and benchmark support: runs the real iothub-emulator binary and talks to it as a
// service (HTTPS) and as devices (libmosquitto over TLS). Every wait has a timeout.
// EmulatorProcess and ServiceClient are not thread-safe; DeviceClient is (libmosquitto's
// network thread feeds it).
#pragma once

#include <mosquitto.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "support/child_process.h"

namespace httplib {
class SSLClient;
}

namespace iothub::testing {

using Json = nlohmann::json;
using namespace std::chrono_literals;

struct EmulatorInfo {
  std::string host_name;
  int mqtt_port = 0;
  int https_port = 0;
  std::string ca_file;
  std::string service_connection_string;
  std::string owner_key;
  std::string state_dir;
};

class EmulatorProcess {
 public:
  // Starts `<bin>/iothub-emulator --state-dir DIR --mqtt-port 0 --https-port 0 <extra>` and
  // waits for its ready line.
  static Result<std::unique_ptr<EmulatorProcess>> Start(const std::string& state_dir,
                                                        std::vector<std::string> extra = {},
                                                        std::chrono::milliseconds timeout = 30s);
  const EmulatorInfo& info() const { return info_; }
  // SIGTERM and wait; returns the exit status.
  int Stop() { return child_->Stop(); }
  pid_t pid() const { return child_->pid(); }

 private:
  EmulatorInfo info_;
  std::unique_ptr<ChildProcess> child_;
};

// A fresh temporary directory, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct HttpReply {
  int status = 0;  // 0: no answer
  Json body;
  std::string text;
  std::map<std::string, std::string> headers;
};

class ServiceClient {
 public:
  ~ServiceClient();
  explicit ServiceClient(const EmulatorInfo& info, std::string policy = "iothubowner",
                         std::string key = "");
  HttpReply Request(const std::string& method, const std::string& path,
                    const std::string& body = "", std::map<std::string, std::string> headers = {});
  HttpReply Request(const std::string& method, const std::string& path, const Json& body,
                    std::map<std::string, std::string> headers = {}) {
    return Request(method, path, body.dump(), std::move(headers));
  }
  // Creates a device and returns its primary key (aborts the test process on failure).
  std::string CreateDevice(const std::string& id);
  std::string Token() const;

 private:
  EmulatorInfo info_;
  std::string policy_;
  std::string key_;
  std::unique_ptr<httplib::SSLClient> client_;  // kept alive across requests
};

struct ReceivedMessage {
  std::string topic;
  std::string payload;
  int qos = 0;
};

class DeviceClient {
 public:
  struct Options {
    bool clean_session = false;
    int keepalive = 60;
    std::int64_t token_ttl_s = 3600;
    std::string password;    // overrides the generated token when set
    std::string username;    // overrides the generated username when set
    std::string client_id;   // overrides the device id when set
    std::string will_topic;  // a retained will with payload "will" when set
  };
  DeviceClient(const EmulatorInfo& info, std::string device_id, std::string key);
  DeviceClient(const EmulatorInfo& info, std::string device_id, std::string key, Options options);
  ~DeviceClient();
  DeviceClient(const DeviceClient&) = delete;
  DeviceClient& operator=(const DeviceClient&) = delete;

  // The CONNACK code (0 = accepted), or -1 if the connection closed without one / timed out.
  int Connect(std::chrono::milliseconds timeout = 10s);
  void Disconnect();
  // Granted QoS (0x80 = refused) or -1 on timeout/close.
  int Subscribe(const std::string& filter, int qos = 1, std::chrono::milliseconds timeout = 5s);
  // For QoS 1: true once PUBACKed. For QoS 0: true once written.
  bool Publish(const std::string& topic, const std::string& payload, int qos = 1,
               bool retain = false, std::chrono::milliseconds timeout = 5s);
  // Publishes without waiting; returns the message id (or -1).
  int PublishAsync(const std::string& topic, const std::string& payload, int qos = 1);
  // Waits until `count` PUBACKs in total have arrived.
  bool WaitAcks(std::size_t count, std::chrono::milliseconds timeout);
  std::optional<ReceivedMessage> WaitMessage(
      const std::function<bool(const ReceivedMessage&)>& match,
      std::chrono::milliseconds timeout = 5s);
  bool WaitDisconnected(std::chrono::milliseconds timeout = 5s);
  bool connected();
  std::size_t acks();

 private:
  static void OnConnect(mosquitto*, void*, int rc);
  static void OnDisconnect(mosquitto*, void*, int rc);
  static void OnPublish(mosquitto*, void*, int mid);
  static void OnMessage(mosquitto*, void*, const mosquitto_message*);
  static void OnSubscribe(mosquitto*, void*, int mid, int count, const int* granted);

  EmulatorInfo info_;
  std::string device_id_;
  std::string key_;
  Options options_;
  mosquitto* mosq_ = nullptr;
  std::mutex mutex_;
  std::condition_variable changed_;
  int connack_ = -2;  // -2: waiting
  bool connected_ = false;
  int disconnects_ = 0;
  std::map<int, int> granted_;  // mid -> qos
  std::vector<int> acked_mids_;
  std::size_t acks_ = 0;
  std::deque<ReceivedMessage> inbox_;
  // The network thread runs libmosquitto's loop and performs connects itself, so a
  // reconnect never races libmosquitto's own reconnect logic.
  void NetworkLoop();
  std::atomic<bool> stop_{false};
  std::atomic<bool> connect_requested_{false};
  std::pair<std::string, std::string> pending_credentials_;  // username, password; under mutex_
  std::thread network_;
};

// A device SAS token for `device_id` valid for `ttl_s` from now.
std::string DeviceToken(const EmulatorInfo& info, const std::string& device_id,
                        const std::string& key, std::int64_t ttl_s = 3600);

}  // namespace iothub::testing
