// Benchmark of the openHAB client's hot path (issue 4): how many realistic /rest/events
// events per second one core frames (SSE), decodes (double-encoded JSON payloads) and turns
// into typed states. The baseline, measured in the same run on the same bytes, is nlohmann's
// parse of the envelopes alone: the least any JSON-based client must do.
//
//   build/bin/openhab_bench [--events N] [--rounds N] [--chunk BYTES]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "openhab/event.h"
#include "openhab/sse_parser.h"
#include "openhab/state.h"

namespace {

using namespace iothub::openhab;
using Clock = std::chrono::steady_clock;

// A home's mix: temperatures, power meters, switches, dimmers, contacts, a few strings.
std::string MakeStream(int events, std::vector<std::string>& envelopes) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> temp(15, 28);
  std::uniform_real_distribution<double> power(0, 3500);
  std::string stream;
  for (int i = 0; i < events; ++i) {
    std::string item;
    std::string type;
    std::string value;
    std::string old;
    switch (i % 8) {
      case 0:
      case 1:
        item = fmt::format("Room{}_Temperature", i % 13);
        type = "Quantity";
        value = fmt::format("{:.1f} °C", temp(rng));
        old = fmt::format("{:.1f} °C", temp(rng));
        break;
      case 2:
      case 3:
        item = fmt::format("Meter{}_Power", i % 7);
        type = "Quantity";
        value = fmt::format("{:.2f} W", power(rng));
        old = fmt::format("{:.2f} W", power(rng));
        break;
      case 4:
        item = fmt::format("Light{}", i % 21);
        type = "OnOff";
        value = i % 16 < 8 ? "ON" : "OFF";
        old = value == "ON" ? "OFF" : "ON";
        break;
      case 5:
        item = fmt::format("Dimmer{}", i % 9);
        type = "Percent";
        value = std::to_string(i % 101);
        old = std::to_string((i + 7) % 101);
        break;
      case 6:
        item = fmt::format("Window{}_Contact", i % 11);
        type = "OpenClosed";
        value = i % 2 ? "OPEN" : "CLOSED";
        old = i % 2 ? "CLOSED" : "OPEN";
        break;
      default:
        item = "Weather_Condition";
        type = "String";
        value = i % 3 ? "partly cloudy" : "light rain";
        old = "overcast";
        break;
    }
    const Json payload = {{"type", type}, {"value", value}, {"oldType", type}, {"oldValue", old}};
    const Json envelope = {{"topic", "openhab/items/" + item + "/statechanged"},
                           {"payload", payload.dump()},
                           {"type", "ItemStateChangedEvent"}};
    envelopes.push_back(envelope.dump());
    stream += "event: message\ndata: " + envelopes.back() + "\n\n";
    if (i % 1000 == 999) stream += "event: alive\ndata: {\"type\":\"ALIVE\",\"interval\":10}\n\n";
  }
  return stream;
}

struct Counter final : SseHandler {
  void OnEvent(SseEvent&& sse) override {
    auto event = DecodeEvent(sse);
    if (!event) {
      ++bad;
      return;
    }
    if (event->kind != EventKind::kItemStateChanged) return;
    auto state = ParseTypedValue(event->value_type, event->value);
    state ? ++decoded : ++bad;
  }
  void OnError(const iothub::Error&) override { ++bad; }
  long decoded = 0;
  long bad = 0;
};

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  int events = 200'000;
  int rounds = 5;
  std::size_t chunk = 4096;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long value = std::strtol(argv[i + 1], nullptr, 10);
    if (flag == "--events")
      events = static_cast<int>(value);
    else if (flag == "--rounds")
      rounds = static_cast<int>(value);
    else if (flag == "--chunk")
      chunk = static_cast<std::size_t>(value);
    else {
      fmt::print(stderr, "usage: openhab_bench [--events N] [--rounds N] [--chunk BYTES]\n");
      return 2;
    }
  }
  if (events <= 0 || rounds <= 0 || chunk == 0) {
    fmt::print(stderr, "openhab_bench: --events, --rounds and --chunk must be positive\n");
    return 2;
  }
  std::vector<std::string> envelopes;
  const std::string stream = MakeStream(events, envelopes);
  fmt::print(
      "openHAB event decoding: {} ItemStateChangedEvents ({:.1f} MB of stream), fed in "
      "{}-byte chunks, {} rounds, one core\n",
      events, static_cast<double>(stream.size()) / 1e6, chunk, rounds);
  std::vector<double> client_rates;
  std::vector<double> baseline_rates;
  for (int round = 0; round < rounds; ++round) {
    // Baseline: parse each envelope once with nlohmann (no framing, no payload, no states).
    auto start = Clock::now();
    long parsed = 0;
    for (const auto& e : envelopes) parsed += Json::parse(e, nullptr, false).is_object() ? 1 : 0;
    baseline_rates.push_back(static_cast<double>(parsed) / Seconds(start));
    // The client: SSE framing + envelope + payload + typed state.
    SseParser parser;
    Counter counter;
    start = Clock::now();
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
      parser.Feed(std::string_view(stream).substr(at, chunk), counter);
    }
    const double seconds = Seconds(start);
    if (counter.decoded != events || counter.bad != 0) {
      fmt::print(stderr, "openhab_bench: decoded {} of {} ({} bad)\n", counter.decoded, events,
                 counter.bad);
      return 1;
    }
    client_rates.push_back(static_cast<double>(counter.decoded) / seconds);
    fmt::print(stderr, "round {}: client {:.0f} events/s, baseline {:.0f}/s\n", round + 1,
               client_rates.back(), baseline_rates.back());
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double client = median(client_rates);
  const double baseline = median(baseline_rates);
  fmt::print("client (frame + decode + typed state): {:.0f} events/s (target >= 500,000)\n",
             client);
  fmt::print("baseline (nlohmann parse of the envelope only): {:.0f} events/s; ratio {:.2f}\n",
             baseline, client / baseline);
  return 0;
}
