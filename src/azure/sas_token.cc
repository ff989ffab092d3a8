#include "azure/sas_token.h"

#include <charconv>

#include "common/crypto.h"
#include "common/url.h"

namespace iothub::azure {

std::optional<std::string> SignString(std::string_view key_base64,
                                      std::string_view string_to_sign) {
  auto key = Base64Decode(key_base64);
  if (!key) return std::nullopt;
  return Base64Encode(HmacSha256(*key, string_to_sign));
}

Result<std::string> MakeSasToken(std::string_view resource, std::string_view key_base64,
                                 std::int64_t expiry_epoch_s, std::string_view policy) {
  const std::string sr = UrlEncode(resource);
  const std::string se = std::to_string(expiry_epoch_s);
  auto sig = SignString(key_base64, sr + "\n" + se);
  if (!sig) return MakeError("InvalidKey", "the shared access key is not valid base64");
  std::string token = "SharedAccessSignature sr=" + sr + "&sig=" + UrlEncode(*sig) + "&se=" + se;
  if (!policy.empty()) token += "&skn=" + UrlEncode(policy);
  return token;
}

Result<ParsedSasToken> ParseSasToken(std::string_view token) {
  constexpr std::string_view kPrefix = "SharedAccessSignature ";
  if (token.substr(0, kPrefix.size()) != kPrefix) {
    return MakeError("InvalidToken", "token does not start with 'SharedAccessSignature '");
  }
  token.remove_prefix(kPrefix.size());
  ParsedSasToken out;
  bool have_sr = false, have_sig = false, have_se = false;
  while (!token.empty()) {
    const auto amp = token.find('&');
    const std::string_view field = token.substr(0, amp);
    token = amp == std::string_view::npos ? std::string_view{} : token.substr(amp + 1);
    const auto eq = field.find('=');
    if (eq == std::string_view::npos) {
      return MakeError("InvalidToken", "token has a field without '='");
    }
    const std::string_view name = field.substr(0, eq);
    const std::string_view value = field.substr(eq + 1);
    auto decoded = UrlDecode(value);
    if (!decoded)
      return MakeError("InvalidToken", "bad percent-encoding in token field " + std::string(name));
    if (name == "sr") {
      out.sr_raw = std::string(value);
      out.resource = std::move(*decoded);
      have_sr = true;
    } else if (name == "sig") {
      out.signature = std::move(*decoded);
      have_sig = true;
    } else if (name == "se") {
      const auto* end = decoded->data() + decoded->size();
      auto [ptr, ec] = std::from_chars(decoded->data(), end, out.expiry);
      if (ec != std::errc{} || ptr != end || decoded->empty()) {
        return MakeError("InvalidToken", "token expiry 'se' is not an integer");
      }
      out.se_raw = std::string(value);
      have_se = true;
    } else if (name == "skn") {
      out.policy = std::move(*decoded);
    }
    // Unknown fields are ignored, as the service does.
  }
  if (!have_sr) return MakeError("InvalidToken", "token has no resource 'sr'");
  if (!have_sig) return MakeError("InvalidToken", "token has no signature 'sig'");
  if (!have_se) return MakeError("InvalidToken", "token has no expiry 'se'");
  return out;
}

bool VerifySasSignature(const ParsedSasToken& token, std::string_view key_base64) {
  auto expected = SignString(key_base64, token.sr_raw + "\n" + token.se_raw);
  return expected && SecureEquals(*expected, token.signature);
}

std::optional<std::string> DeriveDeviceKey(std::string_view group_key_base64,
                                           std::string_view registration_id) {
  return SignString(group_key_base64, registration_id);
}

}  // namespace iothub::azure
