// A live mirror of openHAB's items: the event stream (/rest/events) keeps it current, and
// after every (re)connect a full GET /rest/items resynchronises it, so that exactly the
// changes missed while the stream was down are reported, once (issue 4; reference §3: the
// stream has no replay). A stream without traffic for the keep-alive interval plus a margin
// is considered dead and replaced. Not thread-safe: loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/backoff.h"
#include "common/event_loop.h"
#include "common/http_stream.h"
#include "common/liveness.h"
#include "common/random.h"
#include "openhab/event.h"
#include "openhab/item.h"
#include "openhab/rest_client.h"
#include "openhab/sse_parser.h"

namespace iothub::openhab {

enum class ChangeSource { kEvent, kResync };

class MirrorListener {
 public:
  virtual ~MirrorListener() = default;
  // An item appeared (also every item of the first synchronisation).
  virtual void OnItemAdded(const Item& /*item*/) {}
  virtual void OnItemRemoved(const std::string& /*name*/) {}
  // The item's definition changed (label, tags, metadata...); its state is kept.
  virtual void OnItemUpdated(const Item& /*item*/) {}
  // The state changed: from an event, or found different by a resync.
  virtual void OnStateChanged(const Item& /*item*/, const std::string& /*old_state*/,
                              ChangeSource /*source*/) {}
  // A command sent to an item (by a user, a rule, or us).
  virtual void OnCommand(const std::string& /*item*/, const std::string& /*type*/,
                         const std::string& /*value*/) {}
  // Stream up (after its resync) or down, with the reason.
  virtual void OnConnection(bool /*up*/, std::string_view /*detail*/) {}
  // Something from openHAB that could not be used (malformed event, skipped item).
  virtual void OnProblem(const Error& /*problem*/) {}
};

struct MirrorConfig {
  // The keep-alive interval the server announces (ServerInfo::alive_interval_s); 0: the
  // server sends none, so a silent stream cannot be told from a dead one.
  int alive_interval_s = 10;
  std::int64_t alive_margin_ms = 5'000;
  BackoffPolicy reconnect{1'000, 60'000, 2.0, 0.5};
  SseLimits limits;
};

struct MirrorCounters {
  std::int64_t connects = 0;
  std::int64_t resyncs = 0;
  std::int64_t events = 0;
  std::int64_t bad_events = 0;
  std::int64_t stalls = 0;
};

class ItemMirror final : private SseHandler {
 public:
  ItemMirror(EventLoop& loop, HttpStreamer& streamer, RestClient& rest, Random& random,
             MirrorConfig config, MirrorListener& listener);
  ~ItemMirror() override;
  ItemMirror(const ItemMirror&) = delete;
  ItemMirror& operator=(const ItemMirror&) = delete;

  void Start();
  void Stop();

  const std::map<std::string, Item>& items() const { return items_; }
  bool synced() const { return synced_; }
  const MirrorCounters& counters() const { return counters_; }

 private:
  // SseHandler
  void OnEvent(SseEvent&& event) override;
  void OnError(const Error& error) override;

  void Connect();
  void Disconnected(std::string detail);
  void OnResync(Result<ItemList> list, std::uint64_t generation);
  void Apply(const Event& event, ChangeSource source);
  void SetState(Item& item, const std::string& state, ChangeSource source);
  void OnTick();

  EventLoop& loop_;
  HttpStreamer& streamer_;
  RestClient& rest_;
  MirrorConfig config_;
  MirrorListener& listener_;
  Backoff backoff_;
  SseParser parser_;
  std::unique_ptr<HttpStreamHandle> stream_;
  std::uint64_t generation_ = 0;  // which connection a late answer belongs to
  bool running_ = false;
  bool open_ = false;           // the stream answered 200
  bool synced_ = false;         // the resync after the current connect is applied
  std::vector<Event> pending_;  // events that arrived while the resync was in flight
  std::int64_t last_traffic_ms_ = 0;
  EventLoop::TimerId tick_timer_ = 0;
  EventLoop::TimerId reconnect_timer_ = 0;
  std::map<std::string, Item> items_;
  MirrorCounters counters_;
  Liveness liveness_;  // last: REST answers check it before touching the members above
};

}  // namespace iothub::openhab
