#include "connector/twin_mirror.h"

#include <algorithm>
#include <utility>

#include "connector/message_format.h"

namespace iothub::connector {
namespace {

// Items left out of the twin named in the log one by one; past them, one line for the rest.
constexpr std::size_t kLeftOutNamed = 20;

Json ItemValue(const Entry& state) {
  Json value = {{"value", state.value}};
  if (!state.unit.empty()) value["unit"] = state.unit;
  if (!state.state.empty()) value["state"] = state.state;
  value["type"] = state.type;
  if (state.time_ms != 0) value["time"] = FormatIsoTimeMs(state.time_ms);
  return value;
}

// `"key":value` as it stands in the reported document.
std::size_t MemberBytes(const std::string& key, std::string_view value) {
  return key.size() + 3 + value.size();
}

// An item to delete from the reported properties (the hub's null).
constexpr std::string_view kDeleted = "null";

}  // namespace

TwinMirror::TwinMirror(EventLoop& loop, const Clock& wall, Budget& budget, Log& log,
                       TwinMirrorOptions options)
    : loop_(loop), wall_(wall), budget_(budget), log_(log), options_(options) {}

TwinMirror::~TwinMirror() {
  if (timer_ != 0) loop_.Cancel(timer_);
}

void TwinMirror::Attach(azure::DeviceSession* session) { session_ = session; }

void TwinMirror::Connected(bool connected) {
  connected_ = connected;
  if (connected) {
    Schedule(0);
  } else {
    budget_.Claim(0);  // no patch goes without a connection: telemetry need not wait for one
  }
}

void TwinMirror::SetItem(const Entry& state) {
  if (!options_.enabled) return;
  const std::string& name = state.key;
  std::string text = ItemValue(state).dump();
  const std::size_t bytes = MemberBytes(name, text);
  const auto found = items_.find(name);
  const std::size_t old =
      found != items_.end() && found->second != kDeleted ? MemberBytes(name, found->second) : 0;
  const std::size_t limit = options_.max_bytes - options_.headroom_bytes;
  if (total_bytes_ - old + bytes > limit) {
    if (left_out_.insert(name).second) {
      ++counters_.left_out;
      // Named one by one for the first few; a big home would otherwise log hundreds of lines.
      if (left_out_.size() <= kLeftOutNamed) {
        log_.Warn("twin",
                  "'{}' is left out of the reported properties: the mirrored document would "
                  "pass IoT Hub's {} KB limit (its telemetry is sent as usual)",
                  name, options_.max_bytes / 1024);
      } else if (left_out_.size() == kLeftOutNamed + 1) {
        log_.Warn("twin",
                  "more items are left out of the reported properties for the {} KB limit; "
                  "`iothub-connector status` counts them (send = \"telemetry\" for some items "
                  "keeps the twin small)",
                  options_.max_bytes / 1024);
      }
    }
    if (old != 0) RemoveItem(name);
    return;
  }
  total_bytes_ = total_bytes_ - old + bytes;
  items_[name] = std::move(text);
  dirty_items_.insert(name);
  Schedule(0);
}

void TwinMirror::RemoveItem(const std::string& name) {
  if (!options_.enabled) return;
  const auto found = items_.find(name);
  if (found == items_.end() || found->second == kDeleted) return;
  total_bytes_ -= MemberBytes(name, found->second);
  found->second = kDeleted;
  dirty_items_.insert(name);
  Schedule(0);
}

void TwinMirror::SetThing(const std::string& uid, const Json& status) {
  if (!options_.enabled) return;
  const std::size_t bytes = MemberBytes(uid, status.dump());
  const std::size_t old = sizes_.count("t" + uid) != 0 ? sizes_["t" + uid] : 0;
  if (total_bytes_ - old + bytes > options_.max_bytes - options_.headroom_bytes) return;
  total_bytes_ = total_bytes_ - old + bytes;
  sizes_["t" + uid] = bytes;
  things_[uid] = status;
  dirty_things_.insert(uid);
  Schedule(0);
}

void TwinMirror::SetFacts(Json facts) {
  if (!options_.enabled) return;
  facts_ = std::move(facts);
  dirty_facts_ = true;
  Schedule(0);
}

std::int64_t TwinMirror::IntervalMs() const {
  const BudgetFigures figures = budget_.Figures(wall_.NowMs());
  if (figures.main <= 0) return options_.min_interval_ms;
  // After a patch of n chunks, wait for the pace to allow ten times as many, so that the twin
  // takes at most about a tenth of a tight budget.
  const std::int64_t window_ms = figures.window_end_ms - figures.window_start_ms;
  return std::max(options_.min_interval_ms, 10 * last_patch_chunks_ * window_ms / figures.main);
}

void TwinMirror::Schedule(std::int64_t delay_ms) {
  if (!options_.enabled || timer_ != 0 || in_flight_ || !connected_) return;
  if (dirty_items_.empty() && dirty_things_.empty() && !dirty_facts_) return;
  if (last_patch_ms_ >= 0) {
    delay_ms = std::max(delay_ms, last_patch_ms_ + IntervalMs() - loop_.NowMs());
  }
  timer_ = loop_.RunAfter(std::max<std::int64_t>(0, delay_ms), [this] {
    timer_ = 0;
    Flush();
  });
}

void TwinMirror::Flush() {
  if (in_flight_ || !connected_ || session_ == nullptr) return;
  Json patch = Json::object();
  std::set<std::string> items = std::move(dirty_items_);
  std::set<std::string> things = std::move(dirty_things_);
  const bool facts = dirty_facts_;
  dirty_items_.clear();
  dirty_things_.clear();
  dirty_facts_ = false;
  for (const auto& name : items) {
    patch["items"][name] = Json::parse(items_[name], nullptr, /*allow_exceptions=*/false);
  }
  for (const auto& uid : things) patch["things"][uid] = things_[uid];
  if (facts) patch["connector"] = facts_;
  if (patch.empty()) return;
  const auto restore = [this, items, things, facts] {
    dirty_items_.insert(items.begin(), items.end());
    dirty_things_.insert(things.begin(), things.end());
    dirty_facts_ = dirty_facts_ || facts;
  };
  const std::int64_t now = wall_.NowMs();
  const std::int64_t chunks = budget_.ChunksFor(static_cast<std::int64_t>(patch.dump().size()));
  if (!budget_.CanSpend(chunks, Pool::kMain, now)) {
    restore();
    const std::int64_t at = budget_.NextAvailableMs(chunks, Pool::kMain, now);
    if (at == kNeverMs) return;
    // Telemetry leaves these chunks to the patch until it goes (Budget::Claim).
    budget_.Claim(chunks);
    Schedule(at - now);
    return;
  }
  budget_.Claim(0);
  budget_.Spend(chunks, Pool::kMain, now);
  counters_.billed_chunks += chunks;
  last_patch_chunks_ = chunks;
  in_flight_ = true;
  last_patch_ms_ = loop_.NowMs();
  session_->UpdateReported(
      std::move(patch), liveness_.Guard([this, restore](const Result<std::int64_t>& version) {
        in_flight_ = false;
        if (version) {
          ++counters_.patches;
          counters_.last_patch_ms = wall_.NowMs();
          counters_.reported_bytes = static_cast<std::int64_t>(total_bytes_);
          // Deleted members are gone from the hub: forget them.
          for (auto it = items_.begin(); it != items_.end();) {
            it = it->second == kDeleted && dirty_items_.count(it->first) == 0 ? items_.erase(it)
                                                                              : std::next(it);
          }
          Schedule(0);
          return;
        }
        ++counters_.failed;
        restore();
        if (version.error().code == "twin_unavailable") return;
        log_.Warn("twin", "reported properties not updated ({}); retrying",
                  version.error().message);
        Schedule(options_.retry_ms);
      }));
}

}  // namespace iothub::connector
