#include "openhab_sim/event_streams.h"

#include <algorithm>
#include <chrono>

namespace iothub::sim {

std::string RenderSse(const SimEvent& event) {
  // EventDTO's field order; the payload (already JSON) is encoded once more as a string.
  OrderedJson dto;
  dto["topic"] = event.topic;
  dto["payload"] = event.payload;
  dto["type"] = event.type;
  return "event: message\ndata: " + dto.dump(-1, ' ', false, Json::error_handler_t::replace) +
         "\n\n";
}

std::optional<std::string> EventStream::Next(int wait_ms) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                  [&] { return closed_ || !pending_.empty(); });
  if (closed_) return std::nullopt;
  std::string out;
  out.swap(pending_);
  lock.unlock();
  drained_.notify_all();
  return out;
}

void EventStream::WaitBelow(std::size_t bytes, int timeout_ms) {
  std::unique_lock lock(mutex_);
  drained_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                    [&] { return closed_ || pending_.size() < bytes; });
}

void EventStream::Append(const std::string& chunk) {
  bool overflowed = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    if (pending_.size() + chunk.size() > kMaxPendingBytes) {
      closed_ = overflowed = true;
      pending_.clear();
    } else {
      pending_ += chunk;
    }
  }
  ready_.notify_all();
  if (overflowed) drained_.notify_all();  // closed: nobody need wait for it to drain
}

void EventStream::Close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  ready_.notify_all();
  drained_.notify_all();
}

bool EventStream::closed() {
  std::lock_guard lock(mutex_);
  return closed_;
}

std::shared_ptr<EventStream> EventStreams::Open(openhab::TopicFilter filter) {
  auto stream = std::make_shared<EventStream>(std::move(filter));
  std::lock_guard lock(mutex_);
  Prune();
  streams_.push_back(stream);
  ++stats_.opened;
  return stream;
}

void EventStreams::Publish(const std::vector<SimEvent>& events) {
  std::lock_guard lock(mutex_);
  stats_.published += events.size();
  if (stats_.stalled || streams_.empty()) return;
  for (const auto& event : events) {
    const std::string text = RenderSse(event);
    for (const auto& stream : streams_) {
      if (stream->Matches(event.topic)) stream->Append(text);
    }
  }
}

void EventStreams::PublishAlive(int interval_s) {
  const std::string text =
      "event: alive\ndata: {\"type\":\"ALIVE\",\"interval\":" + std::to_string(interval_s) +
      "}\n\n";
  std::lock_guard lock(mutex_);
  if (stats_.stalled) return;
  ++stats_.alive;
  for (const auto& stream : streams_) stream->Append(text);
}

void EventStreams::DropAll() {
  std::lock_guard lock(mutex_);
  for (const auto& stream : streams_) stream->Close();
  streams_.clear();
}

void EventStreams::WaitForClients(std::size_t bytes) {
  std::vector<std::shared_ptr<EventStream>> streams;
  {
    std::lock_guard lock(mutex_);
    if (stats_.stalled) return;
    streams = streams_;
  }
  for (const auto& stream : streams) stream->WaitBelow(bytes, 10'000);
}

void EventStreams::SetStalled(bool stalled) {
  std::lock_guard lock(mutex_);
  stats_.stalled = stalled;
}

StreamStats EventStreams::stats() {
  std::lock_guard lock(mutex_);
  Prune();
  StreamStats out = stats_;
  out.open = streams_.size();
  return out;
}

void EventStreams::Prune() {
  std::erase_if(streams_, [](const auto& stream) { return stream->closed(); });
}

}  // namespace iothub::sim
