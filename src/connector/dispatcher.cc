#include "connector/dispatcher.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include "common/crypto.h"

namespace iothub::connector {
namespace {

constexpr std::string_view kBudgetMeta = "connector.budget";
constexpr std::string_view kSequenceMeta = "connector.sequence";
constexpr std::int64_t kDefaultEntryBytes = 80;
// A message's properties and the body's envelope (docs/message-format.md: about 140 B).
constexpr std::int64_t kMessageOverheadBytes = 160;
// Merge checks from Build, when the budget holds a message back, come at most this often.
constexpr std::int64_t kMergeCheckMinMs = 100;
constexpr std::int64_t kMergeLogIntervalMs = 60'000;
// What "merged":{"count":..,"min":..,"max":..,"since":".."} adds to a state, about.
constexpr std::int64_t kMergedMemberBytes = 80;

std::int64_t ParseInt(std::string_view text) {
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

}  // namespace

Dispatcher::Dispatcher(EventLoop& loop, const Clock& wall, Outbox& outbox, Budget& budget,
                       ItemBook& items, Log& log, DispatcherOptions options)
    : loop_(loop),
      wall_(wall),
      outbox_(outbox),
      budget_(budget),
      items_(items),
      log_(log),
      options_(std::move(options)),
      packer_(options_.pack) {
  const std::int64_t now = wall_.NowMs();
  if (auto stored = outbox_.GetMeta(kBudgetMeta); stored && *stored) {
    if (auto restored = budget_.Restore(**stored, now); !restored) {
      log_.Warn("budget", "stored budget unreadable ({}); assuming the most a run could have spent",
                restored.error().message);
    }
  } else {
    (void)budget_.Restore("", now);
  }
  // Stopped while the hub's quota was exhausted: probe before sending (SessionState).
  hub_exhausted_ = budget_.Figures(now).hub_resume_ms != 0;
  if (auto stored = outbox_.GetMeta(kSequenceMeta); stored && *stored) {
    sequence_ = ParseInt(**stored);
  }
  resend_ = outbox_.Sealed();
  if (!resend_.empty()) {
    log_.Info("outbox",
              "{} message(s) sent before the last stop were not acknowledged: "
              "resending them first, with their message ids",
              resend_.size());
  }
  merge_timer_ = loop_.RunAfter(options_.merge_check_ms, [this] { CheckMerge(); });
}

Dispatcher::~Dispatcher() {
  if (slot_timer_ != 0) loop_.Cancel(slot_timer_);
  if (budget_timer_ != 0) loop_.Cancel(budget_timer_);
  if (merge_timer_ != 0) loop_.Cancel(merge_timer_);
}

void Dispatcher::Attach(azure::DeviceSession* session) {
  session_ = session;
  if (session_ != nullptr) session_->SetTelemetrySource(this);
}

void Dispatcher::Wake() {
  // While the hub is exhausted, new changes are merged as they come (at most every 100 ms).
  if (hub_exhausted_ && loop_.NowMs() - last_merge_check_ms_ >= kMergeCheckMinMs) CheckMerge();
  if (session_ != nullptr) session_->TelemetryReady();
}

azure::TelemetryMessage Dispatcher::ToTelemetry(const SealedMessage& sealed) {
  azure::TelemetryMessage message;
  message.body = sealed.body;
  for (const auto& [name, value] : sealed.properties) message.properties.push_back({name, value});
  message.message_id = sealed.message_id;
  message.content_type = sealed.content_type;
  message.content_encoding = sealed.content_encoding;
  message.creation_time = sealed.creation_time;
  return message;
}

void Dispatcher::ChargeResends() {
  if (session_ == nullptr) return;
  const std::int64_t resent = session_->counters().resent;
  if (resent <= resent_seen_) return;
  // The hub may have billed a message whose acknowledgement was lost, and bills its resend
  // again: counted at the average size, since the session does not say which it resent.
  const std::int64_t average =
      counters_.messages_sealed == 0
          ? 1
          : std::max<std::int64_t>(1, (counters_.billed_chunks + counters_.messages_sealed - 1) /
                                          counters_.messages_sealed);
  budget_.Spend((resent - resent_seen_) * average, Pool::kMain, wall_.NowMs());
  resent_seen_ = resent;
}

std::optional<azure::TelemetryMessage> Dispatcher::NextTelemetry() {
  ChargeResends();
  if (resend_next_ < resend_.size()) {
    const SealedMessage& sealed = resend_[resend_next_++];
    in_flight_[sealed.message_id] = InFlight{{}, sealed.sealed_ms, false};
    ++counters_.messages_resent_after_restart;
    counters_.bytes += static_cast<std::int64_t>(sealed.body.size());
    // The hub may have stored it before the stop, and then bills it twice.
    budget_.Spend(std::max<std::int64_t>(1, sealed.billed_chunks), Pool::kMain, wall_.NowMs());
    azure::TelemetryMessage message = ToTelemetry(sealed);  // before `sealed` goes below
    if (resend_next_ == resend_.size()) {
      resend_.clear();
      resend_next_ = 0;
    }
    return message;
  }
  if (!direct_.empty() && !hub_exhausted_) {
    azure::TelemetryMessage message = std::move(direct_.front());
    direct_.pop_front();
    direct_in_flight_.insert(message.message_id);
    return message;
  }
  if (hub_exhausted_) {
    // Probing the exhausted hub: what the session already holds is resent first and is the
    // probe. Only with nothing in flight does one new message go, so that what was merged
    // meanwhile is not sealed into messages that would reach the hub ahead of later states.
    if (!probe_allowed_ || !in_flight_.empty()) return std::nullopt;
    budget_.HubResumed();  // for this one message; SessionState restores it if it fails
    std::optional<azure::TelemetryMessage> probe = Build();
    if (probe) probe_allowed_ = false;
    return probe;
  }
  return Build();
}

std::optional<azure::TelemetryMessage> Dispatcher::Build() {
  std::vector<Entry> entries = outbox_.Peek(options_.peek_entries);
  if (entries.empty()) return std::nullopt;
  const std::int64_t now = wall_.NowMs();
  MessageHeader header{NewUuid(), sequence_ + 1, now};
  PackResult packed = packer_.Pack(entries, header);
  while (!packed.message && packed.oversized_entry) {
    // One entry alone is over IoT Hub's 256 KB: send what it was, not what it said.
    auto it = std::find_if(entries.begin(), entries.end(),
                           [&](const Entry& e) { return e.id == *packed.oversized_entry; });
    if (it == entries.end()) return std::nullopt;
    log_.Warn("telemetry", "the state of '{}' is {} bytes, over IoT Hub's limit: sent without it",
              it->key, packed.oversized_bytes);
    it->value = LeftOutValue(packed.oversized_bytes);
    it->unit.clear();
    packed = packer_.Pack(entries, header);
  }
  if (!packed.message) return std::nullopt;
  PackedMessage& message = *packed.message;

  const auto same_kind = std::count_if(entries.begin(), entries.end(),
                                       [&](const Entry& e) { return e.kind == message.kind; });
  const bool partial = static_cast<std::int64_t>(message.entry_ids.size()) == same_kind &&
                       entries.size() < options_.peek_entries;
  // One message that is not full at a time: what arrives meanwhile joins the next one.
  if (partial && partial_in_flight_ > 0) return std::nullopt;
  if (!TakeSendSlot()) return std::nullopt;
  // What a waiting reported-property patch claimed stays for it (Budget::Claim).
  if (!budget_.CanSpend(message.billed_messages + budget_.claimed(), Pool::kMain, now)) {
    WaitForBudget(message.billed_messages + budget_.claimed());
    // The backlog may have outgrown the budget: check now rather than at the next second,
    // but not on every pull of a busy home.
    if (loop_.NowMs() - last_merge_check_ms_ >= kMergeCheckMinMs) CheckMerge();
    return std::nullopt;
  }
  budget_.Spend(message.billed_messages, Pool::kMain, now);

  SealedMessage sealed;
  sealed.message_id = message.message.message_id;
  sealed.device_id = options_.device_id;
  sealed.body = message.message.body;
  for (const auto& p : message.message.properties) {
    sealed.properties.emplace_back(p.name, p.value.value_or(""));
  }
  sealed.content_type = message.message.content_type;
  sealed.content_encoding = message.message.content_encoding;
  sealed.creation_time = message.message.creation_time;
  sealed.billed_chunks = message.billed_messages;
  sealed.sequence = header.seq;
  sealed.sealed_ms = now;
  const std::vector<std::pair<std::string, std::string>> meta = {
      {std::string(kBudgetMeta), budget_.Serialize()},
      {std::string(kSequenceMeta), std::to_string(header.seq)}};
  if (auto stored = outbox_.Seal(sealed, message.entry_ids, meta); !stored) {
    // Nothing of it happened on disk; the spend is kept in memory (conservative).
    ++counters_.store_errors;
    log_.Error("outbox", "cannot seal a message: {}", stored.error().message);
    return std::nullopt;
  }
  sequence_ = header.seq;

  InFlight flight{{}, now, partial};
  for (const std::int64_t id : message.entry_ids) {
    const auto it =
        std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.id == id; });
    if (it != entries.end()) flight.keys.push_back(it->key);
  }
  // What one item takes of a message (its history included, and in a full message its share
  // of the room left that no further entry fitted), as a recent average, also of messages of
  // merged states only: the staleness bound counts items per message, not changes.
  const std::set<std::string_view> items(flight.keys.begin(), flight.keys.end());
  if (!items.empty()) {
    const std::int64_t taken =
        partial ? message.metered_bytes : message.billed_messages * options_.pack.chunk_bytes;
    const std::int64_t per_item = std::max<std::int64_t>(
        16, (taken - kMessageOverheadBytes) / static_cast<std::int64_t>(items.size()));
    const auto average = [per_item](std::int64_t& ema) {
      ema = ema == 0 ? per_item : ema + (per_item - ema) / 16;
    };
    average(entry_bytes_);
    const bool all_merged = std::all_of(entries.begin(), entries.end(), [&](const Entry& e) {
      return e.count > 1 || std::find(message.entry_ids.begin(), message.entry_ids.end(), e.id) ==
                                message.entry_ids.end();
    });
    if (all_merged) average(merged_entry_bytes_);
  }
  if (partial) ++partial_in_flight_;
  in_flight_[sealed.message_id] = std::move(flight);

  ++counters_.messages_sealed;
  ++counters_.by_kind[message.kind];
  counters_.entries_sent += static_cast<std::int64_t>(message.entry_ids.size());
  counters_.bytes += static_cast<std::int64_t>(sealed.body.size());
  counters_.billed_chunks += message.billed_messages;
  return std::move(message.message);
}

bool Dispatcher::TakeSendSlot() {
  if (options_.max_messages_per_second <= 0) return true;
  const std::int64_t now = loop_.NowMs();
  const double rate = options_.max_messages_per_second;
  if (slots_ms_ >= 0) {
    slots_ = std::min(rate, slots_ + rate * static_cast<double>(now - slots_ms_) / 1000.0);
  } else {
    slots_ = rate;
  }
  slots_ms_ = now;
  if (slots_ >= 1.0) {
    slots_ -= 1.0;
    return true;
  }
  if (slot_timer_ == 0) {
    const auto wait = static_cast<std::int64_t>((1.0 - slots_) * 1000.0 / rate) + 1;
    slot_timer_ = loop_.RunAfter(wait, [this] {
      slot_timer_ = 0;
      Wake();
    });
  }
  return false;
}

void Dispatcher::WaitForBudget(std::int64_t chunks) {
  if (budget_timer_ != 0) return;
  const std::int64_t now = wall_.NowMs();
  const std::int64_t at = budget_.NextAvailableMs(chunks, Pool::kMain, now);
  if (at == kNeverMs) {
    log_.Warn("budget", "a message of {} billed messages can never fit this window's budget",
              chunks);
    return;
  }
  ++counters_.budget_waits;
  budget_timer_ = loop_.RunAfter(std::max<std::int64_t>(1, at - now), [this] {
    budget_timer_ = 0;
    Wake();
  });
}

bool Dispatcher::SendDirect(azure::TelemetryMessage message) {
  const std::int64_t now = wall_.NowMs();
  const std::int64_t chunks = budget_.ChunksFor(MeteredBytes(message));
  if (!budget_.CanSpend(chunks, Pool::kReserve, now)) {
    ++counters_.direct_dropped;
    return false;
  }
  budget_.Spend(chunks, Pool::kReserve, now);
  counters_.billed_chunks += chunks;
  direct_.push_back(std::move(message));
  if (session_ != nullptr) session_->TelemetryReady();
  return true;
}

void Dispatcher::Delivered(std::string_view message_id) {
  if (const auto direct = direct_in_flight_.find(message_id); direct != direct_in_flight_.end()) {
    direct_in_flight_.erase(direct);
    ++counters_.direct_sent;
    return;
  }
  ChargeResends();
  const std::int64_t now = wall_.NowMs();
  if (hub_exhausted_) {
    // The hub took a message: its quota is back.
    hub_exhausted_ = false;
    probe_allowed_ = false;
    budget_.HubResumed();
    log_.Info("budget", "the hub takes messages again: sending the latest states");
  }
  outbox_.Acknowledge(message_id);
  ++counters_.messages_delivered;
  counters_.last_delivered_ms = now;
  const auto it = in_flight_.find(message_id);
  if (it != in_flight_.end()) {
    if (it->second.partial) --partial_in_flight_;
    for (const auto& key : it->second.keys) {
      const auto stats = items_.find(key);
      if (stats == items_.end()) continue;
      stats->second.last_delivered_ms = now;
      // Fresh unless a newer state was accepted after this message was built.
      if (stats->second.last_accepted_ms <= it->second.sealed_ms) {
        stats->second.pending_since_ms = 0;
      }
    }
    in_flight_.erase(it);
  }
  Wake();
}

void Dispatcher::Refused(std::string_view message_id, const Error& why) {
  if (const auto direct = direct_in_flight_.find(message_id); direct != direct_in_flight_.end()) {
    direct_in_flight_.erase(direct);
    ++counters_.direct_dropped;
    log_.Error("telemetry", "the hub session cannot send message {}: {}; it is dropped", message_id,
               why.message);
    return;
  }
  ++counters_.messages_refused;
  log_.Error("telemetry", "the hub session cannot send message {}: {}; it is dropped", message_id,
             why.message);
  const auto it = in_flight_.find(message_id);
  if (it != in_flight_.end()) {
    if (it->second.partial) --partial_in_flight_;
    in_flight_.erase(it);
  }
  outbox_.Acknowledge(message_id);
}

void Dispatcher::SessionState(azure::SessionState state, std::int64_t quota_resume_wall_ms) {
  if (state == azure::SessionState::kQuotaExhausted) {
    probe_allowed_ = false;
    budget_.HubExhausted(quota_resume_wall_ms);
    if (!hub_exhausted_) {
      hub_exhausted_ = true;
      MergeAll("the hub's daily quota is exhausted");
    }
    return;
  }
  // A connection while the hub is exhausted is the session's probe: sending resumes with the
  // first acknowledgement (Delivered).
  if (state == azure::SessionState::kConnected && hub_exhausted_) probe_allowed_ = true;
  if (state != azure::SessionState::kConnected) {
    // The session resends its window on the next connection; partial messages stay partial.
    return;
  }
}

std::int64_t Dispatcher::avg_entry_bytes() const {
  const std::int64_t recent = entry_bytes_ == 0 ? kDefaultEntryBytes : entry_bytes_;
  // While the budget makes the connector merge, or a backlog of history says it soon will,
  // the states waiting are merged ones, which carry their count, min, max and since: a round
  // takes that much more.
  const bool merged_lately =
      last_merge_ms_ != 0 && loop_.NowMs() - last_merge_ms_ < budget_.window_ms();
  if (!merged_lately) {
    const OutboxStats stats = outbox_.Stats();
    if (stats.pending_entries + stats.batched_entries <= std::max<std::int64_t>(1, item_count_)) {
      return recent;
    }
  }
  return std::max(recent,
                  merged_entry_bytes_ != 0 ? merged_entry_bytes_ : recent + kMergedMemberBytes);
}

double Dispatcher::StalenessBoundSeconds() const {
  return budget_.StalenessBoundSeconds(std::max<std::int64_t>(1, item_count_), avg_entry_bytes(),
                                       kMessageOverheadBytes, wall_.NowMs(), options_.main_share);
}

void Dispatcher::CheckMerge() {
  if (merge_timer_ != 0) loop_.Cancel(merge_timer_);
  merge_timer_ = loop_.RunAfter(options_.merge_check_ms, [this] {
    merge_timer_ = 0;
    CheckMerge();
  });
  last_merge_check_ms_ = loop_.NowMs();
  if (hub_exhausted_) {
    // Nothing goes before the hub's reset: keep one entry per item.
    MergeAll("the hub's daily quota is exhausted");
    return;
  }
  const OutboxStats stats = outbox_.Stats();
  if (stats.pending_entries <= item_count_) return;  // at most one entry per item: nothing to merge
  const std::int64_t now = wall_.NowMs();
  const std::int64_t chunk = std::max<std::int64_t>(1, options_.pack.chunk_bytes);
  const std::int64_t per_message =
      std::max<std::int64_t>(1, (chunk - kMessageOverheadBytes) / avg_entry_bytes());
  const std::int64_t backlog = (stats.pending_entries + per_message - 1) / per_message;
  const double bound = StalenessBoundSeconds();
  const auto horizon_ms =
      static_cast<std::int64_t>(std::min(bound, 86'400.0 * 2) * 1000.0) + options_.merge_check_ms;
  if (backlog <= budget_.ChunksAvailableWithin(horizon_ms, Pool::kMain, now)) return;
  MergeAll(
      fmt::format("{} pending changes need about {} messages; the budget allows fewer "
                  "within the staleness bound of {:.0f} s",
                  stats.pending_entries, backlog, bound));
}

void Dispatcher::MergeAll(std::string_view why) {
  auto report = outbox_.MergeHistory();
  if (!report) {
    ++counters_.store_errors;
    log_.Error("outbox", "cannot merge history: {}", report.error().message);
    return;
  }
  if (report->merged == 0) return;
  ++counters_.merges;
  last_merge_ms_ = loop_.NowMs();
  // A busy home merges every second: one line a minute says how much (the metrics count it).
  unlogged_merged_ += report->merged;
  const std::int64_t now = loop_.NowMs();
  if (last_merge_log_ms_ != 0 && now - last_merge_log_ms_ < kMergeLogIntervalMs) return;
  log_.Info("budget", "merged {} changes into their latest states{}: {}", unlogged_merged_,
            last_merge_log_ms_ == 0 ? "" : " in the last minute", why);
  unlogged_merged_ = 0;
  last_merge_log_ms_ = now;
}

}  // namespace iothub::connector
