#include "connector/budget.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace iothub::connector {

namespace {

constexpr std::int64_t kDayMs = 86'400'000;
constexpr int kStateVersion = 1;
// Usage stops here, so that sums of usages and chunks never overflow (even forced spending
// cannot come near it: the largest message is 512 chunks).
constexpr std::int64_t kUsageCap = std::int64_t{1} << 60;

[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "fatal: budget: %s\n", what);
  std::abort();
}

void CheckChunks(std::int64_t chunks) {
  if (chunks < 1) Fatal("a billed operation is at least one chunk");
  if (chunks > kMaxBudgetMessages) Fatal("more chunks than any budget has");
}

// floor(a / b) for b > 0, also for negative a (times before 1970).
std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// a + b and a * b, stopping at INT64_MAX instead of overflowing (both >= 0).
std::int64_t SaturatingAdd(std::int64_t a, std::int64_t b) {
  return a > std::numeric_limits<std::int64_t>::max() - b ? std::numeric_limits<std::int64_t>::max()
                                                          : a + b;
}
std::int64_t SaturatingMul(std::int64_t a, std::int64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > std::numeric_limits<std::int64_t>::max() / b ? std::numeric_limits<std::int64_t>::max()
                                                          : a * b;
}

// A present integer member; false when absent or of another type.
bool ReadRequiredInt(const nlohmann::json& object, const char* key, std::int64_t& out) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return false;
  if (it->is_number_unsigned() &&
      it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
    return false;
  }
  out = it->get<std::int64_t>();
  return true;
}

}  // namespace

BudgetPolicy BudgetPolicyFromConfig(const Config& config) {
  return BudgetPolicy{
      .messages = config.DailyBudget(),
      .reserve = config.quota.reserve,
      .window_seconds = config.quota.window_seconds,
      .chunk_bytes = azure::ChunkBytes(config.quota.tier),
  };
}

Budget::Budget(const BudgetPolicy& policy)
    : budget_(policy.messages),
      reserve_(0),
      main_(0),
      burst_(0),
      window_ms_(policy.window_seconds * 1000),
      chunk_bytes_(policy.chunk_bytes) {
  if (policy.messages < 0 || policy.messages > kMaxBudgetMessages) {
    Fatal("messages must be 0 to 1e10");
  }
  if (!(policy.reserve >= 0.0 && policy.reserve < 1.0)) Fatal("reserve must be in [0, 1)");
  if (policy.window_seconds < 1 || policy.window_seconds > 86'400 ||
      86'400 % policy.window_seconds != 0) {
    Fatal("window_seconds must divide 86400");
  }
  if (policy.chunk_bytes < 1) Fatal("chunk_bytes must be positive");
  // Rounded, not truncated: 0.29 * 100 is 28.999... in binary floating point.
  reserve_ = std::min(budget_, static_cast<std::int64_t>(
                                   std::llround(static_cast<double>(budget_) * policy.reserve)));
  main_ = budget_ - reserve_;
  burst_ = std::min(main_, std::max<std::int64_t>(2, (main_ + 99) / 100));
}

std::int64_t Budget::WindowStartMs(std::int64_t now_ms) const {
  return FloorDiv(now_ms, window_ms_) * window_ms_;
}

std::int64_t Budget::ChunksFor(std::int64_t bytes) const {
  return azure::BilledMessages(std::max<std::int64_t>(0, bytes), chunk_bytes_);
}

Budget::Usage Budget::At(std::int64_t now_ms) const {
  const std::int64_t start = WindowStartMs(now_ms);
  if (start > usage_.window_start_ms) return Usage{.window_start_ms = start};
  // The stored window, or (the clock went back) an earlier one: what was spent was spent in
  // the hub's day as its own clock sees it, so it still counts.
  return Usage{
      .window_start_ms = start, .main_used = usage_.main_used, .reserve_used = usage_.reserve_used};
}

std::int64_t Budget::Borrowed(std::int64_t reserve_used) const {
  return std::max<std::int64_t>(0, reserve_used - reserve_);
}

std::int64_t Budget::PaceAt(std::int64_t elapsed_ms) const {
  const std::int64_t e = std::clamp<std::int64_t>(elapsed_ms, 0, window_ms_);
  // floor(M * e / W) without overflow: M may be 1e10 and e 8.64e7.
  const std::int64_t share = (main_ / window_ms_) * e + (main_ % window_ms_) * e / window_ms_;
  return std::min(main_, share + burst_);
}

std::int64_t Budget::PaceAllowed(std::int64_t now_ms) const {
  return PaceAt(now_ms - WindowStartMs(now_ms));
}

std::int64_t Budget::MainDemand(const Usage& usage, std::int64_t chunks, Pool pool) const {
  const std::int64_t borrowed = Borrowed(usage.reserve_used);
  if (pool == Pool::kMain) return usage.main_used + borrowed + chunks;
  const std::int64_t extra = Borrowed(usage.reserve_used + chunks) - borrowed;
  return extra == 0 ? 0 : usage.main_used + borrowed + extra;
}

bool Budget::Fits(const Usage& usage, std::int64_t chunks, Pool pool, std::int64_t now_ms) const {
  if (now_ms < hub_resume_ms_) return false;
  if (usage.main_used + usage.reserve_used + chunks > budget_) return false;
  const std::int64_t demand = MainDemand(usage, chunks, pool);
  return demand == 0 || demand <= PaceAt(now_ms - usage.window_start_ms);
}

bool Budget::CanSpend(std::int64_t chunks, Pool pool, std::int64_t now_ms) const {
  CheckChunks(chunks);
  return Fits(At(now_ms), chunks, pool, now_ms);
}

void Budget::Spend(std::int64_t chunks, Pool pool, std::int64_t now_ms) {
  CheckChunks(chunks);
  usage_ = At(now_ms);
  if (pool == Pool::kMain) {
    usage_.main_used = std::min(kUsageCap, usage_.main_used + chunks);
  } else {
    usage_.reserve_used = std::min(kUsageCap, usage_.reserve_used + chunks);
  }
}

std::int64_t Budget::FirstFitInWindow(const Usage& usage, std::int64_t chunks, Pool pool,
                                      std::int64_t from_ms) const {
  if (usage.main_used + usage.reserve_used + chunks > budget_) return kNeverMs;
  const std::int64_t demand = MainDemand(usage, chunks, pool);
  if (demand == 0) return from_ms;
  if (demand > main_) return kNeverMs;
  // The smallest e with floor(M * e / W) + burst >= demand. demand <= M <= 1e10, so
  // need * W stays below 9e17.
  const std::int64_t need = demand - burst_;
  const std::int64_t elapsed = need <= 0 ? 0 : (need * window_ms_ + main_ - 1) / main_;
  if (elapsed >= window_ms_) return kNeverMs;
  return std::max(from_ms, usage.window_start_ms + elapsed);
}

std::int64_t Budget::HubStart(std::int64_t now_ms) const {
  return std::max(now_ms, hub_resume_ms_);
}

std::int64_t Budget::NextAvailableMs(std::int64_t chunks, Pool pool, std::int64_t now_ms) const {
  CheckChunks(chunks);
  const std::int64_t start = HubStart(now_ms);
  const Usage usage = At(start);
  const std::int64_t in_this = FirstFitInWindow(usage, chunks, pool, start);
  if (in_this != kNeverMs) return in_this;
  // Every window up to the stored one carries the stored usage (At); the one after it is the
  // first fresh one.
  const std::int64_t next = std::max(usage.window_start_ms, usage_.window_start_ms) + window_ms_;
  return FirstFitInWindow(At(next), chunks, pool, next);
}

std::int64_t Budget::AvailableInWindow(const Usage& usage, Pool pool,
                                       std::int64_t elapsed_ms) const {
  const std::int64_t left =
      std::max<std::int64_t>(0, budget_ - usage.main_used - usage.reserve_used);
  const std::int64_t paced = std::max<std::int64_t>(
      0, PaceAt(elapsed_ms) - usage.main_used - Borrowed(usage.reserve_used));
  if (pool == Pool::kMain) return std::min(left, paced);
  return std::min(left, std::max<std::int64_t>(0, reserve_ - usage.reserve_used) + paced);
}

std::int64_t Budget::ChunksAvailableWithin(std::int64_t horizon_ms, Pool pool,
                                           std::int64_t now_ms) const {
  if (horizon_ms < 0) return 0;
  const std::int64_t end = SaturatingAdd(now_ms, horizon_ms);
  const std::int64_t start = HubStart(now_ms);
  if (start > end) return 0;
  const Usage first = At(start);
  if (end < first.window_start_ms + window_ms_) {
    return AvailableInWindow(first, pool, end - first.window_start_ms);
  }
  // By its last millisecond a window's pace line has reached M (burst >= M / 100 >= M / W).
  std::int64_t total = AvailableInWindow(first, pool, window_ms_ - 1);
  // The windows after the first: whole ones, then the one holding `end`. Those starting at or
  // before the stored window carry its usage (At), later ones are fresh.
  const std::int64_t after = first.window_start_ms + window_ms_;
  const std::int64_t last = WindowStartMs(end);
  const std::int64_t whole = (last - after) / window_ms_;
  const std::int64_t stored_whole =
      usage_.window_start_ms < after
          ? 0
          : std::min(whole, (usage_.window_start_ms - after) / window_ms_ + 1);
  const Usage stored{.main_used = usage_.main_used, .reserve_used = usage_.reserve_used};
  total = SaturatingAdd(
      total, SaturatingMul(stored_whole, AvailableInWindow(stored, pool, window_ms_ - 1)));
  total = SaturatingAdd(
      total, SaturatingMul(whole - stored_whole, AvailableInWindow(Usage{}, pool, window_ms_ - 1)));
  return SaturatingAdd(total, AvailableInWindow(At(last), pool, end - last));
}

double Budget::StalenessBoundSeconds(std::int64_t n_items, std::int64_t avg_entry_bytes,
                                     std::int64_t overhead_bytes, std::int64_t now_ms,
                                     double share) const {
  if (n_items <= 0) return 0.0;
  if (main_ == 0) return std::numeric_limits<double>::infinity();
  const std::int64_t entry = std::max<std::int64_t>(1, avg_entry_bytes);
  const std::int64_t overhead = std::max<std::int64_t>(0, overhead_bytes);
  const std::int64_t per_message = std::max<std::int64_t>(1, (chunk_bytes_ - overhead) / entry);
  // Chunks of one message: 1, unless a single entry does not fit a chunk.
  const std::int64_t message_chunks = ChunksFor(overhead + per_message * entry);
  const std::int64_t messages = (n_items + per_message - 1) / per_message;
  const std::int64_t round_chunks = SaturatingMul(messages, message_chunks);
  const double rate = static_cast<double>(main_) * 1000.0 / static_cast<double>(window_ms_) *
                      std::clamp(share, 0.01, 1.0);
  std::int64_t start = HubStart(now_ms);
  const Usage usage = At(start);
  const std::int64_t main_left = main_ - usage.main_used - Borrowed(usage.reserve_used);
  if (main_left < round_chunks) {
    start = std::max(usage.window_start_ms, usage_.window_start_ms) + window_ms_;
  }
  return static_cast<double>(start - now_ms) / 1000.0 +
         static_cast<double>(round_chunks + message_chunks) / rate;
}

void Budget::HubExhausted(std::int64_t resume_ms) { hub_resume_ms_ = resume_ms; }

void Budget::HubResumed() { hub_resume_ms_ = 0; }

std::string Budget::Serialize() const {
  const nlohmann::json state = {
      {"version", kStateVersion},
      {"window_ms", window_ms_},
      {"window_start_ms", usage_.window_start_ms},
      {"main_used", usage_.main_used},
      {"reserve_used", usage_.reserve_used},
      {"hub_resume_ms", hub_resume_ms_},
  };
  return state.dump();
}

Status Budget::Restore(std::string_view text, std::int64_t now_ms) {
  const std::int64_t start = WindowStartMs(now_ms);
  hub_resume_ms_ = 0;
  if (text.empty()) {
    usage_ = Usage{.window_start_ms = start};
    return Ok{};
  }
  const nlohmann::json state = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::int64_t version = 0;
  std::int64_t window_ms = 0;
  std::int64_t window_start_ms = 0;
  std::int64_t main_used = 0;
  std::int64_t reserve_used = 0;
  std::int64_t hub_resume_ms = 0;
  const bool complete = state.is_object() && ReadRequiredInt(state, "version", version) &&
                        ReadRequiredInt(state, "window_ms", window_ms) &&
                        ReadRequiredInt(state, "window_start_ms", window_start_ms) &&
                        ReadRequiredInt(state, "main_used", main_used) &&
                        ReadRequiredInt(state, "reserve_used", reserve_used) &&
                        ReadRequiredInt(state, "hub_resume_ms", hub_resume_ms);
  const char* problem = nullptr;
  if (!complete) {
    problem = "not a budget state object with integer fields";
  } else if (version != kStateVersion) {
    problem = "unknown version";
  } else if (window_ms <= 0 || window_ms > kDayMs || main_used < 0 || reserve_used < 0 ||
             main_used > kUsageCap || reserve_used > kUsageCap || hub_resume_ms < 0 ||
             window_start_ms > std::numeric_limits<std::int64_t>::max() - window_ms) {
    problem = "values out of range";
  }
  if (problem != nullptr) {
    // Assume what a well-behaved earlier run could at most have spent by now: all of the
    // reserve and the main pool up to the pace line.
    usage_ = Usage{
        .window_start_ms = start, .main_used = PaceAt(now_ms - start), .reserve_used = reserve_};
    return MakeError("BudgetState", std::string("stored budget state is corrupt (") + problem +
                                        "); assuming the reserve and the pace line are spent");
  }
  // A window that ended before now's began is over; any other (now's, one overlapping it
  // after a change of window_seconds, or a later one after the clock went back) still counts.
  if (window_start_ms + window_ms <= start) {
    usage_ = Usage{.window_start_ms = start};
  } else {
    usage_ = Usage{.window_start_ms = start, .main_used = main_used, .reserve_used = reserve_used};
  }
  // The session's resume time is the next 00:00 UTC, never more than a day ahead.
  if (hub_resume_ms > now_ms && hub_resume_ms - now_ms <= kDayMs) hub_resume_ms_ = hub_resume_ms;
  return Ok{};
}

BudgetFigures Budget::Figures(std::int64_t now_ms) const {
  const Usage usage = At(now_ms);
  const std::int64_t used = usage.main_used + usage.reserve_used;
  const std::int64_t borrowed = Borrowed(usage.reserve_used);
  return BudgetFigures{
      .window_start_ms = usage.window_start_ms,
      .window_end_ms = usage.window_start_ms + window_ms_,
      .budget = budget_,
      .reserve = reserve_,
      .main = main_,
      .burst = burst_,
      .used = used,
      .left = std::max<std::int64_t>(0, budget_ - used),
      .main_used = usage.main_used,
      .reserve_used = usage.reserve_used,
      .borrowed = borrowed,
      .main_left = std::max<std::int64_t>(0, main_ - usage.main_used - borrowed),
      .reserve_left = std::max<std::int64_t>(0, reserve_ - usage.reserve_used),
      .pace_allowed = PaceAt(now_ms - usage.window_start_ms),
      .hub_resume_ms = now_ms < hub_resume_ms_ ? hub_resume_ms_ : 0,
  };
}

}  // namespace iothub::connector
