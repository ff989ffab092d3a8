// `iothub-connector inspect`: shows openHAB's items the way the connector understands them,
// one JSON object per line, then follows the event stream (issue 4). A window for users
// checking their setup, and for tests.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <regex>

#include "common/event_loop.h"
#include "common/http_client.h"
#include "common/http_stream.h"
#include "common/random.h"
#include "connector/commands.h"
#include "openhab/item_mirror.h"
#include "openhab/rest_client.h"
#include "openhab/state.h"

namespace iothub::connector {
namespace {

using openhab::Json;

struct InspectOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string token;
  bool basic = false;
  std::string ca_file;
  bool once = false;
};

// http(s)://host[:port][/]: the openHAB server root.
Result<HttpClientConfig> ParseOpenHabUrl(const std::string& url) {
  static const std::regex kUrl(
      R"(^(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(?::(\d{1,5}))?/?$)");
  std::smatch m;
  if (!std::regex_match(url, m, kUrl)) {
    return MakeError("bad_url",
                     "--openhab must look like http://HOST[:PORT] or https://HOST[:PORT] "
                     "(the server root, without /rest), got '" +
                         url + "'");
  }
  HttpClientConfig config;
  config.tls = m[1] == "https";
  config.host = m[2];
  if (config.host.front() == '[') config.host = config.host.substr(1, config.host.size() - 2);
  config.port = m[3].matched ? std::stoi(m[3]) : (config.tls ? 443 : 8080);
  if (config.port < 1 || config.port > 65535)
    return MakeError("bad_url", "the port must be 1-65535");
  // The event stream is long-lived; the mirror supervises it with keep-alives.
  config.read_timeout_ms = 300'000;
  return config;
}

Json Describe(const openhab::Item& item) {
  const openhab::State state = openhab::ParseStateTolerant(item.type, item.state);
  Json out = {{"name", item.name},     {"type", item.type},      {"label", item.label},
              {"state", item.state},   {"value", ToJson(state)}, {"readOnly", item.read_only},
              {"groups", item.groups}, {"tags", item.tags}};
  if (!item.unit_symbol.empty()) out["unit"] = item.unit_symbol;
  if (item.azure)
    out["azureiothub"] = {{"value", item.azure->value}, {"config", item.azure->config}};
  return out;
}

void Print(const Json& line) {
  std::cout << line.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n" << std::flush;
}

class Printer final : public openhab::MirrorListener {
 public:
  Printer(bool once, PollLoop& loop) : once_(once), loop_(loop) {}
  void OnItemAdded(const openhab::Item& item) override {
    Json line = Describe(item);
    if (synced_once_) line["event"] = "added";
    Print(line);
  }
  void OnItemRemoved(const std::string& name) override {
    Print({{"event", "removed"}, {"name", name}});
  }
  void OnItemUpdated(const openhab::Item& item) override {
    Json line = Describe(item);
    line["event"] = "updated";
    Print(line);
  }
  void OnStateChanged(const openhab::Item& item, const std::string& old,
                      openhab::ChangeSource source) override {
    Json line = Describe(item);
    line["event"] = "changed";
    line["oldState"] = old;
    if (source == openhab::ChangeSource::kResync) line["missed"] = true;
    Print(line);
  }
  void OnCommand(const std::string& item, const std::string& type,
                 const std::string& value) override {
    Print({{"event", "command"}, {"name", item}, {"type", type}, {"command", value}});
  }
  void OnConnection(bool up, std::string_view detail) override {
    std::cerr << "inspect: " << (up ? "" : "event stream down: ") << detail << "\n";
    if (up) synced_once_ = true;
    if (once_) {
      failed_ = !up;
      loop_.Stop();
    }
  }
  void OnProblem(const Error& problem) override {
    std::cerr << "inspect: skipped (" << problem.code << "): " << problem.message << "\n";
  }
  bool failed() const { return failed_; }

 private:
  bool once_;
  PollLoop& loop_;
  bool synced_once_ = false;
  bool failed_ = false;
};

int RunInspect(const InspectOptions& options) {
  auto http_config = ParseOpenHabUrl(options.url);
  if (!http_config) {
    std::cerr << "inspect: " << http_config.error().message << "\n";
    return 2;
  }
  http_config->ca_file = options.ca_file;
  // Ctrl-C and SIGTERM arrive as a readable descriptor on the loop, not in a handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  const int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  PollLoop loop;
  if (signal_fd >= 0) loop.Watch(signal_fd, true, false, [&loop](bool, bool) { loop.Stop(); });
  auto http = HttplibClient::Create(loop, *http_config);
  HttplibStreamer streamer(loop, *http_config);
  openhab::RestClient rest(loop, *http, {options.token, options.basic});
  SystemRandom random;
  Printer printer(options.once, loop);
  int status = 0;
  std::unique_ptr<openhab::ItemMirror> mirror;
  rest.GetServerInfo([&](Result<openhab::ServerInfo> info) {
    if (!info) {
      std::cerr << "inspect: cannot reach openHAB at " << options.url << ": "
                << info.error().message << "\n";
      status = 1;
      loop.Stop();
      return;
    }
    std::cerr << "inspect: openHAB "
              << (info->runtime_version.empty() ? "(version unknown)" : info->runtime_version)
              << ", REST API " << info->api_version << "\n";
    openhab::MirrorConfig config;
    config.alive_interval_s = info->alive_interval_s;
    mirror = std::make_unique<openhab::ItemMirror>(loop, streamer, rest, random, config, printer);
    mirror->Start();
  });
  loop.Run();
  if (mirror) mirror->Stop();
  if (signal_fd >= 0) {
    loop.Unwatch(signal_fd);
    close(signal_fd);
  }
  if (status == 0 && printer.failed()) status = 1;
  return status;
}

}  // namespace

void AddInspectCommand(CLI::App& app, int& exit_code) {
  auto options =
      std::make_shared<InspectOptions>();  // shared: outlives this function in the callback
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Print every openHAB item as the connector understands it (name, type, typed state, unit,\n"
      "read-only, groups, tags, azureiothub metadata), one JSON object per line, then follow\n"
      "the event stream and print each change the same way until interrupted.");
  cmd->add_option("--openhab", options->url, "openHAB's root URL")->capture_default_str();
  cmd->add_option("--token", options->token,
                  "An openHAB API token (oh.NAME.RANDOM); none: anonymous");
  cmd->add_flag("--basic", options->basic, "Send the token as Basic user name instead of Bearer");
  cmd->add_option("--ca", options->ca_file, "PEM CA bundle for https:// (default: the system's)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--once", options->once, "Stop after the item list");
  cmd->callback([options, &exit_code] { exit_code = RunInspect(*options); });
}

}  // namespace iothub::connector
