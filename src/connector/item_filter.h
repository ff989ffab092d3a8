// Per-item sending decisions (docs/configuration.md, "What the filters do"): the deadband, the
// minimum interval and the heartbeat of each item's ItemPolicy, applied to its changes. Pure
// logic: time is given by the caller (the loop's milliseconds), nothing is sent or scheduled
// here; the caller sends what it is told to and sets its own timer from NextDueMs().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "connector/entry.h"
#include "connector/item_policy.h"

namespace iothub::connector {

// What became of one item's changes since it was first seen. Every change that was not sent
// as it came is counted in exactly one of deadband, duplicates, superseded or released.
struct FilterCounters {
  std::int64_t deadband = 0;    // suppressed: inside the deadband of the last sent value
  std::int64_t duplicates = 0;  // suppressed: equal to the last sent value (a resync repeat)
  std::int64_t held = 0;        // held by min_interval when they came
  std::int64_t superseded = 0;  // held, then replaced or cancelled by a later change: not sent
  std::int64_t released = 0;    // held, then sent when the interval had passed
  std::int64_t heartbeats = 0;  // resends of an unchanged state
};

// Unit conversions the deadband relies on: a small table of units openHAB uses (W/kW/MW,
// Wh/kWh/J, m/km/ft, g/kg/lb, K/°C/°F, Pa/hPa/bar, l/m³, s/min/h, m/s/km/h/mph, V, A, Hz, VA,
// ...); identical unit texts always convert with factor 1. nullopt when the units cannot be
// compared (different dimensions, or a unit not in the table). Thread-safe (pure functions).
// A value in `from` expressed in `to` (temperatures with their offsets: 20 °C is 293.15 K).
std::optional<double> ConvertQuantity(double value, std::string_view from, std::string_view to);
// A difference in `from` expressed in `to` (scale only: 1 K is 1 °C, 1 °F is 5/9 K).
std::optional<double> ConvertDifference(double amount, std::string_view from, std::string_view to);

// Decides per change whether to send it now, suppress it or hold it, and tells when held
// changes and heartbeats fall due. Every kSend and every Due it returns counts as sent at that
// moment: the caller must send exactly those. Sends it did not decide (the snapshot at start
// and after a resync) are told with Sent(). Items are keyed by Entry::key. Not thread-safe:
// one owner (the loop thread).
//
// The rules, for an item with last sent value L (nothing sent yet: every change is sent):
// - a change equal to L (value, unit and NULL/UNDEF state) is a duplicate: suppressed;
// - deadband: a numeric change whose distance from L is smaller than the deadband is
//   suppressed (`5 %`: of |L|; an amount: in the deadband's unit, converted to the value's;
//   no unit: in the value's unit). Units that cannot be compared never suppress; non-numeric
//   values are never inside a deadband. A change of exactly the deadband is sent;
// - min_interval: a change less than min_interval after the last send is held (a later one
//   replaces it, latest wins) and due when the interval has passed since that send; a later
//   change that is suppressed cancels the hold, since the state is back near L;
// - heartbeat: when nothing was sent for heartbeat (at least min_interval), the latest state
//   is due again, even unchanged. Suppressed changes do not count as sends.
class ItemFilter {
 public:
  enum class Verdict { kSend, kSuppress, kHold };
  struct Decision {
    Verdict verdict = Verdict::kSend;
    std::int64_t until_ms = 0;  // kHold: when the held change falls due
  };
  enum class Reason { kReleased, kHeartbeat };
  struct Due {
    Entry entry;  // the item's latest change, as given to OnChange or Sent
    Reason reason = Reason::kReleased;
  };

  // Sets or changes the settings of `name` (after a reload: what is known of it is kept, and
  // a hold is due by the new min_interval). send=none items need no filter; Forget them.
  void Configure(const std::string& name, const ItemPolicy& policy);
  // Drops all knowledge of `name` (removed or deselected), including a held change.
  void Forget(const std::string& name);

  // A change of `entry.key` at `now_ms`. An item not configured is filtered by the default
  // policy (no deadband, interval or heartbeat), which only suppresses duplicates.
  Decision OnChange(const Entry& entry, std::int64_t now_ms);

  // `entry` was sent at `now_ms` without OnChange deciding it (snapshot): it becomes the last
  // sent and latest state, and a held change of the item is dropped (the send carried the
  // newer state).
  void Sent(const Entry& entry, std::int64_t now_ms);

  // Takes every held change and heartbeat due at `now_ms`, in due order (then by name), and
  // counts them as sent at `now_ms`.
  std::vector<Due> TakeDue(std::int64_t now_ms);
  // When TakeDue will next return something; nullopt: nothing is scheduled.
  std::optional<std::int64_t> NextDueMs() const;

  // nullptr for an item the filter does not know.
  const FilterCounters* Counters(const std::string& name) const;
  FilterCounters Totals() const;
  std::size_t size() const { return items_.size(); }

 private:
  struct Item {
    ItemPolicy policy;
    std::optional<Entry> last_sent;
    std::int64_t last_sent_ms = 0;
    // The newest change seen when it is not last_sent (suppressed or held): most items'
    // latest is what was sent, and a copy each would double the filter's memory.
    std::unique_ptr<Entry> latest;
    bool holding = false;
    std::optional<std::int64_t> due_ms;  // its key in due_
    FilterCounters counters;
  };

  enum class Suppression { kNone, kDuplicate, kDeadband };
  // Whether `entry` is not worth sending after the item's last sent value, and why.
  static Suppression Suppresses(const Item& item, const Entry& entry);
  // `entry` is sent at `now_ms`: the new reference for deadbands, intervals and heartbeats.
  void Record(const std::string& name, Item& item, const Entry& entry, std::int64_t now_ms);
  // Moves the item's key in due_ to its next due time (or out).
  void Reschedule(const std::string& name, Item& item);

  std::map<std::string, Item, std::less<>> items_;
  std::set<std::pair<std::int64_t, std::string>> due_;
};

}  // namespace iothub::connector
