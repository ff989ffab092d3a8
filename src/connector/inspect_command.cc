// `iothub-connector inspect`: shows openHAB's items the way the connector understands them,
// one JSON object per line, optionally its things and links, then follows the event stream
// (issue 4). A window for users checking their setup, and for tests.
#include <unistd.h>

#include <functional>
#include <iostream>
#include <memory>

#include "common/event_loop.h"
#include "common/http_client.h"
#include "common/http_stream.h"
#include "common/json_depth.h"
#include "common/random.h"
#include "common/signals.h"
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
  std::string auth = "bearer";  // --auth: bearer, basic or header
  bool basic = false;           // --basic, the older spelling of --auth basic
  std::string ca_file;
  bool once = false;
  bool things = false;
};

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

// Configuration is left out on purpose: thing configurations hold device passwords and keys.
Json Describe(const openhab::Thing& thing) {
  Json channels = Json::array();
  for (const auto& c : thing.channels) {
    channels.push_back({{"uid", c.uid},
                        {"id", c.id},
                        {"channelTypeUID", c.channel_type_uid},
                        {"itemType", c.item_type},
                        {"kind", c.kind},
                        {"label", c.label},
                        {"linkedItems", c.linked_items}});
  }
  Json out = {{"UID", thing.uid},
              {"thingTypeUID", thing.thing_type_uid},
              {"label", thing.label},
              {"status", thing.status},
              {"statusDetail", thing.status_detail},
              {"properties", thing.properties},
              {"channels", channels}};
  if (!thing.bridge_uid.empty()) out["bridgeUID"] = thing.bridge_uid;
  if (!thing.location.empty()) out["location"] = thing.location;
  if (!thing.status_description.empty()) out["statusDescription"] = thing.status_description;
  if (!thing.status_known) out["statusUnknownToConnector"] = true;
  return out;
}

// Only the profile of a link's configuration: the rest are profile parameters of any kind.
Json Describe(const openhab::Link& link) {
  Json out = {{"channelUID", link.channel_uid}, {"itemName", link.item_name}};
  if (const auto it = link.configuration.find("profile");
      it != link.configuration.end() && it->is_string()) {
    out["profile"] = *it;
  }
  return out;
}

void Print(const Json& line) { std::cout << DumpJson(line) << "\n" << std::flush; }

class Printer final : public openhab::MirrorListener {
 public:
  // `after_items` runs once, after the first item list was printed, and calls its argument
  // when done (with false on failure); only then does --once stop.
  using AfterItems = std::function<void(std::function<void(bool ok)>)>;
  Printer(std::string url, bool once, PollLoop& loop, AfterItems after_items)
      : url_(std::move(url)), once_(once), loop_(loop), after_items_(std::move(after_items)) {}
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
  void OnStateChanged(const openhab::Item& item, const openhab::StateChange& change) override {
    Json line = Describe(item);
    line["event"] = "changed";
    line["value"] = ToJson(change.value);
    line["oldState"] = change.old_text;
    if (!change.value_type.empty()) line["valueType"] = change.value_type;
    if (change.changed_ms != 0) line["changedAt"] = change.changed_ms;
    if (change.source == openhab::ChangeSource::kResync) line["missed"] = true;
    Print(line);
  }
  void OnServerInfo(const openhab::ServerInfo& info) override {
    std::cerr << "inspect: openHAB "
              << (info.runtime_version.empty() ? "(version unknown)" : info.runtime_version)
              << ", REST API " << info.api_version << "\n";
  }
  void OnCommand(const std::string& item, const std::string& type,
                 const std::string& value) override {
    Print({{"event", "command"}, {"name", item}, {"type", type}, {"command", value}});
  }
  void OnConnection(bool up, std::string_view detail) override {
    std::cerr << "inspect: " << (up ? "" : "event stream down: ") << detail << "\n";
    if (!up && !synced_once_ && once_) {
      std::cerr << "inspect: cannot reach openHAB at " << url_ << "\n";
    }
    const bool first_sync = up && !synced_once_;
    if (up) synced_once_ = true;
    if (first_sync && after_items_) {
      auto after = std::move(after_items_);
      after_items_ = nullptr;
      after([this](bool ok) {
        if (!ok) extra_failed_ = true;
        if (once_) loop_.Stop();
      });
      return;
    }
    if (once_) {
      failed_ = !up;
      loop_.Stop();
    }
  }
  void OnProblem(const Error& problem) override {
    std::cerr << "inspect: skipped (" << problem.code << "): " << problem.message << "\n";
  }
  bool failed() const { return failed_ || extra_failed_; }

 private:
  std::string url_;
  bool once_;
  PollLoop& loop_;
  AfterItems after_items_;
  bool synced_once_ = false;
  bool failed_ = false;
  bool extra_failed_ = false;
};

// Things, then links (ADMIN role); `done(false)` when either cannot be read.
void PrintThingsAndLinks(openhab::RestClient& rest, const std::function<void(bool)>& done) {
  const auto report_skipped = [](const std::vector<Error>& skipped) {
    for (const Error& problem : skipped) {
      std::cerr << "inspect: skipped (" << problem.code << "): " << problem.message << "\n";
    }
  };
  rest.GetThings([&rest, done, report_skipped](Result<openhab::ThingList> things) {
    if (!things) {
      std::cerr << "inspect: cannot list things: " << things.error().message << "\n";
      return done(false);
    }
    report_skipped(things->skipped);
    for (const auto& thing : things->things) Print({{"thing", Describe(thing)}});
    rest.GetLinks([done, report_skipped](Result<openhab::LinkList> links) {
      if (!links) {
        std::cerr << "inspect: cannot list links: " << links.error().message << "\n";
        return done(false);
      }
      report_skipped(links->skipped);
      for (const auto& link : links->links) Print({{"link", Describe(link)}});
      done(true);
    });
  });
}

int RunInspect(const InspectOptions& options) {
  auto http_config = openhab::ParseServerUrl(options.url);
  if (!http_config) {
    std::cerr << "inspect: --openhab: " << http_config.error().message << "\n";
    return 2;
  }
  http_config->ca_file = options.ca_file;
  const int signal_fd = BlockTerminationSignals();
  PollLoop loop;
  if (signal_fd >= 0) loop.Watch(signal_fd, true, false, [&loop](bool, bool) { loop.Stop(); });
  auto http = HttplibClient::Create(loop, *http_config);
  HttplibStreamer streamer(loop, openhab::EventStreamConfig(*http_config));
  openhab::RestClientConfig rest_config{.token = options.token};
  if (options.basic || options.auth == "basic") rest_config.auth = openhab::AuthMode::kBasic;
  if (options.auth == "header") rest_config.auth = openhab::AuthMode::kHeader;
  openhab::RestClient rest(loop, *http, rest_config);
  SystemRandom random;
  Printer::AfterItems list_things;
  if (options.things) {
    list_things = [&rest](const std::function<void(bool)>& done) {
      PrintThingsAndLinks(rest, done);
    };
  }
  Printer printer(options.url, options.once, loop, std::move(list_things));
  int status = 0;
  openhab::ItemMirror mirror(loop, streamer, rest, random, openhab::MirrorConfig{}, printer);
  mirror.Start();
  loop.Run();
  mirror.Stop();
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
      "the event stream and print each change the same way until interrupted.\n"
      "With --things, the item list is followed by every thing ({\"thing\":{...}}: UID, type,\n"
      "label, bridge, status and detail, properties, channels with their linked items; never\n"
      "its configuration, which can hold passwords) and every link ({\"link\":{...}}: channel,\n"
      "item, profile), one per line. Things and links need an administrator's API token.");
  cmd->add_option("--openhab", options->url, "openHAB's root URL")->capture_default_str();
  cmd->add_option("--token", options->token,
                  "An openHAB API token (oh.NAME.RANDOM); none: anonymous");
  CLI::Option* auth =
      cmd->add_option("--auth", options->auth,
                      "How the token is sent: bearer (Authorization: Bearer), basic (as Basic\n"
                      "user name, empty password) or header (X-OPENHAB-TOKEN, for proxies that\n"
                      "strip Authorization)")
          ->transform(CLI::IsMember({"bearer", "basic", "header"}, CLI::ignore_case))
          ->capture_default_str();
  cmd->add_flag("--basic", options->basic, "The same as --auth basic (kept for old scripts)")
      ->excludes(auth);
  cmd->add_option("--ca", options->ca_file, "PEM CA bundle for https:// (default: the system's)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--once", options->once, "Stop after the item list (and things and links)");
  cmd->add_flag("--things", options->things,
                "Also print things and links after the items (needs an admin token)");
  cmd->callback([options, &exit_code] { exit_code = RunInspect(*options); });
}

}  // namespace iothub::connector
