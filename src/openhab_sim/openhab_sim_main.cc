// openhab-sim: a stand-in for openHAB's REST API and event stream, for tests, benchmarks and
// the demo. Loads a home, serves it, replays a trace and the home's numeric series, and
// prints one line of JSON once listening. See docs/openhab-sim.md.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "common/clock.h"
#include "common/event_loop.h"
#include "common/signals.h"
#include "openhab_sim/home.h"
#include "openhab_sim/sim_server.h"
#include "openhab_sim/trace/replayer.h"
#include "openhab_sim/trace/series.h"
#include "openhab_sim/trace/trace.h"

namespace {

using namespace iothub;
using namespace iothub::sim;

struct Options {
  int port = 8080;
  std::string host = "127.0.0.1";
  std::string home;
  std::string trace;
  double speed = 1.0;
  bool loop_trace = false;
  std::uint64_t seed = 1;
  std::string token;
  std::string user_token;
  bool no_implicit_user = false;
  std::string version = "4.3.0";
  int alive = -1;
};

int Fail(const std::string& message) {
  std::cerr << "openhab-sim: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"openhab-sim: openHAB's REST API and event stream, simulated (docs/openhab-sim.md)"};
  Options o;
  app.add_option("--port", o.port, "TCP port; 0 picks a free one (printed on the ready line)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--host", o.host, "address to listen on")->capture_default_str();
  app.add_option("--home", o.home, "the home file (JSON; data/demo-home.json is ready-made)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--trace", o.trace, "a trace (JSONL) to replay as binding updates")
      ->check(CLI::ExistingFile);
  app.add_option("--speed", o.speed, "replay speed: simulated seconds per real second")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--loop", o.loop_trace, "start the trace again when it ends");
  app.add_option("--seed", o.seed, "seed of the numeric series' noise")->capture_default_str();
  app.add_option("--token", o.token, "an API token with the ADMIN role (e.g. oh.admin.xxxx)");
  app.add_option("--user-token", o.user_token, "an API token with the USER role");
  app.add_flag("--no-implicit-user", o.no_implicit_user,
               "refuse anonymous requests (openHAB's implicit user role off)");
  app.add_option("--openhab-version", o.version,
                 "the openHAB release to imitate (3.0 to 5.x): events, fields, keep-alives")
      ->capture_default_str();
  app.add_option("--alive", o.alive,
                 "keep-alive interval in seconds (0: none; default: what the version sends)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);  // prints the help, or the error and a hint
    return status == 0 ? 0 : 2;      // usage errors exit 2, as every program here
  }

  auto version = OpenHabVersion::Parse(o.version);
  if (!version) return Fail(version.error().message);
  auto home = Home::Load(o.home, *version);
  if (!home) return Fail(home.error().message);
  const std::size_t item_count = home->items().size();

  // What the "bindings" report: the trace and the home's numeric series, merged in time.
  Trace trace;
  if (!o.trace.empty()) {
    auto read = ReadTraceFile(o.trace);
    if (!read) return Fail(read.error().message);
    trace = std::move(read).value();
    std::set<std::string> missing;
    for (const auto& entry : trace.entries) {
      if (!home->Find(entry.item)) missing.insert(entry.item);
    }
    if (!missing.empty()) {
      std::string names;
      for (const auto& name : missing) names += (names.empty() ? "" : ", ") + name;
      return Fail(o.trace + ": items not in the home " + o.home + ": " + names);
    }
  }
  auto specs = ParseSeriesSpecs(home->series(), o.home + ": series");
  if (!specs) return Fail(specs.error().message);
  for (const auto& spec : *specs) {
    if (!home->Find(spec.item)) return Fail(o.home + ": series for unknown item " + spec.item);
  }
  auto series = MakeSeries(*specs, {o.seed, SecondsOfDay(trace.start).value_or(0)});
  if (!series) return Fail(series.error().message);
  const std::size_t trace_entries = trace.entries.size();
  const std::size_t series_count = series->size();
  ScheduleOptions schedule_options;
  schedule_options.loop = o.loop_trace;
  // Meters keep reporting after the trace's last change.
  if (series_count > 0) schedule_options.until = std::numeric_limits<double>::infinity();
  Schedule schedule(std::move(trace), std::move(series).value(), schedule_options);

  const int signal_fd = BlockTerminationSignals();  // before any thread starts

  SystemClock clock;
  SimOptions options;
  options.home_path = o.home;
  options.version = *version;
  options.admin_token = o.token;
  options.user_token = o.user_token;
  options.implicit_user_role = !o.no_implicit_user;
  options.alive_interval_s = o.alive;
  options.bind_host = o.host;
  SimServer server(std::move(home).value(), options, [&clock] { return clock.NowMs(); });
  auto port = server.Start(o.port);
  if (!port) return Fail(port.error().message);

  std::atomic<std::uint64_t> rejected{0};
  std::unique_ptr<Replayer> replayer;
  if (trace_entries > 0 || series_count > 0) {
    auto created = Replayer::Create(std::move(schedule), o.speed, [&](const ReplayEvent& event) {
      if (auto status = server.Update(event.item, event.state); !status && rejected++ < 10) {
        std::cerr << "openhab-sim: replay: " << event.item << " '" << event.state
                  << "': " << status.error().message << "\n";
      }
    });
    if (!created) return Fail(created.error().message);
    replayer = std::move(created).value();
  }

  PollLoop loop;
  if (signal_fd >= 0) loop.Watch(signal_fd, true, false, [&loop](bool, bool) { loop.Stop(); });
  // Keep-alives: openHAB's first comes a second after start, then one every interval.
  std::function<void()> alive = [&] {
    server.SendAlive();
    loop.RunAfter(server.alive_interval_s() * 1000LL, alive);
  };
  if (server.alive_interval_s() > 0) loop.RunAfter(1000, alive);

  nlohmann::json ready = {{"ready", true},
                          {"port", *port},
                          {"openhab", version->ToString()},
                          {"items", item_count},
                          {"trace_entries", trace_entries},
                          {"series", series_count},
                          {"speed", o.speed}};
  std::cout << ready.dump() << std::endl;
  if (replayer) replayer->Start();
  loop.Run();
  if (replayer) replayer->Stop();
  server.Stop();
  std::cerr << "openhab-sim: stopped\n";
  return 0;
}
