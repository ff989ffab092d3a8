#include "connector/config.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "azure/connection_string.h"
#include "connector/item_selection.h"
#include "openhab/rest_client.h"

namespace iothub::connector {
namespace {

using Keys = std::vector<std::string_view>;

// The keys each table takes; the contract of docs/configuration.md.
const std::map<std::string_view, Keys>& KnownKeys() {
  static const std::map<std::string_view, Keys> kKeys = {
      {"openhab", {"url", "token", "items", "exclude"}},
      {"iothub",
       {"connection_string", "mode", "layout", "gateway_device_id", "mqtt_endpoint",
        "https_endpoint", "ca_file", "properties"}},
      {"quota", {"tier", "units", "daily_messages", "reserve", "window_seconds"}},
      {"store", {"dir", "max_bytes"}},
      {"metrics", {"listen"}},
      {"commands",
       {"allow", "deny", "item_rate", "item_burst", "rate", "burst", "timeout", "max_wait"}},
      {"item", {"match", "priority", "deadband", "min_interval", "heartbeat", "send"}},
  };
  return kKeys;
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for the closest of `candidates`, when it is close.
std::string DidYouMean(std::string_view word, const Keys& candidates) {
  std::string_view best;
  std::size_t best_distance = 3;
  for (std::string_view c : candidates) {
    const std::size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best);
}

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// A number at the start of `text`; `rest` gets what follows.
std::optional<double> LeadingNumber(std::string_view text, std::string_view& rest) {
  std::size_t end = 0;
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) ||
                               text[end] == '.' || (end == 0 && text[end] == '-'))) {
    ++end;
  }
  if (end == 0) return std::nullopt;
  double value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, value);
  if (ec != std::errc() || ptr != text.data() + end || !std::isfinite(value)) return std::nullopt;
  rest = Trim(text.substr(end));
  return value;
}

// host:port (IPv6 in brackets), the port 1-65535.
bool IsHostPort(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  int value = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || value < 1 || value > 65535) {
    return false;
  }
  if (host.front() == '[') return host.back() == ']' && host.size() > 2;
  return host.find(':') == std::string_view::npos &&
         std::all_of(host.begin(), host.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
         });
}

// Whether `pattern` is an item pattern of openhab.items, by the rules the selection compiles
// them with (item_selection.h).
bool IsItemPattern(std::string_view pattern) { return ItemPattern::Compile(pattern).ok(); }

// Collects the problems of one parse; every message says where and which key.
class Checker {
 public:
  explicit Checker(std::string file) : file_(std::move(file)) {}

  void Problem(const toml::node* node, std::string_view key, const std::string& what) {
    problems_.push_back(fmt::format("{}: {}: {}", Where(node), key, what));
  }
  void Problem(const std::string& what) { problems_.push_back(file_ + ": " + what); }
  bool ok() const { return problems_.empty(); }
  std::string Joined() const {
    std::string out;
    for (const auto& p : problems_) out += (out.empty() ? "" : "\n") + p;
    return out;
  }
  // Where a value came from: the file and line, or the flag that set it.
  std::string Where(const toml::node* node) const {
    if (node == nullptr) return file_;
    const auto& source = node->source();
    if (source.path && source.path->rfind("--", 0) == 0) return *source.path;
    if (source.begin.line == 0) return file_;
    return fmt::format("{}:{}", file_, source.begin.line);
  }

  // The readers: absent keys leave `out` alone; a wrong type is a problem.
  void String(const toml::table& table, std::string_view section, std::string_view key,
              std::string& out) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return;
    if (const auto* v = node->as_string()) {
      out = v->get();
    } else {
      Problem(node, Name(section, key), "expected a string");
    }
  }
  void Strings(const toml::table& table, std::string_view section, std::string_view key,
               std::vector<std::string>& out) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return;
    const auto* array = node->as_array();
    std::vector<std::string> values;
    bool ok = array != nullptr;
    if (ok) {
      for (const auto& element : *array) {
        const auto* s = element.as_string();
        if (s == nullptr) {
          ok = false;
          break;
        }
        values.push_back(s->get());
      }
    }
    if (!ok) {
      Problem(node, Name(section, key), "expected an array of strings");
      return;
    }
    out = std::move(values);
  }
  template <typename T>
  void Integer(const toml::table& table, std::string_view section, std::string_view key, T& out,
               std::int64_t min, std::int64_t max, std::string_view expected = {}) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return;
    const auto* v = node->as_integer();
    if (v == nullptr || v->get() < min || v->get() > max) {
      Problem(node, Name(section, key),
              expected.empty() ? fmt::format("expected an integer from {} to {}", min, max)
                               : std::string(expected));
      return;
    }
    out = static_cast<T>(v->get());
  }
  void Number(const toml::table& table, std::string_view section, std::string_view key, double& out,
              double min, double max_exclusive) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return;
    std::optional<double> value;
    if (const auto* f = node->as_floating_point()) value = f->get();
    if (const auto* i = node->as_integer()) value = static_cast<double>(i->get());
    if (!value || *value < min || *value >= max_exclusive) {
      Problem(
          node, Name(section, key),
          fmt::format("expected a number from {} up to (not including) {}", min, max_exclusive));
      return;
    }
    out = *value;
  }
  // An array of item patterns (the syntax of openhab.items).
  void Patterns(const toml::table& table, std::string_view section, std::string_view key,
                std::vector<std::string>& out) {
    Strings(table, section, key, out);
    for (const auto& pattern : out) {
      if (!IsItemPattern(pattern)) {
        Problem(table.get(key), Name(section, key),
                fmt::format("'{}' is not an item pattern (a name or glob of letters, digits, "
                            "'_', '*' and '?'; @Group; #Tag)",
                            pattern));
      }
    }
  }
  // A duration: text as ParseDurationMs, or an integer number of seconds; at least `min_ms`.
  void Duration(const toml::table& table, std::string_view section, std::string_view key,
                std::int64_t& out_ms, std::int64_t min_ms = 0) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return;
    std::optional<std::int64_t> ms;
    if (const auto* text = node->as_string()) ms = ParseDurationMs(text->get());
    if (const auto* number = node->as_integer()) ms = number->get() * 1000;
    if (!ms || *ms < min_ms) {
      Problem(node, Name(section, key),
              min_ms > 0 ? fmt::format("expected a duration of at least {} ms: \"500ms\", "
                                       "\"10s\", \"5m\", \"1h\"",
                                       min_ms)
                         : std::string("expected a duration: \"500ms\", \"10s\", \"5m\", "
                                       "\"1h\", \"1d\""));
      return;
    }
    out_ms = *ms;
  }
  // A string one of `choices` (case-insensitive); returns its index.
  std::optional<std::size_t> Choice(const toml::table& table, std::string_view section,
                                    std::string_view key, const Keys& choices) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return std::nullopt;
    const auto* v = node->as_string();
    if (v != nullptr) {
      const std::string given = Lower(v->get());
      for (std::size_t i = 0; i < choices.size(); ++i) {
        if (given == choices[i]) return i;
      }
    }
    std::string list;
    for (const auto c : choices) list += (list.empty() ? "" : ", ") + fmt::format("\"{}\"", c);
    Problem(node, Name(section, key),
            fmt::format("expected one of {}{}", list,
                        v != nullptr ? fmt::format(", got \"{}\"{}", v->get(),
                                                   DidYouMean(Lower(v->get()), choices))
                                     : ""));
    return std::nullopt;
  }
  // Unknown keys of `table` are problems.
  void OnlyKnown(const toml::table& table, std::string_view section) {
    const Keys& known = KnownKeys().at(section);
    for (const auto& [key, node] : table) {
      if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
      Problem(&node, Name(section, key.str()), "unknown key" + DidYouMean(key.str(), known));
    }
  }

  static std::string Name(std::string_view section, std::string_view key) {
    return fmt::format("[{}] {}", section, key);
  }

 private:
  std::string file_;
  std::vector<std::string> problems_;
};

// The tables of the document, each checked for unknown keys.
void CheckTables(const toml::table& root, Checker& check) {
  Keys sections;
  for (const auto& [name, keys] : KnownKeys()) sections.push_back(name);
  for (const auto& [key, node] : root) {
    const std::string_view name = key.str();
    if (name == "item") {
      if (!node.is_array_of_tables()) {
        check.Problem(&node, "item", "expected [[item]] tables");
        continue;
      }
      for (const auto& rule : *node.as_array()) check.OnlyKnown(*rule.as_table(), "item");
      continue;
    }
    if (std::find(sections.begin(), sections.end(), name) == sections.end()) {
      check.Problem(&node, fmt::format("[{}]", name), "unknown table" + DidYouMean(name, sections));
      continue;
    }
    if (!node.is_table()) {
      check.Problem(&node, name, "expected a table ([" + std::string(name) + "])");
      continue;
    }
    check.OnlyKnown(*node.as_table(), name);
  }
}

const toml::table& Section(const toml::table& root, std::string_view name) {
  static const toml::table kEmpty;
  const auto* table = root.get_as<toml::table>(name);
  return table != nullptr ? *table : kEmpty;
}

void ReadOpenHab(const toml::table& t, Config::OpenHab& out, Checker& check) {
  check.String(t, "openhab", "url", out.url);
  if (t.contains("url")) {
    if (auto parsed = openhab::ParseServerUrl(out.url); !parsed) {
      check.Problem(t.get("url"), "[openhab] url", parsed.error().message);
    }
  }
  check.String(t, "openhab", "token", out.token);
  check.Patterns(t, "openhab", "items", out.items);
  check.Patterns(t, "openhab", "exclude", out.exclude);
}

void ReadIotHub(const toml::table& t, Config::IotHub& out, Checker& check) {
  check.String(t, "iothub", "connection_string", out.connection_string);
  if (auto mode =
          check.Choice(t, "iothub", "mode", {"publish", "publish-command", "publishcommand"})) {
    out.mode = *mode == 0 ? Mode::kPublish : Mode::kPublishCommand;
  }
  if (const toml::node* layout = t.get("layout")) {
    const auto* text = layout->as_string();
    if (text == nullptr || Lower(text->get()) != "gateway") {
      const bool later = text != nullptr &&
                         (Lower(text->get()) == "per-item" || Lower(text->get()) == "per-group");
      check.Problem(layout, "[iothub] layout",
                    later ? "only \"gateway\" is supported yet (per-item and per-group come later)"
                          : "expected \"gateway\"");
    }
  }
  check.String(t, "iothub", "gateway_device_id", out.gateway_device_id);
  if (!azure::IsMqttDeviceId(out.gateway_device_id)) {
    check.Problem(t.get("gateway_device_id"), "[iothub] gateway_device_id",
                  "expected a device id: 1 to 128 letters, digits or -:.%_*?!(),=@;$'");
  }
  for (auto [key, value] :
       {std::pair{"mqtt_endpoint", &out.mqtt_endpoint}, {"https_endpoint", &out.https_endpoint}}) {
    check.String(t, "iothub", key, *value);
    if (!value->empty() && !IsHostPort(*value)) {
      check.Problem(t.get(key), fmt::format("[iothub] {}", key),
                    fmt::format("expected host:port (e.g. localhost:8883), got \"{}\"", *value));
    }
  }
  check.String(t, "iothub", "ca_file", out.ca_file);
  if (const toml::node* node = t.get("properties")) {
    const auto* table = node->as_table();
    if (table == nullptr) {
      check.Problem(node, "[iothub] properties", "expected a table of strings");
    } else {
      for (const auto& [name, value] : *table) {
        const auto* text = value.as_string();
        if (text == nullptr || name.str().empty() || name.str().starts_with("$.")) {
          check.Problem(&value, fmt::format("[iothub] properties.{}", name.str()),
                        "expected a string value, under a name that does not start with '$.'");
          continue;
        }
        out.properties[std::string(name.str())] = text->get();
      }
    }
  }
}

void ReadQuota(const toml::table& t, Config::Quota& out, Checker& check) {
  if (const toml::node* node = t.get("tier")) {
    const auto* text = node->as_string();
    auto tier = text != nullptr ? azure::ParseTier(text->get())
                                : Result<azure::Tier>(MakeError("", "expected a string"));
    if (tier) {
      out.tier = *tier;
    } else {
      check.Problem(node, "[quota] tier",
                    text != nullptr ? tier.error().message
                                    : "expected one of \"free\", \"B1\", \"B2\", \"B3\", \"S1\", "
                                      "\"S2\", \"S3\"");
    }
  }
  check.Integer(t, "quota", "units", out.units, 1, 200);
  if (Status units = azure::CheckUnits(out.tier, out.units); !units) {
    check.Problem(t.get("units"), "[quota] units", units.error().message);
  }
  const std::int64_t quota = azure::DailyMessages(out.tier, out.units);
  check.Integer(t, "quota", "daily_messages", out.daily_messages, 0, quota,
                fmt::format("expected 0 (the whole quota) or a share of the tier's {} messages "
                            "a day",
                            quota));
  check.Number(t, "quota", "reserve", out.reserve, 0.0, 1.0);
  check.Integer(t, "quota", "window_seconds", out.window_seconds, 10, 86'400);
  if (t.contains("window_seconds") && 86'400 % out.window_seconds != 0) {
    check.Problem(t.get("window_seconds"), "[quota] window_seconds",
                  "must divide a day (86400) so that windows align to 00:00 UTC");
  }
}

void ReadCommands(const toml::table& t, Config::Commands& out, Checker& check) {
  check.Patterns(t, "commands", "allow", out.allow);
  check.Patterns(t, "commands", "deny", out.deny);
  check.Number(t, "commands", "item_rate", out.item_rate, 0.001, 1'000.0);
  check.Integer(t, "commands", "item_burst", out.item_burst, 1, 1'000);
  check.Number(t, "commands", "rate", out.rate, 0.001, 10'000.0);
  check.Integer(t, "commands", "burst", out.burst, 1, 10'000);
  check.Duration(t, "commands", "timeout", out.timeout_ms, 100);
  check.Duration(t, "commands", "max_wait", out.max_wait_ms, 0);
  // A method call waits at most 300 s for its answer on the service's side (reference §2).
  if (out.max_wait_ms > 300'000) {
    check.Problem(t.get("max_wait"), "[commands] max_wait",
                  "at most 300s: IoT Hub gives up on a direct method after 300 s");
  }
}

void ReadStore(const toml::table& t, Config::Store& out, Checker& check) {
  check.String(t, "store", "dir", out.dir);
  if (out.dir.empty()) check.Problem(t.get("dir"), "[store] dir", "must not be empty");
  if (const toml::node* node = t.get("max_bytes")) {
    std::optional<std::int64_t> bytes;
    if (const auto* text = node->as_string()) bytes = ParseByteSize(text->get());
    if (const auto* number = node->as_integer()) bytes = number->get();
    if (!bytes || *bytes < (std::int64_t{1} << 20)) {
      check.Problem(node, "[store] max_bytes",
                    "expected a size of at least 1MiB, e.g. \"64MiB\", \"1GiB\"");
    } else {
      out.max_bytes = *bytes;
    }
  }
}

void ReadItemRules(const toml::table& root, std::vector<ItemRule>& out, Checker& check) {
  const auto* rules = root.get_as<toml::array>("item");
  if (rules == nullptr || !rules->is_array_of_tables()) return;
  for (const auto& element : *rules) {
    const toml::table& t = *element.as_table();
    ItemRule rule;
    check.String(t, "item", "match", rule.match);
    if (!IsItemPattern(rule.match)) {
      check.Problem(t.contains("match") ? t.get("match") : &element, "[[item]] match",
                    "every [[item]] needs a match: an item pattern as in openhab.items");
    }
    if (auto p = check.Choice(t, "item", "priority",
                              {kPriorityNames[0], kPriorityNames[1], kPriorityNames[2]})) {
      rule.priority = static_cast<Priority>(*p);
    }
    if (auto s = check.Choice(t, "item", "send",
                              {kSendNames[0], kSendNames[1], kSendNames[2], kSendNames[3]})) {
      rule.send = static_cast<SendAs>(*s);
    }
    if (const toml::node* node = t.get("deadband")) {
      std::optional<Deadband> deadband;
      if (const auto* text = node->as_string()) deadband = ParseDeadband(text->get());
      if (const auto* number = node->as_floating_point())
        deadband = Deadband{false, number->get(), ""};
      if (const auto* number = node->as_integer()) {
        deadband = Deadband{false, static_cast<double>(number->get()), ""};
      }
      if (!deadband || deadband->amount < 0) {
        check.Problem(node, "[[item]] deadband",
                      "expected a percentage (\"5 %\") or an amount with its unit (\"0.2 °C\")");
      } else {
        rule.deadband = *deadband;
      }
    }
    for (auto [key, field] :
         {std::pair{"min_interval", &rule.min_interval_ms}, {"heartbeat", &rule.heartbeat_ms}}) {
      if (!t.contains(key)) continue;
      std::int64_t ms = -1;
      check.Duration(t, "[item]", key, ms);
      if (ms >= 0) *field = ms;
    }
    out.push_back(std::move(rule));
  }
}

// Applies `key = value` (value in TOML syntax) from the command line onto `root`.
void ApplyFlag(toml::table& root, const std::string& key, const std::string& value,
               Checker& check) {
  const std::string where = "--" + key;
  const auto dot = key.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == key.size()) {
    check.Problem(where + ": expected section.key=value, e.g. quota.units=2");
    return;
  }
  const std::string section = key.substr(0, dot);
  const std::string name = key.substr(dot + 1);
  const auto known = KnownKeys().find(section);
  if (known == KnownKeys().end() || section == "item") {
    Keys sections;
    for (const auto& [s, keys] : KnownKeys()) {
      if (s != "item") sections.push_back(s);
    }
    check.Problem(where + ": unknown section '" + section + "'" + DidYouMean(section, sections));
    return;
  }
  // A value that is not TOML is taken as a string, so that `iothub.mode=publish` needs no
  // quotes.
  std::string text = value;
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + text, std::string_view(where));
  } catch (const toml::parse_error&) {
    const toml::value<std::string> quoted(text);
    std::ostringstream escaped;
    escaped << quoted;
    try {
      parsed = toml::parse("v = " + escaped.str(), std::string_view(where));
    } catch (const toml::parse_error& e) {
      check.Problem(where + ": " + std::string(e.description()));
      return;
    }
  }
  toml::node* v = parsed.get("v");
  if (v == nullptr) return;
  if (!root.contains(section)) root.insert(section, toml::table{});
  auto* table = root.get_as<toml::table>(section);
  if (table == nullptr) return;  // a non-table section is reported by CheckTables
  table->insert_or_assign(name, std::move(*v));
}

using GetEnv = std::function<std::optional<std::string>(const char*)>;

// `getenv` may be empty: then the environment is not consulted.
Result<Config> Parse(std::string_view text, const std::string& file,
                     const std::vector<std::pair<std::string, std::string>>& flags,
                     const GetEnv& getenv) {
  Checker check(file);
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(file));
  } catch (const toml::parse_error& e) {
    return MakeError("config",
                     fmt::format("{}:{}:{}: not valid TOML: {}", file, e.source().begin.line,
                                 e.source().begin.column, e.description()));
  }
  for (const auto& [key, value] : flags) ApplyFlag(root, key, value, check);
  CheckTables(root, check);
  Config config;
  ReadOpenHab(Section(root, "openhab"), config.openhab, check);
  ReadIotHub(Section(root, "iothub"), config.iothub, check);
  ReadQuota(Section(root, "quota"), config.quota, check);
  ReadStore(Section(root, "store"), config.store, check);
  ReadCommands(Section(root, "commands"), config.commands, check);
  check.String(Section(root, "metrics"), "metrics", "listen", config.metrics.listen);
  // Port 0 lets the system pick one (the ready line says which): for tests and second copies.
  if (!config.metrics.listen.empty() && !IsHostPort(config.metrics.listen) &&
      !(config.metrics.listen.ends_with(":0") &&
        IsHostPort(config.metrics.listen.substr(0, config.metrics.listen.size() - 1) + "1"))) {
    check.Problem(Section(root, "metrics").get("listen"), "[metrics] listen",
                  "expected host:port (e.g. 127.0.0.1:9464), or \"\" for none");
  }
  ReadItemRules(root, config.items, check);

  if (getenv) {
    // Flags win over the environment, which wins over the file.
    auto flagged = [&](std::string_view key) {
      return std::any_of(flags.begin(), flags.end(), [&](const auto& f) { return f.first == key; });
    };
    if (auto cs = getenv("IOTHUB_CONNECTION_STRING");
        cs && !cs->empty() && !flagged("iothub.connection_string")) {
      config.iothub.connection_string = *cs;
    }
    if (auto token = getenv("OPENHAB_TOKEN");
        token && !token->empty() && !flagged("openhab.token")) {
      config.openhab.token = *token;
    }
  }
  const std::string& cs = config.iothub.connection_string;
  if (cs.empty()) {
    check.Problem(
        "[iothub] connection_string: required (in the file, as --connection-string, or in "
        "IOTHUB_CONNECTION_STRING)");
  } else if (cs.find("DeviceId=") != std::string::npos) {
    if (auto device = azure::ParseDeviceConnectionString(cs); !device) {
      check.Problem("[iothub] connection_string: not a valid device connection string: " +
                    device.error().message);
    }
  } else if (auto service = azure::ParseServiceConnectionString(cs); !service) {
    check.Problem(
        "[iothub] connection_string: not a valid connection string (a shared access policy's "
        "HostName, SharedAccessKeyName, SharedAccessKey, or a device's HostName, DeviceId, "
        "SharedAccessKey): " +
        service.error().message);
  }
  if (!check.ok()) return MakeError("config", check.Joined());
  return config;
}

}  // namespace

std::int64_t Config::DailyBudget() const {
  return quota.daily_messages != 0 ? quota.daily_messages
                                   : azure::DailyMessages(quota.tier, quota.units);
}

std::optional<std::int64_t> ParseDurationMs(std::string_view text) {
  std::string_view unit;
  const auto number = LeadingNumber(Trim(text), unit);
  if (!number || *number < 0) return std::nullopt;
  static const std::map<std::string_view, double> kUnits = {
      {"", 1000.0},      {"ms", 1.0},        {"s", 1000.0},      {"m", 60'000.0},
      {"min", 60'000.0}, {"h", 3'600'000.0}, {"d", 86'400'000.0}};
  const auto it = kUnits.find(unit);
  if (it == kUnits.end()) return std::nullopt;
  return static_cast<std::int64_t>(std::llround(*number * it->second));
}

std::optional<std::int64_t> ParseByteSize(std::string_view text) {
  std::string_view unit;
  const auto number = LeadingNumber(Trim(text), unit);
  if (!number || *number < 0) return std::nullopt;
  static const std::map<std::string, double> kUnits = {
      {"", 1.0},      {"b", 1.0},  {"kib", 1024.0}, {"mib", 1048576.0}, {"gib", 1073741824.0},
      {"kb", 1000.0}, {"mb", 1e6}, {"gb", 1e9}};
  const auto it = kUnits.find(Lower(unit));
  if (it == kUnits.end()) return std::nullopt;
  return static_cast<std::int64_t>(std::llround(*number * it->second));
}

std::optional<Deadband> ParseDeadband(std::string_view text) {
  std::string_view unit;
  const auto number = LeadingNumber(Trim(text), unit);
  if (!number || *number < 0) return std::nullopt;
  if (unit == "%") return Deadband{true, *number, ""};
  if (std::any_of(unit.begin(), unit.end(),
                  [](char c) { return std::isspace(static_cast<unsigned char>(c)); })) {
    return std::nullopt;
  }
  return Deadband{false, *number, std::string(unit)};
}

Result<Config> ParseConfig(std::string_view toml, std::string_view file_name,
                           const std::vector<std::pair<std::string, std::string>>& flags) {
  return Parse(toml, std::string(file_name), flags, nullptr);
}

Result<LoadedConfig> LoadConfig(const ConfigSources& sources) {
  LoadedConfig loaded;
  std::string text;
  std::string file = sources.file.empty() ? "(no config file)" : sources.file;
  if (!sources.file.empty()) {
    std::ifstream in(sources.file, std::ios::binary);
    if (!in) {
      return MakeError("config", fmt::format("{}: cannot read the config file: {}", sources.file,
                                             std::strerror(errno)));
    }
    std::ostringstream content;
    content << in.rdbuf();
    text = content.str();
    struct stat st {};
    if (::stat(sources.file.c_str(), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
      loaded.warnings.push_back(fmt::format(
          "{} is readable by other users (mode {:04o}) and may hold secrets: chmod 600 {}, or "
          "put them in IOTHUB_CONNECTION_STRING and OPENHAB_TOKEN",
          sources.file, st.st_mode & 07777, sources.file));
    }
  }
  GetEnv getenv = sources.getenv;
  if (!getenv) {
    getenv = [](const char* name) -> std::optional<std::string> {
      const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read at start-up
      return value == nullptr ? std::nullopt : std::optional<std::string>(value);
    };
  }
  auto config = Parse(text, file, sources.flags, getenv);
  if (!config) return config.error();
  loaded.config = std::move(config).value();
  return loaded;
}

}  // namespace iothub::connector
