// Checks a trace against the items it drives: every item defined, every state one its item
// type accepts (the openHAB state codec, src/openhab/state.h). Thread-safe (pure function).
#pragma once

#include <string_view>
#include <vector>

#include "common/result.h"
#include "openhab_sim/trace/home_item.h"
#include "openhab_sim/trace/trace.h"

namespace iothub::sim {

// The first problem as an Error (code "bad_trace") starting `source_name:line: ` (the line
// each entry was read from): an item no definition names, or a state its type rejects.
Status CheckTraceStates(const Trace& trace, const std::vector<HomeItem>& items,
                        std::string_view source_name);

}  // namespace iothub::sim
