// The hub's service-facing HTTPS API (shared/reference/azure-iothub.md §4) plus the
// emulator-only endpoints of docs/emulator-api.md, served by cpp-httplib on its own thread
// pool. Handlers authenticate the policy SAS token, then run the request on the broker's
// thread through the LoopBridge. Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "emulator/hub.h"
#include "emulator/loop_bridge.h"
#include "emulator/message_store.h"

namespace httplib {
class SSLServer;
}

namespace iothub::emulator {

struct ServiceApiOptions {
  std::string host_name;
  std::string cert_file;
  std::string key_file;
  std::string bind_address = "0.0.0.0";
  int port = 443;
  std::vector<SharedAccessPolicy> policies;
};

class ServiceApi {
 public:
  ServiceApi(ServiceApiOptions options, Hub& hub, LoopBridge& bridge, MessageStore& messages,
             const Clock& wall);
  ~ServiceApi();
  ServiceApi(const ServiceApi&) = delete;
  ServiceApi& operator=(const ServiceApi&) = delete;

  // Binds the port (0 picks one) and starts serving on a background thread.
  Result<int> Start();
  void Stop();

 private:
  void Routes();

  ServiceApiOptions options_;
  Hub& hub_;
  LoopBridge& bridge_;
  MessageStore& messages_;
  const Clock& wall_;
  SystemClock real_clock_;
  // Live streams and method calls each hold a worker for long: cap them so they cannot
  // starve the rest of the API (answer 503 above the cap).
  std::atomic<int> streams_{0};
  std::atomic<int> invocations_{0};
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
};

}  // namespace iothub::emulator
