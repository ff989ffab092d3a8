// The replicator (DESIGN.md data flow): from what openHAB says (the item mirror's typed
// changes, resyncs and thing status events) to entries in the outbox and the twin's mirror.
// It decides which items are replicated (openhab.items / exclude), how each behaves (the
// [[item]] rules and its `azureiothub` metadata), filters changes (deadband, min_interval,
// heartbeat) and, at start and after every resync, queues a snapshot of every replicated
// item's current state so that nothing stays invisible until its next change. With an
// administrator's token it also replicates things' status. Not thread-safe: loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/clock.h"
#include "common/event_loop.h"
#include "common/liveness.h"
#include "connector/entry.h"
#include "connector/item_filter.h"
#include "connector/item_policy.h"
#include "connector/item_selection.h"
#include "connector/item_stats.h"
#include "connector/log.h"
#include "connector/outbox.h"
#include "connector/twin_mirror.h"
#include "openhab/item_mirror.h"
#include "openhab/rest_client.h"

namespace iothub::connector {

// Which items and how: made from the configuration, replaced on SIGHUP.
struct Selection {
  ItemSelector selector;
  PolicyResolver resolver;
};
// Errors (code "config") name the bad patterns.
Result<Selection> MakeSelection(const Config& config);

// The entry for `item` holding `value` (typed by the item's type, a group's by its base type;
// a typed group named as openHAB's files write it: `Group:Number:Power:SUM`).
Entry MakeItemEntry(const openhab::Item& item, const openhab::State& value, std::int64_t time_ms,
                    EntryKind kind, Priority priority);

struct ReplicatorCounters {
  std::int64_t changes = 0;    // state changes of replicated items seen
  std::int64_t accepted = 0;   // entries handed to the outbox
  std::int64_t snapshots = 0;  // snapshot passes (start and resyncs)
  std::int64_t thing_changes = 0;
  std::int64_t suppressed = 0;  // by deadband or as duplicates
  std::int64_t held = 0;        // by min_interval
  std::int64_t heartbeats = 0;
  std::int64_t problems = 0;  // bad metadata and the like
};

class Replicator final : public openhab::MirrorListener {
 public:
  // `mirror` is the one this listens to (for its item map); the rest must outlive this.
  Replicator(EventLoop& loop, const Clock& wall, Outbox& outbox, TwinMirror& twin, ItemBook& book,
             openhab::RestClient& rest, Log& log, Selection selection);
  ~Replicator() override;
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  void SetMirror(const openhab::ItemMirror* mirror) { mirror_ = mirror; }
  // Told of every state change of any item, replicated or not (the command router waits on
  // them); called after the change is handled.
  void SetStateObserver(std::function<void(const openhab::Item&)> observer) {
    state_observer_ = std::move(observer);
  }
  // Replaces the selection and per-item settings (SIGHUP); newly selected items get a
  // snapshot of their state, deselected ones leave the twin.
  void Reload(Selection selection);

  // openhab::MirrorListener
  void OnItemAdded(const openhab::Item& item) override;
  void OnItemRemoved(const std::string& name) override;
  void OnItemUpdated(const openhab::Item& item) override;
  void OnStateChanged(const openhab::Item& item, const openhab::StateChange& change) override;
  void OnThingStatus(const openhab::Event& event) override;
  void OnConnection(bool up, std::string_view detail) override;
  void OnServerInfo(const openhab::ServerInfo& info) override;
  void OnProblem(const Error& problem) override;

  // Items replicated as telemetry (for the staleness bound) and in all.
  std::int64_t telemetry_items() const;
  std::int64_t selected_items() const { return static_cast<std::int64_t>(selected_.size()); }
  bool stream_up() const { return stream_up_; }
  const std::string& stream_detail() const { return stream_detail_; }
  std::int64_t stream_since_ms() const { return stream_since_ms_; }
  const std::optional<openhab::ServerInfo>& server() const { return server_; }
  std::optional<bool> admin() const { return admin_; }
  // Each thing's status, detail and description, '\n'-separated.
  const std::map<std::string, std::string>& thing_status() const { return thing_status_; }
  const ReplicatorCounters& counters() const { return counters_; }
  // The replicated items and their settings.
  const std::map<std::string, ItemPolicy>& selected() const { return selected_; }
  std::int64_t last_event_ms() const { return last_event_ms_; }

 private:
  const std::map<std::string, openhab::Item>& Items() const;
  // Recomputes the selection and every selected item's settings over the whole item map.
  void Recompute(bool snapshot_new);
  void Select(const openhab::Item& item, const GroupMembership& groups, bool snapshot_new);
  // openHAB's item events carry no metadata: `item` with the `azureiothub` metadata of the last
  // full read of the item list.
  openhab::Item WithMetadata(const openhab::Item& item) const;
  // Reads the item list for the metadata of the items added since the last read, then selects
  // them.
  void ReadMetadata();
  void OnMetadata(Result<openhab::ItemList> list, std::int64_t generation);
  void Deselect(const std::string& name);
  // `time_ms` when openHAB gave it, else now.
  std::int64_t Now(std::int64_t time_ms) const { return time_ms != 0 ? time_ms : wall_.NowMs(); }
  void Replicate(const openhab::Item& item, const openhab::StateChange& change);
  void Accept(Entry entry);
  void Snapshot();
  void SnapshotItem(const openhab::Item& item, const ItemPolicy& policy);
  void ReadThings();
  void ThingStatus(const std::string& uid, const std::string& status, const std::string& detail,
                   const std::string& description);
  void ArmFilterTimer();
  void ReleaseDue();

  EventLoop& loop_;
  const Clock& wall_;
  Outbox& outbox_;
  TwinMirror& twin_;
  ItemBook& book_;
  openhab::RestClient& rest_;
  Log& log_;
  Selection selection_;
  const openhab::ItemMirror* mirror_ = nullptr;
  ItemFilter filter_;
  std::map<std::string, ItemPolicy> selected_;
  std::set<std::string> metadata_reported_;  // items whose bad metadata was logged
  // The `azureiothub` metadata of every item as the last full read gave it (events carry none).
  // Items without it are not in the map (a home's items mostly have none).
  std::map<std::string, openhab::Metadata> metadata_;
  // Items added while running, not selected until their metadata is read (send = "none" must
  // not leak a first state).
  std::set<std::string> awaiting_metadata_;
  std::int64_t metadata_wanted_ = 0;  // bumped by each item added while running
  bool metadata_read_in_flight_ = false;
  EventLoop::TimerId metadata_timer_ = 0;
  std::map<std::string, std::string> thing_status_;  // uid -> status, detail, description
  std::optional<bool> admin_;                        // unknown until the first things read
  std::optional<openhab::ServerInfo> server_;
  bool synced_ = false;
  bool stream_up_ = false;
  std::string stream_detail_ = "starting";
  std::int64_t stream_since_ms_ = 0;
  std::int64_t last_event_ms_ = 0;
  std::function<void(const openhab::Item&)> state_observer_;
  EventLoop::TimerId filter_timer_ = 0;
  std::int64_t filter_timer_at_ = 0;
  ReplicatorCounters counters_;
  Liveness liveness_;  // last: REST answers check it
};

}  // namespace iothub::connector
