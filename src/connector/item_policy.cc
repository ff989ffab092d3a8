#include "connector/item_policy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/strings.h"

namespace iothub::connector {
namespace {

constexpr std::string_view kKnownKeys =
    "priority, deadband, min_interval, heartbeat (and command, device for later use)";

// The value as given, for a message: JSON text, shortened.
std::string Given(const openhab::Json& value) {
  std::string text = value.dump(-1, ' ', false, openhab::Json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

template <std::size_t N>
std::optional<std::size_t> Choose(const openhab::Json& value,
                                  const std::string_view (&choices)[N]) {
  if (!value.is_string()) return std::nullopt;
  const auto& text = value.get_ref<const std::string&>();
  for (std::size_t i = 0; i < N; ++i) {
    if (EqualsIgnoreCase(text, choices[i])) return i;
  }
  return std::nullopt;
}

template <std::size_t N>
std::string OneOf(const std::string_view (&choices)[N]) {
  std::string out = "one of";
  for (std::size_t i = 0; i < N; ++i)
    out += fmt::format("{} \"{}\"", i == 0 ? "" : ",", choices[i]);
  return out;
}

std::optional<Deadband> ReadDeadband(const openhab::Json& value) {
  if (value.is_string()) return ParseDeadband(value.get_ref<const std::string&>());
  if (value.is_number()) {
    const double amount = value.get<double>();
    if (std::isfinite(amount) && amount >= 0) return Deadband{false, amount, ""};
  }
  return std::nullopt;
}

std::optional<std::int64_t> ReadDurationMs(const openhab::Json& value) {
  if (value.is_string()) return ParseDurationMs(value.get_ref<const std::string&>());
  if (value.is_number()) {
    const double seconds = value.get<double>();
    // Up to ~292 years in ms fits an int64; anything longer is no sensible setting.
    if (std::isfinite(seconds) && seconds >= 0 && seconds < 9e9) {
      return static_cast<std::int64_t>(std::llround(seconds * 1000));
    }
  }
  return std::nullopt;
}

}  // namespace

void ApplyMetadata(std::string_view item_name, const openhab::Metadata& metadata,
                   ItemPolicy& policy, std::vector<Error>& problems) {
  const auto problem = [&](std::string_view key, std::string_view expected,
                           const openhab::Json& given) {
    problems.push_back(MakeError(
        "bad_metadata",
        fmt::format("item {}: {} metadata: {}: expected {}, got {}; the configuration file's "
                    "setting is kept",
                    item_name, openhab::kMetadataNamespace, key, expected, Given(given))));
  };

  if (!metadata.value.empty()) {
    const openhab::Json value = metadata.value;
    if (const auto mode = Choose(value, kSendNames)) {
      policy.send = static_cast<SendAs>(*mode);
    } else {
      problem("value", OneOf(kSendNames) + " (the send mode) or nothing", value);
    }
  }
  if (!metadata.config.is_object()) return;
  for (const auto& [key, value] : metadata.config.items()) {
    if (key == "priority") {
      if (const auto p = Choose(value, kPriorityNames)) {
        policy.priority = static_cast<Priority>(*p);
      } else {
        problem(key, OneOf(kPriorityNames), value);
      }
    } else if (key == "deadband") {
      if (const auto deadband = ReadDeadband(value)) {
        policy.deadband = *deadband;
      } else {
        problem(key, "a percentage (\"5 %\") or an amount with its unit (\"0.5 °C\", \"10 W\")",
                value);
      }
    } else if (key == "min_interval" || key == "heartbeat") {
      if (const auto ms = ReadDurationMs(value)) {
        (key == "heartbeat" ? policy.heartbeat_ms : policy.min_interval_ms) = *ms;
      } else {
        problem(key, "a duration (\"500ms\", \"10s\", \"5m\", \"1h\", \"1d\", or seconds)", value);
      }
    } else if (key == "command") {
      // Read by the command gate; said here, with the item's other metadata problems, when
      // the item is (re)read rather than only in a refused command's answer.
      const bool boolean =
          value.is_boolean() ||
          (value.is_string() && (EqualsIgnoreCase(value.get<std::string>(), "true") ||
                                 EqualsIgnoreCase(value.get<std::string>(), "false")));
      if (!boolean) {
        problems.push_back(MakeError(
            "bad_metadata",
            fmt::format("item {}: {} metadata: command: expected true or false, got {}; commands "
                        "follow [commands] allow and deny",
                        item_name, openhab::kMetadataNamespace, Given(value))));
      }
    } else if (std::find(std::begin(kReservedMetadataKeys), std::end(kReservedMetadataKeys), key) ==
               std::end(kReservedMetadataKeys)) {
      problems.push_back(MakeError(
          "bad_metadata", fmt::format("item {}: {} metadata: unknown key '{}' (known: {}); ignored",
                                      item_name, openhab::kMetadataNamespace, key, kKnownKeys)));
    }
  }
}

Result<PolicyResolver> PolicyResolver::Create(std::vector<ItemRule> rules) {
  std::vector<ItemPattern> patterns;
  patterns.reserve(rules.size());
  std::string problems;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    auto pattern = ItemPattern::Compile(rules[i].match);
    if (!pattern) {
      problems += fmt::format("{}[[item]] #{} match: {}", problems.empty() ? "" : "\n", i + 1,
                              pattern.error().message);
      continue;
    }
    patterns.push_back(std::move(pattern).value());
  }
  if (!problems.empty()) return MakeError("bad_pattern", problems);
  return PolicyResolver(std::move(rules), std::move(patterns));
}

ResolvedPolicy PolicyResolver::Resolve(const openhab::Item& item,
                                       const GroupMembership& groups) const {
  ResolvedPolicy out;
  ItemPolicy& p = out.policy;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    if (!patterns_[i].Matches(item, groups)) continue;
    const ItemRule& rule = rules_[i];
    if (rule.priority) p.priority = *rule.priority;
    if (rule.deadband) p.deadband = rule.deadband;
    if (rule.min_interval_ms) p.min_interval_ms = *rule.min_interval_ms;
    if (rule.heartbeat_ms) p.heartbeat_ms = *rule.heartbeat_ms;
    if (rule.send) p.send = *rule.send;
  }
  if (item.azure) ApplyMetadata(item.name, *item.azure, p, out.problems);
  return out;
}

}  // namespace iothub::connector
