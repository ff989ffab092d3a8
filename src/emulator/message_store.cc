#include "emulator/message_store.h"

#include <chrono>

#include "common/clock.h"
#include "common/crypto.h"

namespace iothub::emulator {

std::uint64_t MessageStore::Append(StoredMessage message) {
  std::uint64_t seq;
  {
    std::lock_guard lock(mutex_);
    seq = ++last_seq_;
    message.seq = seq;
    if (message.footprint == 0) message.footprint = message.body.size();
    bytes_ += message.footprint;
    messages_.push_back(std::move(message));
    // Keep at least the newest message, however large.
    while (messages_.size() > 1 && (messages_.size() > capacity_ || bytes_ > max_bytes_)) {
      bytes_ -= messages_.front().footprint;
      messages_.pop_front();
    }
  }
  changed_.notify_all();
  return seq;
}

std::vector<StoredMessage> MessageStore::Read(const std::string& device_id, std::uint64_t since,
                                              std::size_t limit) const {
  std::lock_guard lock(mutex_);
  std::vector<StoredMessage> out;
  if (messages_.empty()) return out;
  // Sequence numbers are dense, so the first candidate's index follows from `since`.
  const std::uint64_t first_seq = messages_.front().seq;
  std::size_t index = since >= first_seq ? static_cast<std::size_t>(since - first_seq + 1) : 0;
  for (; index < messages_.size() && out.size() < limit; ++index) {
    const StoredMessage& m = messages_[index];
    if (device_id.empty() || m.device_id == device_id) out.push_back(m);
  }
  return out;
}

std::uint64_t MessageStore::WaitNewer(std::uint64_t since, int timeout_ms) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                    [&] { return last_seq_ > since || closed_; });
  return last_seq_;
}

void MessageStore::Close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  changed_.notify_all();
}

bool MessageStore::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

std::uint64_t MessageStore::LastSeq() const {
  std::lock_guard lock(mutex_);
  return last_seq_;
}

nlohmann::json MessageToJson(const StoredMessage& m) {
  return {{"seq", m.seq},
          {"deviceId", m.device_id},
          {"enqueuedTime", FormatIsoTime(m.enqueued_ms)},
          {"body", m.body},
          {"bodyBase64", Base64Encode(m.body)},
          {"properties", m.properties},
          {"systemProperties", m.system_properties}};
}

}  // namespace iothub::emulator
