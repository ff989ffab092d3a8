// openhab-sim traces and series (docs/openhab-sim-traces.md): the trace reader and writer,
// the Ordonez converter, the series generators, the schedule, the threaded replayer and the
// openhab-trace program.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "openhab/state.h"
#include "openhab_sim/trace/home_item.h"
#include "openhab_sim/trace/ordonez.h"
#include "openhab_sim/trace/replayer.h"
#include "openhab_sim/trace/schedule.h"
#include "openhab_sim/trace/series.h"
#include "openhab_sim/trace/trace.h"
#include "openhab_sim/trace/trace_check.h"
#include "support/run_command.h"

namespace iothub::sim {

// Readable failure messages.
void PrintTo(const TraceEntry& e, std::ostream* os) {
  *os << "{" << e.t << ", " << e.item << ", " << e.state << "}";
}
void PrintTo(const ReplayEvent& e, std::ostream* os) {
  *os << "{" << e.t << ", " << e.item << ", " << e.state << "}";
}

namespace {

using nlohmann::json;

Result<Trace> Read(const std::string& text) {
  std::istringstream in(text);
  return ReadTrace(in, "t.jsonl");
}

std::string ReadError(const std::string& text) {
  auto trace = Read(text);
  if (trace.ok()) return "(no error)";
  EXPECT_EQ(trace.error().code, "bad_trace");
  return trace.error().message;
}

constexpr const char* kHeader = "{\"openhab-trace\":1,\"source\":\"test\"}\n";

TEST(TraceReader, ReadsHeaderEntriesAndLineNumbers) {
  auto trace = Read(
      "{\"openhab-trace\":1,\"source\":\"unit\",\"start\":\"2011-11-28T02:27:59\"}\r\n"
      "\n"
      "{\"t\":0,\"item\":\"A_b\",\"state\":\"ON\"}\r\n"
      "   \n"
      "{\"t\":12.5,\"item\":\"_x9\",\"state\":\"21.5 °C\",\"note\":\"ignored\"}\n"
      "{\"t\":12.5,\"item\":\"A_b\",\"state\":\"\"}");
  ASSERT_TRUE(trace.ok()) << trace.error().message;
  EXPECT_EQ(trace->source, "unit");
  EXPECT_EQ(trace->start, "2011-11-28T02:27:59");
  ASSERT_EQ(trace->entries.size(), 3u);
  EXPECT_EQ(trace->entries[0], (TraceEntry{0, "A_b", "ON"}));
  EXPECT_EQ(trace->entries[1], (TraceEntry{12.5, "_x9", "21.5 °C"}));
  EXPECT_EQ(trace->entries[2].state, "");
  EXPECT_EQ(trace->entries[0].line, 3);
  EXPECT_EQ(trace->entries[1].line, 5);
  EXPECT_EQ(trace->entries[2].line, 6);
  EXPECT_EQ(trace->duration(), 12.5);
}

TEST(TraceReader, ErrorsNameTheLineAndWhatWasExpected) {
  const std::string h = kHeader;
  const std::string ok = "{\"t\":1,\"item\":\"A\",\"state\":\"ON\"}\n";
  struct Case {
    std::string text;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"", "t.jsonl:0: expected the header {\"openhab-trace\":1"},
      {"\n\n", "t.jsonl:2: expected the header"},
      {ok, "t.jsonl:1: expected the header {\"openhab-trace\":1"},
      {"{\"openhab-trace\":2}\n",
       "t.jsonl:1: unsupported trace version 2 (this reader knows version 1)"},
      {"{\"openhab-trace\":\"1\"}\n", "t.jsonl:1: expected the header"},
      {"{\"openhab-trace\":1,\"source\":5}\n",
       "t.jsonl:1: header field \"source\" must be a string"},
      {h + ok + "{\"t\":2,\"item\":\"A\",\"state\":\"ON\"\n", "t.jsonl:3: bad JSON: "},
      {h + "\n" + ok + "nonsense\n", "t.jsonl:4: bad JSON: "},
      {h + "{\"t\":1e400,\"item\":\"A\",\"state\":\"ON\"}\n", "t.jsonl:2: bad JSON: "},
      {h + "[1,2]\n", "t.jsonl:2: expected an entry {\"t\":...,\"item\":...,\"state\":...}"},
      {h + "{\"item\":\"A\",\"state\":\"ON\"}\n", "t.jsonl:2: missing \"t\""},
      {h + "{\"t\":\"1\",\"item\":\"A\",\"state\":\"ON\"}\n", "t.jsonl:2: \"t\" must be a number"},
      {h + "{\"t\":-0.5,\"item\":\"A\",\"state\":\"ON\"}\n", "t.jsonl:2: \"t\" must be >= 0"},
      {h + ok + "{\"t\":0.5,\"item\":\"A\",\"state\":\"ON\"}\n",
       "t.jsonl:3: \"t\" must not decrease: 0.5 after 1"},
      {h + "{\"t\":1,\"state\":\"ON\"}\n", "t.jsonl:2: missing \"item\""},
      {h + "{\"t\":1,\"item\":\"1abc\",\"state\":\"ON\"}\n",
       "t.jsonl:2: invalid item name \"1abc\" (expected [a-zA-Z_][a-zA-Z0-9_]*)"},
      {h + "{\"t\":1,\"item\":\"Kitchen-Fridge\",\"state\":\"ON\"}\n",
       "t.jsonl:2: invalid item name \"Kitchen-Fridge\""},
      {h + "{\"t\":1,\"item\":\"\",\"state\":\"ON\"}\n", "t.jsonl:2: invalid item name \"\""},
      {h + "{\"t\":1,\"item\":7,\"state\":\"ON\"}\n", "t.jsonl:2: \"item\" must be a string"},
      {h + "{\"t\":1,\"item\":\"A\"}\n", "t.jsonl:2: missing \"state\""},
      {h + "{\"t\":1,\"item\":\"A\",\"state\":21.5}\n",
       "t.jsonl:2: \"state\" must be a string (openHAB state text"},
      {h + "{\"t\":1,\"item\":\"A\",\"state\":null}\n", "t.jsonl:2: \"state\" must be a string"},
      {h + std::string(100, '[') + "\n", "t.jsonl:2: bad JSON: nested too deeply"},
  };
  for (const Case& c : cases) {
    const std::string message = ReadError(c.text);
    EXPECT_EQ(message.rfind(c.want, 0), 0u) << "input: " << c.text << "\nmessage: " << message;
  }
}

TEST(TraceWriter, RoundTripsAndWritesWholeSecondsAsIntegers) {
  Trace trace;
  trace.source = "round \"trip\"";
  trace.start = "2024-01-02T03:04:05";
  trace.entries = {{0, "A", "ON"},
                   {0.1 + 0.2, "B_2", "21.5 °C"},
                   {12, "A", "OFF"},
                   {12, "C", "a \"quoted\"\tstate\nwith lines"},
                   {1e7 + 0.001, "A", "UNDEF"}};
  const std::string text = WriteTraceToString(trace);
  EXPECT_EQ(text.rfind("{\"openhab-trace\":1,\"source\":\"round \\\"trip\\\"\",\"start\":"
                       "\"2024-01-02T03:04:05\"}\n{\"t\":0,\"item\":\"A\",\"state\":\"ON\"}\n",
                       0),
            0u)
      << text;
  EXPECT_NE(text.find("{\"t\":12,\"item\":\"A\",\"state\":\"OFF\"}\n"), std::string::npos);
  auto back = Read(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, trace);
  EXPECT_EQ(back->entries[1].t, 0.1 + 0.2) << "doubles round-trip exactly";

  Trace no_start;
  no_start.source = "s";
  EXPECT_EQ(WriteTraceToString(no_start), "{\"openhab-trace\":1,\"source\":\"s\"}\n");
}

TEST(TraceNames, ItemNamesAndTimesOfDay) {
  EXPECT_TRUE(IsValidItemName("a"));
  EXPECT_TRUE(IsValidItemName("_"));
  EXPECT_TRUE(IsValidItemName("Kitchen_Fridge_Magnetic9"));
  EXPECT_FALSE(IsValidItemName(""));
  EXPECT_FALSE(IsValidItemName("9a"));
  EXPECT_FALSE(IsValidItemName("a b"));
  EXPECT_FALSE(IsValidItemName("Küche"));
  EXPECT_EQ(SecondsOfDay("2011-11-28T02:27:59"), 2 * 3600 + 27 * 60 + 59);
  EXPECT_EQ(SecondsOfDay("2011-11-28 00:00:00"), 0);
  EXPECT_EQ(SecondsOfDay("2011-11-28T24:00:00"), std::nullopt);
  EXPECT_EQ(SecondsOfDay("2011-11-28"), std::nullopt);
}

TEST(SensorItemName, CamelCasesPartsAndJoinsThem) {
  EXPECT_EQ(SensorItemName("Kitchen", "Fridge", "Magnetic"), "Kitchen_Fridge_Magnetic");
  EXPECT_EQ(SensorItemName("living room", "sofa-seat", "PIR"), "LivingRoom_SofaSeat_PIR");
  EXPECT_EQ(SensorItemName("  Bath  room ", "x.y", "Flush"), "BathRoom_XY_Flush");
  EXPECT_EQ(SensorItemName("2nd floor", "Door", "Magnetic"), "_2ndFloor_Door_Magnetic");
  EXPECT_EQ(SensorItemName("Küche", "Tür", "PIR"), "Kche_Tr_PIR") << "non-ASCII bytes dropped";
  EXPECT_EQ(SensorItemName("--", "Door", "PIR"), "");
}

Result<OrdonezLog> Convert(const std::string& text) {
  std::istringstream in(text);
  return ConvertOrdonez(in, "log.txt");
}

TEST(OrdonezConverter, ConvertsALogWithCrlfAndRepeatedTabs) {
  auto log = Convert(
      "Start time\t\tEnd time\tLocation\tType\tPlace\r\n"
      "2011-11-28 02:27:59\t2011-11-28 10:18:11\t\tBed\tPressure\tBedroom\r\n"
      "2011-11-28 10:21:24\t\t\t2011-11-28 10:21:31\tCabinet\tMagnetic\tBathroom\r\n"
      "\r\n"
      "\t2011-11-28 10:19:00\t2011-11-28 10:25:00\tMain door\tMagnetic\tEntrance\t\r\n"
      "2011-11-28 10:20:00\t2011-11-28 10:20:30\tToaster\tElectric\tKitchen\r\n"
      "2011-11-28 10:20:10\t2011-11-28 10:20:11\tToilet\tFlush\tBathroom\r\n"
      "2011-11-28 10:21:00\t2011-11-28 10:21:05\tBasin\tPIR\tBathroom\r\n");
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(log->lines, 8u);
  EXPECT_EQ(log->activations, 6u);
  EXPECT_EQ(log->overlaps, 0u);
  EXPECT_EQ(log->trace.source, "log.txt");
  EXPECT_EQ(log->trace.start, "2011-11-28T02:27:59");
  const std::vector<TraceEntry> want = {
      {0, "Bedroom_Bed_Pressure", "ON"},
      {28212, "Bedroom_Bed_Pressure", "OFF"},
      {28261, "Entrance_MainDoor_Magnetic", "OPEN"},
      {28321, "Kitchen_Toaster_Electric", "ON"},
      {28331, "Bathroom_Toilet_Flush", "ON"},
      {28332, "Bathroom_Toilet_Flush", "OFF"},
      {28351, "Kitchen_Toaster_Electric", "OFF"},
      {28381, "Bathroom_Basin_PIR", "ON"},
      {28386, "Bathroom_Basin_PIR", "OFF"},
      {28405, "Bathroom_Cabinet_Magnetic", "OPEN"},
      {28412, "Bathroom_Cabinet_Magnetic", "CLOSED"},
      {28621, "Entrance_MainDoor_Magnetic", "CLOSED"},
  };
  EXPECT_EQ(log->trace.entries, want);

  ASSERT_EQ(log->items.size(), 6u);
  EXPECT_EQ(ToJson(log->items[0]).dump(),
            "{\"name\":\"Bedroom_Bed_Pressure\",\"type\":\"Switch\",\"label\":\"Bedroom bed "
            "occupancy\",\"category\":\"presence\",\"tags\":[\"Status\",\"Presence\"],\"groups\":"
            "[\"gBedroom\"],\"state\":\"OFF\"}");
  EXPECT_EQ(ToJson(log->items[1]).dump(),
            "{\"name\":\"Bathroom_Cabinet_Magnetic\",\"type\":\"Contact\",\"label\":\"Bathroom "
            "cabinet door\",\"category\":\"door\",\"tags\":[\"OpenState\"],\"groups\":["
            "\"gBathroom\"],\"state\":\"CLOSED\"}");
  EXPECT_EQ(log->items[2].label, "Entrance main door");
  EXPECT_EQ(log->items[3].type, "Switch");
  EXPECT_EQ(log->items[3].label, "Kitchen toaster in use");
  std::vector<std::string> groups;
  for (const HomeItem& g : log->groups) {
    EXPECT_EQ(g.type, "Group");
    groups.push_back(g.name);
  }
  EXPECT_EQ(groups, (std::vector<std::string>{"gBedroom", "gBathroom", "gEntrance", "gKitchen"}));
  EXPECT_EQ(log->groups[0].label, "Bedroom");
  // Every state suits its item type.
  EXPECT_TRUE(CheckTraceStates(log->trace, log->items, "log").ok());
}

TEST(OrdonezConverter, SameSecondChangesLeaveTheRightFinalState) {
  // A ends at 10:00:10 when its next activation starts (logged first, as happens when the
  // log is not in start order); B is zero-length, then B again starts at that same second.
  auto log = Convert(
      "Start time\tEnd time\tLocation\tType\tPlace\n"
      "2011-01-01 10:00:10\t2011-01-01 10:00:20\tA\tPIR\tHall\n"
      "2011-01-01 10:00:00\t2011-01-01 10:00:10\tA\tPIR\tHall\n"
      "2011-01-01 10:00:05\t2011-01-01 10:00:05\tB\tMagnetic\tHall\n"
      "2011-01-01 10:00:30\t2011-01-01 10:00:30\tA\tPIR\tHall\n");
  ASSERT_TRUE(log.ok()) << log.error().message;
  const std::vector<TraceEntry> want = {
      {0, "Hall_A_PIR", "ON"},   {5, "Hall_B_Magnetic", "OPEN"}, {5, "Hall_B_Magnetic", "CLOSED"},
      {10, "Hall_A_PIR", "OFF"}, {10, "Hall_A_PIR", "ON"},       {20, "Hall_A_PIR", "OFF"},
      {30, "Hall_A_PIR", "ON"},  {30, "Hall_A_PIR", "OFF"},
  };
  EXPECT_EQ(log->trace.entries, want);
  EXPECT_EQ(log->trace.start, "2011-01-01T10:00:00");
  EXPECT_EQ(log->overlaps, 1u) << "the second line starts before the first one's end";
}

TEST(OrdonezConverter, MalformedLinesFailWithTheirLineNumber) {
  const std::string header = "Start time\tEnd time\tLocation\tType\tPlace\r\n";
  const std::string good = "2011-11-28 02:27:59\t2011-11-28 10:18:11\tBed\tPressure\tBedroom\r\n";
  struct Case {
    std::string text;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"",
       "log.txt:0: expected the header `Start time<TAB>End time<TAB>Location<TAB>Type<TAB>"
       "Place`, found an empty file"},
      {good, "log.txt:1: expected the header"},
      {header + good + "2011-11-28 02:27:59\t2011-11-28 10:18:11\tBed\tPressure\r\n",
       "log.txt:3: expected 5 tab-separated fields (start time, end time, location, type, "
       "place), found 4"},
      {header + good + good + "2011-11-28 02:27:59 2011-11-28 10:18:11 Bed Pressure Bedroom\r\n",
       "log.txt:4: expected 5 tab-separated fields"},
      {header + "2011-13-28 02:27:59\t2011-11-28 10:18:11\tBed\tPressure\tBedroom\r\n",
       "log.txt:2: bad start time \"2011-13-28 02:27:59\" (expected YYYY-MM-DD HH:MM:SS)"},
      {header + "2011-02-29 02:27:59\t2011-11-28 10:18:11\tBed\tPressure\tBedroom\r\n",
       "log.txt:2: bad start time \"2011-02-29 02:27:59\""},
      {header + "2011-11-28 02:27:59\t2011-11-28T10:18:11\tBed\tPressure\tBedroom\r\n",
       "log.txt:2: bad end time \"2011-11-28T10:18:11\""},
      {header + "2011-11-28 02:27:59\t2011-11-28 02:27:58\tBed\tPressure\tBedroom\r\n",
       "log.txt:2: end time 2011-11-28 02:27:58 is before start time 2011-11-28 02:27:59"},
      {header + good + "2011-11-28 02:27:59\t2011-11-28 10:18:11\tBed\tLaser\tBedroom\r\n",
       "log.txt:3: unknown sensor type \"Laser\" (expected Magnetic, PIR, Pressure, Flush or "
       "Electric)"},
      {header + "2011-11-28 02:27:59\t2011-11-28 10:18:11\t--\tPIR\tBedroom\r\n",
       "log.txt:2: location \"--\" and place \"Bedroom\" need letters or digits"},
      {header + good + "2011-11-28 02:27:59\t2011-11-28 10:18:11\tBed\tPIR\tBedroom\r\n" +
           "2011-11-28 02:27:59\t2011-11-28 10:18:11\tbed\tPressure\tBedroom\r\n",
       "log.txt:3: "},  // fine: Bedroom_Bed_PIR is another item
  };
  for (const Case& c : cases) {
    auto log = Convert(c.text);
    if (c.want == "log.txt:3: ") {
      EXPECT_TRUE(log.ok()) << log.error().message;
      continue;
    }
    ASSERT_FALSE(log.ok()) << "input: " << c.text;
    EXPECT_EQ(log.error().code, "bad_log");
    EXPECT_EQ(log.error().message.rfind(c.want, 0), 0u)
        << "input: " << c.text << "\nmessage: " << log.error().message;
  }
}

// The committed conversion of the real log (data/ordonez-a.*), which openhab-sim replays.
struct Committed {
  Trace trace;
  std::vector<HomeItem> items;
};

Committed LoadCommitted() {
  Committed c;
  auto trace = ReadTraceFile(IOTHUB_SOURCE_DIR "/data/ordonez-a.trace.jsonl");
  EXPECT_TRUE(trace.ok()) << trace.error().message;
  if (trace.ok()) c.trace = *trace;
  std::ifstream in(IOTHUB_SOURCE_DIR "/data/ordonez-a.items.json");
  auto items = ParseHomeItems(json::parse(in), "ordonez-a.items.json");
  EXPECT_TRUE(items.ok()) << items.error().message;
  if (items.ok()) c.items = *items;
  return c;
}

TEST(OrdonezData, CommittedTraceIsTheRealLogReplayable) {
  const Committed c = LoadCommitted();
  EXPECT_EQ(c.trace.source, "OrdonezA_Sensors.txt");
  EXPECT_EQ(c.trace.start, "2011-11-28T02:27:59");
  ASSERT_EQ(c.trace.entries.size(), 816u);  // 408 activations
  EXPECT_EQ(c.items.size(), 12u);
  EXPECT_EQ(c.trace.duration(), 1202091);  // to 2011-12-12 00:22:50
  const Status checked = CheckTraceStates(c.trace, c.items, "ordonez-a.trace.jsonl");
  EXPECT_TRUE(checked.ok()) << checked.error().message;
  // Each item alternates on/off, starting from its initial state, and ends where it began.
  std::map<std::string, std::string> state;
  for (const HomeItem& item : c.items) {
    state[item.name] = item.state;
    EXPECT_EQ(item.groups.size(), 1u);
    EXPECT_EQ(item.groups[0].rfind('g', 0), 0u);
  }
  for (const TraceEntry& e : c.trace.entries) {
    ASSERT_TRUE(state.count(e.item)) << e.item;
    EXPECT_NE(state[e.item], e.state) << "line " << e.line << " repeats the state of " << e.item;
    state[e.item] = e.state;
  }
  for (const HomeItem& item : c.items) EXPECT_EQ(state[item.name], item.state) << item.name;
}

TEST(OrdonezData, ConvertingTheSharedLogGivesTheCommittedFiles) {
  const std::string log_path = IOTHUB_SOURCE_DIR "/../shared/data/OrdonezA_Sensors.txt";
  if (!std::filesystem::exists(log_path)) {
    GTEST_SKIP() << log_path
                 << " is not here; CommittedTraceIsTheRealLogReplayable covers the "
                    "committed conversion";
  }
  auto log = ConvertOrdonezFile(log_path);
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(log->activations, 408u);
  EXPECT_EQ(log->overlaps, 0u);
  const Committed c = LoadCommitted();
  log->trace.source = c.trace.source;
  EXPECT_EQ(log->trace, c.trace);
  EXPECT_EQ(log->items, c.items);
}

// Series.

std::vector<SeriesSpec> Specs(const std::string& text) {
  auto specs = ParseSeriesSpecs(json::parse(text), "home.json: series");
  EXPECT_TRUE(specs.ok()) << specs.error().message;
  return specs.ok() ? *specs : std::vector<SeriesSpec>{};
}

std::vector<Series> Make(const std::string& text, std::uint64_t seed = 7, double sod = 0) {
  auto series = MakeSeries(Specs(text), SeriesOptions{seed, sod});
  EXPECT_TRUE(series.ok()) << series.error().message;
  return series.ok() ? std::move(series).value() : std::vector<Series>{};
}

// The states of `series` at t = 0, every, 2 every, ... up to `duration`.
std::vector<std::string> States(Series& series, double duration) {
  std::vector<std::string> out;
  for (double t = 0; t <= duration; t += series.every()) out.push_back(series.Next(t));
  return out;
}

double Number(const std::string& state) { return std::stod(state); }

TEST(SeriesSpec, ParsesWithModelDefaults) {
  const auto specs = Specs(
      R"([{"item":"Kitchen_Temperature","every":30,"model":"temperature","mean":21,
           "daily_amplitude":1.5,"noise":0.1,"unit":"°C","decimals":1},
          {"item":"H","every":60,"model":"humidity"},
          {"item":"P","every":5,"model":"power","base":80,"appliances":[
             {"watts":2000,"every":3600,"duration":120}]},
          {"item":"E","every":60,"model":"energy","source":"P","initial":12.5}])");
  ASSERT_EQ(specs.size(), 4u);
  EXPECT_EQ(specs[0].item, "Kitchen_Temperature");
  EXPECT_EQ(specs[0].every, 30);
  EXPECT_EQ(specs[0].noise, 0.1);
  EXPECT_EQ(specs[0].peak_hour, 15);
  EXPECT_EQ(specs[1].unit, "%");
  EXPECT_EQ(specs[1].mean, 50);
  EXPECT_EQ(specs[2].unit, "W");
  EXPECT_EQ(specs[2].appliances, (std::vector<Appliance>{{2000, 3600, 120}}));
  EXPECT_EQ(specs[3].unit, "kWh");
  EXPECT_EQ(specs[3].decimals, 3);
  EXPECT_EQ(specs[3].source, "P");
  EXPECT_TRUE(specs[3].appliances.empty());
}

TEST(SeriesSpec, ErrorsNameTheSeriesAndField) {
  struct Case {
    std::string text;
    std::string want;
  };
  const std::vector<Case> cases = {
      {R"({"series":1})", "home.json: series: expected an array of series"},
      {R"([5])", "home.json: series[0]: expected an object"},
      {R"([{"item":"A","every":1}])", "home.json: series[0]: missing \"model\""},
      {R"([{"item":"A","every":1,"model":"wind"}])",
       "home.json: series[0]: \"model\": expected temperature, humidity, power or energy, found "
       "\"wind\""},
      {R"([{"item":"A","model":"power"}])", "home.json: series[0]: missing \"every\""},
      {R"([{"item":"A","model":"power","every":0}])",
       "home.json: series[0]: \"every\": expected seconds between reports, 0.001 to 31536000, "
       "found 0"},
      {R"([{"item":"A","model":"power","every":"5"}])", "home.json: series[0]: \"every\": "},
      {R"([{"item":"A-1","model":"power","every":5}])",
       "home.json: series[0]: \"item\": expected an item name"},
      {R"([{"model":"power","every":5}])", "home.json: series[0]: missing \"item\""},
      {R"([{"item":"A","model":"power","every":5,"mean":3}])",
       "home.json: series[0]: unknown field \"mean\" for model power (item, model, every, unit, "
       "decimals, base, noise, appliances)"},
      {R"([{"item":"A","model":"temperature","every":5,"mena":3}])",
       "home.json: series[0]: unknown field \"mena\" for model temperature"},
      {R"([{"item":"A","model":"humidity","every":5,"mean":120}])",
       "home.json: series[0]: \"mean\": expected a number, found 120"},
      {R"([{"item":"A","model":"temperature","every":5,"decimals":7}])",
       "home.json: series[0]: \"decimals\": expected an integer 0..6, found 7"},
      {R"([{"item":"A","model":"temperature","every":5,"unit":"deg C"}])",
       "home.json: series[0]: \"unit\": expected a unit text without spaces"},
      {R"([{"item":"A","model":"temperature","every":5,"noise":-1}])",
       "home.json: series[0]: \"noise\": expected a number >= 0, found -1"},
      {R"([{"item":"A","model":"power","every":5,"base":-1}])",
       "home.json: series[0]: \"base\": expected watts >= 0, found -1"},
      {R"([{"item":"A","model":"power","every":5,"appliances":[{"watts":5,"every":60}]}])",
       "home.json: series[0]: \"appliances[0]\": missing \"duration\""},
      {R"([{"item":"A","model":"power","every":5,"appliances":[{"watts":5,"every":0.5,
            "duration":9}]}])",
       "home.json: series[0]: \"appliances[0].every\": expected seconds >= 1, found 0.5"},
      {R"([{"item":"A","model":"power","every":5,"appliances":[{"kw":5}]}])",
       "home.json: series[0]: \"appliances[0]\": unknown field \"kw\""},
      {R"([{"item":"A","model":"power","every":5},{"item":"A","model":"power","every":5}])",
       "home.json: series[1]: \"item\": A has a series already"},
      {R"([{"item":"E","model":"energy","every":5,"source":"P"}])",
       "home.json: series[0]: \"source\": expected the item of a power series in this array, "
       "found \"P\""},
      {R"([{"item":"T","model":"temperature","every":5},
           {"item":"E","model":"energy","every":5,"source":"T"}])",
       "home.json: series[1]: \"source\": expected the item of a power series"},
      {R"([{"item":"P","model":"power","every":5},
           {"item":"E","model":"energy","every":5,"source":"P","base":5}])",
       "home.json: series[1]: \"source\" integrates another series' power"},
  };
  for (const Case& c : cases) {
    json doc = json::parse(c.text);
    auto specs = ParseSeriesSpecs(doc.is_object() ? doc["series"] : doc, "home.json: series");
    ASSERT_FALSE(specs.ok()) << c.text;
    EXPECT_EQ(specs.error().code, "bad_series");
    EXPECT_EQ(specs.error().message.rfind(c.want, 0), 0u)
        << "input: " << c.text << "\nmessage: " << specs.error().message;
  }
}

constexpr const char* kFourSeries = R"([
  {"item":"T","every":30,"model":"temperature"},
  {"item":"H","every":60,"model":"humidity"},
  {"item":"P","every":10,"model":"power"},
  {"item":"E","every":60,"model":"energy","source":"P"}])";

TEST(Series, StatesAreOpenHabQuantitiesOfTheirItemType) {
  auto series = Make(kFourSeries);
  ASSERT_EQ(series.size(), 4u);
  const std::vector<std::pair<std::string, std::regex>> want = {
      {"Number:Temperature", std::regex(R"(-?\d+\.\d °C)")},
      {"Number:Dimensionless", std::regex(R"(\d+\.\d %)")},
      {"Number:Power", std::regex(R"(\d+\.\d W)")},
      {"Number:Energy", std::regex(R"(\d+\.\d{3} kWh)")},
  };
  for (std::size_t i = 0; i < series.size(); ++i) {
    EXPECT_EQ(series[i].item_type(), want[i].first);
    EXPECT_EQ(series[i].ItemDefinition().type, want[i].first);
    for (const std::string& state : States(series[i], 3600)) {
      EXPECT_TRUE(std::regex_match(state, want[i].second)) << state;
      auto parsed = openhab::ParseState(want[i].first, state);
      ASSERT_TRUE(parsed.ok()) << parsed.error().message;
      EXPECT_EQ(parsed->kind, openhab::StateKind::kQuantity);
    }
  }
  auto plain = Make(R"([{"item":"N","every":1,"model":"temperature","unit":"","decimals":0}])");
  EXPECT_EQ(plain[0].item_type(), "Number");
  EXPECT_TRUE(std::regex_match(plain[0].Next(0), std::regex(R"(-?\d+)")));
}

TEST(Series, SameSeedSameStatesOtherSeedOtherStates) {
  auto a = Make(kFourSeries, 42);
  auto b = Make(kFourSeries, 42);
  auto c = Make(kFourSeries, 43);
  // The same items in another order: each series' randomness depends on its item only.
  auto d = Make(R"([{"item":"E","every":60,"model":"energy","source":"P"},
                    {"item":"P","every":10,"model":"power"},
                    {"item":"H","every":60,"model":"humidity"},
                    {"item":"T","every":30,"model":"temperature"}])",
                42);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto run_a = States(a[i], 86400);
    EXPECT_EQ(run_a, States(b[i], 86400)) << a[i].item();
    EXPECT_NE(run_a, States(c[i], 86400)) << a[i].item();
    EXPECT_EQ(run_a, States(d[3 - i], 86400)) << a[i].item();
  }
}

TEST(Series, HumidityStaysWithin0And100) {
  auto series = Make(R"([{"item":"Hi","every":60,"model":"humidity","mean":97,"noise":10},
                         {"item":"Lo","every":60,"model":"humidity","mean":2,"noise":10}])");
  for (Series& s : series) {
    bool touched_bound = false;
    for (const std::string& state : States(s, 7 * 86400)) {
      const double v = Number(state);
      EXPECT_GE(v, 0);
      EXPECT_LE(v, 100);
      touched_bound = touched_bound || v == 0 || v == 100;
    }
    EXPECT_TRUE(touched_bound) << s.item() << ": the noise must push against the bound";
  }
}

TEST(Series, PowerIsNeverNegativeAndHasApplianceSpikes) {
  auto series = Make(R"([{"item":"P","every":10,"model":"power","base":2,"noise":20,
                          "appliances":[{"watts":1000,"every":600,"duration":120}]}])");
  double max = 0;
  for (const std::string& state : States(series[0], 86400)) {
    EXPECT_GE(Number(state), 0) << state;
    max = std::max(max, Number(state));
  }
  EXPECT_GT(max, 900) << "the appliance switched on at some point in a day";
}

TEST(Series, EnergyIsMonotonicAndIntegratesItsPowerSeries) {
  auto series = Make(R"([{"item":"P","every":1,"model":"power","base":100,"noise":0,
                          "appliances":[{"watts":2000,"every":1800,"duration":300}]},
                         {"item":"E","every":1,"model":"energy","source":"P","initial":5}])");
  ASSERT_EQ(series.size(), 2u);
  double previous = 0;
  double watt_seconds = 0;
  const double duration = 2 * 86400;
  std::string energy;
  for (double t = 0; t <= duration; t += 1) {
    const double w = Number(series[0].Next(t));
    if (t < duration) watt_seconds += w;  // power holds for the second after the sample
    energy = series[1].Next(t);
    EXPECT_GE(Number(energy), previous) << "t=" << t;
    previous = Number(energy);
  }
  const double expected = 5 + watt_seconds / 3.6e6;
  // Sampling at whole seconds misses up to a second of each switching (2000 W): about 0.02 kWh
  // over two days, where a power model of its own would differ by kWh.
  EXPECT_NEAR(Number(energy), expected, 0.03) << "the energy integrates the power series";
  EXPECT_GT(Number(energy), 5 + 100.0 * duration / 3.6e6 + 1) << "appliances added energy";

  auto own = Make(R"([{"item":"E2","every":60,"model":"energy"}])");
  double last = -1;
  for (const std::string& state : States(own[0], 7 * 86400)) {
    EXPECT_GE(Number(state), last);
    last = Number(state);
  }
  EXPECT_GT(last, 150.0 * 7 * 24 / 1000) << "at least the base load";
}

TEST(Series, TemperatureFollowsTheDailyCycleFromTheStartTime) {
  // No noise: mean + amplitude * cos(2 pi (time of day - peak) / 1 day).
  auto series = Make(R"([{"item":"T","every":3600,"model":"temperature","mean":20,
                          "daily_amplitude":3,"noise":0,"peak_hour":15,"decimals":2}])",
                     1, 12 * 3600.0);                // t = 0 is noon
  EXPECT_EQ(series[0].Next(0), "22.12 °C");          // 20 + 3 cos(-45°): 3 h before the peak
  EXPECT_EQ(series[0].Next(3 * 3600), "23.00 °C");   // 15:00
  EXPECT_EQ(series[0].Next(15 * 3600), "17.00 °C");  // 03:00
  EXPECT_EQ(series[0].Next(27 * 3600), "23.00 °C");  // 15:00 the next day
  EXPECT_EQ(series[0].Next(26 * 3600), "23.00 °C") << "time never goes back";
}

// Schedule.

Trace SmallTrace() {
  Trace trace;
  trace.source = "small";
  trace.entries = {{0, "A", "ON"}, {10, "B", "OPEN"}, {20, "A", "OFF"}, {20, "B", "CLOSED"}};
  return trace;
}

std::vector<ReplayEvent> Drain(Schedule& schedule, std::size_t limit = 1000000) {
  std::vector<ReplayEvent> out;
  while (out.size() < limit) {
    auto event = schedule.Next();
    if (!event) break;
    out.push_back(*event);
  }
  return out;
}

TEST(Schedule, MergesTraceAndSeriesInTimeOrder) {
  auto series = Make(R"([{"item":"P","every":10,"model":"power"},
                         {"item":"T","every":7.5,"model":"temperature"}])");
  Schedule schedule(SmallTrace(), std::move(series));
  EXPECT_EQ(schedule.PeekTime(), 0);
  const auto events = Drain(schedule);
  std::vector<std::pair<double, std::string>> got;
  got.reserve(events.size());
  for (const ReplayEvent& e : events) got.emplace_back(e.t, e.item);
  const std::vector<std::pair<double, std::string>> want = {
      {0, "A"},  {0, "P"},  {0, "T"},  {7.5, "T"}, {10, "B"},
      {10, "P"}, {15, "T"}, {20, "A"}, {20, "B"},  {20, "P"},  // the trace ends at 20
  };
  EXPECT_EQ(got, want);
  EXPECT_EQ(events[0].state, "ON");
  EXPECT_EQ(events[8].state, "CLOSED");
  EXPECT_TRUE(std::regex_match(events[1].state, std::regex(R"(\d+\.\d W)")));
  EXPECT_EQ(schedule.PeekTime(), std::nullopt);
  EXPECT_EQ(schedule.Next(), std::nullopt);
}

TEST(Schedule, LoopsTheTraceWithAnOffsetWhileSeriesKeepTicking) {
  ScheduleOptions options;
  options.loop = true;
  options.loop_gap = 5;
  options.until = 60;
  auto series = Make(R"([{"item":"P","every":25,"model":"power"}])");
  Schedule schedule(SmallTrace(), std::move(series), options);
  std::vector<std::pair<double, std::string>> got;
  for (const ReplayEvent& e : Drain(schedule)) got.emplace_back(e.t, e.item + "=" + e.state);
  // Period 20 + 5: passes start at 0, 25, 50.
  EXPECT_EQ(got[0], (std::pair<double, std::string>{0, "A=ON"}));
  std::vector<std::pair<double, std::string>> trace_part;
  std::vector<double> ticks;
  for (const auto& [t, what] : got) {
    if (what[0] == 'P') {
      ticks.push_back(t);
    } else {
      trace_part.emplace_back(t, what);
    }
  }
  const std::vector<std::pair<double, std::string>> want = {
      {0, "A=ON"},    {10, "B=OPEN"}, {20, "A=OFF"},    {20, "B=CLOSED"}, {25, "A=ON"},
      {35, "B=OPEN"}, {45, "A=OFF"},  {45, "B=CLOSED"}, {50, "A=ON"},     {60, "B=OPEN"},
  };
  EXPECT_EQ(trace_part, want);
  EXPECT_EQ(ticks, (std::vector<double>{0, 25, 50}));
  // At t = 25 and 50 the trace comes before the series tick.
  EXPECT_EQ(got[5], (std::pair<double, std::string>{25, "A=ON"}));
  EXPECT_EQ(got[6].second.substr(0, 2), "P=");
}

TEST(Schedule, EndlessLoopAndEdgeCases) {
  ScheduleOptions loop;
  loop.loop = true;
  loop.loop_gap = 0;
  Trace instant;
  instant.entries = {{0, "A", "ON"}, {0, "A", "OFF"}};
  Schedule endless(instant, {}, loop);
  const auto events = Drain(endless, 1000);
  ASSERT_EQ(events.size(), 1000u) << "a loop has no end";
  EXPECT_EQ(events[2].t, 1) << "a period below 1 s counts as 1 s";
  EXPECT_EQ(events[999].t, 499);

  Schedule empty(Trace{}, {});
  EXPECT_EQ(empty.Next(), std::nullopt);

  ScheduleOptions until;
  until.until = 100;
  Schedule series_only(Trace{}, Make(R"([{"item":"P","every":30,"model":"power"}])"), until);
  EXPECT_EQ(Drain(series_only).size(), 4u);  // 0, 30, 60, 90
}

// Replayer.

// Collects what a replayer delivers; waits are bounded.
class Collector {
 public:
  Replayer::Sink Sink() {
    return [this](const ReplayEvent& e) {
      std::lock_guard lock(mutex_);
      events_.push_back(e);
      changed_.notify_all();
    };
  }
  bool WaitFor(std::size_t count, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return events_.size() >= count; });
  }
  std::vector<ReplayEvent> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<ReplayEvent> events_;
};

TEST(Replayer, RejectsABadSpeed) {
  for (const double speed : {0.0, -1.0, std::nan(""), HUGE_VAL}) {
    auto replayer = Replayer::Create(Schedule(SmallTrace(), {}), speed, [](const ReplayEvent&) {});
    ASSERT_FALSE(replayer.ok()) << speed;
    EXPECT_EQ(replayer.error().code, "bad_speed");
  }
}

TEST(Replayer, DeliversEverythingInOrderAtHighSpeed) {
  Trace trace;
  for (int i = 0; i < 2000; ++i) {
    trace.entries.push_back({i * 0.5, "I" + std::to_string(i % 7), i % 2 ? "OFF" : "ON"});
  }
  const auto series_json = R"([{"item":"P","every":3,"model":"power"}])";
  Schedule expected_schedule(trace, Make(series_json));
  const auto expected = Drain(expected_schedule);
  ASSERT_GT(expected.size(), 2300u);

  // 1000 s of sim time at 1e5: 10 ms of real time.
  Collector collector;
  auto replayer = Replayer::Create(Schedule(trace, Make(series_json)), 1e5, collector.Sink());
  ASSERT_TRUE(replayer.ok());
  (*replayer)->Start();
  ASSERT_TRUE((*replayer)->WaitUntilFinished(std::chrono::seconds(30)));
  EXPECT_EQ((*replayer)->delivered(), expected.size());
  EXPECT_EQ(collector.events(), expected);
  EXPECT_GT((*replayer)->SimTime(), 999.0) << "sim time runs at speed";
}

TEST(Replayer, PacesEventsAndStopsPromptlyInTheMiddleOfAWait) {
  Trace trace;
  trace.entries = {{0, "A", "ON"}, {3600, "A", "OFF"}};
  Collector collector;
  auto replayer = Replayer::Create(Schedule(trace, {}), 1.0, collector.Sink());
  ASSERT_TRUE(replayer.ok());
  (*replayer)->Start();
  ASSERT_TRUE(collector.WaitFor(1, std::chrono::seconds(10))) << "t = 0 comes at once";
  EXPECT_FALSE((*replayer)->WaitUntilFinished(std::chrono::milliseconds(50)))
      << "the next event is an hour away";
  const auto before = std::chrono::steady_clock::now();
  (*replayer)->Stop();
  const auto took = std::chrono::steady_clock::now() - before;
  EXPECT_LT(took, std::chrono::seconds(2)) << "Stop wakes the wait instead of sleeping it out";
  EXPECT_EQ((*replayer)->delivered(), 1u);
  EXPECT_EQ(collector.events().size(), 1u);
  EXPECT_FALSE((*replayer)->WaitUntilFinished(std::chrono::milliseconds(0)));
  (*replayer)->Stop();   // idempotent
  (*replayer)->Start();  // no restart after Stop
  EXPECT_FALSE(collector.WaitFor(2, std::chrono::milliseconds(50)));
}

TEST(Replayer, StopFromTheSinkEndsTheReplay) {
  ScheduleOptions loop;
  loop.loop = true;
  Replayer* self = nullptr;
  std::size_t calls = 0;
  auto replayer = Replayer::Create(Schedule(SmallTrace(), {}, loop), 1e6, [&](const ReplayEvent&) {
    if (++calls == 3) self->Stop();
  });
  ASSERT_TRUE(replayer.ok());
  self = replayer->get();
  self->Start();
  EXPECT_FALSE(self->WaitUntilFinished(std::chrono::seconds(10)));  // returns once stopped
  self->Stop();
  EXPECT_EQ(calls, 3u);
}

// The openhab-trace program.

using Output = iothub::testing::CommandOutput;

// Runs openhab-trace; `out` has stdout, and stderr too unless `with_stderr` is false.
Output Program(const std::string& args, bool with_stderr = true) {
  return iothub::testing::RunCommand(std::string(IOTHUB_BIN_DIR) + "/openhab-trace " + args +
                                     (with_stderr ? " 2>&1" : " 2>/dev/null"));
}

class TraceProgram : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sim_trace_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::string Write(const std::string& name, const std::string& content) const {
    std::ofstream(Path(name), std::ios::binary) << content;
    return Path(name);
  }
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  std::filesystem::path dir_;
};

TEST_F(TraceProgram, ConvertThenCheck) {
  const std::string log = Write("home.txt",
                                "Start time\tEnd time\tLocation\tType\tPlace\r\n"
                                "2011-11-28 10:00:00\t2011-11-28 10:00:30\tFridge\tMagnetic\t"
                                "Kitchen\r\n"
                                "2011-11-28 10:00:10\t\t2011-11-28 10:05:00\tBasin\tPIR\t"
                                "Bathroom\r\n");
  Output run = Program("convert " + log + " -o " + Path("t.jsonl") + " --items " +
                       Path("items.json") + " --with-groups");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_NE(run.out.find("3 lines, 2 activations of 2 sensors in 2 groups -> 4 changes"),
            std::string::npos)
      << run.out;
  EXPECT_EQ(Slurp(Path("t.jsonl")),
            "{\"openhab-trace\":1,\"source\":\"home.txt\",\"start\":\"2011-11-28T10:00:00\"}\n"
            "{\"t\":0,\"item\":\"Kitchen_Fridge_Magnetic\",\"state\":\"OPEN\"}\n"
            "{\"t\":10,\"item\":\"Bathroom_Basin_PIR\",\"state\":\"ON\"}\n"
            "{\"t\":30,\"item\":\"Kitchen_Fridge_Magnetic\",\"state\":\"CLOSED\"}\n"
            "{\"t\":300,\"item\":\"Bathroom_Basin_PIR\",\"state\":\"OFF\"}\n");
  const json items = json::parse(Slurp(Path("items.json")));
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0]["name"], "gKitchen");
  EXPECT_EQ(items[2], json::parse(R"({"name":"Kitchen_Fridge_Magnetic","type":"Contact",
      "label":"Kitchen fridge door","category":"door","tags":["OpenState"],
      "groups":["gKitchen"],"state":"CLOSED"})"));
  EXPECT_FALSE(std::filesystem::exists(Path("t.jsonl.tmp")));

  run = Program("check " + Path("t.jsonl") + " --items " + Path("items.json"));
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_NE(run.out.find("5 lines, 4 entries, 2 items, duration 300 s"), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("  Kitchen_Fridge_Magnetic 2\n"), std::string::npos) << run.out;

  // Without -o the trace goes to stdout.
  run = Program("convert " + log + " --source 'my home'", false);
  EXPECT_EQ(run.status, 0);
  EXPECT_EQ(run.out.rfind("{\"openhab-trace\":1,\"source\":\"my home\"", 0), 0u) << run.out;
}

TEST_F(TraceProgram, FailuresExitWithOneAndNameTheLine) {
  const std::string bad_log = Write("bad.txt",
                                    "Start time\tEnd time\tLocation\tType\tPlace\n"
                                    "2011-11-28 10:00:00\t2011-11-28 10:00:30\tFridge\tMagnetic"
                                    "\tKitchen\n"
                                    "2011-11-28 10:00:00\t2011-11-28 10:00:30\tFridge\n");
  Output run = Program("convert " + bad_log + " -o " + Path("t.jsonl"));
  EXPECT_EQ(run.status, 1) << run.out;
  EXPECT_NE(run.out.find(bad_log + ":3: expected 5 tab-separated fields"), std::string::npos)
      << run.out;
  EXPECT_FALSE(std::filesystem::exists(Path("t.jsonl"))) << "no output for a failed conversion";

  const std::string bad_trace =
      Write("bad.jsonl", std::string(kHeader) + "{\"t\":5,\"item\":\"A\",\"state\":\"ON\"}\n" +
                             "{\"t\":4,\"item\":\"A\",\"state\":\"OFF\"}\n");
  run = Program("check " + bad_trace);
  EXPECT_EQ(run.status, 1) << run.out;
  EXPECT_NE(run.out.find(bad_trace + ":3: \"t\" must not decrease: 4 after 5"), std::string::npos)
      << run.out;

  const std::string items = Write("items.json", R"([{"name":"A","type":"Contact"}])");
  const std::string wrong_state =
      Write("w.jsonl", std::string(kHeader) + "{\"t\":5,\"item\":\"A\",\"state\":\"ON\"}\n");
  run = Program("check " + wrong_state + " --items " + items);
  EXPECT_EQ(run.status, 1) << run.out;
  EXPECT_NE(run.out.find(wrong_state + ":2: state of A: "), std::string::npos) << run.out;

  run = Program("check " + Path("missing.jsonl"));
  EXPECT_EQ(run.status, 1) << run.out;
  EXPECT_NE(run.out.find("cannot open"), std::string::npos) << run.out;
}

TEST_F(TraceProgram, UsageErrorsExitWithTwo) {
  Output run = Program("");
  EXPECT_EQ(run.status, 2) << run.out;
  EXPECT_NE(run.out.find("subcommand"), std::string::npos) << run.out;
  run = Program("check");
  EXPECT_EQ(run.status, 2) << run.out;
  EXPECT_NE(run.out.find("TRACE is required"), std::string::npos) << run.out;
  run = Program("frobnicate x");
  EXPECT_EQ(run.status, 2) << run.out;
  run = Program("series " + Path("spec.json"));
  EXPECT_EQ(run.status, 2) << run.out;
  EXPECT_NE(run.out.find("--duration"), std::string::npos) << run.out;
  run = Program("series " + Path("spec.json") + " --duration -3");
  EXPECT_EQ(run.status, 2) << run.out;
  run = Program("--help");
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_NE(run.out.find("convert"), std::string::npos);
  EXPECT_NE(run.out.find("check"), std::string::npos);
  EXPECT_NE(run.out.find("series"), std::string::npos);
}

TEST_F(TraceProgram, SeriesPrintsAReadableTrace) {
  const std::string spec = Write("home.json", R"({"openhab-home":1,"items":[],"series":[
      {"item":"Kitchen_Temperature","every":30,"model":"temperature"},
      {"item":"House_Power","every":10,"model":"power"}]})");
  Output run =
      Program("series " + spec + " --duration 60 --seed 3 --start 2011-11-28T02:27:59 -o " +
              Path("s.jsonl") + " --items " + Path("s.items.json"));
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_NE(run.out.find("2 series, 10 states"), std::string::npos) << run.out;
  auto trace = ReadTraceFile(Path("s.jsonl"));
  ASSERT_TRUE(trace.ok()) << trace.error().message;
  EXPECT_EQ(trace->entries.size(), 10u);  // 3 temperatures, 7 powers
  EXPECT_EQ(trace->start, "2011-11-28T02:27:59");
  auto items = ParseHomeItems(json::parse(Slurp(Path("s.items.json"))), "s.items.json");
  ASSERT_TRUE(items.ok()) << items.error().message;
  const Status checked = CheckTraceStates(*trace, *items, "s.jsonl");
  EXPECT_TRUE(checked.ok()) << checked.error().message;
  // The same seed prints the same trace.
  Output again =
      Program("series " + spec + " --duration 60 --seed 3 --start " + "2011-11-28T02:27:59", false);
  EXPECT_EQ(again.out, Slurp(Path("s.jsonl")));

  const std::string bad = Write("bad.json", R"([{"item":"X","every":5,"model":"wind"}])");
  run = Program("series " + bad + " --duration 60");
  EXPECT_EQ(run.status, 1) << run.out;
  EXPECT_NE(run.out.find(bad + "[0]: \"model\": expected temperature"), std::string::npos)
      << run.out;
}

}  // namespace
}  // namespace iothub::sim
