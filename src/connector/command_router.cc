#include "connector/command_router.h"

#include <fmt/format.h>

#include <cmath>
#include <utility>

#include "azure/tier.h"
#include "common/crypto.h"
#include "common/json_depth.h"
#include "connector/item_filter.h"
#include "connector/message_format.h"
#include "connector/replicator.h"

namespace iothub::connector {
namespace {

constexpr std::string_view kCommandUsage =
    R"(expected {"item":"Name","command":"ON"}, optionally with "wait": seconds)";

// A method payload as JSON: empty (no payload) is an empty object.
std::optional<Json> ParsePayload(std::string_view payload) {
  if (payload.empty() || payload == "null") return Json::object();
  return ParseUntrustedJson(payload);
}

// What a command request names: "item" (text) and "command" (text, or a number: 50 means
// "50"); empty where it names none.
struct Named {
  std::string item;
  std::string command;
};
Named ReadNamed(const std::optional<Json>& doc) {
  Named out;
  if (!doc || !doc->is_object()) return out;
  if (const auto item = doc->find("item"); item != doc->end() && item->is_string()) {
    out.item = item->get<std::string>();
  }
  if (const auto command = doc->find("command"); command != doc->end()) {
    if (command->is_string()) out.command = command->get<std::string>();
    if (command->is_number()) out.command = command->dump();
  }
  return out;
}

Json Reply(int status, std::string_view message) {
  return Json{{"status", status}, {"message", std::string(message)}};
}

// The status a failed POST gets: openHAB's refusal (with its answer), or its silence.
int StatusFor(const Error& error) {
  if (error.code == "not_found") return 404;
  if (error.code == "bad_argument") return 400;
  if (error.code == "http_transport" && error.message.find("timed out") != std::string::npos) {
    return 504;
  }
  return 502;
}

bool SameQuantity(const openhab::State& a, const openhab::State& b) {
  const auto converted = ConvertQuantity(b.number, b.unit, a.unit);
  if (!converted) return false;
  return std::abs(*converted - a.number) <= 1e-9 * std::max(1.0, std::abs(a.number));
}

}  // namespace

CommandRouter::CommandRouter(EventLoop& loop, const Clock& wall, openhab::RestClient& commands,
                             CommandGate gate, AuditLog& audit, Budget& budget, Log& log,
                             CommandHome home, CommandRouterOptions options)
    : loop_(loop),
      wall_(wall),
      commands_(commands),
      gate_(std::move(gate)),
      audit_(audit),
      budget_(budget),
      log_(log),
      home_(std::move(home)),
      options_(std::move(options)) {}

CommandRouter::~CommandRouter() {
  for (auto& [id, p] : pending_) {
    if (p.timer != 0) loop_.Cancel(p.timer);
  }
}

void CommandRouter::OnMethod(const azure::MethodRequest& request) {
  const std::int64_t now = loop_.NowMs();
  const auto bytes = static_cast<std::int64_t>(request.payload.size());
  if (options_.mode == Mode::kPublish) {
    // The audit says what was refused, as far as the payload says it.
    const Named named = ReadNamed(ParsePayload(request.payload));
    Answer(request.request_id, request.name, bytes, 405,
           Reply(405,
                 "this connector runs in publish mode: commands from the cloud are off "
                 "(set [iothub] mode = \"publish-command\" to turn them on)"),
           now, named.item, named.command);
    return;
  }
  if (request.name == "command") return Command(request, now);
  if (request.name == "state") return State(request, now);
  if (request.name == "items") return Items(request, now);
  Answer(request.request_id, request.name, bytes, 501,
         Reply(501, fmt::format("unknown method '{}': the connector answers command, state and "
                                "items",
                                request.name.substr(0, 64))),
         now);
}

void CommandRouter::Command(const azure::MethodRequest& request, std::int64_t received_ms) {
  const auto bytes = static_cast<std::int64_t>(request.payload.size());
  const auto bad = [&](const std::string& why, const std::string& item = {},
                       const std::string& command = {}) {
    Answer(request.request_id, "command", bytes, 400, Reply(400, why), received_ms, item, command);
  };
  const std::optional<Json> doc = ParsePayload(request.payload);
  if (!doc || !doc->is_object()) return bad(fmt::format("not JSON: {}", kCommandUsage));
  const auto [item, command] = ReadNamed(doc);
  if (item.empty()) return bad(fmt::format("no \"item\": {}", kCommandUsage));
  if (command.empty()) {
    return bad(fmt::format("no \"command\" (text or a number): {}", kCommandUsage), item);
  }
  std::int64_t wait_ms = 0;
  if (const auto wait = doc->find("wait"); wait != doc->end()) {
    if (!wait->is_number() || wait->get<double>() < 0 ||
        wait->get<double>() * 1000 > static_cast<double>(options_.max_wait_ms)) {
      return bad(fmt::format("\"wait\" must be a number of seconds from 0 to {} ([commands] "
                             "max_wait)",
                             options_.max_wait_ms / 1000),
                 item, command);
    }
    wait_ms = static_cast<std::int64_t>(wait->get<double>() * 1000);
  }

  const ItemMap& items = home_.items();
  const CommandVerdict verdict =
      gate_.Check(items, item, command, home_.replicated(item), received_ms);
  if (verdict.status != 200) {
    Json body = Reply(verdict.status, verdict.message);
    if (verdict.retry_after_ms > 0) body["retryAfterMs"] = verdict.retry_after_ms;
    Answer(request.request_id, "command", bytes, verdict.status, body, received_ms, item, command);
    return;
  }
  Pending p;
  p.request_id = request.request_id;
  p.item = item;
  p.received_ms = received_ms;
  p.request_bytes = bytes;
  p.wait_ms = wait_ms;
  Send(std::move(p), verdict.command);
}

void CommandRouter::Send(Pending p, const std::string& command) {
  const openhab::Item& item = home_.items().at(p.item);
  p.command = command;
  p.state_at_command = item.state;
  const std::string type(item.base_type());
  if (auto target = openhab::ParseState(type, command)) p.target = std::move(target).value();
  const std::uint64_t id = next_id_++;
  p.timer = loop_.RunAfter(options_.timeout_ms, liveness_.Guard([this, id] { TimedOut(id); }));
  const std::string name = p.item;
  pending_.emplace(id, std::move(p));
  commands_.SendCommand(name, command,
                        liveness_.Guard([this, id](const Status& status) { Sent(id, status); }));
}

void CommandRouter::OnCloudMessage(const azure::CloudMessage& message) {
  const std::int64_t now = loop_.NowMs();
  // The hub billed its delivery (reference §5): the reserve pays, as for a method.
  budget_.Spend(budget_.ChunksFor(azure::MeteredBytes(message.body, message.properties)),
                Pool::kReserve, wall_.NowMs());
  // A JSON body names both; a text body is the command, the item an application property.
  const std::optional<Json> doc = ParseUntrustedJson(message.body);
  Named named = ReadNamed(doc);
  if (!doc || !doc->is_object()) {
    for (const auto& property : message.properties) {
      if (property.name == "item" && property.value) named.item = *property.value;
    }
    named.command = message.body;
    while (!named.command.empty() &&
           (named.command.back() == '\n' || named.command.back() == '\r' ||
            named.command.back() == ' ')) {
      named.command.pop_back();
    }
  }
  const auto& [item, command] = named;
  if (item.empty() || command.empty()) {
    Report(message.message_id, item, command, 400,
           R"(expected a JSON body {"item":"Name","command":"ON"}, or the command as text with )"
           R"(an application property "item")",
           now);
    return;
  }
  const CommandVerdict verdict =
      gate_.Check(home_.items(), item, command, home_.replicated(item), now);
  if (verdict.status != 200) {
    Report(message.message_id, item, command, verdict.status, verdict.message, now);
    return;
  }
  Pending p;
  p.path = "c2d";
  p.request_id = message.message_id;
  p.item = item;
  p.received_ms = now;
  Send(std::move(p), verdict.command);
}

void CommandRouter::Report(const std::string& message_id, const std::string& item,
                           const std::string& command, int status, const std::string& why,
                           std::int64_t received_ms) {
  const std::int64_t now = wall_.NowMs();
  azure::TelemetryMessage result;
  result.message_id = NewUuid();
  result.correlation_id = message_id;
  result.content_type = "application/json";
  result.content_encoding = "utf-8";
  result.creation_time = FormatIsoTimeMs(now);
  Json body = {{"v", kMessageFormatVersion},
               {"kind", "command-result"},
               {"correlationId", message_id},
               {"item", item},
               {"command", command},
               {"status", status},
               {"message", why},
               {"time", result.creation_time}};
  result.body = DumpJson(body);
  result.properties.push_back({"kind", std::string("command-result")});
  for (const auto& [name, value] : options_.static_properties) {
    result.properties.push_back({name, value});
  }
  if (home_.report && !home_.report(std::move(result))) {
    log_.Warn("command",
              "the outcome of cloud-to-device message {} is not sent: the budget's "
              "reserve is spent (the audit log has it)",
              message_id);
  }
  Audit("c2d", message_id, item, command, status, why, received_ms);
}

void CommandRouter::Sent(std::uint64_t id, const Status& status) {
  const auto it = pending_.find(id);
  if (it == pending_.end()) {
    // Answered 504 already: say what became of it, for whoever reads the log.
    log_.Info("command", "openHAB answered a command after the method had timed out: {}",
              status ? std::string("accepted") : status.error().message);
    return;
  }
  Pending& p = it->second;
  if (!status) {
    const int code = StatusFor(status.error());
    Finish(id, code,
           code == 504 ? fmt::format("openHAB did not answer within {} ms: {}", options_.timeout_ms,
                                     status.error().message)
                       : status.error().message);
    return;
  }
  if (p.wait_ms == 0) {
    Finish(id, 200, "accepted by openHAB");
    return;
  }
  p.accepted = true;
  const ItemMap& items = home_.items();
  if (const auto item = items.find(p.item); item != items.end() && Settled(p, item->second)) {
    Finish(id, 200, fmt::format("the state is now {}", item->second.state));
    return;
  }
  loop_.Cancel(p.timer);
  const std::int64_t left = std::max<std::int64_t>(0, p.received_ms + p.wait_ms - loop_.NowMs());
  p.timer = loop_.RunAfter(left, liveness_.Guard([this, id] { TimedOut(id); }));
}

void CommandRouter::TimedOut(std::uint64_t id) {
  const auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  p.timer = 0;
  if (!p.accepted) {
    Finish(id, 504,
           fmt::format("openHAB did not answer within {} ms; the command may still take effect",
                       options_.timeout_ms));
    return;
  }
  const ItemMap& items = home_.items();
  const auto item = items.find(p.item);
  const std::string now = item != items.end() ? item->second.state : std::string("unknown");
  const double waited_s = static_cast<double>(p.wait_ms) / 1000.0;
  Finish(id, 202,
         p.target ? fmt::format("openHAB accepted the command; the state did not become {} "
                                "within {} s (it is {})",
                                p.command, waited_s, now)
                  : fmt::format("openHAB accepted the command; the state did not change within "
                                "{} s (it is {})",
                                waited_s, now));
}

void CommandRouter::OnItemState(const openhab::Item& item) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    const std::uint64_t id = it->first;
    const Pending& p = it->second;
    ++it;  // Finish erases id
    if (p.accepted && p.item == item.name && Settled(p, item)) {
      Finish(id, 200, fmt::format("the state is now {}", item.state));
    }
  }
}

bool CommandRouter::Settled(const Pending& p, const openhab::Item& item) {
  if (!p.target) return item.state != p.state_at_command;
  const std::string type(item.base_type());
  const openhab::State now = openhab::ParseStateTolerant(type, item.state);
  if (now == *p.target) return true;
  return now.kind == openhab::StateKind::kQuantity &&
         p.target->kind == openhab::StateKind::kQuantity && SameQuantity(now, *p.target);
}

void CommandRouter::Finish(std::uint64_t id, int status, const std::string& message) {
  const auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (p.timer != 0) loop_.Cancel(p.timer);
  if (p.path == "c2d") {
    Report(p.request_id, p.item, p.command, status, message, p.received_ms);
    return;
  }
  Json body = Reply(status, message);
  body["item"] = p.item;
  body["command"] = p.command;
  Answer(p.request_id, "command", p.request_bytes, status, body, p.received_ms, p.item, p.command);
}

void CommandRouter::State(const azure::MethodRequest& request, std::int64_t received_ms) {
  const auto bytes = static_cast<std::int64_t>(request.payload.size());
  const std::optional<Json> doc = ParsePayload(request.payload);
  if (!doc || !doc->is_object() || !doc->contains("item") || !(*doc)["item"].is_string()) {
    Answer(request.request_id, "state", bytes, 400, Reply(400, R"(expected {"item":"Name"})"),
           received_ms);
    return;
  }
  const std::string name = (*doc)["item"].get<std::string>();
  const ItemMap& items = home_.items();
  const auto item = items.find(name);
  if (item == items.end()) {
    Answer(request.request_id, "state", bytes, 404,
           Reply(404, fmt::format("openHAB has no item '{}'", name.substr(0, 128))), received_ms);
    return;
  }
  // What is not replicated stays at home: the cloud reads no more than it is sent.
  if (!home_.replicated(name)) {
    Answer(request.request_id, "state", bytes, 403,
           Reply(403, fmt::format("'{}' is not replicated ([openhab] items and exclude)", name)),
           received_ms);
    return;
  }
  const openhab::Item& it = item->second;
  const std::string type(it.base_type());
  const Entry entry =
      MakeItemEntry(it, openhab::ParseStateTolerant(type, it.state), it.last_state_change_ms,
                    EntryKind::kSnapshot, Priority::kNormal);
  Json body = {{"status", 200}, {"item", name}, {"type", entry.type}, {"value", entry.value}};
  if (!entry.unit.empty()) body["unit"] = entry.unit;
  if (!entry.state.empty()) body["state"] = entry.state;
  if (entry.time_ms != 0) body["time"] = FormatIsoTimeMs(entry.time_ms);
  Answer(request.request_id, "state", bytes, 200, body, received_ms);
}

void CommandRouter::Items(const azure::MethodRequest& request, std::int64_t received_ms) {
  const auto bytes = static_cast<std::int64_t>(request.payload.size());
  const std::optional<Json> doc = ParsePayload(request.payload);
  std::string after;
  if (doc && doc->is_object() && doc->contains("after") && (*doc)["after"].is_string()) {
    after = (*doc)["after"].get<std::string>();
  } else if (!doc || !doc->is_object()) {
    Answer(request.request_id, "items", bytes, 400,
           Reply(400, R"(expected no payload, or {"after":"Name"} for the next page)"),
           received_ms);
    return;
  }
  const ItemMap& items = home_.items();
  const GroupMembership groups(items);
  Json list = Json::array();
  std::size_t size = 64;
  std::string next;
  for (auto it = after.empty() ? items.begin() : items.upper_bound(after); it != items.end();
       ++it) {
    const openhab::Item& item = it->second;
    if (!home_.replicated(item.name)) continue;
    Json entry = {{"name", item.name}, {"type", item.type}};
    if (!item.label.empty()) entry["label"] = item.label;
    entry["commands"] = gate_.Allowed(item, groups, true).allowed;
    entry["accepts"] = AcceptedCommands(item);
    const std::size_t entry_size = DumpJson(entry).size() + 1;
    if (size + entry_size > options_.max_response_bytes) {
      next = list.empty() ? std::string() : list.back()["name"].get<std::string>();
      break;
    }
    size += entry_size;
    list.push_back(std::move(entry));
  }
  Json body = {{"status", 200}, {"items", std::move(list)}};
  if (!next.empty()) body["next"] = next;
  Answer(request.request_id, "items", bytes, 200, body, received_ms);
}

void CommandRouter::Answer(const std::string& request_id, std::string_view method,
                           std::int64_t request_bytes, int status, const Json& body,
                           std::int64_t received_ms, const std::string& item,
                           const std::string& command) {
  const std::string payload = DumpJson(body);
  if (home_.respond) home_.respond(request_id, status, payload);
  // The hub bills the request and the response, each at least one chunk (reference §5).
  budget_.Spend(budget_.ChunksFor(request_bytes) +
                    budget_.ChunksFor(static_cast<std::int64_t>(payload.size())),
                Pool::kReserve, wall_.NowMs());
  if (method != "command") return;
  Audit("method", request_id, item, command, status, body.value("message", std::string()),
        received_ms);
}

void CommandRouter::Audit(std::string_view path, const std::string& request_id,
                          const std::string& item, const std::string& command, int status,
                          const std::string& message, std::int64_t received_ms) {
  AuditRecord record;
  record.latency_ms = loop_.NowMs() - received_ms;
  record.time_ms = wall_.NowMs() - record.latency_ms;  // when it arrived
  record.path = std::string(path);
  record.request_id = request_id;
  record.item = item;
  record.command = command;
  record.status = status;
  record.message = message;
  if (auto written = audit_.Write(record); !written) {
    log_.Warn("audit", "cannot write the command audit log: {}", written.error().message);
  }
  log_.Info("command", "{} {} → {}: {} {}", path, item, command.substr(0, 64), status, message);
}

}  // namespace iothub::connector
