#include "connector/item_filter.h"

#include <algorithm>
#include <cmath>

namespace iothub::connector {
namespace {

// A unit of the conversion table: value in the dimension's base unit = value * scale + offset.
struct Unit {
  std::string_view symbol;
  std::string_view dimension;
  double scale;
  double offset;
};

// The units openHAB's unit registry commonly gives items (SI prefixes only where homes use
// them), by symbol. Offsets only for temperatures.
constexpr Unit kUnits[] = {
    {"mW", "power", 1e-3, 0},
    {"W", "power", 1, 0},
    {"kW", "power", 1e3, 0},
    {"MW", "power", 1e6, 0},
    {"GW", "power", 1e9, 0},
    {"VA", "apparent power", 1, 0},
    {"kVA", "apparent power", 1e3, 0},
    {"var", "reactive power", 1, 0},
    {"kvar", "reactive power", 1e3, 0},
    {"J", "energy", 1, 0},
    {"kJ", "energy", 1e3, 0},
    {"MJ", "energy", 1e6, 0},
    {"Wh", "energy", 3.6e3, 0},
    {"kWh", "energy", 3.6e6, 0},
    {"MWh", "energy", 3.6e9, 0},
    {"GWh", "energy", 3.6e12, 0},
    {"mm", "length", 1e-3, 0},
    {"cm", "length", 1e-2, 0},
    {"m", "length", 1, 0},
    {"km", "length", 1e3, 0},
    {"in", "length", 0.0254, 0},
    {"ft", "length", 0.3048, 0},
    {"yd", "length", 0.9144, 0},
    {"mi", "length", 1609.344, 0},
    {"mg", "mass", 1e-6, 0},
    {"g", "mass", 1e-3, 0},
    {"kg", "mass", 1, 0},
    {"t", "mass", 1e3, 0},
    {"oz", "mass", 0.028349523125, 0},
    {"lb", "mass", 0.45359237, 0},
    {"K", "temperature", 1, 0},
    {"°C", "temperature", 1, 273.15},
    {"℃", "temperature", 1, 273.15},
    {"°F", "temperature", 5.0 / 9.0, 273.15 - 32 * 5.0 / 9.0},
    {"℉", "temperature", 5.0 / 9.0, 273.15 - 32 * 5.0 / 9.0},
    {"Pa", "pressure", 1, 0},
    {"hPa", "pressure", 1e2, 0},
    {"kPa", "pressure", 1e3, 0},
    {"MPa", "pressure", 1e6, 0},
    {"mbar", "pressure", 1e2, 0},
    {"bar", "pressure", 1e5, 0},
    {"psi", "pressure", 6894.757293168, 0},
    {"inHg", "pressure", 3386.389, 0},
    {"ml", "volume", 1e-6, 0},
    {"mL", "volume", 1e-6, 0},
    {"l", "volume", 1e-3, 0},
    {"L", "volume", 1e-3, 0},
    {"m³", "volume", 1, 0},
    {"ms", "time", 1e-3, 0},
    {"s", "time", 1, 0},
    {"min", "time", 60, 0},
    {"h", "time", 3600, 0},
    {"d", "time", 86400, 0},
    {"m/s", "speed", 1, 0},
    {"km/h", "speed", 1 / 3.6, 0},
    {"mph", "speed", 0.44704, 0},
    {"kn", "speed", 1852.0 / 3600.0, 0},
    {"mV", "voltage", 1e-3, 0},
    {"V", "voltage", 1, 0},
    {"kV", "voltage", 1e3, 0},
    {"mA", "current", 1e-3, 0},
    {"A", "current", 1, 0},
    {"Hz", "frequency", 1, 0},
    {"kHz", "frequency", 1e3, 0},
    {"MHz", "frequency", 1e6, 0},
    {"GHz", "frequency", 1e9, 0},
};

const Unit* FindUnit(std::string_view symbol) {
  const auto* it = std::find_if(std::begin(kUnits), std::end(kUnits),
                                [&](const Unit& u) { return u.symbol == symbol; });
  return it == std::end(kUnits) ? nullptr : it;
}

// Both units of one dimension in the table, or nullopt.
std::optional<std::pair<const Unit*, const Unit*>> Comparable(std::string_view from,
                                                              std::string_view to) {
  const Unit* a = FindUnit(from);
  const Unit* b = FindUnit(to);
  if (a == nullptr || b == nullptr || a->dimension != b->dimension) return std::nullopt;
  return std::pair{a, b};
}

std::optional<double> NumberOf(const Entry& entry) {
  if (!entry.value.is_number()) return std::nullopt;
  const double value = entry.value.get<double>();
  return std::isfinite(value) ? std::optional(value) : std::nullopt;
}

// Floating-point slack, so that a change of exactly the deadband (20.3 - 19.8) is not taken
// for a smaller one.
constexpr double kRelativeSlack = 1e-9;

bool InsideDeadband(const Deadband& band, const Entry& entry, const Entry& last) {
  const auto value = NumberOf(entry);
  auto reference = NumberOf(last);
  if (!value || !reference) return false;
  if (last.unit != entry.unit) {
    reference = ConvertQuantity(*reference, last.unit, entry.unit);
    if (!reference) return false;
  }
  double limit = band.amount;
  if (band.percent) {
    limit = band.amount / 100 * std::fabs(*reference);
  } else if (!band.unit.empty()) {
    const auto converted = ConvertDifference(band.amount, band.unit, entry.unit);
    if (!converted) return false;
    limit = *converted;
  }
  return std::fabs(*value - *reference) < limit * (1 - kRelativeSlack);
}

bool SameState(const Entry& a, const Entry& b) {
  return a.value == b.value && a.unit == b.unit && a.state == b.state;
}

// The heartbeat in force: never more often than min_interval allows.
std::int64_t HeartbeatMs(const ItemPolicy& policy) {
  return policy.heartbeat_ms > 0 ? std::max(policy.heartbeat_ms, policy.min_interval_ms) : 0;
}

void Add(FilterCounters& sum, const FilterCounters& c) {
  sum.deadband += c.deadband;
  sum.duplicates += c.duplicates;
  sum.held += c.held;
  sum.superseded += c.superseded;
  sum.released += c.released;
  sum.heartbeats += c.heartbeats;
}

}  // namespace

std::optional<double> ConvertQuantity(double value, std::string_view from, std::string_view to) {
  if (from == to) return value;
  const auto units = Comparable(from, to);
  if (!units) return std::nullopt;
  const auto [a, b] = *units;
  return (value * a->scale + a->offset - b->offset) / b->scale;
}

std::optional<double> ConvertDifference(double amount, std::string_view from, std::string_view to) {
  if (from == to) return amount;
  const auto units = Comparable(from, to);
  if (!units) return std::nullopt;
  return amount * units->first->scale / units->second->scale;
}

void ItemFilter::Configure(const std::string& name, const ItemPolicy& policy) {
  auto [it, added] = items_.try_emplace(name);
  it->second.policy = policy;
  Reschedule(name, it->second);
}

void ItemFilter::Forget(const std::string& name) {
  const auto it = items_.find(name);
  if (it == items_.end()) return;
  if (it->second.due_ms) due_.erase({*it->second.due_ms, name});
  items_.erase(it);
}

ItemFilter::Suppression ItemFilter::Suppresses(const Item& item, const Entry& entry) {
  if (!item.last_sent) return Suppression::kNone;
  if (SameState(entry, *item.last_sent)) return Suppression::kDuplicate;
  if (item.policy.deadband && InsideDeadband(*item.policy.deadband, entry, *item.last_sent)) {
    return Suppression::kDeadband;
  }
  return Suppression::kNone;
}

ItemFilter::Decision ItemFilter::OnChange(const Entry& entry, std::int64_t now_ms) {
  const auto [it, added] = items_.try_emplace(entry.key);
  Item& item = it->second;
  const Suppression suppression = Suppresses(item, entry);
  const bool too_soon = item.last_sent && item.policy.min_interval_ms > 0 &&
                        now_ms < item.last_sent_ms + item.policy.min_interval_ms;
  // Not sent now: the latest differs from what was sent (a send makes them one again).
  if (suppression != Suppression::kNone || too_soon) {
    item.latest = std::make_unique<Entry>(entry);
  }
  if (suppression != Suppression::kNone) {
    ++(suppression == Suppression::kDuplicate ? item.counters.duplicates : item.counters.deadband);
    if (item.holding) {
      // The state is back near what was sent: the held change need not go out any more.
      item.holding = false;
      ++item.counters.superseded;
      Reschedule(entry.key, item);
    }
    return {Verdict::kSuppress, 0};
  }
  if (too_soon) {
    if (item.holding) ++item.counters.superseded;
    item.holding = true;
    ++item.counters.held;
    Reschedule(entry.key, item);
    return {Verdict::kHold, item.last_sent_ms + item.policy.min_interval_ms};
  }
  if (item.holding) ++item.counters.superseded;  // due now, but this newer change goes instead
  Record(entry.key, item, entry, now_ms);
  return {Verdict::kSend, 0};
}

void ItemFilter::Sent(const Entry& entry, std::int64_t now_ms) {
  const auto [it, added] = items_.try_emplace(entry.key);
  if (it->second.holding) ++it->second.counters.superseded;
  Record(entry.key, it->second, entry, now_ms);
}

void ItemFilter::Record(const std::string& name, Item& item, const Entry& entry,
                        std::int64_t now_ms) {
  item.last_sent = entry;  // before the reset: `entry` may be *item.latest
  item.latest.reset();     // the latest is what was sent
  item.last_sent_ms = now_ms;
  item.holding = false;
  Reschedule(name, item);
}

void ItemFilter::Reschedule(const std::string& name, Item& item) {
  std::optional<std::int64_t> due;
  if (item.holding) {
    due = item.last_sent_ms + item.policy.min_interval_ms;
  } else if (const std::int64_t heartbeat = HeartbeatMs(item.policy);
             heartbeat > 0 && item.last_sent) {
    due = item.last_sent_ms + heartbeat;
  }
  if (due == item.due_ms) return;
  if (item.due_ms) due_.erase({*item.due_ms, name});
  item.due_ms = due;
  if (due) due_.emplace(*due, name);
}

std::vector<ItemFilter::Due> ItemFilter::TakeDue(std::int64_t now_ms) {
  std::vector<Due> out;
  while (!due_.empty() && due_.begin()->first <= now_ms) {
    const std::string name = due_.begin()->second;
    Item& item = items_.find(name)->second;
    const Reason reason = item.holding ? Reason::kReleased : Reason::kHeartbeat;
    ++(reason == Reason::kReleased ? item.counters.released : item.counters.heartbeats);
    out.push_back({item.latest ? *item.latest : *item.last_sent, reason});
    // Record moves this item's key out of the way (its next due is later than now_ms, or
    // none), so the loop advances.
    Record(name, item, out.back().entry, now_ms);
  }
  return out;
}

std::optional<std::int64_t> ItemFilter::NextDueMs() const {
  if (due_.empty()) return std::nullopt;
  return due_.begin()->first;
}

const FilterCounters* ItemFilter::Counters(const std::string& name) const {
  const auto it = items_.find(name);
  return it == items_.end() ? nullptr : &it->second.counters;
}

FilterCounters ItemFilter::Totals() const {
  FilterCounters sum;
  for (const auto& [name, item] : items_) Add(sum, item.counters);
  return sum;
}

}  // namespace iothub::connector
