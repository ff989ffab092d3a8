// openHAB item states and commands as typed values (shared/reference/openhab.md §3, §5): the
// text openHAB sends (`21.5 °C`, `120,100,50`, `2014-03-30T10:58:47.033+0200`) to a State,
// and a State back to the text openHAB accepts. Parsing follows openhab-core's *Type.valueOf
// rules (library/types) with the deviations noted below; what is not understood is an Error,
// never an exception or a crash. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace iothub::openhab {

using Json = nlohmann::json;

// One kind per openHAB value type (§3), NULL and UNDEF apart.
enum class StateKind {
  kNull,   // UnDefType NULL: never set
  kUndef,  // UnDefType UNDEF: unknown
  kOnOff,
  kOpenClosed,
  kUpDown,
  kStopMove,          // command only
  kIncreaseDecrease,  // command only
  kPlayPause,
  kRewindFastforward,
  kNextPrevious,  // command only
  kRefresh,       // command only, accepted by every item type
  kDecimal,       // a number without unit
  kQuantity,      // a number with a unit
  kPercent,       // 0..100 (Dimmer, Rollershutter, Color brightness)
  kHsb,
  kPoint,
  kDateTime,
  kString,
  kRaw,         // a data URI (Image)
  kStringList,  // Call
};

// The value of the keyword kinds, kOnOff to kRefresh.
enum class Word {
  kNone,
  kOn,
  kOff,
  kOpen,
  kClosed,
  kUp,
  kDown,
  kStop,
  kMove,
  kIncrease,
  kDecrease,
  kPlay,
  kPause,
  kRewind,
  kFastforward,
  kNext,
  kPrevious,
  kRefresh,
};

struct Hsb {
  double h = 0;  // 0 <= h < 360
  double s = 0;  // 0..100
  double b = 0;  // 0..100
  friend bool operator==(const Hsb&, const Hsb&) = default;
};

// Kept as given: openHAB folds latitudes beyond ±90 over the pole, this codec does not.
struct Point {
  double latitude = 0;
  double longitude = 0;
  std::optional<double> altitude;
  friend bool operator==(const Point&, const Point&) = default;
};

// Without a tz database a zone name alone (`CET`) or no zone at all does not fix an instant:
// openHAB would use the zone of its server. Then `epoch_ms` and `offset_minutes` are empty
// and only `text` (and `zone_id`) tell the time. UTC, GMT, UT and Z are offset 0.
struct DateTime {
  std::string text;                      // as received, trimmed; empty when built in code
  std::optional<std::int64_t> epoch_ms;  // the instant, sub-millisecond digits truncated
  std::optional<int> offset_minutes;     // the offset the text gave, e.g. 120 for +0200
  std::string zone_id;                   // `Europe/Berlin` from `...+01:00[Europe/Berlin]`
  friend bool operator==(const DateTime&, const DateTime&) = default;
};

// A tagged value: `kind` says which fields are meaningful; the others keep their defaults.
struct State {
  StateKind kind = StateKind::kNull;
  Word word = Word::kNone;  // keyword kinds
  double number = 0;        // kDecimal, kQuantity, kPercent
  // The number as received (`21.50`, `1E-7`): openHAB sends BigDecimal text, which a double
  // does not always round-trip. Empty when built in code; then `number` is formatted.
  std::string number_text;
  std::string unit;  // kQuantity: `°C`, `kWh`, `m/s²`, `%`; known mojibake repaired
  Hsb hsb;
  Point point;
  DateTime date_time;
  std::string text;               // kString: the text; kRaw: the whole data URI
  std::string mime_type;          // kRaw: e.g. `image/png`
  std::vector<std::string> list;  // kStringList, commas unescaped
  friend bool operator==(const State&, const State&) = default;
};

State MakeNull();
State MakeUndef();
State MakeWord(Word word);  // sets the kind that goes with the word; kNone gives NULL
State MakeDecimal(double value);
State MakePercent(double value);
State MakeQuantity(double value, std::string unit);
State MakeHsb(double h, double s, double b);
State MakePoint(double latitude, double longitude, std::optional<double> altitude = {});
State MakeDateTime(std::int64_t epoch_ms, int offset_minutes);
State MakeString(std::string text);

// The state text of an item whose `type` is `item_type` (§1, §5): `Switch`, `Dimmer`,
// `Number`, `Number:Temperature`, ..., `Group:Switch`, `Group:Number:Power:SUM`. A group is
// parsed by its base type; a plain `Group` keeps its text as kString. `NULL` and `UNDEF` are
// kNull / kUndef for every type. An item type this codec does not know gives kString. Text
// that is no valid state for a known type is an Error (code "bad_state") naming the item
// type, the text (quoted, shortened) and what was expected.
// Numbers: `[+-]digits[.digits][e[+-]digits]`, no NaN, no infinity, no grouping separators
// (openHAB reads `1,5` as 15 in its English locale; here it is an error), within a double's
// range. A unit follows the number with or without a space; any unit text without spaces is
// accepted (openHAB checks it against its unit registry). A plain `Number` item may carry a
// unit too. Number items give kDecimal without and kQuantity with a unit.
// Date-times: `yyyy-MM-dd['T'| ]HH:mm[:ss[.1-9 digits]]` or a date alone or a time alone
// (1970-01-01), then nothing, `Z`, `±HH`, `±HHMM`, `±HH:MM` (optionally followed by
// `[Region/Zone]`) or a zone name; or an epoch number (under 12 digits seconds, else ms).
Result<State> ParseState(std::string_view item_type, std::string_view text);

// As ParseState, but text that does not parse is kept as kString: for readings, where an odd
// value is still worth forwarding.
State ParseStateTolerant(std::string_view item_type, std::string_view text);

// Command text for an item (what a cloud command carries), tried against the item type's
// command types in openHAB's order: for a String item everything is text, `REFRESH` too. A
// plain `Group` or an unknown type gives kString. Errors as ParseState, code "bad_command".
Result<State> ParseCommand(std::string_view item_type, std::string_view text);

// A value as an event payload carries it, `{"type":"Quantity","value":"21.5 °C"}`, by the
// §3 type name (`OnOff`, `Quantity`, `HSB`, `UnDef`, ...). `Quantity` without a unit gives
// kDecimal. An unknown type name gives kString, as unknown item types do.
Result<State> ParseTypedValue(std::string_view type_name, std::string_view value);

// The §3 type name of a kind (`UnDef` for kNull and kUndef).
std::string_view TypeName(StateKind kind);
// The lower-case name ToJson uses for a kind: `onoff`, `quantity`, `hsb`, ...
std::string_view KindName(StateKind kind);

// The text openHAB accepts for this value as a command or state update: `ON`, `21.5 °C`,
// `120,100,50`, `52.5,13.4`, `a\,b,c`, `2014-03-30T10:58:47.033+0200`. The original number
// text and date-time text are used when present.
std::string ToCommandText(const State& state);

// ToCommandText, once the value is checked against the commands `item_type` accepts (§5 and
// openhab-core's ACCEPTED_COMMAND_TYPES): REFRESH for every type; Switch ON/OFF; Dimmer a
// percent, ON/OFF, INCREASE/DECREASE; Rollershutter a percent, UP/DOWN, STOP/MOVE; Color
// HSB, a percent, ON/OFF, INCREASE/DECREASE; Number a number or a quantity (the unit's
// dimension is not checked); Contact, Image, Call nothing else; DateTime a date-time;
// Location a point; Player PLAY/PAUSE, REWIND/FASTFORWARD, NEXT/PREVIOUS; String any value.
// Dimmer, Rollershutter and Color take a kDecimal in 0..100 as a percent. NULL and UNDEF are
// never commands. A plain `Group` or an unknown type passes any other value through (openHAB
// decides). Errors (code "bad_command") name the item type and what it accepts.
Result<std::string> CommandFor(std::string_view item_type, const State& state);

// A stable JSON form for telemetry. Numbers that are integers are JSON integers. Strings are
// made valid UTF-8 (invalid bytes become U+FFFD) so that the result always serialises.
//   {"kind":"null"}  {"kind":"undef"}  {"kind":"refresh"}
//   {"kind":"onoff","value":true}
//   {"kind":"openclosed"|"updown"|"stopmove"|"increasedecrease"|"playpause"|
//          "rewindfastforward"|"nextprevious","value":"OPEN"}      (the word)
//   {"kind":"decimal"|"percent","value":21.5}
//   {"kind":"quantity","value":21.5,"unit":"°C"}
//   {"kind":"hsb","h":120,"s":100,"b":50}
//   {"kind":"point","lat":52.5,"lon":13.4[,"alt":34]}
//   {"kind":"datetime","value":"2014-03-30T10:58:47.033+02:00"[,"epochMs":..]
//          [,"offsetMinutes":120][,"zone":"Europe/Berlin"]}
//     value is ISO 8601 (extended offset) when the instant is known, else the text received
//   {"kind":"string","value":"text"}
//   {"kind":"raw","mimeType":"image/png","value":"data:image/png;base64,..."}
//   {"kind":"stringlist","value":["a","b"]}
Json ToJson(const State& state);

}  // namespace iothub::openhab
