#include "connector/replicator.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "connector/message_format.h"
#include "openhab/state.h"

namespace iothub::connector {
namespace {

bool SendsTelemetry(SendAs send) { return send == SendAs::kTelemetry || send == SendAs::kBoth; }
bool SendsTwin(SendAs send) { return send == SendAs::kTwin || send == SendAs::kBoth; }

const std::map<std::string, openhab::Item>& NoItems() {
  static const std::map<std::string, openhab::Item> kNone;
  return kNone;
}

}  // namespace

Result<Selection> MakeSelection(const Config& config) {
  auto selector = ItemSelector::Create(config.openhab.items, config.openhab.exclude);
  if (!selector) return MakeError("config", selector.error().message);
  auto resolver = PolicyResolver::Create(config.items);
  if (!resolver) return MakeError("config", resolver.error().message);
  return Selection{std::move(selector).value(), std::move(resolver).value()};
}

Entry MakeItemEntry(const openhab::Item& item, const openhab::State& value, std::int64_t time_ms,
                    EntryKind kind, Priority priority) {
  EncodedValue encoded = EncodeValue(item.base_type(), value);
  Entry entry;
  entry.kind = kind;
  entry.priority = priority;
  entry.key = item.name;
  // A typed group says what it aggregates and how, as openHAB's files write it and
  // docs/message-format.md promises: `Group:Number:Power:SUM`, `Group:Switch:OR`.
  if (item.is_group() && !item.group_type.empty()) {
    entry.type = "Group:" + item.group_type;
    if (!item.function.empty()) entry.type += ":" + item.function;
  } else {
    entry.type = item.type;
  }
  entry.value = std::move(encoded.value);
  entry.unit = std::move(encoded.unit);
  entry.state = std::move(encoded.state);
  entry.time_ms = time_ms;
  return entry;
}

Replicator::Replicator(EventLoop& loop, const Clock& wall, Outbox& outbox, TwinMirror& twin,
                       ItemBook& book, openhab::RestClient& rest, Log& log, Selection selection)
    : loop_(loop),
      wall_(wall),
      outbox_(outbox),
      twin_(twin),
      book_(book),
      rest_(rest),
      log_(log),
      selection_(std::move(selection)),
      stream_since_ms_(wall.NowMs()) {}

Replicator::~Replicator() {
  if (filter_timer_ != 0) loop_.Cancel(filter_timer_);
  if (metadata_timer_ != 0) loop_.Cancel(metadata_timer_);
}

const std::map<std::string, openhab::Item>& Replicator::Items() const {
  return mirror_ != nullptr ? mirror_->items() : NoItems();
}

std::int64_t Replicator::telemetry_items() const {
  return std::count_if(selected_.begin(), selected_.end(),
                       [](const auto& s) { return SendsTelemetry(s.second.send); });
}

void Replicator::Reload(Selection selection) {
  selection_ = std::move(selection);
  metadata_reported_.clear();
  Recompute(true);
  log_.Info("replicator", "reloaded: {} items replicated", selected_.size());
}

void Replicator::Recompute(bool snapshot_new) {
  const auto& items = Items();
  const std::set<std::string> now_selected = selection_.selector.SelectAll(items);
  for (auto it = selected_.begin(); it != selected_.end();) {
    const std::string name = it->first;
    ++it;
    if (now_selected.count(name) == 0) Deselect(name);
  }
  const GroupMembership groups(items);
  for (const auto& name : now_selected) {
    if (awaiting_metadata_.count(name) != 0) continue;
    const auto item = items.find(name);
    if (item != items.end()) Select(item->second, groups, snapshot_new);
  }
}

openhab::Item Replicator::WithMetadata(const openhab::Item& item) const {
  openhab::Item copy = item;
  const auto known = metadata_.find(item.name);
  copy.azure = known != metadata_.end() ? std::optional(known->second) : std::nullopt;
  return copy;
}

void Replicator::Select(const openhab::Item& item, const GroupMembership& groups,
                        bool snapshot_new) {
  ResolvedPolicy resolved = selection_.resolver.Resolve(WithMetadata(item), groups);
  if (!resolved.problems.empty() && metadata_reported_.insert(item.name).second) {
    for (const Error& problem : resolved.problems) {
      ++counters_.problems;
      log_.Warn("replicator", "{}", problem.message);
    }
  }
  const ItemPolicy& policy = resolved.policy;
  const bool is_new = selected_.count(item.name) == 0;
  const auto previous = is_new ? std::optional<ItemPolicy>() : selected_[item.name];
  selected_[item.name] = policy;
  book_[item.name].type = item.type;
  if (SendsTelemetry(policy.send)) {
    filter_.Configure(item.name, policy);
  } else {
    filter_.Forget(item.name);
  }
  if (previous && SendsTwin(previous->send) && !SendsTwin(policy.send)) twin_.RemoveItem(item.name);
  if (synced_ && snapshot_new && (is_new || (previous && previous->send != policy.send))) {
    SnapshotItem(item, policy);
  }
  ArmFilterTimer();
}

void Replicator::Deselect(const std::string& name) {
  const auto it = selected_.find(name);
  if (it == selected_.end()) return;
  if (SendsTwin(it->second.send)) twin_.RemoveItem(name);
  filter_.Forget(name);
  selected_.erase(it);
  book_.erase(name);
}

void Replicator::Accept(Entry entry) {
  const std::int64_t now = wall_.NowMs();
  ItemStats& stats = book_[entry.key];
  stats.last_accepted_ms = now;
  if (stats.pending_since_ms == 0) stats.pending_since_ms = now;
  ++counters_.accepted;
  outbox_.Add(std::move(entry));
}

void Replicator::OnItemAdded(const openhab::Item& item) {
  // The first synchronisation, and every resync (which reads metadata with the items), ends
  // in OnConnection: Recompute and a snapshot.
  if (!synced_ || (mirror_ != nullptr && !mirror_->synced())) return;
  // An item added while running: its event has no metadata; read it before anything of the
  // item is sent. Its state is the mirror's when it is selected, so no change is lost.
  awaiting_metadata_.insert(item.name);
  ++metadata_wanted_;
  ReadMetadata();
}

void Replicator::ReadMetadata() {
  if (metadata_read_in_flight_ || metadata_timer_ != 0 || awaiting_metadata_.empty()) return;
  metadata_read_in_flight_ = true;
  const std::int64_t generation = metadata_wanted_;
  rest_.GetItems(liveness_.Guard([this, generation](Result<openhab::ItemList> list) {
    OnMetadata(std::move(list), generation);
  }));
}

void Replicator::OnMetadata(Result<openhab::ItemList> list, std::int64_t generation) {
  metadata_read_in_flight_ = false;
  if (!list) {
    log_.Warn("openhab", "cannot read the metadata of new items: {}; trying again in 5 s",
              list.error().message);
    metadata_timer_ = loop_.RunAfter(5'000, liveness_.Guard([this] {
      metadata_timer_ = 0;
      ReadMetadata();
    }));
    return;
  }
  std::vector<std::string> ready;
  for (const auto& item : list->items) {
    if (awaiting_metadata_.erase(item.name) == 0) continue;
    if (item.azure) {
      metadata_[item.name] = *item.azure;
    } else {
      metadata_.erase(item.name);
    }
    ready.push_back(item.name);
  }
  // Items the list did not have yet (added after the read started) need another read; the
  // others are gone from openHAB and are selected as the events described them.
  if (!awaiting_metadata_.empty() && generation != metadata_wanted_) {
    ReadMetadata();
  } else {
    for (const auto& name : awaiting_metadata_) ready.push_back(name);
    awaiting_metadata_.clear();
  }
  if (!synced_ || ready.empty()) return;
  if (selection_.selector.uses_groups()) {
    Recompute(true);
    return;
  }
  const GroupMembership groups(Items());
  for (const auto& name : ready) {
    const auto item = Items().find(name);
    if (item != Items().end() && selection_.selector.Selects(item->second, Items())) {
      Select(item->second, groups, true);
    }
  }
}

void Replicator::OnItemRemoved(const std::string& name) {
  awaiting_metadata_.erase(name);
  metadata_.erase(name);
  Deselect(name);
  if (synced_ && selection_.selector.uses_groups()) Recompute(true);
}

void Replicator::OnItemUpdated(const openhab::Item& item) {
  if (!synced_ || awaiting_metadata_.count(item.name) != 0) return;
  if (selection_.selector.uses_groups()) {
    Recompute(true);
    return;
  }
  if (selection_.selector.Selects(item, Items())) {
    Select(item, GroupMembership(Items()), true);
  } else {
    Deselect(item.name);
  }
}

void Replicator::OnStateChanged(const openhab::Item& item, const openhab::StateChange& change) {
  last_event_ms_ = wall_.NowMs();
  Replicate(item, change);
  if (state_observer_) state_observer_(item);
}

void Replicator::Replicate(const openhab::Item& item, const openhab::StateChange& change) {
  const auto it = selected_.find(item.name);
  if (it == selected_.end()) return;
  const ItemPolicy& policy = it->second;
  ++counters_.changes;
  Entry entry = MakeItemEntry(item, change.value, Now(change.changed_ms), EntryKind::kChange,
                              policy.priority);
  book_[item.name].last_change_ms = entry.time_ms;
  if (SendsTwin(policy.send)) twin_.SetItem(entry);
  if (!SendsTelemetry(policy.send)) return;
  const ItemFilter::Decision decision = filter_.OnChange(entry, loop_.NowMs());
  switch (decision.verdict) {
    case ItemFilter::Verdict::kSend:
      Accept(std::move(entry));
      return;
    case ItemFilter::Verdict::kHold:
      ++counters_.held;
      ArmFilterTimer();
      return;
    case ItemFilter::Verdict::kSuppress:
      ++counters_.suppressed;
      ++book_[item.name].suppressed;
      return;
  }
}

void Replicator::ArmFilterTimer() {
  const std::optional<std::int64_t> due = filter_.NextDueMs();
  if (!due) return;
  if (filter_timer_ != 0) {
    if (filter_timer_at_ <= *due) return;
    loop_.Cancel(filter_timer_);
  }
  filter_timer_at_ = *due;
  filter_timer_ = loop_.RunAfter(std::max<std::int64_t>(0, *due - loop_.NowMs()), [this] {
    filter_timer_ = 0;
    ReleaseDue();
  });
}

void Replicator::ReleaseDue() {
  for (ItemFilter::Due& due : filter_.TakeDue(loop_.NowMs())) {
    const auto it = selected_.find(due.entry.key);
    if (it == selected_.end()) continue;
    Entry entry = std::move(due.entry);
    if (due.reason == ItemFilter::Reason::kHeartbeat) {
      ++counters_.heartbeats;
      entry.kind = EntryKind::kSnapshot;
    } else {
      entry.kind = EntryKind::kChange;
    }
    entry.priority = it->second.priority;
    entry.count = 1;
    entry.min.reset();
    entry.max.reset();
    Accept(std::move(entry));
  }
  ArmFilterTimer();
}

void Replicator::OnConnection(bool up, std::string_view detail) {
  stream_up_ = up;
  stream_detail_ = std::string(detail);
  stream_since_ms_ = wall_.NowMs();
  if (!up) {
    log_.Warn("openhab", "event stream down: {}", detail);
    return;
  }
  log_.Info("openhab", "{}", detail);
  const bool first = !synced_;
  synced_ = true;
  // The resync read every item with its metadata: that is what holds until the next one.
  metadata_.clear();
  awaiting_metadata_.clear();
  for (const auto& [name, item] : Items()) {
    if (item.azure) metadata_[name] = *item.azure;
  }
  Recompute(false);
  if (first) {
    log_.Info("replicator", "{} of {} items replicated ({} as telemetry)", selected_.size(),
              Items().size(), telemetry_items());
  }
  Snapshot();
  ReadThings();
}

void Replicator::Snapshot() {
  ++counters_.snapshots;
  const auto& items = Items();
  for (const auto& [name, policy] : selected_) {
    const auto item = items.find(name);
    if (item != items.end()) SnapshotItem(item->second, policy);
  }
}

void Replicator::SnapshotItem(const openhab::Item& item, const ItemPolicy& policy) {
  const openhab::State state = openhab::ParseStateTolerant(item.base_type(), item.state);
  Entry entry = MakeItemEntry(item, state, Now(item.last_state_change_ms), EntryKind::kSnapshot,
                              policy.priority);
  if (SendsTwin(policy.send)) twin_.SetItem(entry);
  if (!SendsTelemetry(policy.send)) return;
  filter_.Sent(entry, loop_.NowMs());
  Accept(std::move(entry));
  ArmFilterTimer();
}

void Replicator::ReadThings() {
  rest_.GetThings(liveness_.Guard([this](Result<openhab::ThingList> things) {
    if (!things) {
      const std::string& code = things.error().code;
      if (code == "unauthorized" || code == "forbidden") {
        if (admin_ != false) {
          log_.Info("openhab",
                    "things' status is not replicated: that needs an administrator's API token "
                    "in [openhab] token");
        }
        admin_ = false;
      } else {
        log_.Warn("openhab", "cannot read things: {}", things.error().message);
      }
      return;
    }
    if (admin_ != true)
      log_.Info("openhab", "replicating the status of {} things", things->things.size());
    admin_ = true;
    for (const auto& thing : things->things) {
      ThingStatus(thing.uid, thing.status, thing.status_detail, thing.status_description);
    }
  }));
}

void Replicator::OnThingStatus(const openhab::Event& event) {
  last_event_ms_ = wall_.NowMs();
  if (admin_ != true) return;
  std::string detail;
  std::string description;
  if (event.payload.is_array() && !event.payload.empty() && event.payload[0].is_object()) {
    const Json& info = event.payload[0];
    if (const auto it = info.find("statusDetail"); it != info.end() && it->is_string()) {
      detail = it->get<std::string>();
    }
    if (const auto it = info.find("description"); it != info.end() && it->is_string()) {
      description = it->get<std::string>();
    }
  }
  ThingStatus(event.thing_uid, event.thing_status, detail, description);
}

void Replicator::ThingStatus(const std::string& uid, const std::string& status,
                             const std::string& detail, const std::string& description) {
  const std::string fingerprint = status + "\n" + detail + "\n" + description;
  auto& known = thing_status_[uid];
  if (known == fingerprint) return;
  known = fingerprint;
  ++counters_.thing_changes;
  Entry entry;
  entry.kind = EntryKind::kThing;
  entry.key = uid;
  entry.value = EncodeThingStatus(status, detail, description);
  entry.time_ms = wall_.NowMs();
  twin_.SetThing(uid, entry.value);
  ++counters_.accepted;
  outbox_.Add(std::move(entry));
}

void Replicator::OnServerInfo(const openhab::ServerInfo& info) {
  if (!server_ || server_->runtime_version != info.runtime_version) {
    log_.Info("openhab", "openHAB {} (REST API {})",
              info.runtime_version.empty() ? "(version unknown)" : info.runtime_version,
              info.api_version);
  }
  server_ = info;
}

void Replicator::OnProblem(const Error& problem) {
  ++counters_.problems;
  log_.Warn("openhab", "skipped ({}): {}", problem.code, problem.message);
}

}  // namespace iothub::connector
