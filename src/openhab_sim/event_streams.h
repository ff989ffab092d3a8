// The open `/rest/events` streams of openhab-sim: events rendered once the way openHAB's SSE
// resource writes them (`event: message`, the EventDTO `{"topic","payload","type"}` with the
// payload encoded a second time, `event: alive` keep-alives; shared/reference/openhab.md §3)
// and handed to every stream whose topic filter matches. Tests can drop every stream (a
// restart, a proxy timeout) or stall them (a hung connection: nothing more arrives, not even
// keep-alives, and what would have been sent is lost). Thread-safe: publishers and the HTTP
// threads that write the streams call in concurrently.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "openhab/topic_filter.h"
#include "openhab_sim/home.h"

namespace iothub::sim {

// One client's stream. Shared by the registry (publishers) and the HTTP connection writing
// it, which may end in either order. Thread-safe.
class EventStream {
 public:
  // A client that does not read is cut off once this much is waiting for it, as a server
  // whose send buffers fill up gives up on the connection.
  static constexpr std::size_t kMaxPendingBytes = 32 << 20;

  explicit EventStream(openhab::TopicFilter filter) : filter_(std::move(filter)) {}

  // Waits up to `wait_ms` for output; returns what to write ("" when nothing came), or
  // nullopt once the stream is closed.
  std::optional<std::string> Next(int wait_ms);
  bool Matches(std::string_view topic) const { return filter_.Matches(topic); }
  void Append(const std::string& chunk);
  // Waits up to `timeout_ms` until less than `bytes` wait for the client (or it closed).
  void WaitBelow(std::size_t bytes, int timeout_ms);
  void Close();
  bool closed();

 private:
  const openhab::TopicFilter filter_;
  std::mutex mutex_;
  std::condition_variable ready_;    // output waiting, or closed
  std::condition_variable drained_;  // output taken, or closed
  std::string pending_;
  bool closed_ = false;
};

struct StreamStats {
  std::size_t open = 0;
  std::uint64_t opened = 0;     // streams ever opened
  std::uint64_t published = 0;  // events published (whether or not anyone listened)
  std::uint64_t alive = 0;      // keep-alives sent
  bool stalled = false;
};

class EventStreams {
 public:
  std::shared_ptr<EventStream> Open(openhab::TopicFilter filter);
  void Publish(const std::vector<SimEvent>& events);
  // `event: alive` with the interval, to every stream.
  void PublishAlive(int interval_s);
  // Ends every open stream (the clients see the connection close).
  void DropAll();
  // Waits (up to 10 s per stream) until every open stream has less than `bytes` waiting: a
  // publisher that wants the clients to keep up, as openHAB's single broadcaster thread does.
  void WaitForClients(std::size_t bytes);
  // While stalled, open and new streams stay connected but receive nothing.
  void SetStalled(bool stalled);
  StreamStats stats();

 private:
  void Prune();  // forgets closed streams; mutex_ held

  std::mutex mutex_;
  std::vector<std::shared_ptr<EventStream>> streams_;
  StreamStats stats_;
};

// The SSE text of one event, as openHAB's Jersey writer frames it.
std::string RenderSse(const SimEvent& event);

}  // namespace iothub::sim
