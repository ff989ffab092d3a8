#include "openhab_sim/trace/series.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <set>

#include "openhab_sim/trace/trace.h"

namespace iothub::sim {
namespace {

using Json = nlohmann::json;

constexpr double kDay = 86400;

// Random numbers from std::mt19937_64 by formulas fixed here, not by the standard library's
// distributions (whose algorithms differ between implementations), so that a seed gives the
// same series everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double Normal() {                                                              // Box-Muller
    const double u1 = 1.0 - Uniform();                                           // (0, 1]
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
  double Exponential(double mean) { return -mean * std::log(1.0 - Uniform()); }

 private:
  std::mt19937_64 engine_;
};

std::uint64_t SplitMix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A series' seed depends on the run's seed and its item, not on its place in the array.
std::uint64_t SeedFor(std::uint64_t seed, std::string_view item) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a
  for (const char c : item) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return SplitMix64(seed ^ hash);
}

// An Ornstein-Uhlenbeck process: a random walk pulled back to 0, standard deviation `sigma`,
// correlation time `tau`; sampled exactly at any time steps.
class SmoothNoise {
 public:
  SmoothNoise(double sigma, double tau) : sigma_(sigma), tau_(tau) {}
  double At(double t, Rng& rng) {
    if (!started_) {
      started_ = true;
      x_ = sigma_ * rng.Normal();
    } else if (t > last_) {
      const double a = std::exp(-(t - last_) / tau_);
      x_ = a * x_ + sigma_ * std::sqrt(1.0 - a * a) * rng.Normal();
    }
    last_ = t;
    return x_;
  }

 private:
  double sigma_;
  double tau_;
  bool started_ = false;
  double x_ = 0;
  double last_ = 0;
};

// A base load plus appliances switching on and off; the true draw is piecewise constant and
// its integral exact. The switch times depend only on the seed, never on when it is sampled,
// so an energy series integrating a power series sees the same appliances.
class PowerProcess {
 public:
  PowerProcess(double base, const std::vector<Appliance>& appliances, std::uint64_t seed)
      : base_(base) {
    for (std::size_t i = 0; i < appliances.size(); ++i) {
      Unit unit{appliances[i], Rng(SplitMix64(seed + i)), false, 0};
      unit.next_switch = unit.rng.Exponential(unit.appliance.every);
      units_.push_back(unit);
    }
  }

  void AdvanceTo(double t) {
    for (;;) {
      Unit* next = nullptr;
      for (Unit& unit : units_) {
        if (unit.next_switch <= t && (next == nullptr || unit.next_switch < next->next_switch)) {
          next = &unit;
        }
      }
      if (next == nullptr) break;
      Integrate(next->next_switch);
      next->on = !next->on;
      next->next_switch +=
          next->rng.Exponential(next->on ? next->appliance.duration : next->appliance.every);
    }
    Integrate(t);
  }

  double watts() const {
    double w = base_;
    for (const Unit& unit : units_) w += unit.on ? unit.appliance.watts : 0;
    return w;
  }
  double joules() const { return joules_; }

 private:
  struct Unit {
    Appliance appliance;
    Rng rng;
    bool on = false;
    double next_switch = 0;
  };

  void Integrate(double t) {
    if (t > t_) {
      joules_ += watts() * (t - t_);
      t_ = t;
    }
  }

  double base_;
  std::vector<Unit> units_;
  double t_ = 0;
  double joules_ = 0;
};

std::string Shorten(const Json& value) {
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  constexpr std::size_t kMax = 40;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

struct ModelInfo {
  SeriesModel model;
  std::string_view name;
  std::vector<std::string_view> fields;  // beyond item, model, every, unit, decimals
};

const std::vector<ModelInfo>& Models() {
  static const std::vector<ModelInfo> kModels = {
      {SeriesModel::kTemperature,
       "temperature",
       {"mean", "daily_amplitude", "peak_hour", "noise", "correlation"}},
      {SeriesModel::kHumidity,
       "humidity",
       {"mean", "daily_amplitude", "peak_hour", "noise", "correlation"}},
      {SeriesModel::kPower, "power", {"base", "noise", "appliances"}},
      {SeriesModel::kEnergy, "energy", {"base", "appliances", "initial", "source"}},
  };
  return kModels;
}

std::vector<Appliance> DefaultAppliances() {
  return {{2000, 4 * 3600, 300}, {120, 2400, 1200}};  // a kettle, a fridge compressor
}

void SetDefaults(SeriesSpec& s) {
  switch (s.model) {
    case SeriesModel::kTemperature:
      s.unit = "°C";
      s.decimals = 1;
      s.mean = 21;
      s.daily_amplitude = 1.5;
      s.peak_hour = 15;
      s.noise = 0.3;
      s.correlation = 1800;
      break;
    case SeriesModel::kHumidity:
      s.unit = "%";
      s.decimals = 1;
      s.mean = 50;
      s.daily_amplitude = 5;
      s.peak_hour = 5;
      s.noise = 2;
      s.correlation = 3600;
      break;
    case SeriesModel::kPower:
      s.unit = "W";
      s.decimals = 1;
      s.base = 150;
      s.noise = 5;
      s.appliances = DefaultAppliances();
      break;
    case SeriesModel::kEnergy:
      s.unit = "kWh";
      s.decimals = 3;
      s.base = 150;
      s.appliances = DefaultAppliances();
      break;
  }
}

class SpecParser {
 public:
  SpecParser(const Json& spec, std::string_view where) : j_(spec), where_(where) {}

  Result<SeriesSpec> Parse() {
    if (!j_.is_object()) {
      return MakeError("bad_series",
                       fmt::format("{}: expected an object {{\"item\":...,\"every\":...,"
                                   "\"model\":...}}, found {}",
                                   where_, Shorten(j_)));
    }
    SeriesSpec s;
    if (!j_.contains("model")) return Missing("model", "temperature, humidity, power or energy");
    const Json& model = j_["model"];
    const ModelInfo* info = nullptr;
    for (const ModelInfo& m : Models()) {
      if (model.is_string() && model.get<std::string>() == m.name) info = &m;
    }
    if (info == nullptr) return Fail("model", "temperature, humidity, power or energy", model);
    s.model = info->model;
    SetDefaults(s);
    for (const auto& [key, value] : j_.items()) {
      const bool common =
          key == "item" || key == "model" || key == "every" || key == "unit" || key == "decimals";
      if (!common &&
          std::find(info->fields.begin(), info->fields.end(), key) == info->fields.end()) {
        std::string known = "item, model, every, unit, decimals";
        for (const std::string_view f : info->fields) known += fmt::format(", {}", f);
        return MakeError("bad_series", fmt::format("{}: unknown field \"{}\" for model {} ({})",
                                                   where_, key, info->name, known));
      }
    }

    if (!j_.contains("item")) return Missing("item", "an item name");
    const Json& item = j_["item"];
    if (!item.is_string() || !IsValidItemName(item.get<std::string>())) {
      return Fail("item", "an item name [a-zA-Z_][a-zA-Z0-9_]*", item);
    }
    s.item = item.get<std::string>();
    if (!j_.contains("every")) return Missing("every", "seconds between reports");
    if (auto v = Number("every", s.every, 0.001, 365 * kDay,
                        "seconds between reports, 0.001 to 31536000");
        !v) {
      return v.error();
    }
    if (j_.contains("unit")) {
      const Json& unit = j_["unit"];
      if (!unit.is_string() ||
          unit.get<std::string>().find_first_of(" \t\r\n") != std::string::npos) {
        return Fail("unit", "a unit text without spaces, e.g. \"°C\", or \"\" for none", unit);
      }
      s.unit = unit.get<std::string>();
    }
    if (j_.contains("decimals")) {
      const Json& decimals = j_["decimals"];
      if (!decimals.is_number_integer() || decimals.get<std::int64_t>() < 0 ||
          decimals.get<std::int64_t>() > 6) {
        return Fail("decimals", "an integer 0..6", decimals);
      }
      s.decimals = decimals.get<int>();
    }
    const double lowest = std::numeric_limits<double>::lowest();
    const double highest = std::numeric_limits<double>::max();
    const bool humidity = s.model == SeriesModel::kHumidity;
    for (const Status& status : {
             Number("mean", s.mean, humidity ? 0 : lowest, humidity ? 100 : highest, "a number"),
             Number("daily_amplitude", s.daily_amplitude, 0, highest, "a number >= 0"),
             Number("peak_hour", s.peak_hour, 0, 24, "an hour 0..24"),
             Number("noise", s.noise, 0, highest, "a number >= 0"),
             Number("correlation", s.correlation, 1, highest, "seconds >= 1"),
             Number("base", s.base, 0, highest, "watts >= 0"),
             Number("initial", s.initial, 0, highest, "kWh >= 0"),
         }) {
      if (!status) return status.error();
    }
    if (j_.contains("appliances")) {
      auto appliances = Appliances(j_["appliances"]);
      if (!appliances) return appliances.error();
      s.appliances = std::move(appliances).value();
    }
    if (j_.contains("source")) {
      const Json& source = j_["source"];
      if (!source.is_string() || !IsValidItemName(source.get<std::string>())) {
        return Fail("source", "the item of a power series", source);
      }
      if (j_.contains("base") || j_.contains("appliances")) {
        return MakeError("bad_series",
                         fmt::format("{}: \"source\" integrates another series' power; \"base\" "
                                     "and \"appliances\" go without it",
                                     where_));
      }
      s.source = source.get<std::string>();
      s.base = 0;
      s.appliances.clear();
    }
    return s;
  }

 private:
  Error Fail(std::string_view key, std::string_view expected, const Json& found) const {
    return MakeError("bad_series", fmt::format("{}: \"{}\": expected {}, found {}", where_, key,
                                               expected, Shorten(found)));
  }
  Error Missing(std::string_view key, std::string_view expected) const {
    return MakeError("bad_series", fmt::format("{}: missing \"{}\" ({})", where_, key, expected));
  }

  // Reads `key` into `out` when present; `out` keeps its default otherwise.
  Status Number(const char* key, double& out, double min, double max,
                std::string_view expected) const {
    if (!j_.contains(key)) return Ok{};
    const Json& value = j_[key];
    if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < min ||
        value.get<double>() > max) {
      return Fail(key, expected, value);
    }
    out = value.get<double>();
    return Ok{};
  }

  Result<std::vector<Appliance>> Appliances(const Json& array) const {
    if (!array.is_array()) {
      return Fail("appliances", "an array of {\"watts\":...,\"every\":...,\"duration\":...}",
                  array);
    }
    std::vector<Appliance> out;
    for (std::size_t i = 0; i < array.size(); ++i) {
      const Json& a = array[i];
      const std::string at = fmt::format("appliances[{}]", i);
      if (!a.is_object()) return Fail(at, "{\"watts\":...,\"every\":...,\"duration\":...}", a);
      Appliance appliance;
      for (const auto& [key, value] : a.items()) {
        double* field = key == "watts"      ? &appliance.watts
                        : key == "every"    ? &appliance.every
                        : key == "duration" ? &appliance.duration
                                            : nullptr;
        if (field == nullptr) {
          return MakeError("bad_series",
                           fmt::format("{}: \"{}\": unknown field \"{}\" (watts, every, duration)",
                                       where_, at, key));
        }
        const double min = key == "watts" ? 0 : 1;
        if (!value.is_number() || !std::isfinite(value.get<double>()) ||
            value.get<double>() < min) {
          return Fail(fmt::format("{}.{}", at, key), key == "watts" ? "watts >= 0" : "seconds >= 1",
                      value);
        }
        *field = value.get<double>();
      }
      for (const char* key : {"watts", "every", "duration"}) {
        if (!a.contains(key)) {
          return MakeError("bad_series",
                           fmt::format("{}: \"{}\": missing \"{}\"", where_, at, key));
        }
      }
      out.push_back(appliance);
    }
    return out;
  }

  const Json& j_;
  std::string where_;
};

std::string Format(double value, const SeriesSpec& spec) {
  const double scale = std::pow(10.0, spec.decimals);
  double rounded = std::round(value * scale) / scale;
  if (rounded == 0) rounded = 0;  // no `-0.0`
  std::string text = fmt::format("{:.{}f}", rounded, spec.decimals);
  if (!spec.unit.empty()) text += " " + spec.unit;
  return text;
}

}  // namespace

class Series::Model {
 public:
  explicit Model(SeriesSpec spec) : spec_(std::move(spec)) {}
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const SeriesSpec& spec() const { return spec_; }
  std::string Next(double t) {
    t = std::max(t, last_t_);
    last_t_ = t;
    return Format(Value(t), spec_);
  }

 protected:
  virtual double Value(double t) = 0;

 private:
  SeriesSpec spec_;
  double last_t_ = 0;
};

namespace {

// Temperature and humidity: a daily cosine plus smooth noise.
class DailyModel final : public Series::Model {
 public:
  DailyModel(SeriesSpec spec, std::uint64_t seed, double start_seconds_of_day)
      : Model(std::move(spec)),
        rng_(seed),
        noise_(this->spec().noise, this->spec().correlation),
        start_(start_seconds_of_day) {}

 protected:
  double Value(double t) override {
    const SeriesSpec& s = spec();
    const double phase = 2.0 * std::numbers::pi * (start_ + t - s.peak_hour * 3600.0) / kDay;
    double v = s.mean + s.daily_amplitude * std::cos(phase) + noise_.At(t, rng_);
    if (s.model == SeriesModel::kHumidity) v = std::clamp(v, 0.0, 100.0);
    return v;
  }

 private:
  Rng rng_;
  SmoothNoise noise_;
  double start_;
};

class PowerModel final : public Series::Model {
 public:
  PowerModel(SeriesSpec spec, std::uint64_t seed)
      : Model(std::move(spec)),
        process_(this->spec().base, this->spec().appliances, seed),
        noise_rng_(SplitMix64(~seed)) {}

 protected:
  double Value(double t) override {
    process_.AdvanceTo(t);
    return std::max(0.0, process_.watts() + spec().noise * noise_rng_.Normal());
  }

 private:
  PowerProcess process_;
  Rng noise_rng_;
};

// kWh: the exact integral of a power process, its own or a copy of a power series' one.
class EnergyModel final : public Series::Model {
 public:
  EnergyModel(SeriesSpec spec, PowerProcess process)
      : Model(std::move(spec)), process_(std::move(process)) {}

 protected:
  double Value(double t) override {
    process_.AdvanceTo(t);
    return spec().initial + process_.joules() / 3.6e6;
  }

 private:
  PowerProcess process_;
};

}  // namespace

Series::Series(std::unique_ptr<Model> model) : model_(std::move(model)) {}
Series::Series(Series&&) noexcept = default;
Series& Series::operator=(Series&&) noexcept = default;
Series::~Series() = default;

const std::string& Series::item() const { return model_->spec().item; }
double Series::every() const { return model_->spec().every; }
const SeriesSpec& Series::spec() const { return model_->spec(); }
std::string Series::Next(double t_seconds) { return model_->Next(t_seconds); }

std::string Series::item_type() const {
  if (spec().unit.empty()) return "Number";
  switch (spec().model) {
    case SeriesModel::kTemperature:
      return "Number:Temperature";
    case SeriesModel::kHumidity:
      return "Number:Dimensionless";
    case SeriesModel::kPower:
      return "Number:Power";
    case SeriesModel::kEnergy:
      return "Number:Energy";
  }
  return "Number";
}

HomeItem Series::ItemDefinition() const {
  HomeItem item;
  item.name = spec().item;
  item.type = item_type();
  item.label = spec().item;
  std::replace(item.label.begin(), item.label.end(), '_', ' ');
  switch (spec().model) {
    case SeriesModel::kTemperature:
      item.category = "temperature";
      item.tags = {"Measurement", "Temperature"};
      break;
    case SeriesModel::kHumidity:
      item.category = "humidity";
      item.tags = {"Measurement", "Humidity"};
      break;
    case SeriesModel::kPower:
      item.category = "energy";
      item.tags = {"Measurement", "Power"};
      break;
    case SeriesModel::kEnergy:
      item.category = "energy";
      item.tags = {"Measurement", "Energy"};
      break;
  }
  return item;
}

std::string_view ModelName(SeriesModel model) {
  for (const ModelInfo& m : Models()) {
    if (m.model == model) return m.name;
  }
  return "?";
}

Result<SeriesSpec> ParseSeriesSpec(const nlohmann::json& spec, std::string_view where) {
  return SpecParser(spec, where).Parse();
}

Result<std::vector<SeriesSpec>> ParseSeriesSpecs(const nlohmann::json& specs,
                                                 std::string_view where) {
  if (!specs.is_array()) {
    return MakeError("bad_series", fmt::format("{}: expected an array of series, found {}", where,
                                               Shorten(specs)));
  }
  std::vector<SeriesSpec> out;
  std::set<std::string, std::less<>> items;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    auto spec = ParseSeriesSpec(specs[i], fmt::format("{}[{}]", where, i));
    if (!spec) return spec.error();
    if (!items.insert(spec->item).second) {
      return MakeError("bad_series", fmt::format("{}[{}]: \"item\": {} has a series already", where,
                                                 i, spec->item));
    }
    out.push_back(std::move(spec).value());
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i].source.empty()) continue;
    const bool found = std::any_of(out.begin(), out.end(), [&](const SeriesSpec& s) {
      return s.item == out[i].source && s.model == SeriesModel::kPower;
    });
    if (!found) {
      return MakeError("bad_series",
                       fmt::format("{}[{}]: \"source\": expected the item of a power series in "
                                   "this array, found \"{}\"",
                                   where, i, out[i].source));
    }
  }
  return out;
}

Result<std::vector<Series>> MakeSeries(const std::vector<SeriesSpec>& specs,
                                       const SeriesOptions& options) {
  std::vector<Series> out;
  out.reserve(specs.size());
  for (const SeriesSpec& spec : specs) {
    const std::uint64_t seed = SeedFor(options.seed, spec.item);
    std::unique_ptr<Series::Model> model;
    switch (spec.model) {
      case SeriesModel::kTemperature:
      case SeriesModel::kHumidity:
        model = std::make_unique<DailyModel>(spec, seed, options.start_seconds_of_day);
        break;
      case SeriesModel::kPower:
        model = std::make_unique<PowerModel>(spec, seed);
        break;
      case SeriesModel::kEnergy: {
        if (spec.source.empty()) {
          model =
              std::make_unique<EnergyModel>(spec, PowerProcess(spec.base, spec.appliances, seed));
          break;
        }
        const auto power = std::find_if(specs.begin(), specs.end(), [&](const SeriesSpec& s) {
          return s.item == spec.source && s.model == SeriesModel::kPower;
        });
        if (power == specs.end()) {
          return MakeError("bad_series", fmt::format("series {}: \"source\" {} is no power series",
                                                     spec.item, spec.source));
        }
        // The same seed as the power series: the same appliance switchings.
        model = std::make_unique<EnergyModel>(
            spec, PowerProcess(power->base, power->appliances, SeedFor(options.seed, power->item)));
        break;
      }
    }
    out.push_back(Series(std::move(model)));
  }
  return out;
}

}  // namespace iothub::sim
