// Lets HTTP threads run work on the broker's thread, which owns all hub state (STYLE.md §3).
// mosquitto's loop only wakes for socket traffic (or every 100 ms), so posting rings a
// doorbell: a tiny MQTT client connected to the broker's internal listener whose PUBLISH
// makes the loop run RunPending(). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace iothub::emulator {

// A minimal MQTT 3.1.1 client that can only connect and publish QoS 0 to one topic.
// Thread-safe (writes are serialised).
class Doorbell {
 public:
  Doorbell() = default;
  ~Doorbell();
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;

  // Connects and waits for CONNACK (blocking; must not run on the broker's thread).
  Status Connect(const std::string& socket_path, const std::string& client_id,
                 const std::string& username, const std::string& password, int timeout_ms);
  void Ring();

 private:
  std::mutex mutex_;
  int fd_ = -1;
};

class LoopBridge {
 public:
  explicit LoopBridge(std::function<void()> wake) : wake_(std::move(wake)) {}

  void Post(std::function<void()> task);
  // Runs everything posted so far; broker thread only. A task that throws is reported on
  // stderr and does not stop the others.
  void RunPending();

  // Posts `fn`, waits for its result up to `timeout`; nullopt if the broker did not run it.
  template <typename T>
  std::optional<T> Call(std::function<T()> fn, std::chrono::milliseconds timeout) {
    auto promise =
        std::make_shared<std::promise<T>>();  // shared: the task may outlive a timed-out caller
    auto future = promise->get_future();
    Post([promise, fn = std::move(fn)] {
      try {
        promise->set_value(fn());
      } catch (...) {
        promise->set_exception(std::current_exception());  // rethrown to the caller
      }
    });
    if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
    return future.get();  // rethrows what `fn` threw
  }

 private:
  std::function<void()> wake_;
  std::mutex mutex_;
  std::vector<std::function<void()>> tasks_;
};

}  // namespace iothub::emulator
