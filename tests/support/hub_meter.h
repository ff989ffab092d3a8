// What the hub billed, read from the emulator's own records, for the connector's budget and
// durability end-to-end tests: each device-to-cloud message's metered size and chunks (the
// metering rule the emulator bills by, azure::MeteredBytes, applied to what the emulator
// recorded), its enqueued and creation times, and /emulator/stats sampled over time. Not
// thread-safe, except StatsSampler, which samples on its own thread with its own client.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "azure/property_bag.h"
#include "azure/tier.h"
#include "support/connector_rig.h"

namespace iothub::testing {

inline std::int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "2026-12-02T13:23:49.9950000Z" or "2026-12-02T13:23:49.995Z" (UTC) as epoch ms; -1 when it
// is not one.
inline std::int64_t ParseIsoMs(std::string_view text) {
  std::tm tm{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  char tail[32] = {0};
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%31s", &year, &month, &day, &hour, &minute,
                  &second, tail) < 6) {
    return -1;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  std::int64_t ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
  if (tail[0] == '.') {
    int scale = 100;
    for (const char* p = tail + 1; *p >= '0' && *p <= '9' && scale > 0; ++p, scale /= 10) {
      ms += (*p - '0') * scale;
    }
  }
  return ms;
}

// The system properties a device sets, as the emulator names them, and their wire names:
// their values are metered (the hub's own stamps are not).
inline const std::vector<std::pair<std::string, std::string>>& DeviceSystemProperties() {
  static const std::vector<std::pair<std::string, std::string>> kNames = {
      {"message-id", "$.mid"},
      {"correlation-id", "$.cid"},
      {"content-type", "$.ct"},
      {"content-encoding", "$.ce"},
      {"absolute-expiry-time", "$.exp"},
      {"to", "$.to"},
      {"user-id", "$.uid"},
      {"dt-subject", "$.sub"},
      {"iothub-creation-time-utc", "$.ctime"},
      {"message-schema", "$.schema"}};
  return kNames;
}

// A message the hub recorded, with what it cost.
struct MeteredMessage {
  const HubMessage* message = nullptr;
  std::int64_t enqueued_ms = -1;  // the hub's clock
  std::int64_t created_ms = -1;   // iothub-creation-time-utc: when the connector built it
  std::int64_t bytes = 0;         // as the hub meters it
  std::int64_t chunks = 0;        // billed messages
};

inline std::int64_t MeteredBytesOf(const HubMessage& m) {
  azure::PropertyBag bag;
  for (const auto& [name, wire] : DeviceSystemProperties()) {
    const auto it = m.system_properties.find(name);
    if (it != m.system_properties.end() && it->is_string()) {
      bag.push_back({wire, it->get<std::string>()});
    }
  }
  for (const auto& [name, value] : m.properties.items()) {
    bag.push_back({name, value.is_string() ? value.get<std::string>() : value.dump()});
  }
  return azure::MeteredBytes(m.body_text, bag);
}

// `messages` must outlive the result.
inline std::vector<MeteredMessage> Meter(const std::vector<HubMessage>& messages,
                                         std::int64_t chunk_bytes) {
  std::vector<MeteredMessage> out;
  out.reserve(messages.size());
  for (const auto& m : messages) {
    MeteredMessage metered;
    metered.message = &m;
    metered.enqueued_ms = ParseIsoMs(m.system_properties.value("iothub-enqueuedtime", ""));
    metered.created_ms = ParseIsoMs(m.system_properties.value("iothub-creation-time-utc", ""));
    metered.bytes = MeteredBytesOf(m);
    metered.chunks = azure::BilledMessages(metered.bytes, chunk_bytes);
    out.push_back(metered);
  }
  return out;
}

// The pace line of docs/budget.md: min(M, floor(M * e / W) + burst).
inline std::int64_t PaceLine(std::int64_t main, std::int64_t burst, std::int64_t window_ms,
                             std::int64_t elapsed_ms) {
  const std::int64_t e = std::clamp<std::int64_t>(elapsed_ms, 0, window_ms);
  return std::min(main, main * e / window_ms + burst);
}

// /emulator/stats sampled every `period` on a thread of its own until Stop().
class StatsSampler {
 public:
  struct Sample {
    std::int64_t before_ms = 0;  // wall clock before the request
    std::int64_t after_ms = 0;   // and after its answer: the hub's figures are of a moment between
    nlohmann::json stats;
  };

  StatsSampler(const EmulatorInfo& info, std::chrono::milliseconds period)
      : client_(info), period_(period), thread_([this] { Run(); }) {}
  ~StatsSampler() { Stop(); }
  StatsSampler(const StatsSampler&) = delete;
  StatsSampler& operator=(const StatsSampler&) = delete;

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<Sample> samples() {
    std::lock_guard<std::mutex> lock(mutex_);
    return samples_;
  }

 private:
  void Run() {
    while (!stop_) {
      Sample sample;
      sample.before_ms = WallNowMs();
      HttpReply reply = client_.Request("GET", "/emulator/stats");
      sample.after_ms = WallNowMs();
      if (reply.status == 200) {
        sample.stats = std::move(reply.body);
        std::lock_guard<std::mutex> lock(mutex_);
        samples_.push_back(std::move(sample));
      }
      std::this_thread::sleep_for(period_);
    }
  }

  ServiceClient client_;
  std::chrono::milliseconds period_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<Sample> samples_;
  std::thread thread_;
};

}  // namespace iothub::testing
