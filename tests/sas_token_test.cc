#include "azure/sas_token.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "common/url.h"

namespace iothub::azure {
namespace {

ParsedSasToken ParseOk(std::string_view token) {
  auto parsed = ParseSasToken(token);
  EXPECT_TRUE(parsed.ok()) << token << ": " << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? *parsed : ParsedSasToken{};
}

std::string MakeOk(std::string_view resource, std::string_view key, std::int64_t expiry,
                   std::string_view policy = {}) {
  auto token = MakeSasToken(resource, key, expiry, policy);
  EXPECT_TRUE(token.ok()) << resource;
  return token.ok() ? *token : std::string{};
}

std::string ParseError(std::string_view token) {
  auto parsed = ParseSasToken(token);
  EXPECT_FALSE(parsed.ok()) << token;
  if (parsed.ok()) {
    return {};
  }
  EXPECT_EQ(parsed.error().code, "InvalidToken");
  return parsed.error().message;
}

// Reference §2 vectors.

TEST(SasTokenTest, SignsStringToSign) {
  EXPECT_EQ(SignString("cGFzc3dvcmQ=", "string-to-sign"),
            "o1n1hiIVgzVA2+krq9ty1Z4xsIJKJZP3dYT8MOi65Y4=");
}

TEST(SasTokenTest, VectorWithPolicyNeedingEscapes) {
  constexpr std::string_view kReference =
      "SharedAccessSignature sr=uri&sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3D"
      "&skn=encode%28%27Me%27%29&se=12345";
  EXPECT_EQ(SignString("cGFzc3dvcmQ=", "uri\n12345"),
            "kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk=");
  // MakeSasToken writes skn last; otherwise the token is the reference one.
  EXPECT_EQ(MakeOk("uri", "cGFzc3dvcmQ=", 12345, "encode('Me')"),
            "SharedAccessSignature sr=uri&sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3D"
            "&se=12345&skn=encode%28%27Me%27%29");

  const ParsedSasToken parsed = ParseOk(kReference);
  EXPECT_EQ(parsed.sr_raw, "uri");
  EXPECT_EQ(parsed.resource, "uri");
  EXPECT_EQ(parsed.signature, "kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk=");
  EXPECT_EQ(parsed.se_raw, "12345");
  EXPECT_EQ(parsed.expiry, 12345);
  EXPECT_EQ(parsed.policy, "encode('Me')");
  EXPECT_TRUE(VerifySasSignature(parsed, "cGFzc3dvcmQ="));
}

TEST(SasTokenTest, VectorWithUnpaddedKey) {
  constexpr std::string_view kReference =
      "SharedAccessSignature sr=host%2Fdevices%2Fdevice"
      "&sig=wM3XiP6gD960IxP7J5WHqnxQHEcWC6YaQCtoMT%2BkKHc%3D&se=12345";
  EXPECT_EQ(MakeOk("host/devices/device", "key", 12345), kReference);
  EXPECT_EQ(SignString("key", "host%2Fdevices%2Fdevice\n12345"),
            "wM3XiP6gD960IxP7J5WHqnxQHEcWC6YaQCtoMT+kKHc=");
  const ParsedSasToken parsed = ParseOk(kReference);
  EXPECT_EQ(parsed.sr_raw, "host%2Fdevices%2Fdevice");
  EXPECT_EQ(parsed.resource, "host/devices/device");
  EXPECT_EQ(parsed.policy, "");
  EXPECT_TRUE(VerifySasSignature(parsed, "key"));
}

TEST(SasTokenTest, VectorWithLowercaseEncoding) {
  constexpr std::string_view kSig = "jvZpYSsnHxDN+Yfwq8IddYFTXC7MurwM68QH0Tg31vk=";
  EXPECT_EQ(SignString("key", "host%2fdevices%2fdevice\n12345"), kSig);
  // The C SDK's form: lowercase escapes, signed over exactly those bytes.
  const std::string token =
      "SharedAccessSignature sr=host%2fdevices%2fdevice&sig=" + UrlEncode(kSig) + "&se=12345";
  const ParsedSasToken parsed = ParseOk(token);
  EXPECT_EQ(parsed.sr_raw, "host%2fdevices%2fdevice");
  EXPECT_EQ(parsed.resource, "host/devices/device");
  EXPECT_EQ(parsed.signature, kSig);
  EXPECT_TRUE(VerifySasSignature(parsed, "key"));

  // The uppercase signature does not cover the lowercase resource: sr is used as received.
  const ParsedSasToken mixed = ParseOk(
      "SharedAccessSignature sr=host%2fdevices%2fdevice"
      "&sig=wM3XiP6gD960IxP7J5WHqnxQHEcWC6YaQCtoMT%2BkKHc%3D&se=12345");
  EXPECT_FALSE(VerifySasSignature(mixed, "key"));
}

TEST(SasTokenTest, VectorForDeviceResource) {
  constexpr std::string_view kKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  constexpr std::string_view kReference =
      "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev1"
      "&sig=i%2BYmMcSSZc4KzBi6ejz3l0iL%2B2sN0CE3q6vSm837h2g%3D&se=1700000000";
  EXPECT_EQ(MakeOk("myhub.azure-devices.net/devices/dev1", kKey, 1700000000), kReference);
  const ParsedSasToken parsed = ParseOk(kReference);
  EXPECT_EQ(parsed.resource, "myhub.azure-devices.net/devices/dev1");
  EXPECT_EQ(parsed.expiry, 1700000000);
  EXPECT_TRUE(VerifySasSignature(parsed, kKey));
}

TEST(SasTokenTest, DpsDerivedDeviceKey) {
  constexpr std::string_view kGroupKey =
      "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";
  constexpr std::string_view kRegistrationId = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6";
  const auto key = DeriveDeviceKey(kGroupKey, kRegistrationId);
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(*key, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");

  // The derived key signs the DPS registration token.
  const std::string resource = "0ne00000A0A/registrations/" + std::string(kRegistrationId);
  auto token = MakeSasToken(resource, *key, 1700000000, "registration");
  ASSERT_TRUE(token.ok()) << token.error().message;
  const ParsedSasToken parsed = ParseOk(*token);
  EXPECT_EQ(parsed.resource, resource);
  EXPECT_EQ(parsed.policy, "registration");
  EXPECT_TRUE(VerifySasSignature(parsed, *key));
  EXPECT_FALSE(VerifySasSignature(parsed, kGroupKey));

  EXPECT_EQ(DeriveDeviceKey("not base64!", kRegistrationId), std::nullopt);
}

// Parsing and verification.

TEST(SasTokenTest, ParsesFieldsInAnyOrder) {
  constexpr std::string_view kKey = "cGFzc3dvcmQ=";
  auto token = MakeSasToken("myhub.azure-devices.net", kKey, 1700000000, "iothubowner");
  ASSERT_TRUE(token.ok());
  const std::string body = token->substr(std::string_view("SharedAccessSignature ").size());
  std::vector<std::string> fields;
  for (std::size_t start = 0; start <= body.size();) {
    const auto amp = std::min(body.find('&', start), body.size());
    fields.push_back(body.substr(start, amp - start));
    start = amp + 1;
  }
  ASSERT_EQ(fields.size(), 4u);
  std::sort(fields.begin(), fields.end());
  int orders = 0;
  do {
    std::string reordered = "SharedAccessSignature ";
    for (const std::string& field : fields) {
      reordered += field + (&field == &fields.back() ? "" : "&");
    }
    const ParsedSasToken parsed = ParseOk(reordered);
    EXPECT_EQ(parsed.resource, "myhub.azure-devices.net") << reordered;
    EXPECT_EQ(parsed.expiry, 1700000000) << reordered;
    EXPECT_EQ(parsed.policy, "iothubowner") << reordered;
    EXPECT_TRUE(VerifySasSignature(parsed, kKey)) << reordered;
    ++orders;
  } while (std::next_permutation(fields.begin(), fields.end()));
  EXPECT_EQ(orders, 24);
}

TEST(SasTokenTest, UppercaseAndLowercaseResourceEncodingsVerify) {
  constexpr std::string_view kKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  for (std::string_view sr :
       {"myhub.azure-devices.net%2Fdevices%2Fdev1", "myhub.azure-devices.net%2fdevices%2fdev1",
        "myhub.azure-devices.net/devices/dev1"}) {
    const auto sig = SignString(kKey, std::string(sr) + "\n1700000000");
    ASSERT_TRUE(sig.has_value());
    const ParsedSasToken parsed = ParseOk("SharedAccessSignature sr=" + std::string(sr) +
                                          "&sig=" + UrlEncode(*sig) + "&se=1700000000");
    EXPECT_EQ(parsed.sr_raw, sr);
    EXPECT_EQ(parsed.resource, "myhub.azure-devices.net/devices/dev1");
    EXPECT_TRUE(VerifySasSignature(parsed, kKey)) << sr;
  }
}

TEST(SasTokenTest, ServiceTokenWithRawHostName) {
  // The Node service SDK sends sr as the bare host name.
  constexpr std::string_view kKey = "cGFzc3dvcmQ=";
  const auto sig = SignString(kKey, "myhub.azure-devices.net\n1700000000");
  ASSERT_TRUE(sig.has_value());
  const ParsedSasToken parsed =
      ParseOk("SharedAccessSignature sr=myhub.azure-devices.net&sig=" + UrlEncode(*sig) +
              "&se=1700000000&skn=service");
  EXPECT_EQ(parsed.resource, "myhub.azure-devices.net");
  EXPECT_EQ(parsed.policy, "service");
  EXPECT_TRUE(VerifySasSignature(parsed, kKey));
}

TEST(SasTokenTest, SignatureCoversExpiryAsReceived) {
  constexpr std::string_view kKey = "cGFzc3dvcmQ=";
  const auto sig = SignString(kKey, "uri\n0012345");
  ASSERT_TRUE(sig.has_value());
  const ParsedSasToken parsed =
      ParseOk("SharedAccessSignature sr=uri&sig=" + UrlEncode(*sig) + "&se=0012345");
  EXPECT_EQ(parsed.se_raw, "0012345");
  EXPECT_EQ(parsed.expiry, 12345);
  EXPECT_TRUE(VerifySasSignature(parsed, kKey));
}

TEST(SasTokenTest, TamperedTokensFail) {
  constexpr std::string_view kKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  const ParsedSasToken good = ParseOk(
      "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev1"
      "&sig=i%2BYmMcSSZc4KzBi6ejz3l0iL%2B2sN0CE3q6vSm837h2g%3D&se=1700000000");
  ASSERT_TRUE(VerifySasSignature(good, kKey));

  ParsedSasToken flipped = good;
  flipped.signature[5] = flipped.signature[5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(VerifySasSignature(flipped, kKey));

  ParsedSasToken truncated = good;
  truncated.signature.pop_back();
  EXPECT_FALSE(VerifySasSignature(truncated, kKey));

  ParsedSasToken later = good;
  later.se_raw = "1700000001";
  EXPECT_FALSE(VerifySasSignature(later, kKey));

  ParsedSasToken other_device = good;
  other_device.sr_raw = "myhub.azure-devices.net%2Fdevices%2Fdev2";
  EXPECT_FALSE(VerifySasSignature(other_device, kKey));

  EXPECT_FALSE(VerifySasSignature(good, "cGFzc3dvcmQ="));
  EXPECT_FALSE(VerifySasSignature(good, "not base64!"));

  const ParsedSasToken tampered_text = ParseOk(
      "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev1"
      "&sig=i%2BYmMcSSZc4KzBi6ejz3l0iL%2B2sN0CE3q6vSm837h2h%3D&se=1700000000");
  EXPECT_FALSE(VerifySasSignature(tampered_text, kKey));
}

TEST(SasTokenTest, MissingFieldsAreNamed) {
  EXPECT_NE(ParseError("SharedAccessSignature sig=abc&se=1").find("'sr'"), std::string::npos);
  EXPECT_NE(ParseError("SharedAccessSignature sr=a&se=1").find("'sig'"), std::string::npos);
  EXPECT_NE(ParseError("SharedAccessSignature sr=a&sig=abc").find("'se'"), std::string::npos);
  EXPECT_NE(ParseError("SharedAccessSignature ").find("'sr'"), std::string::npos);
}

TEST(SasTokenTest, MalformedTokens) {
  EXPECT_NE(ParseError("sr=a&sig=b&se=1").find("SharedAccessSignature"), std::string::npos);
  EXPECT_NE(ParseError("sharedaccesssignature sr=a&sig=b&se=1").find("SharedAccessSignature"),
            std::string::npos);
  for (std::string_view se : {"", "abc", "12x", "1.5"}) {
    EXPECT_NE(ParseError("SharedAccessSignature sr=a&sig=b&se=" + std::string(se)).find("'se'"),
              std::string::npos)
        << se;
  }
  EXPECT_NE(ParseError("SharedAccessSignature sr=a%zz&sig=b&se=1").find("sr"), std::string::npos);
  EXPECT_NE(ParseError("SharedAccessSignature sr=a&sig=b&se=1&junk").find("'='"),
            std::string::npos);
}

TEST(SasTokenTest, IgnoresUnknownFields) {
  const ParsedSasToken parsed = ParseOk("SharedAccessSignature sr=a&x=y&sig=b&se=7");
  EXPECT_EQ(parsed.resource, "a");
  EXPECT_EQ(parsed.signature, "b");
  EXPECT_EQ(parsed.expiry, 7);
}

TEST(SasTokenTest, MakeRejectsBadKey) {
  auto token = MakeSasToken("host/devices/dev1", "not base64!", 1);
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.error().code, "InvalidKey");
  EXPECT_EQ(token.error().message.find("not base64!"), std::string::npos);
  EXPECT_EQ(SignString("not base64!", "x"), std::nullopt);
}

TEST(SasTokenTest, ModuleResourceRoundTrip) {
  constexpr std::string_view kKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  constexpr std::string_view kResource = "myhub.azure-devices.net/devices/dev1/modules/filter";
  auto token = MakeSasToken(kResource, kKey, 1700003600);
  ASSERT_TRUE(token.ok());
  EXPECT_NE(token->find("sr=myhub.azure-devices.net%2Fdevices%2Fdev1%2Fmodules%2Ffilter&"),
            std::string::npos);
  const ParsedSasToken parsed = ParseOk(*token);
  EXPECT_EQ(parsed.resource, kResource);
  EXPECT_EQ(parsed.expiry, 1700003600);
  EXPECT_TRUE(VerifySasSignature(parsed, kKey));
}

}  // namespace
}  // namespace iothub::azure
