// Percent-encoding as IoT Hub and its SDKs use it. Thread-safe (pure functions).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace iothub {

// Encodes everything but unreserved characters (A-Z a-z 0-9 - _ . ~) with uppercase hex,
// as the Node and Python SDKs do (they also escape !'()*).
std::string UrlEncode(std::string_view text);
// Decodes %XX (either case). '+' stays '+' unless plus_is_space. Returns nullopt on a
// truncated or non-hex escape.
std::optional<std::string> UrlDecode(std::string_view text, bool plus_is_space = false);

}  // namespace iothub
