// The iothub-connector command line, run as a real child process.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

namespace {

struct Output {
  int status = -1;
  std::string out;  // stdout and stderr
};

Output Connector(const std::string& args) {
  const std::string command = std::string(IOTHUB_BIN_DIR) + "/iothub-connector " + args + " 2>&1";
  Output run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) run.out += buffer.data();
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

TEST(ConnectorCli, SasTokenMatchesTheReferenceVector) {
  // shared/reference/azure-iothub.md §2, last row of the table.
  const Output run = Connector(
      "sas-token --resource myhub.azure-devices.net/devices/dev1 "
      "--key AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= --expiry 1700000000");
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_EQ(run.out,
            "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev1&sig=i%2BYmMcSSZc4Kz"
            "Bi6ejz3l0iL%2B2sN0CE3q6vSm837h2g%3D&se=1700000000\n");
}

TEST(ConnectorCli, SasTokenWithPolicyAndTtl) {
  const Output run = Connector(
      "sas-token --resource myhub.azure-devices.net --key cGFzc3dvcmQ= "
      "--policy iothubowner --ttl 3600");
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_EQ(run.out.rfind("SharedAccessSignature sr=myhub.azure-devices.net&sig=", 0), 0u)
      << run.out;
  EXPECT_NE(run.out.find("&skn=iothubowner"), std::string::npos);
}

TEST(ConnectorCli, SasTokenRejectsBadInputWithoutEchoingTheKey) {
  const Output bad_key = Connector("sas-token --resource r --key 'secret!!' --ttl 60");
  EXPECT_EQ(bad_key.status, 2);
  EXPECT_NE(bad_key.out.find("not valid base64"), std::string::npos) << bad_key.out;
  EXPECT_EQ(bad_key.out.find("secret!!"), std::string::npos) << "the key is never printed";
  const Output no_lifetime = Connector("sas-token --resource r --key cGFzc3dvcmQ=");
  EXPECT_EQ(no_lifetime.status, 2);
  EXPECT_NE(no_lifetime.out.find("--ttl"), std::string::npos);
  const Output both = Connector("sas-token --resource r --key cGFzc3dvcmQ= --ttl 5 --expiry 5");
  EXPECT_NE(both.status, 0);
  const Output none = Connector("");
  EXPECT_NE(none.status, 0);
  EXPECT_NE(none.out.find("subcommand"), std::string::npos) << none.out;
}

}  // namespace
