// An openhab::Item built in code, for unit tests of the connector's item logic. Thread-safe
// (pure).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "openhab/item.h"

namespace iothub::testing {

inline openhab::Item MakeItem(std::string name, std::string type,
                              std::vector<std::string> groups = {},
                              std::vector<std::string> tags = {}) {
  openhab::Item item;
  item.name = std::move(name);
  item.type = std::move(type);
  item.groups = std::move(groups);
  item.tags = std::move(tags);
  return item;
}

}  // namespace iothub::testing
