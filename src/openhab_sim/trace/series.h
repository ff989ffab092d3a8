// Numeric series: meters that report every N seconds with realistic noise (temperature,
// humidity, power, energy), specified in the `series` array of an openhab-sim home file
// (docs/openhab-sim-traces.md#series). Deterministic: the same specs, seed and tick times
// give the same states.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "openhab_sim/trace/home_item.h"

namespace iothub::sim {

enum class SeriesModel { kTemperature, kHumidity, kPower, kEnergy };

// A device that draws `watts` for a random time around `duration` seconds, and switches on
// again a random time around `every` seconds after it switched off (both exponential).
struct Appliance {
  double watts = 0;
  double every = 0;
  double duration = 0;
  friend bool operator==(const Appliance&, const Appliance&) = default;
};

// One series as the home file gives it; ParseSeriesSpec fills in the model's defaults.
struct SeriesSpec {
  std::string item;
  double every = 0;  // seconds between reports, > 0
  SeriesModel model = SeriesModel::kTemperature;
  std::string unit;  // appended to the number after a space; empty for a plain Number
  int decimals = 1;
  // temperature, humidity: mean + daily_amplitude * cos(time of day vs peak_hour) + a smooth
  // random walk (Ornstein-Uhlenbeck) with standard deviation `noise` and correlation time
  // `correlation` seconds. Humidity is clamped to 0..100.
  double mean = 0;
  double daily_amplitude = 0;
  double peak_hour = 0;  // local hour of the daily maximum, 0..24
  double noise = 0;      // power: standard deviation of the measurement noise, W
  double correlation = 0;
  // power, and energy without `source`: `base` W always drawn plus the appliances.
  double base = 0;
  std::vector<Appliance> appliances;
  // energy: kWh at t = 0, and the power series (by item) whose draw it integrates; empty for
  // its own power model (base, appliances).
  double initial = 0;
  std::string source;
  friend bool operator==(const SeriesSpec&, const SeriesSpec&) = default;
};

// One spec object. Errors (code "bad_series") start with `where` (e.g. `home.json:
// series[2]`) and name the field and what was expected; unknown fields and fields of another
// model are errors.
Result<SeriesSpec> ParseSeriesSpec(const nlohmann::json& spec, std::string_view where);
// A JSON array of specs; also checks that items are unique and that an energy `source`
// names a power series of the array.
Result<std::vector<SeriesSpec>> ParseSeriesSpecs(const nlohmann::json& specs,
                                                 std::string_view where);

struct SeriesOptions {
  std::uint64_t seed = 1;  // each series draws from std::mt19937_64 seeded from this and its item
  double start_seconds_of_day = 0;  // local time of day at t = 0 (see SecondsOfDay), phases cycles
};

// A generator of one series' states. Not thread-safe; movable.
class Series {
 public:
  Series(Series&&) noexcept;
  Series& operator=(Series&&) noexcept;
  ~Series();

  const std::string& item() const;
  double every() const;  // seconds between reports
  const SeriesSpec& spec() const;
  // `Number:Temperature`, `Number:Dimensionless` (humidity), `Number:Power`, `Number:Energy`;
  // `Number` when the unit is empty.
  std::string item_type() const;
  // The item this series drives, in home-file form, with a label from the item name and the
  // semantic tags of the model.
  HomeItem ItemDefinition() const;

  // The state text at `t_seconds` since the start, e.g. `21.4 °C`, `1250.5 W`, `12.345 kWh`,
  // `48.2 %`. Calls must not go back in time: an earlier `t_seconds` counts as the last one.
  std::string Next(double t_seconds);

  class Model;  // the model behind a series (series.cc)

 private:
  friend Result<std::vector<Series>> MakeSeries(const std::vector<SeriesSpec>&,
                                                const SeriesOptions&);
  explicit Series(std::unique_ptr<Model> model);
  std::unique_ptr<Model> model_;
};

// The generators for validated specs, in the same order. An energy `source` that names no
// power series of `specs` is an Error (code "bad_series").
Result<std::vector<Series>> MakeSeries(const std::vector<SeriesSpec>& specs,
                                       const SeriesOptions& options);

std::string_view ModelName(SeriesModel model);

}  // namespace iothub::sim
