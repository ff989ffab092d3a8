// The command router of DESIGN.md: commands from the cloud become openHAB item commands,
// checked by the CommandGate (known item, allowlist, type, rate limits), sent to openHAB,
// answered with a meaningful status and written to the audit log (docs/commands.md).
//
// Direct methods (this file's first path):
// - `command` {"item":"X","command":"ON"[,"wait":N]}: POST /rest/items/X. openHAB's 200 only
//   means "accepted"; with "wait" the answer comes when the item's state became what the
//   command asked for (or changed at all, for commands such as INCREASE or UP), else 202
//   after N seconds.
// - `state` {"item":"X"}: the item's current state as the telemetry format writes it.
// - `items` [{"after":"Name"}]: the replicated items, their types, whether they may be
//   commanded and what they accept, in pages under the method payload limit.
// In publish mode every method is answered 405 with a body saying why.
//
// Statuses: 200 done; 202 accepted, state not (yet) as asked; 400 malformed or invalid for the
// type; 403 not allowed; 404 unknown item; 405 publish mode; 429 rate limited; 501 unknown
// method; 502 openHAB refused (with its answer); 504 openHAB did not answer in time.
//
// Every method request and response is billed by the hub: the router records them on the
// budget's reserve, which never waits for telemetry. Not thread-safe: loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "azure/device_session.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "common/liveness.h"
#include "connector/audit_log.h"
#include "connector/budget.h"
#include "connector/command_gate.h"
#include "connector/config.h"
#include "connector/entry.h"
#include "connector/item_selection.h"
#include "connector/log.h"
#include "openhab/rest_client.h"
#include "openhab/state.h"

namespace iothub::connector {

struct CommandRouterOptions {
  Mode mode = Mode::kPublish;
  std::int64_t timeout_ms = 5'000;    // openHAB's answer to a command, then 504
  std::int64_t max_wait_ms = 60'000;  // the most "wait" may ask for
  // A method answer's payload stays under this (IoT Hub's limit is 128 KB).
  std::size_t max_response_bytes = std::size_t{120} * 1024;
  // [iothub] properties: on every message, command outcomes included.
  std::map<std::string, std::string> static_properties;
};

// What the router needs of the rest of the daemon, as functions so that tests can supply them.
struct CommandHome {
  // The items as openHAB's mirror holds them; empty before the first synchronisation.
  std::function<const ItemMap&()> items;
  // Whether an item is replicated (selected by openhab.items / exclude).
  std::function<bool(const std::string&)> replicated;
  // Answers a direct method (DeviceSession::RespondMethod).
  std::function<void(std::string_view request_id, int status, std::string_view payload)> respond;
  // Sends a cloud-to-device command's outcome (Dispatcher::SendDirect); false when dropped.
  std::function<bool(azure::TelemetryMessage)> report;
};

class CommandRouter {
 public:
  // `commands` sends to openHAB; `audit`, `budget` and `log` must outlive the router.
  CommandRouter(EventLoop& loop, const Clock& wall, openhab::RestClient& commands, CommandGate gate,
                AuditLog& audit, Budget& budget, Log& log, CommandHome home,
                CommandRouterOptions options);
  ~CommandRouter();
  CommandRouter(const CommandRouter&) = delete;
  CommandRouter& operator=(const CommandRouter&) = delete;

  // A direct method call. Answered exactly once through home.respond, never inside the call
  // when openHAB is asked, possibly inside it otherwise.
  void OnMethod(const azure::MethodRequest& request);
  // A cloud-to-device message: a JSON body {"item":"X","command":"ON"}, or a text body (the
  // command) with an application property `item`. MQTT gives the hub no reject, so the
  // outcome goes back as a telemetry message of kind "command-result" whose correlation id
  // is the cloud-to-device message's id (docs/commands.md). In publish mode none arrive (the
  // session does not subscribe).
  void OnCloudMessage(const azure::CloudMessage& message);
  // An item's state changed (or the mirror resynchronised it): settles waiting commands.
  void OnItemState(const openhab::Item& item);

  std::int64_t pending() const { return static_cast<std::int64_t>(pending_.size()); }

 private:
  struct Pending {
    std::string path = "method";  // or "c2d"
    std::string request_id;       // the method's $rid, or the C2D message's id
    std::string item;
    std::string command;
    std::int64_t received_ms = 0;  // loop time
    std::int64_t request_bytes = 0;
    std::int64_t wait_ms = 0;              // 0: answer when openHAB accepted
    bool accepted = false;                 // openHAB said 200; waiting for the state
    std::optional<openhab::State> target;  // the state the command asks for, when it names one
    std::string state_at_command;          // the state text before the command
    EventLoop::TimerId timer = 0;
  };

  void Command(const azure::MethodRequest& request, std::int64_t received_ms);
  void State(const azure::MethodRequest& request, std::int64_t received_ms);
  void Items(const azure::MethodRequest& request, std::int64_t received_ms);
  void Sent(std::uint64_t id, const Status& status);
  void TimedOut(std::uint64_t id);
  // Whether `item`'s state is what pending `p` waits for.
  static bool Settled(const Pending& p, const openhab::Item& item);
  // Answers a method, bills request and response on the reserve, and for `command` writes
  // the audit record.
  void Answer(const std::string& request_id, std::string_view method, std::int64_t request_bytes,
              int status, const Json& body, std::int64_t received_ms, const std::string& item = {},
              const std::string& command = {});
  void Finish(std::uint64_t id, int status, const std::string& message);
  // Sends the gate's verdict's command to openHAB for pending `p`.
  void Send(Pending p, const std::string& command);
  // A cloud-to-device command's outcome: the result message and the audit record.
  void Report(const std::string& message_id, const std::string& item, const std::string& command,
              int status, const std::string& why, std::int64_t received_ms);
  void Audit(std::string_view path, const std::string& request_id, const std::string& item,
             const std::string& command, int status, const std::string& message,
             std::int64_t received_ms);

  EventLoop& loop_;
  const Clock& wall_;
  openhab::RestClient& commands_;
  CommandGate gate_;
  AuditLog& audit_;
  Budget& budget_;
  Log& log_;
  CommandHome home_;
  CommandRouterOptions options_;
  std::map<std::uint64_t, Pending> pending_;
  std::uint64_t next_id_ = 1;
  Liveness liveness_;  // last: openHAB's answers and timers check it
};

}  // namespace iothub::connector
