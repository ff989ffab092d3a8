#include "openhab/item_mirror.h"

#include <fmt/format.h>

#include <set>
#include <string_view>
#include <utility>

#include "openhab/topic_filter.h"

namespace iothub::openhab {
namespace {

constexpr std::int64_t kTickMs = 1'000;

}  // namespace

ItemMirror::ItemMirror(EventLoop& loop, HttpStreamer& streamer, RestClient& rest, Random& random,
                       MirrorConfig config, MirrorListener& listener)
    : loop_(loop),
      streamer_(streamer),
      rest_(rest),
      config_(config),
      listener_(listener),
      backoff_(config.reconnect, random),
      parser_(config.limits) {}

ItemMirror::~ItemMirror() {
  if (tick_timer_ != 0) loop_.Cancel(tick_timer_);
  if (reconnect_timer_ != 0) loop_.Cancel(reconnect_timer_);
}

void ItemMirror::Start() {
  if (running_) return;
  running_ = true;
  tick_timer_ = loop_.RunAfter(kTickMs, [this] { OnTick(); });
  Connect();
}

void ItemMirror::Stop() {
  running_ = false;
  ++generation_;
  stream_.reset();
  if (tick_timer_ != 0) loop_.Cancel(tick_timer_);
  if (reconnect_timer_ != 0) loop_.Cancel(reconnect_timer_);
  tick_timer_ = reconnect_timer_ = 0;
  open_ = synced_ = false;
  pending_.clear();
}

void ItemMirror::Connect() {
  const std::uint64_t generation = ++generation_;
  parser_.Reset();
  pending_.clear();
  open_ = synced_ = false;
  // The server's facts first: a restarted openHAB may be another version, with other
  // keep-alives.
  rest_.GetServerInfo(liveness_.Guard([this, generation](Result<ServerInfo> info) {
    if (generation != generation_) return;
    if (!info) return Disconnected("cannot reach openHAB: " + info.error().message);
    server_ = *info;
    alive_interval_s_ =
        config_.alive_interval_s >= 0 ? config_.alive_interval_s : info->alive_interval_s;
    listener_.OnServerInfo(*server_);
    OpenStream(generation);
  }));
}

void ItemMirror::OpenStream(std::uint64_t generation) {
  last_traffic_ms_ = loop_.NowMs();
  StreamHandlers handlers;
  handlers.on_open = [this, generation](int status, const HttpHeaders&) {
    if (generation != generation_ || status != 200) return;  // on_end carries the error
    open_ = true;
    last_traffic_ms_ = loop_.NowMs();
    ++counters_.connects;
    // Events from now on are buffered until the snapshot is applied: the GET runs after the
    // stream is open, so no change can fall between the two. The answer may come after this
    // mirror is gone (destroyed mid-resync): guarded.
    rest_.GetItems(liveness_.Guard(
        [this, generation](Result<ItemList> list) { OnResync(std::move(list), generation); }));
  };
  handlers.on_data = [this, generation](const std::string& chunk) {
    if (generation != generation_) return;
    last_traffic_ms_ = loop_.NowMs();
    parser_.Feed(chunk, *this);
  };
  handlers.on_end = [this, generation](Result<HttpResponse> end) {
    if (generation != generation_) return;
    if (!end) return Disconnected(end.error().message);
    if (end->status != 200) {
      return Disconnected(ErrorForStatus(*end, "GET /rest/events").message);
    }
    Disconnected("the server ended the event stream");
  };
  stream_ = rest_.OpenEvents(streamer_, ClientTopicFilter(), std::move(handlers));
}

void ItemMirror::Disconnected(std::string detail) {
  const bool was_up = synced_;
  ++generation_;
  // The handle may be the one whose handler is running: it only joins a finished thread.
  stream_.reset();
  open_ = synced_ = false;
  pending_.clear();
  if (!running_) return;
  const std::int64_t delay = backoff_.NextDelayMs();
  if (reconnect_timer_ != 0) loop_.Cancel(reconnect_timer_);
  reconnect_timer_ = loop_.RunAfter(delay, [this] {
    reconnect_timer_ = 0;
    if (running_) Connect();
  });
  listener_.OnConnection(false, fmt::format("{}{}; reconnecting in {} ms", detail,
                                            was_up ? "" : " (before the first resync)", delay));
}

void ItemMirror::OnResync(Result<ItemList> list, std::uint64_t generation) {
  if (generation != generation_) return;
  if (!list) return Disconnected("resync failed: " + list.error().message);
  ++counters_.resyncs;
  for (const auto& skipped : list->skipped) listener_.OnProblem(skipped);
  std::set<std::string> present;
  for (auto& fresh : list->items) {
    present.insert(fresh.name);
    auto it = items_.find(fresh.name);
    if (it == items_.end()) {
      const auto [added, inserted] = items_.emplace(fresh.name, std::move(fresh));
      listener_.OnItemAdded(added->second);
      continue;
    }
    Item& known = it->second;
    const std::string state = fresh.state;
    fresh.state = known.state;
    known = std::move(fresh);
    SetState(known, state, "", known.last_state_change_ms, ChangeSource::kResync);
  }
  for (auto it = items_.begin(); it != items_.end();) {
    if (present.contains(it->first)) {
      ++it;
      continue;
    }
    const std::string name = it->first;
    it = items_.erase(it);
    listener_.OnItemRemoved(name);
  }
  synced_ = true;
  backoff_.Reset();
  auto pending = std::move(pending_);
  pending_.clear();
  for (const auto& event : pending) Apply(event, ChangeSource::kEvent);
  listener_.OnConnection(true, fmt::format("synchronised {} items", items_.size()));
}

void ItemMirror::OnEvent(SseEvent&& sse) {
  auto event = DecodeEvent(sse);
  if (!event) {
    ++counters_.bad_events;
    listener_.OnProblem(event.error());
    return;
  }
  ++counters_.events;
  if (event->kind == EventKind::kAlive) return;
  if (!synced_) {
    pending_.push_back(std::move(event).value());
    return;
  }
  Apply(*event, ChangeSource::kEvent);
}

void ItemMirror::OnError(const Error& error) {
  ++counters_.bad_events;
  listener_.OnProblem(error);
}

void ItemMirror::SetState(Item& item, const std::string& state, const std::string& value_type,
                          std::int64_t changed_ms, ChangeSource source) {
  if (item.state == state) return;
  StateChange change;
  change.old_text = std::move(item.state);
  change.text = state;
  change.value_type = value_type;
  change.changed_ms = changed_ms;
  change.source = source;
  // The event's own type says best what the value is (a Number item may carry a Quantity);
  // where it does not parse, or there is none, the item's type decides.
  const std::string_view base_type = item.is_group() && !item.group_type.empty()
                                         ? std::string_view(item.group_type)
                                         : std::string_view(item.type);
  std::optional<State> typed;
  if (!value_type.empty()) {
    if (auto parsed = ParseTypedValue(value_type, state)) typed = std::move(parsed).value();
  }
  change.value = typed ? std::move(*typed) : ParseStateTolerant(base_type, state);
  change.old_value = ParseStateTolerant(base_type, change.old_text);
  item.state = state;
  listener_.OnStateChanged(item, change);
}

void ItemMirror::Apply(const Event& event, ChangeSource source) {
  switch (event.kind) {
    case EventKind::kItemStateChanged:
    case EventKind::kGroupStateChanged: {
      const auto it = items_.find(event.item);
      if (it != items_.end()) {
        if (event.last_state_change_ms != 0)
          it->second.last_state_change_ms = event.last_state_change_ms;
        SetState(it->second, event.value, event.value_type, event.last_state_change_ms, source);
      }
      return;
    }
    case EventKind::kItemCommand:
      listener_.OnCommand(event.item, event.value_type, event.value);
      return;
    case EventKind::kItemAdded:
    case EventKind::kItemUpdated: {
      auto item = ParseItem(event.item_json);
      if (!item) {
        listener_.OnProblem(item.error());
        return;
      }
      const std::string name = item->name;
      const auto it = items_.find(name);
      if (it == items_.end()) {
        const auto [added, inserted] = items_.emplace(name, std::move(item).value());
        listener_.OnItemAdded(added->second);
      } else {
        item->state = it->second.state;  // definitions in these events carry no fresh state
        it->second = std::move(item).value();
        listener_.OnItemUpdated(it->second);
      }
      return;
    }
    case EventKind::kItemRemoved:
      if (items_.erase(event.item) > 0) listener_.OnItemRemoved(event.item);
      return;
    case EventKind::kThingStatusChanged:
      listener_.OnThingStatus(event);
      return;
    default:
      return;  // update requests and others: not item changes
  }
}

void ItemMirror::OnTick() {
  tick_timer_ = loop_.RunAfter(kTickMs, [this] { OnTick(); });
  if (!open_ || alive_interval_s_ <= 0) return;
  const std::int64_t silent = loop_.NowMs() - last_traffic_ms_;
  if (silent > alive_interval_s_ * 1000LL + config_.alive_margin_ms) {
    ++counters_.stalls;
    Disconnected(fmt::format("no traffic on the event stream for {} ms", silent));
  }
}

}  // namespace iothub::openhab
