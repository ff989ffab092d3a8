// A fake MqttConnector for unit tests of the device session: records what the session sends
// and lets the test play the hub's part. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "azure/mqtt_connection.h"

namespace iothub::testing {

struct FakePublish {
  std::string topic;
  std::string payload;
  int qos = 0;
  int packet_id = 0;
};

class FakeMqttConnection final : public azure::MqttConnection {
 public:
  explicit FakeMqttConnection(azure::MqttHandler& handler) : handler(handler) {}
  Status Connect(const azure::MqttConnectOptions& o) override {
    if (refuse_connect) return MakeError("mqtt_connect", "refused by the fake");
    options = o;
    return Ok{};
  }
  Result<int> Publish(std::string_view topic, std::string_view payload, int qos) override {
    if (closed) return MakeError("mqtt_state", "closed");
    const int id = qos > 0 ? next_id++ : 0;
    published.push_back({std::string(topic), std::string(payload), qos, id});
    return id;
  }
  Status Subscribe(const std::vector<std::string>& filters, int) override {
    subscribed.insert(subscribed.end(), filters.begin(), filters.end());
    return Ok{};
  }
  void Close() override { closed = true; }

  azure::MqttHandler& handler;
  azure::MqttConnectOptions options;
  std::vector<FakePublish> published;
  std::vector<std::string> subscribed;
  bool closed = false;
  bool refuse_connect = false;
  int next_id = 1;
};

// Keeps every connection it made (the session retires them; the fake keeps them readable).
class FakeMqttConnector final : public azure::MqttConnector {
 public:
  std::unique_ptr<azure::MqttConnection> Create(azure::MqttHandler& handler) override {
    auto connection = std::make_unique<Proxy>(handler, *this);
    return connection;
  }
  FakeMqttConnection& last() { return *connections.back(); }
  std::size_t count() const { return connections.size(); }

  std::vector<std::unique_ptr<FakeMqttConnection>> connections;
  bool refuse_next = false;

 private:
  // Forwards to a FakeMqttConnection the connector owns, so tests can inspect connections the
  // session has already destroyed.
  class Proxy final : public azure::MqttConnection {
   public:
    Proxy(azure::MqttHandler& handler, FakeMqttConnector& owner) {
      owner.connections.push_back(std::make_unique<FakeMqttConnection>(handler));
      target_ = owner.connections.back().get();
      target_->refuse_connect = owner.refuse_next;
    }
    Status Connect(const azure::MqttConnectOptions& o) override { return target_->Connect(o); }
    Result<int> Publish(std::string_view t, std::string_view p, int q) override {
      return target_->Publish(t, p, q);
    }
    Status Subscribe(const std::vector<std::string>& f, int q) override {
      return target_->Subscribe(f, q);
    }
    void Close() override { target_->Close(); }

   private:
    FakeMqttConnection* target_;
  };
};

}  // namespace iothub::testing
