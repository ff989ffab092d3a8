#include "openhab_sim/trace/trace_check.h"

#include <fmt/format.h>

#include <map>
#include <string>

#include "openhab/state.h"

namespace iothub::sim {

Status CheckTraceStates(const Trace& trace, const std::vector<HomeItem>& items,
                        std::string_view source_name) {
  std::map<std::string, std::string, std::less<>> types;
  for (const HomeItem& item : items) types[item.name] = item.type;
  for (const TraceEntry& entry : trace.entries) {
    const auto fail = [&](std::string_view what) {
      return MakeError("bad_trace", fmt::format("{}:{}: {}", source_name, entry.line, what));
    };
    const auto type = types.find(entry.item);
    if (type == types.end()) return fail(fmt::format("item {} is not defined", entry.item));
    if (auto state = openhab::ParseState(type->second, entry.state); !state) {
      return fail(fmt::format("state of {}: {}", entry.item, state.error().message));
    }
  }
  return Ok{};
}

}  // namespace iothub::sim
