#include "openhab_sim/trace/trace_commands.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/atomic_file.h"
#include "common/json_depth.h"
#include "openhab_sim/trace/home_item.h"
#include "openhab_sim/trace/ordonez.h"
#include "openhab_sim/trace/schedule.h"
#include "openhab_sim/trace/series.h"
#include "openhab_sim/trace/trace.h"
#include "openhab_sim/trace/trace_check.h"

namespace iothub::sim {
namespace {

constexpr int kFailed = 1;

int Fail(std::string_view command, std::string_view message) {
  std::cerr << "openhab-trace " << command << ": " << message << "\n";
  return kFailed;
}

// `content` to `path`, or to stdout for `-`. A file is replaced atomically (temp file, fsync,
// rename) so that a crash or a full disk never leaves a torn trace behind a valid name.
Status WriteOutput(const std::string& path, const std::string& content) {
  if (path == "-") {
    std::cout << content << std::flush;
    if (!std::cout) return MakeError("io", "cannot write to stdout");
    return Ok{};
  }
  return WriteFileAtomically(path, content, 0644);
}

Result<nlohmann::json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError("io", "cannot open " + path);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (!JsonDepthWithin(text, kMaxJsonDepth)) {
    return MakeError("bad_json", path + ": bad JSON: nested too deeply");
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return MakeError("bad_json", fmt::format("{}: bad JSON: {}", path, e.what()));
  }
}

std::string Duration(double seconds) {
  const auto s = static_cast<long long>(seconds);
  return fmt::format("{} s ({}d {:02}:{:02}:{:02})", seconds, s / 86400, s / 3600 % 24, s / 60 % 60,
                     s % 60);
}

std::string ItemsJson(const std::vector<HomeItem>& items) {
  std::string out = "[\n";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += "  " + ToJson(items[i]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += i + 1 < items.size() ? ",\n" : "\n";
  }
  return out + "]\n";
}

}  // namespace

void AddConvertCommand(CLI::App& app, int& exit_code) {
  struct Options {
    std::string log;
    std::string output = "-";
    std::string items;
    std::string source;
    bool with_groups = false;
  };
  auto options = std::make_shared<Options>();  // shared: outlives this function in the callback
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Convert an Ordonez ADL sensor log (tab-separated: start, end, location, type, place) "
      "into a trace: each activation is ON/OPEN at its start and OFF/CLOSED at its end of the "
      "item <Place>_<Location>_<Type>.");
  cmd->add_option("LOG", options->log, "The sensor log, e.g. OrdonezA_Sensors.txt")->required();
  cmd->add_option("-o,--output", options->output, "Where to write the trace (- for stdout)")
      ->capture_default_str();
  cmd->add_option("--items", options->items,
                  "Also write the sensors' item definitions (home-file item format) here");
  cmd->add_flag("--with-groups", options->with_groups,
                "Put a Group item for each place (gKitchen, ...) before the sensors in --items");
  cmd->add_option("--source", options->source,
                  "The trace header's source text (default: the log's file name)");
  cmd->callback([options, &exit_code] {
    auto log = ConvertOrdonezFile(options->log);
    if (!log) {
      exit_code = Fail("convert", log.error().message);
      return;
    }
    log->trace.source = options->source.empty()
                            ? std::filesystem::path(options->log).filename().string()
                            : options->source;
    if (auto written = WriteOutput(options->output, WriteTraceToString(log->trace)); !written) {
      exit_code = Fail("convert", written.error().message);
      return;
    }
    if (!options->items.empty()) {
      std::vector<HomeItem> items = options->with_groups ? log->groups : std::vector<HomeItem>{};
      items.insert(items.end(), log->items.begin(), log->items.end());
      if (auto written = WriteOutput(options->items, ItemsJson(items)); !written) {
        exit_code = Fail("convert", written.error().message);
        return;
      }
    }
    std::cerr << fmt::format(
        "openhab-trace convert: {}: {} lines, {} activations of {} sensors in {} groups -> {} "
        "changes over {}, starting {}; {} overlapping activations\n",
        options->log, log->lines, log->activations, log->items.size(), log->groups.size(),
        log->trace.entries.size(), Duration(log->trace.duration()), log->trace.start,
        log->overlaps);
    exit_code = 0;
  });
}

void AddCheckCommand(CLI::App& app, int& exit_code) {
  struct Options {
    std::string trace;
    std::string items;
  };
  auto options = std::make_shared<Options>();  // shared: outlives this function in the callback
  CLI::App* cmd = app.add_subcommand(
      "check",
      "Validate a trace (header, JSON, times, item names, states) and print a summary: lines, "
      "entries, items with their change counts, duration.");
  cmd->add_option("TRACE", options->trace, "The trace (.jsonl)")->required();
  cmd->add_option("--items", options->items,
                  "Item definitions (JSON array, home-file item format): also check that every "
                  "item is defined and every state suits its item type");
  cmd->callback([options, &exit_code] {
    std::ifstream in(options->trace, std::ios::binary);
    if (!in) {
      exit_code = Fail("check", "cannot open " + options->trace);
      return;
    }
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::istringstream stream(text);
    auto trace = ReadTrace(stream, options->trace);
    if (!trace) {
      exit_code = Fail("check", trace.error().message);
      return;
    }
    if (!options->items.empty()) {
      auto json = ReadJsonFile(options->items);
      if (!json) {
        exit_code = Fail("check", json.error().message);
        return;
      }
      auto items = ParseHomeItems(*json, options->items);
      if (!items) {
        exit_code = Fail("check", items.error().message);
        return;
      }
      if (auto checked = CheckTraceStates(*trace, *items, options->trace); !checked) {
        exit_code = Fail("check", checked.error().message);
        return;
      }
    }
    std::map<std::string, std::size_t> counts;
    for (const TraceEntry& entry : trace->entries) ++counts[entry.item];
    const auto lines =
        std::count(text.begin(), text.end(), '\n') + (!text.empty() && text.back() != '\n' ? 1 : 0);
    std::string summary = fmt::format(
        "openhab-trace check: {}: ok: version {}, source \"{}\", start {}, {} lines, {} entries, "
        "{} items, duration {}{}\n",
        options->trace, kTraceVersion, trace->source, trace->start.empty() ? "-" : trace->start,
        lines, trace->entries.size(), counts.size(), Duration(trace->duration()),
        options->items.empty() ? "" : ", every state suits its item");
    for (const auto& [item, count] : counts) summary += fmt::format("  {} {}\n", item, count);
    std::cerr << summary;
    exit_code = 0;
  });
}

void AddSeriesCommand(CLI::App& app, int& exit_code) {
  struct Options {
    std::string spec;
    double duration = 0;
    std::uint64_t seed = 1;
    std::string start;
    std::string output = "-";
    std::string items;
  };
  auto options = std::make_shared<Options>();  // shared: outlives this function in the callback
  CLI::App* cmd = app.add_subcommand(
      "series",
      "Print the states that numeric series generate from t = 0 to --duration, as a trace, for "
      "inspection. SPEC is a JSON array of series or a home file with a \"series\" array.");
  cmd->add_option("SPEC", options->spec, "The series specification (.json)")->required();
  cmd->add_option("--duration", options->duration, "Seconds of sim time to generate")
      ->required()
      ->check(CLI::Validator(
          [](const std::string& text) -> std::string {
            double value = 0;
            return CLI::detail::lexical_cast(text, value) && value > 0 && value < 1e12
                       ? ""
                       : "expected seconds > 0, found " + text;
          },
          "SECONDS>0"));
  cmd->add_option("--seed", options->seed, "Seed of the random source")->capture_default_str();
  cmd->add_option("--start", options->start,
                  "Local time at t = 0, YYYY-MM-DDTHH:MM:SS, to phase the daily cycles "
                  "(default: midnight)");
  cmd->add_option("-o,--output", options->output, "Where to write the trace (- for stdout)")
      ->capture_default_str();
  cmd->add_option("--items", options->items, "Also write the series' item definitions here");
  cmd->callback([options, &exit_code] {
    SeriesOptions series_options;
    series_options.seed = options->seed;
    if (!options->start.empty()) {
      const auto seconds = SecondsOfDay(options->start);
      if (!seconds) {
        std::cerr << "openhab-trace series: --start: expected YYYY-MM-DDTHH:MM:SS, found \""
                  << options->start << "\"\n";
        exit_code = 2;
        return;
      }
      series_options.start_seconds_of_day = *seconds;
    }
    auto json = ReadJsonFile(options->spec);
    if (!json) {
      exit_code = Fail("series", json.error().message);
      return;
    }
    const bool home = json->is_object() && json->contains("series");
    auto specs = ParseSeriesSpecs(home ? (*json)["series"] : *json,
                                  home ? options->spec + ": series" : options->spec);
    if (!specs) {
      exit_code = Fail("series", specs.error().message);
      return;
    }
    auto series = MakeSeries(*specs, series_options);
    if (!series) {
      exit_code = Fail("series", series.error().message);
      return;
    }
    std::vector<HomeItem> items;
    for (const Series& s : *series) items.push_back(s.ItemDefinition());
    Trace trace;
    trace.source =
        fmt::format("series {} seed {}", std::filesystem::path(options->spec).filename().string(),
                    options->seed);
    trace.start = options->start;
    ScheduleOptions schedule_options;
    schedule_options.until = options->duration;
    Schedule schedule(Trace{}, std::move(series).value(), schedule_options);
    while (auto event = schedule.Next()) {
      trace.entries.push_back(TraceEntry{event->t, event->item, event->state});
    }
    if (auto written = WriteOutput(options->output, WriteTraceToString(trace)); !written) {
      exit_code = Fail("series", written.error().message);
      return;
    }
    if (!options->items.empty()) {
      if (auto written = WriteOutput(options->items, ItemsJson(items)); !written) {
        exit_code = Fail("series", written.error().message);
        return;
      }
    }
    std::cerr << fmt::format("openhab-trace series: {} series, {} states over {}\n", items.size(),
                             trace.entries.size(), Duration(options->duration));
    exit_code = 0;
  });
}

}  // namespace iothub::sim
