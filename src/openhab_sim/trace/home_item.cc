#include "openhab_sim/trace/home_item.h"

#include <fmt/format.h>

#include <algorithm>

#include "openhab_sim/trace/trace.h"

namespace iothub::sim {

nlohmann::ordered_json ToJson(const HomeItem& item) {
  nlohmann::ordered_json j;
  j["name"] = item.name;
  j["type"] = item.type;
  if (!item.label.empty()) j["label"] = item.label;
  if (!item.category.empty()) j["category"] = item.category;
  if (!item.tags.empty()) j["tags"] = item.tags;
  if (!item.groups.empty()) j["groups"] = item.groups;
  if (!item.state.empty()) j["state"] = item.state;
  return j;
}

nlohmann::ordered_json ToJson(const std::vector<HomeItem>& items) {
  auto array = nlohmann::ordered_json::array();
  for (const HomeItem& item : items) array.push_back(ToJson(item));
  return array;
}

Result<std::vector<HomeItem>> ParseHomeItems(const nlohmann::json& items, std::string_view where) {
  if (!items.is_array()) {
    return MakeError("bad_items", fmt::format("{}: expected a JSON array of items", where));
  }
  std::vector<HomeItem> out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const nlohmann::json& j = items[i];
    const auto fail = [&](std::string_view what) {
      return MakeError("bad_items", fmt::format("{}[{}]: {}", where, i, what));
    };
    if (!j.is_object()) return fail("expected an object {\"name\":...,\"type\":...}");
    HomeItem item;
    for (const auto& [key, field] :
         {std::pair{"name", &item.name}, std::pair{"type", &item.type},
          std::pair{"label", &item.label}, std::pair{"category", &item.category},
          std::pair{"state", &item.state}}) {
      if (!j.contains(key)) continue;
      if (!j[key].is_string()) return fail(fmt::format("\"{}\" must be a string", key));
      *field = j[key].get<std::string>();
    }
    for (const auto& [key, field] :
         {std::pair{"tags", &item.tags}, std::pair{"groups", &item.groups}}) {
      if (!j.contains(key)) continue;
      const nlohmann::json& list = j[key];
      if (!list.is_array() || !std::all_of(list.begin(), list.end(),
                                           [](const nlohmann::json& e) { return e.is_string(); })) {
        return fail(fmt::format("\"{}\" must be an array of strings", key));
      }
      for (const auto& e : list) field->push_back(e.get<std::string>());
    }
    if (!IsValidItemName(item.name)) {
      return fail(fmt::format("\"name\" must be an item name [a-zA-Z_][a-zA-Z0-9_]*, found \"{}\"",
                              item.name));
    }
    if (item.type.empty()) return fail("missing \"type\" (Switch, Contact, Number:Power, ...)");
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace iothub::sim
