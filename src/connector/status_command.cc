// `iothub-connector status`: asks a running connector for its status (GET /status on
// [metrics].listen) and prints it for people, or as the raw JSON with --json.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "common/event_loop.h"
#include "common/http_client.h"
#include "common/json_depth.h"
#include "connector/commands.h"
#include "connector/config.h"
#include "connector/status.h"
#include "connector/status_server.h"

namespace iothub::connector {
namespace {

struct StatusOptions {
  std::string url;
  std::string config_file;
  bool json = false;
  std::int64_t timeout_ms = 5000;
};

constexpr char kDefaultUrl[] = "http://127.0.0.1:9464";

// `http://HOST[:PORT][/]` (IPv6 hosts in brackets) as a client configuration.
Result<HttpClientConfig> ParseStatusUrl(const std::string& url) {
  auto config = ParseRootUrl(url, 80);
  if (!config || config->tls) {
    return MakeError("bad_url",
                     "--url: expected http://HOST:PORT (the connector's [metrics] "
                     "listen address, port 1-65535), got '" +
                         url + "'");
  }
  return *config;
}

// The URL [metrics].listen of `file` is reached at. Only that key matters here, and the
// connection string may live only in the daemon's environment (or the file may hold one this
// user need not see validated), so a placeholder stands in for it.
Result<std::string> UrlFromConfig(const std::string& file) {
  ConfigSources sources;
  sources.file = file;
  sources.flags.emplace_back(
      "iothub.connection_string",
      R"("HostName=status.invalid;DeviceId=status;SharedAccessKey=c3RhdHVz")");
  sources.getenv = [](const char*) -> std::optional<std::string> { return std::nullopt; };
  auto loaded = LoadConfig(sources);
  if (!loaded) return loaded.error();
  const std::string& listen = loaded->config.metrics.listen;
  if (listen.empty()) {
    return MakeError("metrics_off", file +
                                        ": [metrics] listen is \"\": this connector serves no "
                                        "status (set it, e.g. \"127.0.0.1:9464\", and restart it)");
  }
  auto address = ParseListenAddress(listen);
  if (!address) return address.error();
  return LocalUrl(*address);
}

int RunStatus(const StatusOptions& options) {
  std::string url = options.url.empty() ? std::string(kDefaultUrl) : options.url;
  if (!options.config_file.empty()) {
    auto from_config = UrlFromConfig(options.config_file);
    if (!from_config) {
      std::cerr << "status: " << from_config.error().message << "\n";
      return 2;
    }
    url = *from_config;
  }
  while (url.size() > 1 && url.back() == '/') url.pop_back();
  if (url.ends_with("/status")) url.resize(url.size() - 7);  // pasted from a browser
  auto config = ParseStatusUrl(url);
  if (!config) {
    std::cerr << "status: " << config.error().message << "\n";
    return 2;
  }
  config->connect_timeout_ms = options.timeout_ms;
  config->read_timeout_ms = options.timeout_ms;

  PollLoop loop;
  std::optional<Result<HttpResponse>> answer;
  {
    auto http = HttplibClient::Create(loop, *config);
    // People see the ten stalest items; --json shows what the connector gives by default.
    const std::string path = options.json ? "/status" : "/status?items=10";
    http->Send(HttpRequest{"GET", path, {{"Accept", "application/json"}}, {}},
               [&answer](Result<HttpResponse> r) { answer.emplace(std::move(r)); });
    loop.RunUntil([&answer] { return answer.has_value(); }, 2 * options.timeout_ms + 1000);
  }
  if (!answer || !*answer) {
    std::cerr << "status: no connector answers at " << url << " ("
              << (answer ? answer->error().message : std::string("no answer in time"))
              << "): is it running? is [metrics].listen set (and is this its address)?\n";
    return 1;
  }
  const HttpResponse& response = answer->value();
  if (response.status != 200) {
    std::string body = response.body;
    while (!body.empty() && body.back() == '\n') body.pop_back();
    std::cerr << "status: the connector at " << url << " answered " << response.status
              << (body.empty() ? std::string() : ": " + body) << "\n";
    return 1;
  }
  auto status = ParseUntrustedJson(response.body);
  if (!status || !status->is_object()) {
    std::cerr << "status: " << url
              << "/status did not answer with a status JSON: is that address a connector?\n";
    return 1;
  }
  if (options.json) {
    std::cout << response.body;
    if (!response.body.empty() && response.body.back() != '\n') std::cout << "\n";
    return 0;
  }
  PeopleOptions people;
  const char* term = std::getenv("TERM");
  people.colour = isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr &&
                  !(term != nullptr && std::string(term) == "dumb");
  std::cout << RenderForPeople(*status, people) << std::flush;
  return 0;
}

}  // namespace

void AddStatusCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<StatusOptions>();  // shared: outlives this function
  CLI::App* cmd = app.add_subcommand(
      "status",
      "Show what a running connector is doing: openHAB stream, hub session and quota, budget\n"
      "used and left against the pace line, outbox, twin, the stalest items and errors. It asks\n"
      "the connector's [metrics].listen address (docs/metrics.md). Exits 1 when nothing answers.");
  auto* url =
      cmd->add_option("--url", options->url,
                      "The connector's metrics address (default " + std::string(kDefaultUrl) + ")");
  cmd->add_option("--config", options->config_file,
                  "Read the address from this config file's [metrics] listen")
      ->check(CLI::ExistingFile)
      ->excludes(url);
  cmd->add_flag("--json", options->json, "Print the status JSON as the connector serves it");
  cmd->add_option("--timeout-ms", options->timeout_ms, "How long to wait for an answer")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{600'000}))
      ->capture_default_str();
  cmd->callback([options, &exit_code] { exit_code = RunStatus(*options); });
}

}  // namespace iothub::connector
