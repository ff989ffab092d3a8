// Small wrappers over OpenSSL for what the SAS scheme needs. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace iothub {

std::string Base64Encode(std::string_view bytes);
// Accepts padded and unpadded input; returns nullopt on characters outside the alphabet.
std::optional<std::string> Base64Decode(std::string_view text);
// Raw 32-byte HMAC-SHA256 of `message` keyed with `key` (raw bytes).
std::string HmacSha256(std::string_view key, std::string_view message);
// Cryptographically strong random bytes.
std::string RandomBytes(std::size_t count);
// Lowercase hexadecimal, two digits per byte.
std::string HexEncode(std::string_view bytes);
// A random version-4 UUID ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"), as Azure uses for ids.
std::string NewUuid();
// Constant-time comparison for secrets.
bool SecureEquals(std::string_view a, std::string_view b);

}  // namespace iothub
