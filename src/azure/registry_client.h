// The IoT Hub identity registry over HTTPS (shared/reference/azure-iothub.md §4): create,
// read, list and delete device identities, one at a time or in bulk, with the retries §5's
// throttles call for.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "azure/connection_string.h"
#include "common/backoff.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "common/http_client.h"
#include "common/liveness.h"
#include "common/random.h"
#include "common/result.h"

namespace iothub::azure {

// A device identity as the registry describes it.
struct Device {
  std::string id;
  std::string status;  // "enabled" or "disabled"
  std::string etag;
  std::string generation_id;
  std::string connection_state;  // "Connected" or "Disconnected"
  std::string primary_key;       // empty unless the device authenticates with SAS keys
  std::string secondary_key;
  std::int64_t cloud_to_device_message_count = 0;
  std::string last_activity_time;  // ISO 8601, as the hub prints it
  bool created = false;            // CreateIfMissing: true when this call created it
};

enum class BulkOutcome { kCreated, kAlreadyExisted, kFailed };

struct BulkDeviceResult {
  std::string id;
  BulkOutcome outcome = BulkOutcome::kCreated;
  std::string error_code;  // the service's, e.g. "DeviceAlreadyExists"; empty if created
  std::string message;     // the service's explanation; empty if created
};

struct BulkResult {
  std::vector<BulkDeviceResult> devices;  // one per requested id, in request order

  std::size_t Count(BulkOutcome outcome) const;
};

struct RegistryOptions {
  int max_attempts = 6;  // per HTTP request, the first one included
  BackoffPolicy backoff{500, 30'000, 2.0, 0.5};
  std::int64_t max_retry_after_ms = 300'000;  // cap on a 429's Retry-After
  std::int64_t token_ttl_s = 3600;
  std::int64_t token_renew_before_s = 300;  // re-sign when the cached token is this close to expiry
};

// Talks to the registry with a service policy's SAS token (`cs`), signed against `wall` and
// re-signed shortly before it expires. Throttling (429, honouring Retry-After up to
// max_retry_after_ms), server errors (5xx) and transport failures are retried with `random`'s
// jittered backoff on loop timers, up to max_attempts per request (Retry-After is read in
// delta-seconds; the date form falls back to the backoff). A retried request may have taken
// effect the first time: CreateIfMissing then answers created=false, Delete not_found,
// BulkCreate kAlreadyExisted. Device ids are URL-encoded in paths; ids that are empty or
// not printable ASCII (the hub allows ASCII only) fail with bad_request without a request.
//
// Every operation completes by calling its callback exactly once, on the loop thread and never
// inside the call itself, with a value or an Error whose code is one of:
//   not_found, already_exists, precondition_failed, unauthorized, forbidden, quota_exhausted
//   (403002), bad_request (the service's text included), throttled (429 after the last
//   attempt), server_error (5xx after the last attempt), http_transport (after the last
//   attempt), bad_response (a body that is not what the API promises).
// Messages name the operation and carry the service's error code and text; they never
// contain a key or a signature.
//
// Not thread-safe: construct, call and destroy on the loop thread. Destroying the client
// abandons the operations in flight (their callbacks are not called); `loop`, `http`, `wall`
// and `random` must outlive it.
class RegistryClient {
 public:
  using DeviceCallback = std::function<void(Result<Device>)>;
  using ListCallback = std::function<void(Result<std::vector<Device>>)>;
  using StatusCallback = std::function<void(Status)>;
  using BulkCallback = std::function<void(Result<BulkResult>)>;

  static constexpr const char* kApiVersion = "2021-04-12";
  static constexpr std::size_t kMaxBulkDevices = 100;  // the service's limit per request

  RegistryClient(EventLoop& loop, HttpClient& http, ServiceConnectionString cs, const Clock& wall,
                 Random& random, RegistryOptions options = {});
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  // Creates the device with hub-generated SAS keys (created=true), or returns the existing
  // one (created=false) when it is already registered.
  void CreateIfMissing(const std::string& device_id, DeviceCallback done);
  void Get(const std::string& device_id, DeviceCallback done);
  // The first 1000 devices (the service's limit for this call).
  void List(ListCallback done);
  // Deletes whatever version of the device is registered; not_found if there is none.
  void Delete(const std::string& device_id, StatusCallback done);
  // Creates many devices, kMaxBulkDevices per request, one request after another, and says
  // per device whether it was created, already existed or failed. A request that fails as a
  // whole (after its retries) ends the operation with that error; running BulkCreate again is
  // safe, since devices created meanwhile then report kAlreadyExisted. Ids must be unique.
  void BulkCreate(std::vector<std::string> device_ids, BulkCallback done);

 private:
  struct Call;
  struct Bulk;
  // The final response (any status that is not retried, or the last attempt's) or the last
  // transport error, and how many attempts were made.
  using ResponseCallback = std::function<void(Result<HttpResponse>, int attempts)>;

  // Sends `method path` (path without the query) with retries; `done` gets the outcome.
  void Execute(std::string method, std::string path, std::string body, HttpHeaders extra,
               ResponseCallback done);
  void Attempt(const std::shared_ptr<Call>& call);
  void OnAttemptDone(const std::shared_ptr<Call>& call, Result<HttpResponse> result);
  void SendBulkBatch(const std::shared_ptr<Bulk>& bulk);
  // Runs `task` on the loop soon, unless this client is destroyed first.
  void Defer(std::function<void()> task);
  Result<std::string> Authorization();

  EventLoop& loop_;
  HttpClient& http_;
  const ServiceConnectionString cs_;
  const Clock& wall_;
  Random& random_;
  const RegistryOptions options_;
  std::string token_;  // cached SAS token, valid until token_expiry_s_
  std::int64_t token_expiry_s_ = 0;
  std::unordered_map<const Call*, EventLoop::TimerId> retry_timers_;  // cancelled on destruction
  // HTTP completions and posted tasks drop themselves once the client is gone.
  Liveness liveness_;
};

}  // namespace iothub::azure
