// The step between the outbox and the hub session (DESIGN.md data flow): the session pulls
// (azure::TelemetrySource), and the dispatcher decides what to send and whether it may. It
// - resends first the messages sealed but never acknowledged (after a crash, with the same
//   message id and body);
// - packs pending entries into one message up to the metering chunk (MessagePacker), and
//   builds a second message while one is in flight only when it would be full: so an ample
//   budget sends each change within one round trip, and a busy home's changes share messages;
// - spends the budget's main pool for it (paced, docs/budget.md), and when the pace does not
//   allow it, waits on a timer for the time it will;
// - seals the message, the budget's new state and the sequence number in one transaction, so
//   that a crash neither loses nor double-spends;
// - merges pending history when the budget cannot carry it within the staleness bound, and all
//   of it when the hub's quota is exhausted (latest states go first after the reset).
// Not thread-safe: loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "azure/device_session.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "connector/budget.h"
#include "connector/item_stats.h"
#include "connector/log.h"
#include "connector/message_format.h"
#include "connector/outbox.h"

namespace iothub::connector {

struct DispatcherOptions {
  std::string device_id;
  PackOptions pack;
  std::size_t peek_entries = 128;  // entries considered for one message
  // Messages a second at most (0: no limit): under the hub's device-to-cloud throttle, which
  // answers bursts beyond it with delays and then disconnections (reference §5).
  double max_messages_per_second = 0;
  std::int64_t merge_check_ms = 1'000;
  // The part of the main pool telemetry gets for the staleness bound: the twin mirror's
  // patches take the rest (kTwinShare).
  double main_share = 1.0;
};

struct DispatcherCounters {
  std::int64_t messages_sealed = 0;
  std::int64_t messages_resent_after_restart = 0;
  std::int64_t messages_delivered = 0;
  std::int64_t messages_refused = 0;  // the session could not send them (dropped)
  std::int64_t direct_sent = 0;       // messages of their own (command outcomes) delivered
  std::int64_t direct_dropped = 0;    // ... dropped: refused, or the reserve could not pay
  std::int64_t entries_sent = 0;
  std::int64_t bytes = 0;
  std::int64_t billed_chunks = 0;
  std::int64_t budget_waits = 0;  // times a message waited for the pace
  std::int64_t merges = 0;        // merge passes that merged something
  std::int64_t store_errors = 0;
  std::int64_t last_delivered_ms = 0;
  std::map<EntryKind, std::int64_t> by_kind;
};

class Dispatcher final : public azure::TelemetrySource {
 public:
  // Restores the budget and the sequence number from the outbox's meta table and queues the
  // sealed messages for resending. `loop`, `wall`, `outbox`, `budget`, `items` and `log`
  // must outlive the dispatcher.
  Dispatcher(EventLoop& loop, const Clock& wall, Outbox& outbox, Budget& budget, ItemBook& items,
             Log& log, DispatcherOptions options);
  ~Dispatcher() override;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // The session to wake when there is something to send (none: nothing is pulled).
  void Attach(azure::DeviceSession* session);

  std::optional<azure::TelemetryMessage> NextTelemetry() override;

  // From the session's listener.
  void Delivered(std::string_view message_id);
  void Refused(std::string_view message_id, const Error& why);
  void SessionState(azure::SessionState state, std::int64_t quota_resume_wall_ms);

  // New entries are durable (the outbox's committed callback): pull.
  void Wake();
  // A message of its own (a command's outcome, with its correlation id), sent ahead of the
  // outbox's and paid from the budget's reserve. Not durable: a crash before it is
  // acknowledged loses it (the audit log keeps the outcome). Dropped when the reserve cannot
  // pay for it; false then.
  bool SendDirect(azure::TelemetryMessage message);
  // The number of replicated items, for the staleness bound.
  void set_item_count(std::int64_t n) { item_count_ = n; }
  double StalenessBoundSeconds() const;
  const DispatcherCounters& counters() const { return counters_; }
  std::int64_t in_flight() const { return static_cast<std::int64_t>(in_flight_.size()); }
  // What one item's state takes in a message, as the staleness bound assumes: the recent
  // average, or while merging that of merged states (docs/budget.md, "E").
  std::int64_t avg_entry_bytes() const;

 private:
  struct InFlight {
    std::vector<std::string> keys;
    std::int64_t sealed_ms = 0;
    bool partial = false;
  };

  std::optional<azure::TelemetryMessage> Build();
  void WaitForBudget(std::int64_t chunks);
  // One message within max_messages_per_second; false (and a timer to wake) when none.
  bool TakeSendSlot();
  // Spends the budget for the session's resends since the last call.
  void ChargeResends();
  void CheckMerge();
  void MergeAll(std::string_view why);
  static azure::TelemetryMessage ToTelemetry(const SealedMessage& sealed);

  EventLoop& loop_;
  const Clock& wall_;
  Outbox& outbox_;
  Budget& budget_;
  ItemBook& items_;
  Log& log_;
  DispatcherOptions options_;
  MessagePacker packer_;
  azure::DeviceSession* session_ = nullptr;

  std::vector<SealedMessage> resend_;  // sealed before this start, in seal order
  std::size_t resend_next_ = 0;
  std::map<std::string, InFlight, std::less<>> in_flight_;
  std::deque<azure::TelemetryMessage> direct_;           // waiting for the session
  std::set<std::string, std::less<>> direct_in_flight_;  // handed out, not acknowledged
  std::size_t partial_in_flight_ = 0;
  std::int64_t sequence_ = 0;
  double slots_ = 0;            // send slots left (a token bucket of one second)
  std::int64_t slots_ms_ = -1;  // loop time the bucket was last filled
  EventLoop::TimerId slot_timer_ = 0;
  std::int64_t resent_seen_ = 0;  // the session's resend counter, as charged
  std::int64_t item_count_ = 0;
  std::int64_t entry_bytes_ = 0;         // what an item takes in a message, recently; 0: not known
  std::int64_t merged_entry_bytes_ = 0;  // the same in messages of merged states only
  std::int64_t last_merge_ms_ = 0;       // loop time of the last merge; 0: none yet
  bool hub_exhausted_ = false;
  bool probe_allowed_ = false;  // the session connected to an exhausted hub: one message may go
  std::int64_t last_merge_check_ms_ = 0;  // loop time
  std::int64_t last_merge_log_ms_ = 0;    // loop time; 0: never logged
  std::int64_t unlogged_merged_ = 0;
  EventLoop::TimerId budget_timer_ = 0;
  EventLoop::TimerId merge_timer_ = 0;
  DispatcherCounters counters_;
};

}  // namespace iothub::connector
