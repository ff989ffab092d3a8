// Small string helpers shared by every component. Thread-safe (pure functions).
#pragma once

#include <algorithm>
#include <cctype>
#include <string_view>

namespace iothub {

// ASCII case-insensitive equality (host names, header names, token resources).
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace iothub
