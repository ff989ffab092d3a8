// The MQTT seam of the device session (STYLE.md §2): one client connection attempt and its
// life, with events delivered to a handler on the event-loop thread. The real implementation
// is libmosquitto driven by the EventLoop (mosquitto_connection.h); unit tests use a fake.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace iothub::azure {

struct MqttConnectOptions {
  std::string host;  // TCP host to connect to (the TLS name checked is the factory's)
  int port = 8883;
  std::string client_id;
  std::string username;
  std::string password;
  int keepalive_s = 120;
  bool clean_session = false;
  // No CONNACK by then (TCP, TLS and MQTT handshakes together): the attempt is lost.
  std::int64_t connect_timeout_ms = 30'000;
};

// Events of one connection, called on the loop thread. The handler may call Publish,
// Subscribe and Close from inside a callback, but must not destroy the connection there
// (defer that, e.g. with EventLoop::Post).
class MqttHandler {
 public:
  virtual ~MqttHandler() = default;
  // The CONNACK arrived: 0 accepted, otherwise the MQTT 3.1.1 return code.
  virtual void OnConnack(int code) = 0;
  // The connection ended without the session asking (network, server close, keep-alive
  // timeout, TLS failure), before or after the CONNACK. `why` is for logs.
  virtual void OnConnectionLost(std::string_view why) = 0;
  // The PUBACK of the QoS 1 publish with this packet id.
  virtual void OnPuback(int packet_id) = 0;
  virtual void OnMessage(std::string_view topic, std::string_view payload) = 0;
};

// One connection. Not thread-safe: loop thread only. After Close() or OnConnectionLost the
// object is spent; the session creates a fresh one for the next attempt.
class MqttConnection {
 public:
  virtual ~MqttConnection() = default;
  // Starts an attempt; the outcome arrives as OnConnack or OnConnectionLost. An error here
  // (bad options, immediate refusal) means no event will follow.
  virtual Status Connect(const MqttConnectOptions& options) = 0;
  // Queues a publish; returns the packet id (QoS 1) or 0 (QoS 0).
  virtual Result<int> Publish(std::string_view topic, std::string_view payload, int qos) = 0;
  virtual Status Subscribe(const std::vector<std::string>& filters, int qos) = 0;
  // Sends DISCONNECT if possible and closes; no event follows.
  virtual void Close() = 0;
};

// Creates connections. Implementations say whether they are thread-safe.
class MqttConnector {
 public:
  virtual ~MqttConnector() = default;
  virtual std::unique_ptr<MqttConnection> Create(MqttHandler& handler) = 0;
};

}  // namespace iothub::azure
