#include <chrono>
#include <iostream>

#include "azure/sas_token.h"
#include "connector/commands.h"

namespace iothub::connector {

void AddSasTokenCommand(CLI::App& app, int& exit_code) {
  struct Options {
    std::string resource;
    std::string key;
    std::string policy;
    std::int64_t ttl = 0;
    std::int64_t expiry = 0;
  };
  auto options = std::make_shared<Options>();  // shared: outlives this function in the callback
  CLI::App* cmd = app.add_subcommand(
      "sas-token",
      "Print a Shared Access Signature token, e.g. for curl or mosquitto_pub against a hub.\n"
      "Device: --resource myhub.azure-devices.net/devices/dev1 --key <device key>;\n"
      "service policy: --resource myhub.azure-devices.net --key <policy key> --policy "
      "iothubowner.");
  cmd->add_option("--resource", options->resource,
                  "What the token grants access to (not URL-encoded), e.g. HOST/devices/ID")
      ->required();
  cmd->add_option("--key", options->key, "The base64 shared access key that signs the token")
      ->required();
  auto* ttl = cmd->add_option("--ttl", options->ttl, "Lifetime in seconds from now")
                  ->check(CLI::Range(std::int64_t{1}, std::int64_t{10} * 365 * 86400));
  auto* expiry = cmd->add_option("--expiry", options->expiry, "Expiry as a Unix time (seconds)")
                     ->check(CLI::PositiveNumber);
  ttl->excludes(expiry);
  cmd->add_option("--policy", options->policy,
                  "Shared access policy name (skn), for service tokens");
  cmd->callback([options, ttl, expiry, &exit_code] {
    if (ttl->count() == 0 && expiry->count() == 0) {
      std::cerr << "sas-token: give --ttl SECONDS or --expiry EPOCH\n";
      exit_code = 2;
      return;
    }
    std::int64_t se = options->expiry;
    if (ttl->count() > 0) {
      se = std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count() +
           options->ttl;
    }
    auto token = azure::MakeSasToken(options->resource, options->key, se, options->policy);
    if (!token) {
      // The message names the problem, never the key.
      std::cerr << "sas-token: " << token.error().message << "\n";
      exit_code = 2;
      return;
    }
    std::cout << *token << "\n";
    exit_code = 0;
  });
}

}  // namespace iothub::connector
