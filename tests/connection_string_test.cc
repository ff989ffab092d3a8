#include "azure/connection_string.h"

#include <gtest/gtest.h>

#include "azure/sas_token.h"

namespace iothub::azure {
namespace {

// Ends in '=', so a split at the wrong '=' would corrupt it.
constexpr std::string_view kKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
constexpr std::string_view kHost = "myhub.azure-devices.net";

std::string Device(std::string_view rest) {
  return "HostName=" + std::string(kHost) + ";DeviceId=dev1;" + std::string(rest);
}

DeviceConnectionString DeviceOk(std::string_view text) {
  auto cs = ParseDeviceConnectionString(text);
  EXPECT_TRUE(cs.ok()) << text << ": " << (cs.ok() ? "" : cs.error().message);
  return cs.ok() ? *cs : DeviceConnectionString{};
}

// The message of a device string that must fail.
std::string DeviceError(std::string_view text) {
  auto cs = ParseDeviceConnectionString(text);
  EXPECT_FALSE(cs.ok()) << text;
  if (cs.ok()) {
    return {};
  }
  EXPECT_EQ(cs.error().code, "InvalidConnectionString");
  return cs.error().message;
}

std::string ServiceError(std::string_view text) {
  auto cs = ParseServiceConnectionString(text);
  EXPECT_FALSE(cs.ok()) << text;
  if (cs.ok()) {
    return {};
  }
  EXPECT_EQ(cs.error().code, "InvalidConnectionString");
  return cs.error().message;
}

TEST(ConnectionStringTest, ParsesServiceString) {
  const std::string text =
      "HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;"
      "SharedAccessKey=" +
      std::string(kKey);
  auto cs = ParseServiceConnectionString(text);
  ASSERT_TRUE(cs.ok()) << cs.error().message;
  EXPECT_EQ(cs->host_name, kHost);
  EXPECT_EQ(cs->policy_name, "iothubowner");
  EXPECT_EQ(cs->key, kKey);
  EXPECT_EQ(FormatServiceConnectionString(*cs), text);
}

TEST(ConnectionStringTest, ParsesDeviceStringWithKey) {
  const std::string text = Device("SharedAccessKey=" + std::string(kKey));
  const DeviceConnectionString cs = DeviceOk(text);
  EXPECT_EQ(cs.host_name, kHost);
  EXPECT_EQ(cs.device_id, "dev1");
  EXPECT_EQ(cs.module_id, "");
  EXPECT_EQ(cs.key, kKey);
  EXPECT_EQ(cs.shared_access_signature, "");
  EXPECT_FALSE(cs.x509);
  EXPECT_EQ(cs.gateway_host, "");
  EXPECT_EQ(cs.gateway_port, std::nullopt);
  EXPECT_EQ(FormatDeviceConnectionString(cs), text);
}

TEST(ConnectionStringTest, ParsesModuleString) {
  const std::string text = Device("ModuleId=filter;SharedAccessKey=" + std::string(kKey));
  const DeviceConnectionString cs = DeviceOk(text);
  EXPECT_EQ(cs.device_id, "dev1");
  EXPECT_EQ(cs.module_id, "filter");
  EXPECT_EQ(FormatDeviceConnectionString(cs), text);
}

TEST(ConnectionStringTest, SplitsAtFirstEquals) {
  const DeviceConnectionString cs = DeviceOk(Device("SharedAccessKey=cGFzc3dvcmQ="));
  EXPECT_EQ(cs.key, "cGFzc3dvcmQ=");
  const DeviceConnectionString two = DeviceOk(Device("SharedAccessKey=YQ=="));
  EXPECT_EQ(two.key, "YQ==");
  EXPECT_EQ(DeviceOk(Device("ModuleId=a=b;x509=true")).module_id, "a=b");
}

TEST(ConnectionStringTest, AcceptsAnyOrderAndEmptyElements) {
  const DeviceConnectionString cs = DeviceOk(";SharedAccessKey=" + std::string(kKey) +
                                             ";;DeviceId=dev1;HostName=myhub.azure-devices.net;");
  EXPECT_EQ(cs.host_name, kHost);
  EXPECT_EQ(cs.device_id, "dev1");
  EXPECT_EQ(cs.key, kKey);
}

TEST(ConnectionStringTest, LastDuplicateWins) {
  const DeviceConnectionString cs =
      DeviceOk("HostName=first;DeviceId=a;HostName=second;SharedAccessKey=" + std::string(kKey) +
               ";DeviceId=b");
  EXPECT_EQ(cs.host_name, "second");
  EXPECT_EQ(cs.device_id, "b");

  auto service = ParseServiceConnectionString(
      "HostName=h;SharedAccessKeyName=service;SharedAccessKey=" + std::string(kKey) +
      ";SharedAccessKeyName=iothubowner");
  ASSERT_TRUE(service.ok()) << service.error().message;
  EXPECT_EQ(service->policy_name, "iothubowner");
}

TEST(ConnectionStringTest, IgnoresUnknownElements) {
  EXPECT_EQ(DeviceOk(Device("Foo=bar;SharedAccessKey=" + std::string(kKey))).key, kKey);
}

TEST(ConnectionStringTest, NamesAreCaseSensitive) {
  EXPECT_NE(
      DeviceError("hostname=h;DeviceId=d;SharedAccessKey=" + std::string(kKey)).find("HostName"),
      std::string::npos);
}

TEST(ConnectionStringTest, MissingPartsAreNamed) {
  const std::string key = "SharedAccessKey=" + std::string(kKey);
  EXPECT_EQ(DeviceError("DeviceId=d;" + key), "connection string has no HostName");
  EXPECT_EQ(DeviceError("HostName=;DeviceId=d;" + key), "connection string has no HostName");
  EXPECT_EQ(DeviceError("HostName=h;" + key), "connection string has no DeviceId");
  EXPECT_EQ(DeviceError(""), "connection string has no HostName");

  EXPECT_EQ(ServiceError("SharedAccessKeyName=p;" + key), "connection string has no HostName");
  EXPECT_EQ(ServiceError("HostName=h;" + key), "connection string has no SharedAccessKeyName");
  EXPECT_EQ(ServiceError("HostName=h;SharedAccessKeyName=p"),
            "connection string has no SharedAccessKey");
}

TEST(ConnectionStringTest, MalformedElements) {
  EXPECT_NE(DeviceError(Device("x509=true;garbage")).find("element 4 has no '='"),
            std::string::npos);
  EXPECT_NE(DeviceError(Device("x509=true;=value")).find("empty name"), std::string::npos);
  EXPECT_NE(ServiceError("HostName=h;SharedAccessKeyName=p;SharedAccessKey=not*base64")
                .find("SharedAccessKey is not valid base64"),
            std::string::npos);
  EXPECT_EQ(DeviceError(Device("SharedAccessKey=a")), "SharedAccessKey is not valid base64");
}

TEST(ConnectionStringTest, NeedsExactlyOneCredential) {
  const std::string key = "SharedAccessKey=" + std::string(kKey);
  auto token = MakeSasToken("myhub.azure-devices.net/devices/dev1", kKey, 1700000000);
  ASSERT_TRUE(token.ok());
  const std::string sas = "SharedAccessSignature=" + *token;

  EXPECT_NE(DeviceError(Device("")).find("no credential"), std::string::npos);
  EXPECT_NE(DeviceError(Device("x509=false")).find("no credential"), std::string::npos);
  EXPECT_NE(DeviceError(Device(key + ";" + sas)).find("more than one credential"),
            std::string::npos);
  EXPECT_NE(DeviceError(Device(key + ";x509=true")).find("more than one credential"),
            std::string::npos);
  EXPECT_NE(DeviceError(Device(sas + ";x509=true")).find("more than one credential"),
            std::string::npos);

  const DeviceConnectionString with_token = DeviceOk(Device(sas));
  EXPECT_EQ(with_token.shared_access_signature, *token);
  EXPECT_EQ(with_token.key, "");
  EXPECT_EQ(FormatDeviceConnectionString(with_token), Device(sas));

  const DeviceConnectionString with_x509 = DeviceOk(Device("x509=true"));
  EXPECT_TRUE(with_x509.x509);
  EXPECT_EQ(with_x509.key, "");
  EXPECT_EQ(FormatDeviceConnectionString(with_x509), Device("x509=true"));

  EXPECT_TRUE(DeviceOk(Device("x509=TRUE")).x509);
  EXPECT_FALSE(DeviceOk(Device(key + ";x509=false")).x509);
  EXPECT_NE(DeviceError(Device("x509=yes")).find("x509"), std::string::npos);
}

TEST(ConnectionStringTest, RejectsMalformedSharedAccessSignature) {
  EXPECT_NE(DeviceError(Device("SharedAccessSignature=sr=a&sig=b&se=1"))
                .find("SharedAccessSignature is not a valid"),
            std::string::npos);
  EXPECT_NE(DeviceError(Device("SharedAccessSignature=SharedAccessSignature sr=a&se=1"))
                .find("SharedAccessSignature"),
            std::string::npos);
}

TEST(ConnectionStringTest, GatewayHostWithoutPort) {
  const std::string text =
      Device("SharedAccessKey=" + std::string(kKey) + ";GatewayHostName=edge.local");
  const DeviceConnectionString cs = DeviceOk(text);
  EXPECT_EQ(cs.host_name, kHost);  // HostName stays the identity.
  EXPECT_EQ(cs.gateway_host, "edge.local");
  EXPECT_EQ(cs.gateway_port, std::nullopt);
  EXPECT_EQ(FormatDeviceConnectionString(cs), text);
}

TEST(ConnectionStringTest, GatewayHostWithPort) {
  const std::string text =
      Device("SharedAccessKey=" + std::string(kKey) + ";GatewayHostName=localhost:18883");
  const DeviceConnectionString cs = DeviceOk(text);
  EXPECT_EQ(cs.host_name, kHost);
  EXPECT_EQ(cs.gateway_host, "localhost");
  EXPECT_EQ(cs.gateway_port, 18883);
  EXPECT_EQ(FormatDeviceConnectionString(cs), text);

  EXPECT_EQ(DeviceOk(Device("x509=true;GatewayHostName=127.0.0.1:1")).gateway_port, 1);
  EXPECT_EQ(DeviceOk(Device("x509=true;GatewayHostName=h:65535")).gateway_port, 65535);
}

TEST(ConnectionStringTest, GatewayHostIpv6) {
  const DeviceConnectionString with_port = DeviceOk(Device("x509=true;GatewayHostName=[::1]:8883"));
  EXPECT_EQ(with_port.gateway_host, "[::1]");
  EXPECT_EQ(with_port.gateway_port, 8883);
  const DeviceConnectionString without = DeviceOk(Device("x509=true;GatewayHostName=[::1]"));
  EXPECT_EQ(without.gateway_host, "[::1]");
  EXPECT_EQ(without.gateway_port, std::nullopt);
}

TEST(ConnectionStringTest, GatewayHostBadPort) {
  for (std::string_view port : {"", "0", "65536", "99999999999", "abc", "12x", "-1", "+1", " 1"}) {
    const std::string message =
        DeviceError(Device("x509=true;GatewayHostName=localhost:" + std::string(port)));
    EXPECT_NE(message.find("GatewayHostName port"), std::string::npos) << port << ": " << message;
  }
  EXPECT_EQ(DeviceError(Device("x509=true;GatewayHostName=:8883")), "GatewayHostName has no host");
}

TEST(ConnectionStringTest, ErrorMessagesNeverContainSecrets) {
  constexpr std::string_view kBadKey = "c2VjcmV0LXNlY3JldC1zZWNyZXQ*";
  constexpr std::string_view kPastedKey = "c2VjcmV0LXNlY3JldC1zZWNyZXQ";
  auto token = MakeSasToken("myhub.azure-devices.net/devices/dev1", kKey, 1700000000);
  ASSERT_TRUE(token.ok());
  auto parsed = ParseSasToken(*token);
  ASSERT_TRUE(parsed.ok());
  const std::string signature = parsed->signature;
  const std::string encoded_sig = token->substr(token->find("sig=") + 4, 20);
  const std::string broken_token =  // No "se", and a field without '=' quoting the signature.
      "SharedAccessSignature " + encoded_sig + "&sr=a&sig=" + encoded_sig;

  struct Case {
    bool service;
    std::string text;
    std::string secret;
  };
  const Case cases[] = {
      {false, Device("SharedAccessKey=" + std::string(kBadKey)), std::string(kBadKey)},
      {true, "HostName=h;SharedAccessKeyName=p;SharedAccessKey=" + std::string(kBadKey),
       std::string(kBadKey)},
      {true, "HostName=h;SharedAccessKeyName=p;" + std::string(kPastedKey),
       std::string(kPastedKey)},
      {false, Device(std::string(kPastedKey)), std::string(kPastedKey)},
      {false, "DeviceId=d;SharedAccessKey=" + std::string(kKey), std::string(kKey)},
      {false, Device("SharedAccessKey=" + std::string(kKey) + ";x509=true"), std::string(kKey)},
      {false, Device("SharedAccessKey=" + std::string(kKey) + ";GatewayHostName=h:x"),
       std::string(kKey)},
      {false, Device("SharedAccessSignature=" + *token + ";SharedAccessKey=" + std::string(kKey)),
       signature},
      {false, Device("SharedAccessSignature=" + broken_token), encoded_sig},
  };
  for (const Case& c : cases) {
    const std::string message = c.service ? ServiceError(c.text) : DeviceError(c.text);
    ASSERT_FALSE(message.empty()) << c.text;
    EXPECT_EQ(message.find(c.secret), std::string::npos) << message;
    EXPECT_EQ(message.find(c.secret.substr(0, 8)), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace iothub::azure
