#include "connector/command_gate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/strings.h"
#include "connector/item_filter.h"
#include "openhab/state.h"

namespace iothub::connector {
namespace {

// The bucket map is first swept when it holds this many (unless the cap is lower).
constexpr std::size_t kMinPruneAt = 64;

// The common dimensions of `Number:<Dimension>` items: what a message calls them and units
// that ConvertQuantity knows for them, the first one the reference when the item's unit is not
// known.
struct Dimension {
  std::string_view name;  // openHAB's, as in `Number:Temperature`
  std::string_view description;
  std::vector<std::string_view> units;
};

const std::vector<Dimension>& Dimensions() {
  static const std::vector<Dimension> kDimensions = {
      {"Temperature", "temperature", {"°C", "K", "°F"}},
      {"Power", "power", {"W", "kW"}},
      {"Energy", "energy", {"kWh", "Wh", "J"}},
      {"Length", "length", {"m", "km", "ft"}},
      {"Mass", "mass", {"kg", "g", "lb"}},
      {"Pressure", "pressure", {"hPa", "bar", "Pa"}},
      {"Volume", "volume", {"l", "m³"}},
      {"Time", "time", {"s", "min", "h"}},
      {"Speed", "speed", {"km/h", "m/s", "mph"}},
      {"ElectricPotential", "voltage", {"V", "mV"}},
      {"ElectricCurrent", "current", {"A", "mA"}},
      {"Frequency", "frequency", {"Hz", "kHz"}},
  };
  return kDimensions;
}

const Dimension* FindDimension(std::string_view name) {
  const auto& all = Dimensions();
  const auto it =
      std::find_if(all.begin(), all.end(), [&](const Dimension& d) { return d.name == name; });
  return it == all.end() ? nullptr : &*it;
}

// The type as messages and the codec name it: `Group:Switch` for a typed group.
std::string TypeName(const openhab::Item& item) {
  if (item.is_group() && !item.group_type.empty()) return "Group:" + item.group_type;
  return item.type;
}

// `Switch` of `Switch`, `Number` of `Number:Power:SUM`.
std::string_view Kind(std::string_view base) { return base.substr(0, base.find(':')); }

// `Power` of `Number:Power` (and `Number:Power:SUM`); empty for a plain Number.
std::string_view DimensionOf(std::string_view base) {
  if (Kind(base) != "Number" || base.size() <= 7) return {};
  const std::string_view rest = base.substr(7);
  return rest.substr(0, rest.find(':'));
}

// The unit the item's values are in: its unitSymbol, else its state's unit; empty if neither.
std::string ItemUnit(const openhab::Item& item) {
  if (!item.unit_symbol.empty()) return item.unit_symbol;
  const openhab::State state = openhab::ParseStateTolerant(item.base_type(), item.state);
  return state.kind == openhab::StateKind::kQuantity ? state.unit : std::string();
}

bool Convertible(std::string_view from, std::string_view to) {
  return ConvertQuantity(1, from, to).has_value();
}

std::string Join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const std::string& part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

// "Switch accepts ON, OFF (or REFRESH)", for the messages the codec does not write.
std::string Accepts(const openhab::Item& item) {
  const std::vector<std::string> accepted = AcceptedCommands(item);
  if (accepted.empty()) return TypeName(item) + " accepts only REFRESH";
  return TypeName(item) + " accepts " + Join(accepted, ", ") + " (or REFRESH)";
}

// The quantity's unit checked against a `Number:<Dimension>` item's; nullopt when fine.
std::optional<std::string> UnitMismatch(const openhab::Item& item, std::string_view unit) {
  const std::string_view dimension_name = DimensionOf(item.base_type());
  if (dimension_name.empty()) return std::nullopt;  // a plain Number takes any unit
  const Dimension* dimension = FindDimension(dimension_name);
  const std::string item_unit = ItemUnit(item);
  if (!item_unit.empty() && Convertible(unit, item_unit)) return std::nullopt;
  if (dimension != nullptr) {
    // The dimension decides when the item's unit says nothing: unknown, or outside
    // ConvertQuantity's table.
    const std::string_view reference = dimension->units.front();
    const bool item_unit_decides = !item_unit.empty() && Convertible(item_unit, reference);
    if (!item_unit_decides && Convertible(unit, reference)) return std::nullopt;
    std::vector<std::string> examples(dimension->units.begin(), dimension->units.end());
    const std::string last = examples.back();
    examples.pop_back();
    return fmt::format("{} needs a {} unit such as {} or {}; got '{}'", TypeName(item),
                       dimension->description, Join(examples, ", "), last, unit);
  }
  if (item_unit.empty()) return std::nullopt;  // nothing to compare with: openHAB decides
  return fmt::format("{} needs a unit convertible to the item's unit '{}'; got '{}'",
                     TypeName(item), item_unit, unit);
}

// A name from the cloud as a message quotes it: it may be anything, and long.
std::string Shorten(std::string_view text) {
  constexpr std::size_t kMax = 80;
  if (text.size() <= kMax) return std::string(text);
  std::size_t cut = kMax - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  return std::string(text.substr(0, cut)) + "...";
}

// A JSON value as a message quotes it, shortened.
std::string Given(const openhab::Json& value) {
  std::string text = value.dump(-1, ' ', false, openhab::Json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

std::string Rate(double rate) {
  return rate == 1 ? "1 command a second" : fmt::format("{:g} commands a second", rate);
}

}  // namespace

Result<CommandGate> CommandGate::Create(CommandGateOptions options) {
  auto allow = CompilePatterns(options.allow, "[commands] allow");
  auto deny = CompilePatterns(options.deny, "[commands] deny");
  if (!allow.ok() || !deny.ok()) {
    std::string message;
    for (const auto* result : {&allow, &deny}) {
      if (result->ok()) continue;
      if (!message.empty()) message += "\n";
      message += result->error().message;
    }
    return MakeError("bad_pattern", std::move(message));
  }
  const auto bad_rate = [](double rate) { return !std::isfinite(rate) || rate <= 0; };
  if (bad_rate(options.item_rate) || bad_rate(options.total_rate)) {
    return MakeError("config",
                     fmt::format("[commands] item_rate and rate must be positive numbers of "
                                 "commands a second; got {:g} and {:g}",
                                 options.item_rate, options.total_rate));
  }
  if (options.item_burst < 1 || options.total_burst < 1) {
    return MakeError("config", fmt::format("[commands] item_burst and burst must be at least 1; "
                                           "got {} and {}",
                                           options.item_burst, options.total_burst));
  }
  if (options.max_item_buckets == 0) {
    return MakeError("config", "the gate must keep at least one per-item rate bucket");
  }
  return CommandGate(std::move(options), std::move(allow).value(), std::move(deny).value());
}

CommandGate::CommandGate(CommandGateOptions options, std::vector<ItemPattern> allow,
                         std::vector<ItemPattern> deny)
    : options_(std::move(options)),
      allow_(std::move(allow)),
      deny_(std::move(deny)),
      item_limit_{options_.item_rate, options_.item_burst},
      total_limit_{options_.total_rate, options_.total_burst},
      total_bucket_{static_cast<double>(options_.total_burst), 0},
      prune_at_(std::min(kMinPruneAt, options_.max_item_buckets)) {}

Permission CommandGate::Allowed(const openhab::Item& item, const GroupMembership& groups,
                                bool replicated) const {
  for (const ItemPattern& pattern : deny_) {
    if (pattern.Matches(item, groups)) {
      return {false, fmt::format("it matches [commands] deny pattern '{}'", pattern.text())};
    }
  }
  const auto metadata = CommandMetadata(item);
  if (metadata.ok() && metadata->has_value()) {
    return **metadata ? Permission{true, "its azureiothub metadata says command=true"}
                      : Permission{false, "its azureiothub metadata says command=false"};
  }
  const auto refuse = [&](std::string reason) {
    if (!metadata.ok()) reason += fmt::format(" ({}; ignored)", metadata.error().message);
    return Permission{false, std::move(reason)};
  };
  constexpr std::string_view kReadOnly =
      "it is read-only (its state description says so); azureiothub metadata command=true "
      "would allow it";
  if (!allow_.empty()) {
    const auto match = std::find_if(allow_.begin(), allow_.end(),
                                    [&](const ItemPattern& p) { return p.Matches(item, groups); });
    if (match == allow_.end()) return refuse("it matches no [commands] allow pattern");
    if (item.read_only) return refuse(std::string(kReadOnly));
    return {true, fmt::format("it matches [commands] allow pattern '{}'", match->text())};
  }
  if (!replicated) {
    return refuse(
        "it is not replicated (openhab.items, openhab.exclude); [commands] allow or azureiothub "
        "metadata command=true would allow it");
  }
  if (item.read_only) return refuse(std::string(kReadOnly));
  return {true, "it is replicated and not read-only"};
}

CommandVerdict CommandGate::Check(const ItemMap& items, std::string_view item,
                                  std::string_view command, bool replicated, std::int64_t now_ms) {
  const auto found = items.find(std::string(item));
  if (found == items.end()) {
    return {404, fmt::format("openHAB has no item named '{}'", Shorten(item)), "", 0};
  }
  const openhab::Item& target = found->second;
  const Permission permission = Allowed(target, GroupMembership(items), replicated);
  if (!permission.allowed) {
    return {403, fmt::format("commands to item '{}' are not allowed: {}", item, permission.reason),
            "", 0};
  }
  const auto invalid = [&](const std::string& why) {
    return CommandVerdict{400, fmt::format("item '{}': {}", item, why), "", 0};
  };
  if (command.empty()) return invalid("the command is empty; " + Accepts(target));
  if (command == "NULL" || command == "UNDEF") {
    return invalid(fmt::format("{} is a state, never a command; {}", command, Accepts(target)));
  }
  const std::string type = TypeName(target);
  auto parsed = openhab::ParseCommand(type, command);
  if (!parsed.ok()) return invalid(parsed.error().message);
  openhab::State& state = parsed.value();
  if (state.kind == openhab::StateKind::kQuantity) {
    if (auto mismatch = UnitMismatch(target, state.unit)) return invalid(*mismatch);
  } else if (state.kind == openhab::StateKind::kDecimal &&
             !DimensionOf(target.base_type()).empty()) {
    // As openHAB would: a plain number is in the item's unit.
    if (std::string unit = ItemUnit(target); !unit.empty()) {
      state.kind = openhab::StateKind::kQuantity;
      state.unit = std::move(unit);
    }
  }
  auto text = openhab::CommandFor(type, state);
  if (!text.ok()) return invalid(text.error().message);
  if (auto limited = TakeTokens(item, now_ms)) return std::move(*limited);
  return {200, "", std::move(text).value(), 0};
}

double CommandGate::Bucket::At(std::int64_t now_ms, const Limit& limit) const {
  const auto elapsed = static_cast<double>(std::max<std::int64_t>(0, now_ms - updated_ms));
  return std::min(static_cast<double>(limit.burst), tokens + elapsed * limit.rate / 1000);
}

std::int64_t CommandGate::Bucket::MsUntilToken(std::int64_t now_ms, const Limit& limit) const {
  const double estimate = std::ceil((1 - At(now_ms, limit)) * 1000 / limit.rate);
  auto ms = std::max<std::int64_t>(1, static_cast<std::int64_t>(estimate));
  // The estimate may be a millisecond off in floating point: At, which the retry will meet,
  // decides, so that a caller who waits retry_after_ms is not refused again.
  while (At(now_ms + ms, limit) < 1) ++ms;
  while (ms > 1 && At(now_ms + ms - 1, limit) >= 1) --ms;
  return ms;
}

std::optional<CommandVerdict> CommandGate::TakeTokens(std::string_view item, std::int64_t now_ms) {
  const auto found = item_buckets_.find(item);
  // An item without a bucket has a full one.
  const Bucket bucket = found == item_buckets_.end()
                            ? Bucket{static_cast<double>(item_limit_.burst), now_ms}
                            : found->second;
  const double item_tokens = bucket.At(now_ms, item_limit_);
  const double total_tokens = total_bucket_.At(now_ms, total_limit_);
  if (item_tokens < 1 || total_tokens < 1) {
    std::vector<std::string> limits;
    std::int64_t retry_ms = 0;
    if (item_tokens < 1) {
      limits.push_back(fmt::format("item '{}' is over its rate limit of {} (burst {})", item,
                                   Rate(item_limit_.rate), item_limit_.burst));
      retry_ms = bucket.MsUntilToken(now_ms, item_limit_);
    }
    if (total_tokens < 1) {
      limits.push_back(fmt::format("commands are over the overall rate limit of {} (burst {})",
                                   Rate(total_limit_.rate), total_limit_.burst));
      retry_ms = std::max(retry_ms, total_bucket_.MsUntilToken(now_ms, total_limit_));
    }
    return CommandVerdict{429, fmt::format("{}; retry in {} ms", Join(limits, "; "), retry_ms), "",
                          retry_ms};
  }
  total_bucket_ = {total_tokens - 1, now_ms};
  if (found != item_buckets_.end()) {
    found->second = {item_tokens - 1, now_ms};
    return std::nullopt;
  }
  if (item_buckets_.size() >= prune_at_) Prune(now_ms);
  item_buckets_.emplace(std::string(item), Bucket{item_tokens - 1, now_ms});
  return std::nullopt;
}

void CommandGate::Prune(std::int64_t now_ms) {
  const auto tokens = [&](const Bucket& b) { return b.At(now_ms, item_limit_); };
  const auto full = static_cast<double>(item_limit_.burst);
  std::erase_if(item_buckets_, [&](const auto& entry) { return tokens(entry.second) >= full; });
  while (item_buckets_.size() >= options_.max_item_buckets) {
    const auto fullest = std::max_element(
        item_buckets_.begin(), item_buckets_.end(),
        [&](const auto& a, const auto& b) { return tokens(a.second) < tokens(b.second); });
    item_buckets_.erase(fullest);
  }
  prune_at_ = std::min(std::max(kMinPruneAt, 2 * item_buckets_.size()), options_.max_item_buckets);
}

Result<std::optional<bool>> CommandMetadata(const openhab::Item& item) {
  if (!item.azure) return std::optional<bool>();
  const openhab::Json& config = item.azure->config;
  const auto it = config.find("command");
  if (it == config.end() || it->is_null()) return std::optional<bool>();
  if (it->is_boolean()) return std::optional<bool>(it->get<bool>());
  if (it->is_string()) {
    const auto& text = it->get_ref<const std::string&>();
    if (EqualsIgnoreCase(text, "true")) return std::optional<bool>(true);
    if (EqualsIgnoreCase(text, "false")) return std::optional<bool>(false);
  }
  return MakeError("bad_metadata",
                   fmt::format("item '{}': azureiothub metadata command={} is not true or false",
                               item.name, Given(*it)));
}

std::vector<std::string> AcceptedCommands(const openhab::Item& item) {
  const std::string_view base = item.base_type();
  const std::string_view kind = Kind(base);
  if (kind == "Switch") return {"ON", "OFF"};
  if (kind == "Dimmer") return {"ON", "OFF", "INCREASE", "DECREASE", "0-100"};
  if (kind == "Rollershutter") return {"UP", "DOWN", "STOP", "MOVE", "0-100"};
  if (kind == "Color") return {"ON", "OFF", "INCREASE", "DECREASE", "0-100", "H,S,B"};
  if (kind == "Number") {
    if (DimensionOf(base).empty()) return {"<number>"};
    const std::string unit = ItemUnit(item);
    return {"<number> " + (unit.empty() ? std::string("<unit>") : unit)};
  }
  if (kind == "Player") return {"PLAY", "PAUSE", "NEXT", "PREVIOUS", "REWIND", "FASTFORWARD"};
  if (kind == "String") return {"<text>"};
  if (kind == "DateTime") return {"<ISO 8601>"};
  if (kind == "Location") return {"<lat>,<lon>[,<alt>]"};
  if (kind == "Contact" || kind == "Image" || kind == "Call") return {};
  return {"<any>"};  // a plain group, or a type this connector does not know: openHAB decides
}

}  // namespace iothub::connector
