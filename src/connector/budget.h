// The connector's message budget (docs/budget.md): how many billed messages (metering chunks,
// shared/reference/azure-iothub.md §5) it may spend, when, and from which pool. Windows are
// aligned to 00:00 UTC; each has the budget B, split into a reserve (commands, acknowledgements,
// twin reads, desired notifications) and the main pool (telemetry, reported properties), which
// is paced over the window. Pure logic: times are wall-clock epoch ms passed in, nothing is
// read or written; the daemon stores Serialize()'s text durably in the same transaction as the
// message that spent it. Not thread-safe; owned by the loop thread.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "common/result.h"
#include "connector/config.h"

namespace iothub::connector {

// What a budget is made of. Budget aborts on values Config's validation refuses.
struct BudgetPolicy {
  std::int64_t messages = 8'000;         // B, the budget of one window: 0 to kMaxBudgetMessages
  double reserve = 0.1;                  // the reserve's share of B: 0 up to (not including) 1
  std::int64_t window_seconds = 86'400;  // 1 to 86400, dividing 86400
  std::int64_t chunk_bytes = 512;        // the tier's metering chunk, > 0
};

// Larger budgets would overflow the pace arithmetic; the largest hub (S3, 10 units) has 3e9.
inline constexpr std::int64_t kMaxBudgetMessages = 10'000'000'000;

// The configured budget: Config::DailyBudget() per window of quota.window_seconds, the
// configured reserve, and the tier's chunk.
BudgetPolicy BudgetPolicyFromConfig(const Config& config);

// Which pool pays. Telemetry and reported-property patches spend the main pool; commands,
// acknowledgements, twin GETs, desired notifications and cloud-to-device messages the reserve.
enum class Pool { kMain, kReserve };

// "Never" for NextAvailableMs: more chunks than any window allows to that pool.
inline constexpr std::int64_t kNeverMs = std::numeric_limits<std::int64_t>::max();

// The figures of the window holding `now_ms`, for metrics and the status JSON.
struct BudgetFigures {
  std::int64_t window_start_ms = 0;
  std::int64_t window_end_ms = 0;  // the next window's start
  std::int64_t budget = 0;         // B
  std::int64_t reserve = 0;        // R
  std::int64_t main = 0;           // M = B - R
  std::int64_t burst = 0;
  std::int64_t used = 0;           // both pools; at most B unless Spend was forced past it
  std::int64_t left = 0;           // B - used, at least 0
  std::int64_t main_used = 0;      // the main pool's own spending
  std::int64_t reserve_used = 0;   // the reserve pool's spending, borrowed part included
  std::int64_t borrowed = 0;       // reserve spending beyond R, taken from the main pool
  std::int64_t main_left = 0;      // M - main_used - borrowed, at least 0
  std::int64_t reserve_left = 0;   // R - reserve_used, at least 0 (more may be borrowed)
  std::int64_t pace_allowed = 0;   // the pace line now: what main + borrowed may have reached
  std::int64_t hub_resume_ms = 0;  // the hub said its quota is exhausted until then; 0: not
};

// One connector's budget: the usage of the current window per pool, and the hub's resume time
// when the hub said its quota is gone. A value type (copyable). Not thread-safe.
class Budget {
 public:
  explicit Budget(const BudgetPolicy& policy);

  // Start of the window holding `now_ms`: floor(now / W) * W, so windows align to 00:00 UTC.
  std::int64_t WindowStartMs(std::int64_t now_ms) const;
  // Billed messages of an operation of `bytes` metered bytes: ceil(bytes / chunk), at least 1
  // (azure::BilledMessages with this budget's chunk).
  std::int64_t ChunksFor(std::int64_t bytes) const;

  // Whether `chunks` (at least 1) may be spent from `pool` at `now_ms`:
  // - never while the hub is exhausted (HubExhausted), and never past B in the window;
  // - main: main_used + borrowed + chunks <= PaceAllowed(now);
  // - reserve: at once up to R; beyond R it borrows from the main pool, and the borrowed part
  //   must fit under the pace line as main spending would.
  bool CanSpend(std::int64_t chunks, Pool pool, std::int64_t now_ms) const;
  // Records `chunks` billed to `pool` at `now_ms` (rolling to now's window first). Always
  // records, even what CanSpend refused: the hub bills what it bills (a desired notification
  // is not the connector's choice). Call it for every send attempt, resends included: an
  // unacknowledged message may have been billed.
  void Spend(std::int64_t chunks, Pool pool, std::int64_t now_ms);
  // The earliest time >= now_ms at which CanSpend(chunks, pool, t) holds if nothing else is
  // spent meanwhile: now_ms itself, a time on the pace line, the hub's resume time, or a
  // later window. kNeverMs when `chunks` exceed what a whole window gives the pool.
  std::int64_t NextAvailableMs(std::int64_t chunks, Pool pool, std::int64_t now_ms) const;
  // How many chunks `pool` could spend from now_ms up to now_ms + horizon_ms (inclusive) if
  // spent as soon as allowed, counting the following windows' budgets when the horizon
  // crosses into them, and nothing before the hub's resume time.
  std::int64_t ChunksAvailableWithin(std::int64_t horizon_ms, Pool pool, std::int64_t now_ms) const;

  // An upper bound, in seconds from now_ms, on how long an item's latest state may wait
  // before it is sent when `n_items` items share the main pool with average entries of
  // `avg_entry_bytes` and `overhead_bytes` per message (docs/budget.md states the formula).
  // `share` is the part of the main pool's pace the states get (the twin's patches take the
  // rest). 0 for no items; infinity when the main pool is empty.
  double StalenessBoundSeconds(std::int64_t n_items, std::int64_t avg_entry_bytes,
                               std::int64_t overhead_bytes, std::int64_t now_ms,
                               double share = 1.0) const;

  // The hub said its quota is gone (SessionState::kQuotaExhausted): nothing may be spent
  // before `resume_ms` (the session's 00:00 UTC). A later call replaces the time.
  void HubExhausted(std::int64_t resume_ms);
  // The hub took a billable operation after all: HubExhausted no longer holds.
  void HubResumed();

  // Main-pool chunks promised to a spender that waits for them: a reported-property patch
  // needs several chunks at once, and a steady telemetry load that takes each chunk as the
  // pace frees it would starve it. Other main-pool spenders leave the claimed chunks (they
  // ask CanSpend and NextAvailableMs for their own plus claimed()). In memory only; 0: none.
  void Claim(std::int64_t chunks) { claimed_ = chunks; }
  std::int64_t claimed() const { return claimed_; }

  // The state as text for durable storage (a versioned JSON object, docs/budget.md).
  std::string Serialize() const;
  // Replaces the state with a stored one, as of `now_ms`. Empty text is a first start (a fresh
  // window). A state of a window that ended before now's is discarded; one of now's window (or,
  // after the clock went back, a later one) keeps its usage. A stale hub resume time is
  // dropped. Corrupt text is an Error, and the budget then assumes the worst a well-behaved
  // earlier run could have spent (the reserve and the pace line of now's window), so that a
  // crash loop cannot overspend.
  Status Restore(std::string_view text, std::int64_t now_ms);

  // The pace line at `now_ms`: min(M, floor(M * elapsed / W) + burst).
  std::int64_t PaceAllowed(std::int64_t now_ms) const;
  BudgetFigures Figures(std::int64_t now_ms) const;

  std::int64_t budget() const { return budget_; }
  std::int64_t reserve() const { return reserve_; }
  std::int64_t main() const { return main_; }
  // max(2, ceil(M / 100)), at most M: what the pace line is ahead of the elapsed share.
  std::int64_t burst() const { return burst_; }
  std::int64_t window_ms() const { return window_ms_; }
  std::int64_t chunk_bytes() const { return chunk_bytes_; }

 private:
  // The usage of one window.
  struct Usage {
    std::int64_t window_start_ms = 0;
    std::int64_t main_used = 0;
    std::int64_t reserve_used = 0;
  };

  // The usage as of `now_ms`: the stored window's, zero for a later window, and the stored
  // usage moved into now's window when the clock went back before the stored window.
  Usage At(std::int64_t now_ms) const;
  std::int64_t Borrowed(std::int64_t reserve_used) const;
  // The pace line `elapsed_ms` into a window.
  std::int64_t PaceAt(std::int64_t elapsed_ms) const;
  // What the main pace line must reach for `chunks` from `pool` on top of `usage`; 0 when
  // the spend needs nothing from the main pool.
  std::int64_t MainDemand(const Usage& usage, std::int64_t chunks, Pool pool) const;
  bool Fits(const Usage& usage, std::int64_t chunks, Pool pool, std::int64_t now_ms) const;
  // The earliest time in the window `usage` describes, not before `from_ms`, at which the
  // spend fits; kNeverMs when it does not fit in that window.
  std::int64_t FirstFitInWindow(const Usage& usage, std::int64_t chunks, Pool pool,
                                std::int64_t from_ms) const;
  // Chunks `pool` could spend in one window, on top of `usage`, up to `elapsed_ms` into it.
  std::int64_t AvailableInWindow(const Usage& usage, Pool pool, std::int64_t elapsed_ms) const;
  // The first time spending is allowed by the hub: max(now_ms, the hub's resume time).
  std::int64_t HubStart(std::int64_t now_ms) const;

  std::int64_t budget_;
  std::int64_t reserve_;
  std::int64_t main_;
  std::int64_t burst_;
  std::int64_t window_ms_;
  std::int64_t chunk_bytes_;
  Usage usage_;
  std::int64_t hub_resume_ms_ = 0;
  std::int64_t claimed_ = 0;
};

}  // namespace iothub::connector
