// Device-to-cloud messages the hub received, kept for reading through the emulator's
// /emulator/messages endpoints (docs/emulator-api.md). Bounded by count and by bytes (a
// message can be 256 KB): the oldest messages are forgotten first. Thread-safe: the broker thread
// appends, HTTP threads read and wait.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace iothub::emulator {

struct StoredMessage {
  std::uint64_t seq = 0;  // assigned by the store, increasing from 1
  std::string device_id;
  std::int64_t enqueued_ms = 0;
  std::string body;
  nlohmann::json properties = nlohmann::json::object();         // application properties
  nlohmann::json system_properties = nlohmann::json::object();  // message-id, iothub-*, ...
  // Approximate memory held (body, property names and values, per-entry overhead); counted
  // against the store's byte budget. The body size is used when left at 0.
  std::size_t footprint = 0;
};

class MessageStore {
 public:
  explicit MessageStore(std::size_t capacity, std::size_t max_bytes = 256UL << 20)
      : capacity_(capacity), max_bytes_(max_bytes) {}

  std::uint64_t Append(StoredMessage message);
  // Messages with seq > `since`, oldest first, from `device_id` (all if empty), at most `limit`.
  std::vector<StoredMessage> Read(const std::string& device_id, std::uint64_t since,
                                  std::size_t limit) const;
  // Blocks until a message with seq > `since` exists or `timeout_ms` passes; returns the
  // newest seq.
  std::uint64_t WaitNewer(std::uint64_t since, int timeout_ms) const;
  std::uint64_t LastSeq() const;
  // Wakes every waiter and makes later waits return at once (shutdown).
  void Close();
  bool closed() const;

 private:
  const std::size_t capacity_;
  const std::size_t max_bytes_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::deque<StoredMessage> messages_;
  std::uint64_t last_seq_ = 0;
  std::size_t bytes_ = 0;  // bodies held
  bool closed_ = false;
};

nlohmann::json MessageToJson(const StoredMessage& message);

}  // namespace iothub::emulator
