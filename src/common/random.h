// Random sources, injected so that jittered schedules are testable (STYLE.md).
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <vector>

namespace iothub {

// Uniform doubles in [0, 1). Implementations say whether they are thread-safe.
class Random {
 public:
  virtual ~Random() = default;
  virtual double Uniform() = 0;
};

// A seeded Mersenne Twister. Not thread-safe.
class SystemRandom final : public Random {
 public:
  SystemRandom() : engine_(std::random_device{}()) {}
  explicit SystemRandom(std::uint64_t seed) : engine_(seed) {}
  double Uniform() override { return std::uniform_real_distribution<double>(0.0, 1.0)(engine_); }

 private:
  std::mt19937_64 engine_;
};

// Returns the given values in turn (the last one forever). Not thread-safe.
class ScriptedRandom final : public Random {
 public:
  explicit ScriptedRandom(std::initializer_list<double> values) : values_(values) {}
  double Uniform() override {
    const double v = values_.empty() ? 0.0 : values_[std::min(next_, values_.size() - 1)];
    ++next_;
    return v;
  }

 private:
  std::vector<double> values_;
  std::size_t next_ = 0;
};

}  // namespace iothub
