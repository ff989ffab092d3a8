// Benchmark of openhab-sim's event stream (issue 4): how many events per second the real
// openhab-sim program publishes and streams to one client over loopback HTTP. The load is
// /sim/burst: state updates of the demo home's Number items, each giving openHAB's
// ItemStateEvent, ItemStateUpdatedEvent, ItemStateChangedEvent and group events. The
// baseline, measured in the same run, streams the very bytes the client received from a
// bare cpp-httplib server in 64 KB chunks: the cost of the transport alone.
//
//   build/bin/openhab_sim_bench [--updates N] [--rounds N]
#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "openhab/sse_parser.h"
#include "support/child_process.h"

namespace {

using Clock = std::chrono::steady_clock;
using iothub::openhab::SseEvent;
using iothub::openhab::SseHandler;
using iothub::openhab::SseParser;

// Frames the stream and counts its `message` events; keeps the bytes for the baseline.
struct Reader final : SseHandler {
  void OnEvent(SseEvent&& event) override {
    if (event.event == "message") ++events;
  }
  void OnError(const iothub::Error&) override { ++errors; }
  std::atomic<long> events{0};
  long errors = 0;
  std::string bytes;
};

struct StreamRun {
  long events = 0;
  double seconds = 0;
  std::string bytes;
};

// Reads `path` on `port` until `expected` message events arrived (or 120 s passed), timing
// from `start()` (called once the stream is open) to the last event.
StreamRun ReadStream(int port, const std::string& path, long expected,
                     const std::function<void()>& start) {
  Reader reader;
  SseParser parser;
  Clock::time_point started{};
  Clock::time_point last{};
  std::atomic<bool> open{false};
  std::thread trigger([&] {
    while (!open) std::this_thread::yield();
    started = Clock::now();
    start();
  });
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(120, 0);
  client.Get(
      path,
      [&](const httplib::Response&) {
        open = true;  // headers arrived: the server has registered the stream
        return true;
      },
      [&](const char* data, std::size_t size) {
        reader.bytes.append(data, size);
        parser.Feed(std::string_view(data, size), reader);
        if (reader.events >= expected) {
          last = Clock::now();
          return false;
        }
        return true;
      });
  open = true;  // also when the request failed, so that the trigger thread ends
  trigger.join();
  return {reader.events.load(), std::chrono::duration<double>(last - started).count(),
          std::move(reader.bytes)};
}

}  // namespace

int main(int argc, char** argv) {
  long updates = 50'000;
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long value = std::strtol(argv[i + 1], nullptr, 10);
    if (flag == "--updates") {
      updates = value;
    } else if (flag == "--rounds") {
      rounds = static_cast<int>(value);
    } else {
      fmt::print(stderr, "usage: openhab_sim_bench [--updates N] [--rounds N]\n");
      return 2;
    }
  }
  if (updates <= 0 || rounds <= 0) {
    fmt::print(stderr, "openhab_sim_bench: --updates and --rounds must be positive\n");
    return 2;
  }
  auto sim = iothub::testing::ChildProcess::Start(
      {std::string(IOTHUB_BIN_DIR) + "/openhab-sim", "--port", "0", "--home",
       std::string(IOTHUB_SOURCE_DIR) + "/data/demo-home.json", "--alive", "0"},
      std::chrono::seconds(20));
  if (!sim) {
    fmt::print(stderr, "openhab_sim_bench: {}\n", sim.error().message);
    return 1;
  }
  const int port = sim.value()->ready().value("port", 0);
  httplib::Client control("127.0.0.1", port);
  control.set_read_timeout(300, 0);
  // How many events one burst publishes (every update of the burst gives the same number).
  const auto probe = control.Post("/sim/burst?count=" + std::to_string(updates));
  if (!probe || probe->status != 200) {
    fmt::print(stderr, "openhab_sim_bench: /sim/burst failed\n");
    return 1;
  }
  const long expected = nlohmann::json::parse(probe->body).value("events", 0L);
  fmt::print(
      "openhab-sim event stream: {} state updates a round = {} events, one client, "
      "loopback HTTP, {} rounds\n",
      updates, expected, rounds);

  std::vector<double> sim_rates;
  std::vector<double> base_rates;
  for (int round = 0; round < rounds; ++round) {
    StreamRun run = ReadStream(port, "/rest/events", expected, [&] {
      control.Post("/sim/burst?count=" + std::to_string(updates));
    });
    if (run.events < expected) {
      fmt::print(stderr, "openhab_sim_bench: only {} of {} events arrived\n", run.events, expected);
      return 1;
    }
    sim_rates.push_back(static_cast<double>(run.events) / run.seconds);

    // Baseline: the same bytes from a server that does nothing but write them.
    httplib::Server bare;
    const std::string bytes = std::move(run.bytes);
    std::atomic<bool> go{false};
    bare.Get("/stream", [&](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider(
          "text/event-stream", [&](std::size_t offset, httplib::DataSink& sink) {
            while (!go) std::this_thread::yield();
            if (offset >= bytes.size()) {
              sink.done();
              return true;
            }
            const std::size_t n = std::min<std::size_t>(65536, bytes.size() - offset);
            return sink.write(bytes.data() + offset, n);
          });
    });
    const int bare_port = bare.bind_to_any_port("127.0.0.1");
    std::thread serve([&] { bare.listen_after_bind(); });
    StreamRun base = ReadStream(bare_port, "/stream", expected, [&] { go = true; });
    bare.stop();
    serve.join();
    base_rates.push_back(static_cast<double>(base.events) / base.seconds);
    fmt::print(
        "  round {}: openhab-sim {:>9.0f} events/s   bare stream {:>9.0f} events/s   "
        "({:.1f} MB)\n",
        round + 1, sim_rates.back(), base_rates.back(), static_cast<double>(bytes.size()) / 1e6);
  }
  std::sort(sim_rates.begin(), sim_rates.end());
  std::sort(base_rates.begin(), base_rates.end());
  const double sim_median = sim_rates[sim_rates.size() / 2];
  const double base_median = base_rates[base_rates.size() / 2];
  fmt::print("median: openhab-sim {:.0f} events/s, bare stream {:.0f} events/s, ratio {:.2f}\n",
             sim_median, base_median, sim_median / base_median);
  return 0;
}
