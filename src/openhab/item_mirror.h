// A live mirror of openHAB's items: the event stream (/rest/events) keeps it current, and
// after every (re)connect a full GET /rest/items resynchronises it, so that exactly the
// changes missed while the stream was down are reported, once (issue 4; reference §3: the
// stream has no replay). Every connect starts with GET /rest/ for the server's facts (its
// version and keep-alive interval), so the caller needs nothing but a RestClient. A stream
// without traffic for the keep-alive interval plus a margin is considered dead and replaced.
// State changes are reported typed (the state codec's value, unit, item type and openHAB's
// change time). Not thread-safe: loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
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
#include "openhab/state.h"

namespace iothub::openhab {

enum class ChangeSource { kEvent, kResync };

// A state change as the connector replicates it.
struct StateChange {
  State value;       // typed by the event's value type, else by the item type (tolerant:
                     // text that does not parse stays a kString)
  State old_value;   // what the mirror held before
  std::string text;  // the state text as openHAB sent it
  std::string old_text;
  std::string value_type;  // the event's value type name ("Quantity", ...); "" from a resync
  // openHAB's time of the change (lastStateChange, epoch ms) where the server gives it
  // (5.0+ events and items), else 0: then the time of receipt is the best there is.
  std::int64_t changed_ms = 0;
  ChangeSource source = ChangeSource::kEvent;
};

class MirrorListener {
 public:
  virtual ~MirrorListener() = default;
  // An item appeared (also every item of the first synchronisation).
  virtual void OnItemAdded(const Item& /*item*/) {}
  virtual void OnItemRemoved(const std::string& /*name*/) {}
  // The item's definition changed (label, tags, metadata...); its state is kept.
  virtual void OnItemUpdated(const Item& /*item*/) {}
  // The state changed: from an event, or found different by a resync. `item` already holds
  // the new state text.
  virtual void OnStateChanged(const Item& /*item*/, const StateChange& /*change*/) {}
  // A thing's status changed (ThingStatusInfoChangedEvent; `event.payload` holds the new and
  // old statusInfo objects). Things are not mirrored: the mirror only passes these on.
  virtual void OnThingStatus(const Event& /*event*/) {}
  // A command sent to an item (by a user, a rule, or us).
  virtual void OnCommand(const std::string& /*item*/, const std::string& /*type*/,
                         const std::string& /*value*/) {}
  // Stream up (after its resync) or down, with the reason.
  virtual void OnConnection(bool /*up*/, std::string_view /*detail*/) {}
  // The server's facts, read at every connect (before the stream opens).
  virtual void OnServerInfo(const ServerInfo& /*info*/) {}
  // Something from openHAB that could not be used (malformed event, skipped item).
  virtual void OnProblem(const Error& /*problem*/) {}
};

struct MirrorConfig {
  // The keep-alive interval to expect; -1: the one the server's version sends
  // (ServerInfo::alive_interval_s). 0: none, so a silent stream cannot be told from a dead one.
  int alive_interval_s = -1;
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
  // The facts of the server last connected to (none before the first connect).
  const std::optional<ServerInfo>& server() const { return server_; }
  bool synced() const { return synced_; }
  const MirrorCounters& counters() const { return counters_; }

 private:
  // SseHandler
  void OnEvent(SseEvent&& event) override;
  void OnError(const Error& error) override;

  void Connect();
  void OpenStream(std::uint64_t generation);
  void Disconnected(std::string detail);
  void OnResync(Result<ItemList> list, std::uint64_t generation);
  void Apply(const Event& event, ChangeSource source);
  // Sets the item's state text; reports the change (if any) typed by `value_type` when
  // given, else by the item's type.
  void SetState(Item& item, const std::string& state, const std::string& value_type,
                std::int64_t changed_ms, ChangeSource source);
  void OnTick();

  EventLoop& loop_;
  HttpStreamer& streamer_;
  RestClient& rest_;
  MirrorConfig config_;
  std::optional<ServerInfo> server_;
  int alive_interval_s_ = 0;  // in force for the current connection
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
