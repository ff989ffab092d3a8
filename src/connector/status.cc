#include "connector/status.h"

#include <fmt/format.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <string_view>
#include <utility>

namespace iothub::connector {

// Member names are the JSON field names (docs/metrics.md): renaming a member renames a field.
// A field missing from a document keeps the member's default.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::Connector, version, started_ms,
                                                now_ms, mode, layout, config_file, store_dir, pid,
                                                resident_bytes, store_free_bytes, loop_lag_ms,
                                                warnings)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::OpenHab, url, stream_up,
                                                stream_detail, stream_since_ms, server_version,
                                                admin, items_known, items_selected, resyncs, events,
                                                bad_events, problems, last_event_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::Hub, host_name, device_id,
                                                credential, session_state, session_detail,
                                                session_since_ms, connects, connection_losses,
                                                renewals, throttled, in_flight, quota_state,
                                                quota_resumes_at_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::Budget, tier, chunk_bytes,
                                                daily_budget, reserve_fraction, window_seconds,
                                                window_start_ms, used, left, reserve_used,
                                                pace_allowed, burst, staleness_bound_seconds)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::KindCounts, changes, snapshot,
                                                things)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::Telemetry, messages_sent,
                                                messages_delivered, messages_resent, entries_sent,
                                                bytes, billed_chunks, last_delivered_ms, by_kind)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::Outbox, pending_entries,
                                                sealed_messages, oldest_pending_age_ms, file_bytes,
                                                max_bytes, accepted, merged, full, last_error)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::Twin, enabled, disabled_reason,
                                                patches_sent, patches_failed, items_left_out,
                                                reported_bytes, last_patch_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::Commands::Count, path, status,
                                                count)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::Commands::Recent, time_ms, path,
                                                item, command, status, message, latency_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::Commands, mode, pending,
                                                audit_errors, counts, recent)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::Things, known, by_status)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::Item, name, type, priority, send,
                                                last_change_ms, last_delivered_ms, staleness_ms,
                                                pending, merged, suppressed)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusSnapshot::ErrorCount, kind, count,
                                                last_message, last_ms)

namespace {

using Item = StatusSnapshot::Item;

bool MoreUrgent(const Item& a, const Item& b) {
  if (a.staleness_ms != b.staleness_ms) return a.staleness_ms > b.staleness_ms;
  if (a.merged != b.merged) return a.merged > b.merged;
  if (a.suppressed != b.suppressed) return a.suppressed > b.suppressed;
  return a.name < b.name;
}

// ---- Prometheus text format 0.0.4 -------------------------------------------------------

std::string EscapeLabel(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Writes families one after the other: each Family() call starts one (HELP and TYPE lines),
// and the samples that follow belong to it.
class Exposition {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, EscapeHelp(help),
                   name, type);
  }
  void Sample(Labels labels, std::string_view value) {
    out_ += name_;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [key, label_value] : labels) {
        if (!first) out_ += ',';
        first = false;
        fmt::format_to(std::back_inserter(out_), "{}=\"{}\"", key, EscapeLabel(label_value));
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void Sample(Labels labels, std::int64_t value) { Sample(labels, std::to_string(value)); }
  void Sample(Labels labels, double value) { Sample(labels, FormatValue(value)); }

  // A family with one unlabelled sample.
  void Gauge(std::string_view name, std::string_view help, std::int64_t value) {
    Family(name, "gauge", help);
    Sample({}, value);
  }
  void Gauge(std::string_view name, std::string_view help, double value) {
    Family(name, "gauge", help);
    Sample({}, value);
  }
  void Counter(std::string_view name, std::string_view help, std::int64_t value) {
    Family(name, "counter", help);
    Sample({}, value);
  }
  // An epoch-milliseconds time as seconds (0 stays 0: never).
  void Timestamp(std::string_view name, std::string_view help, std::int64_t ms) {
    Gauge(name, help, static_cast<double>(ms) / 1000.0);
  }

  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
  std::string name_;
};

double Seconds(std::int64_t ms) { return static_cast<double>(ms) / 1000.0; }
std::int64_t Bool(bool b) { return b ? 1 : 0; }

// ---- text for people --------------------------------------------------------------------

constexpr std::size_t kWidth = 80;
constexpr std::size_t kLabelWidth = 14;  // "  last error  " and section titles

// Display width of UTF-8 text: one column per code point (enough for names and units).
std::size_t Columns(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// `text` cut to `width` columns, ending in "..." when cut; never splits a UTF-8 sequence.
std::string Fit(std::string_view text, std::size_t width) {
  std::string flat(text);
  std::replace(flat.begin(), flat.end(), '\n', ' ');
  std::replace(flat.begin(), flat.end(), '\r', ' ');
  std::replace(flat.begin(), flat.end(), '\t', ' ');
  if (Columns(flat) <= width) return flat;
  if (width <= 3) return std::string(width, '.');
  std::size_t columns = 0;
  std::size_t end = 0;
  while (end < flat.size()) {
    std::size_t next = end + 1;
    while (next < flat.size() && (static_cast<unsigned char>(flat[next]) & 0xC0) == 0x80) ++next;
    if (columns + 1 > width - 3) break;
    ++columns;
    end = next;
  }
  return flat.substr(0, end) + "...";
}

std::string Pad(std::string_view text, std::size_t width) {
  std::string out(text);
  const std::size_t columns = Columns(text);
  if (columns < width) out.append(width - columns, ' ');
  return out;
}

std::string PadLeft(std::string_view text, std::size_t width) {
  const std::size_t columns = Columns(text);
  return (columns < width ? std::string(width - columns, ' ') : std::string()) + std::string(text);
}

std::string Count(std::int64_t n) {
  const std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string Bytes(std::int64_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  static constexpr std::string_view kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(n) / 1024.0;
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
    value /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string Duration(std::int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 1000) return fmt::format("{} ms", ms);
  if (ms < 60'000) return fmt::format("{:.1f} s", static_cast<double>(ms) / 1000.0);
  const std::int64_t s = ms / 1000;
  if (s < 3600) return fmt::format("{}m {}s", s / 60, s % 60);
  if (s < 86'400) return fmt::format("{}h {}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d {}h", s / 86'400, (s % 86'400) / 3600);
}

// A budget window's length: "24h", "10m", "90s".
std::string WindowLength(std::int64_t seconds) {
  if (seconds > 0 && seconds % 3600 == 0) return fmt::format("{}h", seconds / 3600);
  if (seconds > 0 && seconds % 60 == 0) return fmt::format("{}m", seconds / 60);
  return fmt::format("{}s", seconds);
}

std::string Ago(std::int64_t now_ms, std::int64_t then_ms) {
  if (then_ms <= 0) return "never";
  return Duration(now_ms - then_ms) + " ago";
}

std::string UtcTime(std::int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string Percent(std::int64_t part, std::int64_t whole) {
  if (whole <= 0) return "-";
  return fmt::format("{:.1f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

class PeopleText {
 public:
  explicit PeopleText(bool colour) : colour_(colour) {}

  // A section's first line: its title in bold, then `text`.
  void Title(std::string_view title, std::string_view text) {
    if (!out_.empty()) out_ += '\n';
    const std::string padded = Pad(title, kLabelWidth);
    out_ += Paint("1", padded);
    out_ += Fit(text, kWidth - kLabelWidth);
    out_ += '\n';
  }
  // An indented `label  text` line; `tone` colours the text ("" none, "31" red, "32" green,
  // "33" yellow).
  void Line(std::string_view label, std::string_view text, std::string_view tone = "") {
    out_ += Pad(std::string("  ") + std::string(label), kLabelWidth);
    out_ += Paint(tone, Fit(text, kWidth - kLabelWidth));
    out_ += '\n';
  }
  void Raw(std::string_view line) {
    out_ += Fit(line, kWidth);
    out_ += '\n';
  }
  std::string Paint(std::string_view tone, std::string_view text) const {
    if (!colour_ || tone.empty()) return std::string(text);
    return fmt::format("\x1b[{}m{}\x1b[0m", tone, text);
  }
  std::string Take() { return std::move(out_); }

 private:
  bool colour_;
  std::string out_;
};

constexpr std::string_view kRed = "31";
constexpr std::string_view kGreen = "32";
constexpr std::string_view kYellow = "33";

void RenderConnector(const StatusSnapshot& s, PeopleText& text) {
  const auto& c = s.connector;
  std::string head = "iothub-connector " + (c.version.empty() ? std::string("?") : c.version);
  if (!c.mode.empty()) head += ", " + c.mode + " mode";
  if (c.started_ms > 0) head += ", up " + Duration(c.now_ms - c.started_ms);
  if (c.pid > 0) head += fmt::format(", pid {}", c.pid);
  if (c.resident_bytes > 0) head += ", " + Bytes(c.resident_bytes) + " resident";
  text.Raw(text.Paint("1", Fit(head, kWidth)));
  text.Line("config", c.config_file.empty() ? "(flags only)" : c.config_file);
  if (!c.store_dir.empty()) {
    text.Line("store", c.store_free_bytes >= 0
                           ? fmt::format("{} ({} free)", c.store_dir, Bytes(c.store_free_bytes))
                           : c.store_dir);
  }
  if (c.now_ms > 0) text.Line("time", UtcTime(c.now_ms));
  if (c.loop_lag_ms >= 100) {
    text.Line("loop lag", Duration(c.loop_lag_ms) + " (the event loop is busy)", kYellow);
  }
  for (const auto& warning : c.warnings) text.Line("warning", warning, kYellow);
}

void RenderOpenHab(const StatusSnapshot& s, PeopleText& text) {
  const auto& o = s.openhab;
  const std::int64_t now = s.connector.now_ms;
  std::string head = o.url.empty() ? std::string("(unknown URL)") : o.url;
  if (!o.server_version.empty() || o.admin) {
    head += " (";
    if (!o.server_version.empty()) head += "openHAB " + o.server_version;
    if (o.admin) head += std::string(o.server_version.empty() ? "" : ", ") + "admin token";
    head += ")";
  }
  text.Title("openHAB", head);
  std::string stream = o.stream_up ? "up" : "DOWN";
  if (o.stream_since_ms > 0) stream += " for " + Duration(now - o.stream_since_ms);
  if (!o.stream_detail.empty()) stream += ": " + o.stream_detail;
  text.Line("stream", stream, o.stream_up ? kGreen : kRed);
  text.Line("items",
            fmt::format("{} known, {} selected", Count(o.items_known), Count(o.items_selected)));
  text.Line("events", fmt::format("{} read, {} bad, {} resyncs, {} problems, last {}",
                                  Count(o.events), Count(o.bad_events), Count(o.resyncs),
                                  Count(o.problems), Ago(now, o.last_event_ms)));
}

void RenderHub(const StatusSnapshot& s, PeopleText& text) {
  const auto& h = s.hub;
  const std::int64_t now = s.connector.now_ms;
  std::string head = h.host_name.empty() ? std::string("(unknown hub)") : h.host_name;
  if (!h.device_id.empty()) head += ", device " + h.device_id;
  if (!h.credential.empty()) head += " (" + h.credential + " credential)";
  text.Title("IoT Hub", head);
  std::string session = h.session_state.empty() ? std::string("unknown") : h.session_state;
  if (h.session_since_ms > 0) session += " for " + Duration(now - h.session_since_ms);
  text.Line("session", session, h.session_state == "connected" ? kGreen : kRed);
  if (!h.session_detail.empty()) text.Line("detail", h.session_detail);
  text.Line("connects", fmt::format("{}, {} lost, {} token renewals, {} throttled, {} in flight",
                                    Count(h.connects), Count(h.connection_losses),
                                    Count(h.renewals), Count(h.throttled), Count(h.in_flight)));
  if (h.quota_state == "ok" || h.quota_state.empty()) {
    text.Line("quota", "ok", kGreen);
  } else {
    std::string quota = h.quota_state;
    if (h.quota_resumes_at_ms > 0) {
      quota += fmt::format(", resumes {} (in {})", UtcTime(h.quota_resumes_at_ms),
                           Duration(h.quota_resumes_at_ms - now));
    }
    text.Line("quota", quota, kRed);
  }
}

void RenderBudget(const StatusSnapshot& s, PeopleText& text) {
  const auto& b = s.budget;
  const std::int64_t now = s.connector.now_ms;
  text.Title("Budget", fmt::format("{} tier: {} messages per {}, {} chunks, {:.0f}% reserve",
                                   b.tier.empty() ? "?" : b.tier, Count(b.daily_budget),
                                   WindowLength(b.window_seconds), Bytes(b.chunk_bytes),
                                   b.reserve_fraction * 100.0));
  if (b.window_start_ms > 0) {
    text.Line("window", fmt::format("since {} ({})", UtcTime(b.window_start_ms),
                                    Ago(now, b.window_start_ms)));
  }
  text.Line("used",
            fmt::format("{} ({}), {} left, {} from the reserve", Count(b.used),
                        Percent(b.used, b.daily_budget), Count(b.left), Count(b.reserve_used)),
            b.left <= 0 && b.daily_budget > 0 ? kRed : "");
  std::string pace =
      fmt::format("{} allowed now (burst {})", Count(b.pace_allowed), Count(b.burst));
  if (b.used <= b.pace_allowed) {
    pace += fmt::format(": {} under the pace line", Count(b.pace_allowed - b.used));
  } else {
    pace += fmt::format(": {} OVER the pace line", Count(b.used - b.pace_allowed));
  }
  text.Line("pace", pace, b.used <= b.pace_allowed ? "" : kRed);
  text.Line("staleness",
            "bounded at " + Duration(std::llround(b.staleness_bound_seconds * 1000.0)));
}

void RenderTelemetry(const StatusSnapshot& s, PeopleText& text) {
  const auto& t = s.telemetry;
  text.Title("Telemetry",
             fmt::format("{} messages sent, {} delivered, {} resent", Count(t.messages_sent),
                         Count(t.messages_delivered), Count(t.messages_resent)));
  text.Line("by kind", fmt::format("{} changes, {} snapshot, {} things", Count(t.by_kind.changes),
                                   Count(t.by_kind.snapshot), Count(t.by_kind.things)));
  text.Line("carried", fmt::format("{} entries, {}, {} billed chunks", Count(t.entries_sent),
                                   Bytes(t.bytes), Count(t.billed_chunks)));
  text.Line("delivered", "last " + Ago(s.connector.now_ms, t.last_delivered_ms));
}

void RenderOutbox(const StatusSnapshot& s, PeopleText& text) {
  const auto& o = s.outbox;
  std::string head = fmt::format("{} pending entries in {} sealed messages",
                                 Count(o.pending_entries), Count(o.sealed_messages));
  if (o.pending_entries > 0) head += ", oldest " + Duration(o.oldest_pending_age_ms);
  text.Title("Outbox", head);
  text.Line("disk", o.max_bytes > 0
                        ? fmt::format("{} of {}", Bytes(o.file_bytes), Bytes(o.max_bytes))
                        : Bytes(o.file_bytes));
  text.Line("history", fmt::format("{} accepted, {} merged", Count(o.accepted), Count(o.merged)));
  if (o.full) text.Line("FULL", "at max_bytes: older history is being merged", kRed);
  if (!o.last_error.empty()) text.Line("last error", o.last_error, kRed);
}

void RenderTwin(const StatusSnapshot& s, PeopleText& text) {
  const auto& t = s.twin;
  if (!t.enabled) {
    text.Title("Twin", t.disabled_reason.empty() ? "off" : "off: " + t.disabled_reason);
    return;
  }
  text.Title("Twin",
             fmt::format("on: {} patches ({} failed), {} reported, last {}", Count(t.patches_sent),
                         Count(t.patches_failed), Bytes(t.reported_bytes),
                         Ago(s.connector.now_ms, t.last_patch_ms)));
  if (t.items_left_out > 0) {
    text.Line("left out", fmt::format("{} items (past the twin's 32 KB)", Count(t.items_left_out)),
              kYellow);
  }
}

void RenderCommands(const StatusSnapshot& s, PeopleText& text) {
  const auto& k = s.commands;
  if (k.mode != "publish-command") {
    text.Title("Commands", "off (publish mode: methods are answered 405)");
    if (k.counts.empty()) return;
  } else {
    std::int64_t total = 0;
    for (const auto& c : k.counts) total += c.count;
    text.Title("Commands",
               fmt::format("on: {} received, {} pending", Count(total), Count(k.pending)));
  }
  std::map<std::string, std::string> by_path;
  for (const auto& c : k.counts) {
    std::string& line = by_path[c.path];
    line += fmt::format("{}{} × {}", line.empty() ? "" : ", ", Count(c.count), c.status);
  }
  for (const auto& [path, line] : by_path) text.Line(path, line);
  if (k.audit_errors > 0) {
    text.Line("audit", fmt::format("{} lines lost to disk errors", Count(k.audit_errors)), kRed);
  }
  // The last three, newest first.
  for (std::size_t i = 0; i < k.recent.size() && i < 3; ++i) {
    const auto& r = k.recent[k.recent.size() - 1 - i];
    text.Line(i == 0 ? "last" : "",
              fmt::format("{} {} {} → {} ({} ms), {}", r.path, r.item, r.command.substr(0, 24),
                          r.status, r.latency_ms, Ago(s.connector.now_ms, r.time_ms)),
              r.status >= 400 ? kYellow : std::string_view());
  }
}

void RenderThings(const StatusSnapshot& s, PeopleText& text) {
  const auto& t = s.things;
  if (t.known == 0 && t.by_status.empty()) return;
  std::string line = fmt::format("{} known", Count(t.known));
  const char* sep = ": ";
  for (const auto& [status, n] : t.by_status) {
    line += fmt::format("{}{} {}", sep, Count(n), status);
    sep = ", ";
  }
  text.Title("Things", line);
}

struct Summary {
  std::int64_t total = 0;
  std::int64_t omitted = 0;
  std::int64_t stale = 0;
  std::int64_t max_staleness_ms = 0;
  std::int64_t merged = 0;
  std::int64_t suppressed = 0;
};

Summary Summarize(const std::vector<Item>& items) {
  Summary sum;
  sum.total = static_cast<std::int64_t>(items.size());
  for (const Item& item : items) {
    if (item.staleness_ms > 0) ++sum.stale;
    sum.max_staleness_ms = std::max(sum.max_staleness_ms, item.staleness_ms);
    sum.merged += item.merged;
    sum.suppressed += item.suppressed;
  }
  return sum;
}

void RenderItems(const StatusSnapshot& s, const Summary& sum, std::size_t top, PeopleText& text) {
  std::vector<Item> items = s.items;
  SortByAttention(items);
  text.Title("Items",
             fmt::format("{} selected: {} stale (longest {}), {} merged, {} suppressed",
                         Count(sum.total), Count(sum.stale), Duration(sum.max_staleness_ms),
                         Count(sum.merged), Count(sum.suppressed)));
  std::vector<const Item*> shown;
  for (const Item& item : items) {
    if (shown.size() >= top) break;
    if (item.staleness_ms > 0 || item.merged > 0) shown.push_back(&item);
  }
  if (shown.empty()) {
    text.Line("stalest", "none: every item's latest state is delivered", kGreen);
    return;
  }
  // 2 + 28 + 1 + 19 + 1 + 8 + 1 + 7 + 1 + 12 = 80 columns.
  text.Raw(fmt::format("  {} {} {} {} {}", Pad("STALEST ITEMS", 28), Pad("TYPE", 19),
                       PadLeft("STALE", 8), PadLeft("MERGED", 7), PadLeft("LAST CHANGE", 12)));
  for (const Item* item : shown) {
    text.Raw(fmt::format("  {} {} {} {} {}", Pad(Fit(item->name, 28), 28),
                         Pad(Fit(item->type, 19), 19),
                         PadLeft(item->staleness_ms > 0 ? Duration(item->staleness_ms) : "-", 8),
                         PadLeft(Count(item->merged), 7),
                         PadLeft(Fit(Ago(s.connector.now_ms, item->last_change_ms), 12), 12)));
  }
}

void RenderErrors(const StatusSnapshot& s, PeopleText& text) {
  if (s.errors.empty()) return;
  std::int64_t total = 0;
  for (const auto& e : s.errors) total += e.count;
  text.Title("Errors", fmt::format("{} since start", Count(total)));
  for (const auto& e : s.errors) {
    std::string line = fmt::format("  {}: {}, last {}", e.kind, Count(e.count),
                                   Ago(s.connector.now_ms, e.last_ms));
    if (!e.last_message.empty()) line += ": " + e.last_message;
    text.Raw(text.Paint(kRed, Fit(line, kWidth)));
  }
}

}  // namespace

void SortByAttention(std::vector<StatusSnapshot::Item>& items) {
  std::sort(items.begin(), items.end(), MoreUrgent);
}

std::string RenderPrometheus(const StatusSnapshot& s, std::size_t max_item_series) {
  Exposition e;
  const std::string p = "iothub_connector_";
  auto n = [&p](std::string_view name) { return p + std::string(name); };

  const auto& c = s.connector;
  e.Family(n("info"), "gauge", "The connector's version, mode and identity layout (always 1).");
  e.Sample({{"version", c.version}, {"mode", c.mode}, {"layout", c.layout}}, std::int64_t{1});
  e.Timestamp(n("start_time_seconds"), "When the process started, seconds since the epoch.",
              c.started_ms);
  if (c.resident_bytes > 0) {
    e.Gauge(n("resident_memory_bytes"), "Resident memory of the process.", c.resident_bytes);
  }
  if (c.store_free_bytes >= 0) {
    e.Gauge(n("store_free_bytes"), "Disk space left where the outbox is stored.",
            c.store_free_bytes);
  }
  e.Gauge(n("loop_lag_seconds"), "How long this scrape waited for the connector's event loop.",
          Seconds(c.loop_lag_ms));
  e.Gauge(n("warnings"), "Standing configuration warnings (the status JSON lists them).",
          static_cast<std::int64_t>(c.warnings.size()));

  const auto& o = s.openhab;
  e.Family(n("openhab_info"), "gauge", "The openHAB server replicated (always 1).");
  e.Sample(
      {{"url", o.url}, {"server_version", o.server_version}, {"admin", o.admin ? "true" : "false"}},
      std::int64_t{1});
  e.Gauge(n("openhab_stream_up"), "1 while openHAB's event stream is open and in sync.",
          Bool(o.stream_up));
  e.Gauge(n("openhab_items_known"), "Items openHAB has.", o.items_known);
  e.Gauge(n("openhab_items_selected"), "Items selected for replication (openhab.items/exclude).",
          o.items_selected);
  e.Counter(n("openhab_resyncs_total"), "Full item reads after the first (stream reconnects).",
            o.resyncs);
  e.Counter(n("openhab_events_total"), "Events read from openHAB's event stream.", o.events);
  e.Counter(n("openhab_bad_events_total"), "Events that could not be understood and were skipped.",
            o.bad_events);
  e.Counter(n("openhab_problems_total"), "Items or things skipped while reading openHAB's lists.",
            o.problems);
  e.Timestamp(n("openhab_last_event_timestamp_seconds"),
              "When the last event arrived, seconds since the epoch (0: none yet).",
              o.last_event_ms);

  const auto& h = s.hub;
  e.Family(n("hub_info"), "gauge", "The IoT Hub and device the connector sends to (always 1).");
  e.Sample({{"host", h.host_name}, {"device_id", h.device_id}, {"credential", h.credential}},
           std::int64_t{1});
  e.Family(n("hub_session_state"), "gauge",
           "The device session's current state: one series, valued 1, labelled with it.");
  e.Sample({{"state", h.session_state.empty() ? "unknown" : h.session_state}}, std::int64_t{1});
  e.Gauge(n("hub_connected"), "1 while the device session is connected.",
          Bool(h.session_state == "connected"));
  e.Counter(n("hub_connects_total"), "Successful connections to the hub.", h.connects);
  e.Counter(n("hub_connection_losses_total"), "Connections to the hub lost.", h.connection_losses);
  e.Counter(n("hub_token_renewals_total"), "SAS token renewals.", h.renewals);
  e.Counter(n("hub_throttled_total"), "Times the hub throttled the connector.", h.throttled);
  e.Gauge(n("hub_in_flight_messages"), "Messages published and awaiting the hub's PUBACK.",
          h.in_flight);
  e.Gauge(n("hub_quota_exhausted"), "1 while the hub's daily quota is spent (sending stopped).",
          Bool(!h.quota_state.empty() && h.quota_state != "ok"));
  e.Timestamp(n("hub_quota_resume_timestamp_seconds"),
              "When sending resumes after quota exhaustion, seconds since the epoch (0: not "
              "waiting).",
              h.quota_resumes_at_ms);

  const auto& b = s.budget;
  e.Family(n("budget_info"), "gauge", "The IoT Hub tier the budget follows (always 1).");
  e.Sample({{"tier", b.tier}}, std::int64_t{1});
  e.Gauge(n("budget_chunk_bytes"), "The hub's metering chunk (512 on Free, 4096 on paid tiers).",
          b.chunk_bytes);
  e.Gauge(n("budget_daily_messages"), "Billed messages the connector may spend per window.",
          b.daily_budget);
  e.Gauge(n("budget_reserve_ratio"),
          "Fraction of the budget kept for commands, acknowledgements and twin reads.",
          b.reserve_fraction);
  e.Gauge(n("budget_window_seconds"), "Length of the budget window.", b.window_seconds);
  e.Timestamp(n("budget_window_start_timestamp_seconds"),
              "When the current budget window began, seconds since the epoch.", b.window_start_ms);
  e.Gauge(n("budget_used_messages"), "Billed messages (chunks) spent in the current window.",
          b.used);
  e.Gauge(n("budget_left_messages"), "Billed messages left in the current window.", b.left);
  e.Gauge(n("budget_reserve_used_messages"), "Of the used messages, those spent from the reserve.",
          b.reserve_used);
  e.Gauge(n("budget_pace_allowed_messages"),
          "The pace line: what may have been spent by now (elapsed share plus burst).",
          b.pace_allowed);
  e.Gauge(n("budget_burst_messages"), "How far ahead of the elapsed share the pace line runs.",
          b.burst);
  e.Gauge(n("budget_staleness_bound_seconds"),
          "The longest an accepted state can wait for delivery under this budget (computed).",
          b.staleness_bound_seconds);

  const auto& t = s.telemetry;
  e.Counter(n("telemetry_messages_sent_total"), "Telemetry messages published (first sends).",
            t.messages_sent);
  e.Counter(n("telemetry_messages_delivered_total"),
            "Telemetry messages acknowledged by the hub (PUBACK).", t.messages_delivered);
  e.Counter(n("telemetry_messages_resent_total"),
            "Telemetry messages published again with the same message id.", t.messages_resent);
  e.Family(n("telemetry_messages_sent_by_kind_total"), "counter",
           "Telemetry messages published, by the kind of entries they carry.");
  e.Sample({{"kind", "changes"}}, t.by_kind.changes);
  e.Sample({{"kind", "snapshot"}}, t.by_kind.snapshot);
  e.Sample({{"kind", "things"}}, t.by_kind.things);
  e.Counter(n("telemetry_entries_sent_total"),
            "Item changes, snapshot states and thing statuses carried in telemetry.",
            t.entries_sent);
  e.Counter(n("telemetry_sent_bytes_total"), "Telemetry payload bytes published, resends included.",
            t.bytes);
  e.Counter(n("telemetry_billed_chunks_total"),
            "Metering chunks the telemetry cost, as the hub counts them.", t.billed_chunks);
  e.Timestamp(n("telemetry_last_delivered_timestamp_seconds"),
              "When the hub last acknowledged a telemetry message (0: never).",
              t.last_delivered_ms);

  const auto& x = s.outbox;
  e.Gauge(n("outbox_pending_entries"), "Accepted entries the hub has not acknowledged yet.",
          x.pending_entries);
  e.Gauge(n("outbox_sealed_messages"), "Messages built and awaiting their acknowledgement.",
          x.sealed_messages);
  e.Gauge(n("outbox_oldest_pending_age_seconds"), "How long the oldest pending entry has waited.",
          Seconds(x.oldest_pending_age_ms));
  e.Gauge(n("outbox_file_bytes"), "Size of the outbox database and its WAL on disk.", x.file_bytes);
  e.Gauge(n("outbox_max_bytes"), "The outbox's disk bound ([store] max_bytes).", x.max_bytes);
  e.Counter(n("outbox_accepted_entries_total"), "Entries made durable in the outbox.", x.accepted);
  e.Counter(n("outbox_merged_entries_total"),
            "Entries merged into a later state of their item (budget or disk bound).", x.merged);
  e.Gauge(n("outbox_full"), "1 while the outbox is at max_bytes and merges older history.",
          Bool(x.full));

  const auto& w = s.twin;
  e.Gauge(n("twin_enabled"), "1 when reported properties are kept (0 on basic tiers).",
          Bool(w.enabled));
  e.Counter(n("twin_patches_sent_total"), "Reported-property patches the hub acknowledged.",
            w.patches_sent);
  e.Counter(n("twin_patches_failed_total"), "Reported-property patches that failed.",
            w.patches_failed);
  e.Gauge(n("twin_items_left_out"), "Items left out of the twin, past its 32 KB.",
          w.items_left_out);
  e.Gauge(n("twin_reported_bytes"), "Size of the reported properties last sent.", w.reported_bytes);

  const auto& k = s.commands;
  e.Gauge(n("commands_enabled"), "1 in publish-command mode (commands reach openHAB).",
          Bool(k.mode == "publish-command"));
  e.Gauge(n("commands_pending"), "Commands sent to openHAB and not answered yet.", k.pending);
  e.Counter(n("commands_audit_errors_total"), "Audit lines the disk did not take.", k.audit_errors);
  if (!k.counts.empty()) {
    e.Family(n("commands_total"), "counter",
             "Commands from the cloud by path (method, c2d, desired) and answer status.");
    for (const auto& c : k.counts) {
      e.Sample({{"path", c.path}, {"status", std::to_string(c.status)}}, c.count);
    }
  }

  e.Gauge(n("things_known"), "Things openHAB has (with an admin token).", s.things.known);
  if (!s.things.by_status.empty()) {
    e.Family(n("things_by_status"), "gauge", "Things by their status (ONLINE, OFFLINE, ...).");
    for (const auto& [status, count] : s.things.by_status) e.Sample({{"status", status}}, count);
  }

  std::vector<Item> items = s.items;
  SortByAttention(items);
  const Summary sum = Summarize(items);
  e.Gauge(n("items_stale"), "Items whose newest accepted state is not delivered yet.", sum.stale);
  e.Gauge(n("items_max_staleness_seconds"),
          "The longest any item's newest accepted state has waited undelivered.",
          Seconds(sum.max_staleness_ms));
  e.Counter(n("items_merged_total"),
            "Item changes merged because the budget could not carry them, all items.", sum.merged);
  e.Counter(n("items_suppressed_total"),
            "Item changes not sent by choice (deadband, min_interval), all items.", sum.suppressed);
  std::vector<const Item*> series;
  std::int64_t omitted = 0;
  for (const Item& item : items) {
    if (item.staleness_ms == 0 && item.merged == 0) continue;
    if (series.size() < max_item_series) {
      series.push_back(&item);
    } else {
      ++omitted;
    }
  }
  e.Gauge(n("item_series_omitted"),
          "Stale or merged items without per-item series (past the cap; see /status).", omitted);
  if (!series.empty()) {
    e.Family(n("item_staleness_seconds"), "gauge",
             "How long the item's newest accepted state has waited undelivered (stale or merged "
             "items only, capped).");
    for (const Item* item : series) e.Sample({{"item", item->name}}, Seconds(item->staleness_ms));
    e.Family(n("item_merged_total"), "counter",
             "The item's changes merged because the budget could not carry them.");
    for (const Item* item : series) e.Sample({{"item", item->name}}, item->merged);
    e.Family(n("item_suppressed_total"), "counter",
             "The item's changes not sent by choice (deadband, min_interval).");
    for (const Item* item : series) e.Sample({{"item", item->name}}, item->suppressed);
  }

  if (!s.errors.empty()) {
    e.Family(n("errors_total"), "counter", "Errors since start, by kind.");
    for (const auto& err : s.errors) e.Sample({{"kind", err.kind}}, err.count);
  }
  return e.Take();
}

Json ToJson(const StatusSnapshot& s, std::size_t max_items) {
  std::vector<Item> items = s.items;
  SortByAttention(items);
  const Summary sum = Summarize(items);
  Json rows = Json::array();
  for (std::size_t i = 0; i < items.size() && i < max_items; ++i) rows.push_back(items[i]);
  const auto omitted = static_cast<std::int64_t>(items.size() - rows.size());
  return Json{{"format", kStatusFormat},
              {"connector", s.connector},
              {"openhab", s.openhab},
              {"hub", s.hub},
              {"budget", s.budget},
              {"telemetry", s.telemetry},
              {"outbox", s.outbox},
              {"twin", s.twin},
              {"commands", s.commands},
              {"things", s.things},
              {"items", std::move(rows)},
              {"items_summary",
               {{"total", sum.total},
                {"omitted", omitted},
                {"stale", sum.stale},
                {"max_staleness_ms", sum.max_staleness_ms},
                {"merged", sum.merged},
                {"suppressed", sum.suppressed}}},
              {"errors", s.errors}};
}

Result<StatusSnapshot> FromJson(const Json& j) {
  if (!j.is_object()) return MakeError("status_json", "the status is not a JSON object");
  try {
    const int format = j.value("format", kStatusFormat);
    if (format > kStatusFormat) {
      return MakeError("status_json",
                       fmt::format("the status has format {}, newer than this program reads ({}): "
                                   "update iothub-connector",
                                   format, kStatusFormat));
    }
    StatusSnapshot s;
    s.connector = j.value("connector", s.connector);
    s.openhab = j.value("openhab", s.openhab);
    s.hub = j.value("hub", s.hub);
    s.budget = j.value("budget", s.budget);
    s.telemetry = j.value("telemetry", s.telemetry);
    s.outbox = j.value("outbox", s.outbox);
    s.twin = j.value("twin", s.twin);
    s.commands = j.value("commands", s.commands);
    s.things = j.value("things", s.things);
    s.items = j.value("items", s.items);
    s.errors = j.value("errors", s.errors);
    return s;
  } catch (const Json::exception& e) {
    return MakeError("status_json", std::string("the status does not read: ") + e.what());
  }
}

std::string RenderForPeople(const Json& status, const PeopleOptions& options) {
  auto parsed = FromJson(status);
  if (!parsed) return parsed.error().message + "\n";
  const StatusSnapshot& s = *parsed;
  Summary sum = Summarize(s.items);
  // The document may hold only the most urgent items; its summary counts all of them.
  if (const auto it = status.find("items_summary"); it != status.end() && it->is_object()) {
    sum.total = it->value("total", sum.total);
    sum.stale = it->value("stale", sum.stale);
    sum.max_staleness_ms = it->value("max_staleness_ms", sum.max_staleness_ms);
    sum.merged = it->value("merged", sum.merged);
    sum.suppressed = it->value("suppressed", sum.suppressed);
  }
  PeopleText text(options.colour);
  RenderConnector(s, text);
  RenderOpenHab(s, text);
  RenderHub(s, text);
  RenderBudget(s, text);
  RenderTelemetry(s, text);
  RenderOutbox(s, text);
  RenderTwin(s, text);
  RenderCommands(s, text);
  RenderThings(s, text);
  RenderItems(s, sum, options.top_items, text);
  RenderErrors(s, text);
  return text.Take();
}

std::int64_t ResidentMemoryBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long long size = 0;
  long long resident = 0;
  const int read = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  if (read != 2) return 0;
  return static_cast<std::int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

std::int64_t FreeDiskBytes(const std::string& dir) {
  struct statvfs fs {};
  if (statvfs(dir.c_str(), &fs) != 0) return -1;
  return static_cast<std::int64_t>(fs.f_bavail) * static_cast<std::int64_t>(fs.f_frsize);
}

}  // namespace iothub::connector
