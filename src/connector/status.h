// What the running connector shows about itself (docs/metrics.md): one StatusSnapshot, filled
// by the daemon on its loop thread, rendered three ways: Prometheus text for scrapers, a JSON
// document for tools (`GET /status`), and a few aligned sections for people (`iothub-connector
// status`). StatusSnapshot is plain data (thread-safe as any value); the functions are pure and
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace iothub::connector {

using Json = nlohmann::json;

// Times ending in `_ms` are epoch milliseconds of the connector's wall clock (0: never, or
// unknown); durations say so (`age`, `staleness`). Counters count since the process started;
// budget figures are for the current budget window. The daemon fills what it knows and leaves
// the rest at its default.
struct StatusSnapshot {
  struct Connector {
    std::string version;          // "0.1.0"
    std::int64_t started_ms = 0;  // when the process started
    std::int64_t now_ms = 0;      // when this snapshot was taken; ages are measured from it
    std::string mode;             // "publish" | "publish-command"
    std::string layout;           // "gateway"
    std::string config_file;      // "" when run from flags only
    std::string store_dir;
    std::int64_t pid = 0;
    std::int64_t resident_bytes = 0;     // ResidentMemoryBytes(); 0: unknown
    std::int64_t store_free_bytes = -1;  // FreeDiskBytes(store_dir); -1: unknown
    std::int64_t loop_lag_ms = 0;        // filled by StatusServer: how long this request
                                         // waited for the loop
    std::vector<std::string> warnings;   // standing advice (config readable by others, a
                                         // policy with more rights than needed, twin off)

    friend bool operator==(const Connector&, const Connector&) = default;
  } connector;

  struct OpenHab {
    std::string url;  // through RedactUrl: never user info, a token or a query
    bool stream_up = false;
    std::string stream_detail;         // why it is down, or what it is doing
    std::int64_t stream_since_ms = 0;  // when stream_up last changed
    std::string server_version;        // openHAB's runtime version, "" until known
    bool admin = false;                // the token reads things (their status is replicated)
    std::int64_t items_known = 0;      // items openHAB has
    std::int64_t items_selected = 0;   // of which openhab.items/exclude select
    std::int64_t resyncs = 0;          // full item reads after the first
    std::int64_t events = 0;           // events read from the stream
    std::int64_t bad_events = 0;       // events that could not be understood (skipped)
    std::int64_t problems = 0;         // items or things skipped while reading lists
    std::int64_t last_event_ms = 0;

    friend bool operator==(const OpenHab&, const OpenHab&) = default;
  } openhab;

  struct Hub {
    std::string host_name;
    std::string device_id;
    std::string credential;             // "device" | "policy <name>"
    std::string session_state;          // the device session's state, e.g. "connected"
    std::string session_detail;         // the last error or reason, "" when none
    std::int64_t session_since_ms = 0;  // when session_state last changed
    std::int64_t connects = 0;          // successful connections (CONNACK accepted)
    std::int64_t connection_losses = 0;
    std::int64_t renewals = 0;             // SAS token renewals
    std::int64_t throttled = 0;            // times the hub throttled the connector
    std::int64_t in_flight = 0;            // messages published and awaiting their PUBACK
    std::string quota_state = "ok";        // "ok" | "exhausted" (the hub's daily quota is spent)
    std::int64_t quota_resumes_at_ms = 0;  // 0: not waiting for the quota

    friend bool operator==(const Hub&, const Hub&) = default;
  } hub;

  struct Budget {
    std::string tier;               // "free", "S1", ...
    std::int64_t chunk_bytes = 0;   // the metering chunk: 512 or 4096
    std::int64_t daily_budget = 0;  // billed messages this connector may spend per window
    double reserve_fraction = 0;    // of daily_budget, kept for commands, acks, twin
    std::int64_t window_seconds = 0;
    std::int64_t window_start_ms = 0;
    std::int64_t used = 0;               // billed messages (chunks) in this window
    std::int64_t left = 0;               // daily_budget - used
    std::int64_t reserve_used = 0;       // of `used`, spent from the reserve
    std::int64_t pace_allowed = 0;       // the pace line now: the elapsed share plus burst
    std::int64_t burst = 0;              // how far ahead of the elapsed share it may run
    double staleness_bound_seconds = 0;  // the bound the connector computes (docs)

    friend bool operator==(const Budget&, const Budget&) = default;
  } budget;

  // Telemetry messages by the `kind` they carry (docs/message-format.md).
  struct KindCounts {
    std::int64_t changes = 0;
    std::int64_t snapshot = 0;
    std::int64_t things = 0;

    friend bool operator==(const KindCounts&, const KindCounts&) = default;
  };
  struct Telemetry {
    std::int64_t messages_sent = 0;       // published the first time
    std::int64_t messages_delivered = 0;  // acknowledged by the hub (PUBACK)
    std::int64_t messages_resent = 0;     // published again with the same id
    std::int64_t entries_sent = 0;        // item changes, snapshot states and thing statuses
    std::int64_t bytes = 0;               // payload bytes published, resends included
    std::int64_t billed_chunks = 0;       // as the hub meters them, resends included
    std::int64_t last_delivered_ms = 0;
    KindCounts by_kind;  // messages_sent by kind

    friend bool operator==(const Telemetry&, const Telemetry&) = default;
  } telemetry;

  struct Outbox {
    std::int64_t pending_entries = 0;        // accepted, not yet acknowledged by the hub
    std::int64_t sealed_messages = 0;        // messages built (ids fixed), awaiting their ack
    std::int64_t oldest_pending_age_ms = 0;  // how long the oldest pending entry has waited
    std::int64_t file_bytes = 0;             // the database and its WAL on disk
    std::int64_t max_bytes = 0;              // [store] max_bytes
    std::int64_t accepted = 0;               // entries made durable
    std::int64_t merged = 0;                 // entries merged into a later state of their item
    bool full = false;                       // at max_bytes: merging older history
    std::string last_error;                  // the last storage error, "" when none

    friend bool operator==(const Outbox&, const Outbox&) = default;
  } outbox;

  struct Twin {
    bool enabled = false;
    std::string disabled_reason;    // e.g. "basic tier: no twins"
    std::int64_t patches_sent = 0;  // reported-property patches acknowledged (204)
    std::int64_t patches_failed = 0;
    std::int64_t items_left_out = 0;  // items not in the twin: past its 32 KB
    std::int64_t reported_bytes = 0;  // size of the reported properties last sent
    std::int64_t last_patch_ms = 0;

    friend bool operator==(const Twin&, const Twin&) = default;
  } twin;

  // Commands from the cloud (docs/commands.md).
  struct Commands {
    std::string mode;               // "publish" (methods answered 405) | "publish-command"
    std::int64_t pending = 0;       // sent to openHAB, not answered yet
    std::int64_t audit_errors = 0;  // audit lines the disk did not take
    struct Count {
      std::string path;  // "method" | "c2d" | "desired"
      int status = 0;
      std::int64_t count = 0;
      friend bool operator==(const Count&, const Count&) = default;
    };
    std::vector<Count> counts;
    struct Recent {
      std::int64_t time_ms = 0;
      std::string path;
      std::string item;
      std::string command;
      int status = 0;
      std::string message;
      std::int64_t latency_ms = 0;
      friend bool operator==(const Recent&, const Recent&) = default;
    };
    std::vector<Recent> recent;  // the last few, oldest first

    friend bool operator==(const Commands&, const Commands&) = default;
  } commands;

  struct Things {
    std::int64_t known = 0;
    std::map<std::string, std::int64_t> by_status;  // "ONLINE" -> 11, "OFFLINE" -> 1

    friend bool operator==(const Things&, const Things&) = default;
  } things;

  // One row per selected item.
  struct Item {
    std::string name;
    std::string type;                    // "Number:Temperature"
    std::string priority;                // "high" | "normal" | "low"
    std::string send;                    // "telemetry" | "twin" | "both" | "none"
    std::int64_t last_change_ms = 0;     // the newest change accepted
    std::int64_t last_delivered_ms = 0;  // when the hub last acknowledged one of its states
    // How long its newest accepted state has waited undelivered; 0 when delivered.
    std::int64_t staleness_ms = 0;
    std::int64_t pending = 0;     // its entries in the outbox
    std::int64_t merged = 0;      // changes merged because the budget could not carry them
    std::int64_t suppressed = 0;  // changes not sent by choice (deadband, min_interval)

    friend bool operator==(const Item&, const Item&) = default;
  };
  std::vector<Item> items;

  // Errors by kind ("openhab_stream", "hub_connect", "outbox", ...): how many, and the last.
  struct ErrorCount {
    std::string kind;
    std::int64_t count = 0;
    std::string last_message;
    std::int64_t last_ms = 0;

    friend bool operator==(const ErrorCount&, const ErrorCount&) = default;
  };
  std::vector<ErrorCount> errors;

  friend bool operator==(const StatusSnapshot&, const StatusSnapshot&) = default;
};

// The version of the JSON document's layout (its "format" member); raised on incompatible
// changes only. Members are only ever added.
inline constexpr int kStatusFormat = 1;

// Per-item Prometheus series are bounded: only items that are stale or had changes merged, the
// most urgent first (SortByAttention), at most this many (docs/metrics.md).
inline constexpr std::size_t kMaxItemSeries = 50;

// The order people and metrics list items in: stalest first, then most merged, then most
// suppressed, then by name.
void SortByAttention(std::vector<StatusSnapshot::Item>& items);

// The Prometheus text exposition format 0.0.4: HELP and TYPE once per family, families
// prefixed `iothub_connector_`, counters ending in `_total`, label values escaped.
std::string RenderPrometheus(const StatusSnapshot& status,
                             std::size_t max_item_series = kMaxItemSeries);

// The `GET /status` document (docs/metrics.md): {"format":1, "connector":{..}, ..., "items":
// [..], "items_summary":{..}, "errors":[..]}, member names as in the struct. Items are sorted by
// attention and cut after `max_items`; items_summary counts all of them (total, omitted, stale,
// max_staleness_ms, merged, suppressed).
Json ToJson(const StatusSnapshot& status, std::size_t max_items = SIZE_MAX);

// Reads a document ToJson wrote (members it lacks keep their defaults; unknown members are
// ignored). Error "status_json" when a member has the wrong type or `format` is newer.
Result<StatusSnapshot> FromJson(const Json& status);

struct PeopleOptions {
  bool colour = false;         // ANSI colours (only for a terminal)
  std::size_t top_items = 10;  // the stalest items listed
};
// What `iothub-connector status` prints: aligned sections (connector, openHAB, IoT Hub,
// budget, telemetry, outbox, twin, things, stalest items, errors) within 80 columns.
std::string RenderForPeople(const Json& status, const PeopleOptions& options = {});

// Helpers for the daemon filling a snapshot (Linux; 0 or -1 when unknown).
std::int64_t ResidentMemoryBytes();                  // this process's resident set
std::int64_t FreeDiskBytes(const std::string& dir);  // available to unprivileged users

}  // namespace iothub::connector
