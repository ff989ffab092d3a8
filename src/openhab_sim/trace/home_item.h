// An item definition in openhab-sim's home-file form, for the items a trace or a series
// drives (docs/openhab-sim-traces.md#items). Thread-safe (values and pure functions).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace iothub::sim {

// `{"name":"Kitchen_Fridge_Magnetic","type":"Contact","label":"Kitchen fridge door",
//   "category":"door","tags":["OpenState"],"groups":["gKitchen"],"state":"CLOSED"}`;
// only name and type are required, empty fields are left out of the JSON.
struct HomeItem {
  std::string name;
  std::string type;  // openHAB item type: `Switch`, `Contact`, `Number:Power`, `Group`, ...
  std::string label;
  std::string category;
  std::vector<std::string> tags;
  std::vector<std::string> groups;
  std::string state;  // the initial state text; empty for none (NULL)
  friend bool operator==(const HomeItem&, const HomeItem&) = default;
};

nlohmann::ordered_json ToJson(const HomeItem& item);
// A JSON array of ToJson, in order.
nlohmann::ordered_json ToJson(const std::vector<HomeItem>& items);

// A JSON array of such objects (what ToJson gives). Errors (code "bad_items") start with
// `where`, e.g. `items.json[3]`, and name the field and what was expected: a missing or
// invalid name, a missing type, a field of the wrong JSON type. Unknown fields are ignored.
Result<std::vector<HomeItem>> ParseHomeItems(const nlohmann::json& items, std::string_view where);

}  // namespace iothub::sim
