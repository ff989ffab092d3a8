// An in-memory TelemetrySource for tests and benchmarks: a first-in first-out queue that
// hands each message to the session once, in order, giving it an id where it has none.
// (The connector's source is its durable outbox.) Not thread-safe: the session's loop only.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "azure/device_session.h"
#include "common/result.h"

namespace iothub::testing {

class TelemetryQueue final : public azure::TelemetrySource {
 public:
  // Checks `message` as `session` would (CheckTelemetry), queues it and tells the session.
  // Returns the message id.
  Result<std::string> Send(azure::DeviceSession& session, azure::TelemetryMessage message) {
    if (message.message_id.empty()) message.message_id = "q-" + std::to_string(next_id_++);
    if (Status ok = azure::CheckTelemetry(session.device_id(), message); !ok) return ok.error();
    std::string id = message.message_id;
    queue_.push_back(std::move(message));
    session.TelemetryReady();
    return id;
  }
  std::optional<azure::TelemetryMessage> NextTelemetry() override {
    if (queue_.empty()) return std::nullopt;
    azure::TelemetryMessage next = std::move(queue_.front());
    queue_.pop_front();
    return next;
  }
  // Queued and not yet taken by the session.
  std::size_t waiting() const { return queue_.size(); }

 private:
  std::deque<azure::TelemetryMessage> queue_;
  std::uint64_t next_id_ = 1;
};

}  // namespace iothub::testing
