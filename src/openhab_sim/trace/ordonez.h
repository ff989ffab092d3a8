// The converter from the Ordonez ADL sensor log (shared/data/README.md) to a trace and the
// item definitions of its sensors (docs/openhab-sim-traces.md#ordonez). Thread-safe (pure
// functions).
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "openhab_sim/trace/home_item.h"
#include "openhab_sim/trace/trace.h"

namespace iothub::sim {

struct OrdonezLog {
  // Two entries per activation: ON/OPEN at its start, OFF/CLOSED at its end; `t` is seconds
  // since the earliest start, which is `trace.start`.
  Trace trace;
  // The sensors in order of first appearance in the log; they start OFF/CLOSED and belong
  // to the group of their place.
  std::vector<HomeItem> items;
  // One Group item per place (`gKitchen`, label the place, tag Location), in order of first
  // appearance: for a home that does not define these groups itself.
  std::vector<HomeItem> groups;
  std::size_t lines = 0;        // lines read, the header and blank lines included
  std::size_t activations = 0;  // data lines
  // Activations that start before the previous one of the same sensor has ended. Their
  // changes are kept as logged; the item's state follows the latest change.
  std::size_t overlaps = 0;
};

// Converts a log: a header line `Start time, End time, Location, Type, Place`, then one
// activation a line, fields split on runs of tabs, `\r\n` or `\n` line ends, times
// `YYYY-MM-DD HH:MM:SS` taken as naive local times (no DST shift). Changes at the same second
// are ordered: ends of earlier activations, then starts, then ends of zero-length
// activations, each in log order, so that every item ends in the state its activations say.
// Any malformed line is an Error (code "bad_log") starting `source_name:line: `: wrong field
// count, a bad time, an end before its start, an unknown sensor type (Magnetic, PIR,
// Pressure, Flush, Electric), a name part with no letters or digits.
Result<OrdonezLog> ConvertOrdonez(std::istream& in, std::string_view source_name);
Result<OrdonezLog> ConvertOrdonezFile(const std::string& path);

// The item name of a sensor: each part split into words at ASCII characters other than
// letters and digits, non-ASCII bytes dropped, each word's first letter upper-cased, the
// words joined; the three parts joined by
// `_`; `_` in front if the name would start with a digit. `("Kitchen", "Fridge", "Magnetic")`
// gives `Kitchen_Fridge_Magnetic`, `("living room", "sofa-seat", "PIR")` gives
// `LivingRoom_SofaSeat_PIR`. Empty when a part has no letter or digit.
std::string SensorItemName(std::string_view place, std::string_view location,
                           std::string_view type);

}  // namespace iothub::sim
