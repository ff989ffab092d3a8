// Shared Access Signature tokens as IoT Hub issues and verifies them
// (shared/reference/azure-iothub.md §2). Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace iothub::azure {

// "SharedAccessSignature sr=..&sig=..&se=..[&skn=..]" for `resource` (not yet URL-encoded),
// signed with the base64 `key`. Fails only when the key is not base64.
Result<std::string> MakeSasToken(std::string_view resource, std::string_view key_base64,
                                 std::int64_t expiry_epoch_s, std::string_view policy = {});

// base64(HMAC-SHA256(base64decode(key), string_to_sign)); nullopt if the key is not base64.
std::optional<std::string> SignString(std::string_view key_base64, std::string_view string_to_sign);

// A token taken apart. `sr_raw` is the resource exactly as it appears in the token (the
// signature covers it that way); `resource` is its decoded form.
struct ParsedSasToken {
  std::string sr_raw;
  std::string resource;
  std::string signature;  // decoded base64 text
  std::string se_raw;     // expiry exactly as received, also covered by the signature
  std::int64_t expiry = 0;
  std::string policy;  // skn, empty if absent
};

// Parses fields in any order; errors name the missing or malformed field.
Result<ParsedSasToken> ParseSasToken(std::string_view token);

// Checks the signature against `key_base64` over `sr_raw + "\n" + se`. Expiry is the
// caller's business (it owns the clock).
bool VerifySasSignature(const ParsedSasToken& token, std::string_view key_base64);

// DPS group enrollment: base64(HMAC-SHA256(base64decode(group_key), registration_id)).
std::optional<std::string> DeriveDeviceKey(std::string_view group_key_base64,
                                           std::string_view registration_id);

}  // namespace iothub::azure
