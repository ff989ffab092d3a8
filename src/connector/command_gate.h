// The gate every command from the cloud passes before it reaches openHAB (docs/configuration.md,
// "Commands"): is the item known, may it be commanded, is the command valid for its type, is it
// within the rate limits. Pure logic: no I/O, time is the caller's (the loop's milliseconds).
//
// A command (item name, command text) is checked in this order, and the first refusal answers:
// 1. 404: no item of that name in the ItemMap given.
// 2. 403: the allowlist (Allowed below) refuses it; the message names the rule.
// 3. 400: the text is no command for the item's type: empty, NULL or UNDEF (states, never
//    commands), not among what the type accepts (openhab::ParseCommand, openhab::CommandFor:
//    percents 0-100, HSB ranges, ...), or a quantity for a `Number:<Dimension>` item whose unit
//    cannot be converted to the item's unit (ConvertQuantity's table; `°F` to a `°C` item is
//    fine, `W` to a temperature is not). The reference is the item's `unitSymbol`, else its
//    state's unit, else (or when that unit is not in the table) the dimension, for the common
//    ones (Temperature, Power, Energy, ...); an item with none of these accepts any unit. A plain
//    number is accepted for `Number:<Dimension>` and sent with the item's unit when known, as
//    openHAB would apply it. The message says what the type accepts.
// 4. 429: a token bucket is empty: the item's (`item_burst` at once, then `item_rate` a
//    second) or all items' together (`total_burst`, `total_rate`). Only a command that passes
//    every check takes a token, one from each bucket; a refused one takes none.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "connector/item_selection.h"
#include "openhab/item.h"

namespace iothub::connector {

// `[commands]` of the configuration, as the gate needs it.
struct CommandGateOptions {
  std::vector<std::string> allow;  // item patterns; empty: the replicated items
  std::vector<std::string> deny;   // item patterns; deny wins over everything
  double item_rate = 1.0;          // commands a second to one item, sustained ...
  int item_burst = 5;              // ... and at once
  double total_rate = 10.0;        // commands a second to all items together ...
  int total_burst = 20;            // ... and at once
  // The most per-item buckets kept. A bucket that is full again is dropped (it is the same as
  // none); past this many, the fullest is dropped, which forgets at most its small deficit.
  std::size_t max_item_buckets = 10'000;
};

// The answer to one command.
struct CommandVerdict {
  int status = 200;                 // 200 go ahead; 400, 403, 404, 429: refused
  std::string message;              // why not, for the cloud caller and the audit log
  std::string command;              // 200: the text to POST to openHAB, normalised
  std::int64_t retry_after_ms = 0;  // 429: when a token will be there again
};

// Whether an item may be commanded, and by which rule; `reason` is fit for a user either way.
struct Permission {
  bool allowed = false;
  std::string reason;
};

// The gate of one configuration. Not thread-safe: one owner (the loop thread); Allowed alone is
// safe for concurrent const use.
class CommandGate {
 public:
  // Errors: code "bad_pattern" listing every bad pattern of `[commands] allow` and `deny`;
  // code "config" for a rate that is not a positive finite number, a burst below 1 or
  // max_item_buckets 0.
  static Result<CommandGate> Create(CommandGateOptions options);

  // Checks the command `command` to the item named `item` of `items` at `now_ms` (loop time,
  // never decreasing; a step back counts as no time passed). `replicated`: whether the item is
  // selected by openhab.items / exclude. A 200 verdict has taken its tokens: the caller must
  // send `command` (or count it as sent).
  CommandVerdict Check(const ItemMap& items, std::string_view item, std::string_view command,
                       bool replicated, std::int64_t now_ms);

  // The allowlist alone, for `item` of the map `groups` is over (the `items` method shows it):
  // 1. a `deny` pattern matches: refused;
  // 2. metadata `command = false`: refused; `command = true`: allowed, even when read-only,
  //    not replicated or matched by no `allow` pattern;
  // 3. `allow` not empty: allowed when a pattern matches and the item is not read-only;
  // 4. `allow` empty: allowed when the item is replicated and not read-only.
  // A metadata value that is not a boolean counts as not set, and a refusal says so.
  Permission Allowed(const openhab::Item& item, const GroupMembership& groups,
                     bool replicated) const;

  // The per-item buckets held now (bounded by max_item_buckets), for tests and metrics.
  std::size_t bucket_count() const { return item_buckets_.size(); }

 private:
  struct Limit {
    double rate = 1;  // tokens a second
    int burst = 1;    // tokens at most
  };
  // A token bucket: `tokens` at `updated_ms`, refilled by its Limit.
  struct Bucket {
    double tokens = 0;
    std::int64_t updated_ms = 0;
    // The tokens at `now_ms`; a step back in time refills nothing.
    double At(std::int64_t now_ms, const Limit& limit) const;
    // The shortest delay after `now_ms` (at least 1 ms) at which At gives a whole token.
    std::int64_t MsUntilToken(std::int64_t now_ms, const Limit& limit) const;
  };

  CommandGate(CommandGateOptions options, std::vector<ItemPattern> allow,
              std::vector<ItemPattern> deny);

  // The 429 verdict when the item's or the overall bucket is empty at `now_ms`; otherwise
  // takes a token from each and returns nullopt.
  std::optional<CommandVerdict> TakeTokens(std::string_view item, std::int64_t now_ms);
  // Drops the buckets that are full again at `now_ms`; then, while the map is at its cap, the
  // fullest ones.
  void Prune(std::int64_t now_ms);

  CommandGateOptions options_;
  std::vector<ItemPattern> allow_;
  std::vector<ItemPattern> deny_;
  Limit item_limit_;
  Limit total_limit_;
  std::map<std::string, Bucket, std::less<>> item_buckets_;  // absent: full
  Bucket total_bucket_;
  std::size_t prune_at_;  // Prune when the map reaches this size (amortised O(1) per command)
};

// The item's `azureiothub` metadata `command` setting: nullopt when not set. Accepts a JSON
// boolean or the text "true" / "false" (ASCII case ignored); anything else is an Error (code
// "bad_metadata") naming the item, what was given and what was expected.
Result<std::optional<bool>> CommandMetadata(const openhab::Item& item);

// What the item's type accepts as commands, machine-friendly, for a dashboard's buttons:
// Switch ["ON","OFF"]; Dimmer ["ON","OFF","INCREASE","DECREASE","0-100"]; Rollershutter
// ["UP","DOWN","STOP","MOVE","0-100"]; Color ["ON","OFF","INCREASE","DECREASE","0-100",
// "H,S,B"]; Number ["<number>"]; Number:X ["<number> U"] with the item's unit U (or "<unit>"
// when unknown); Player ["PLAY","PAUSE","NEXT","PREVIOUS","REWIND","FASTFORWARD"]; String
// ["<text>"]; DateTime ["<ISO 8601>"]; Location ["<lat>,<lon>[,<alt>]"]; Contact, Image, Call
// [] (openHAB takes no command for them but REFRESH). REFRESH, which every type accepts, is
// not listed. A typed group by its base type; a plain group and an unknown type ["<any>"]
// (openHAB decides: a plain group forwards to its members).
std::vector<std::string> AcceptedCommands(const openhab::Item& item);

}  // namespace iothub::connector
