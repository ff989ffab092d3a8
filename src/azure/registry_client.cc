#include "azure/registry_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "azure/sas_token.h"
#include "common/crypto.h"
#include "common/json_depth.h"
#include "common/url.h"

namespace iothub::azure {

using Json = nlohmann::json;

namespace {

constexpr std::size_t kMaxServiceText = 400;  // of the service's error text, in messages
constexpr std::int64_t kQuotaExceeded = 403002;
constexpr std::int64_t kDeviceAlreadyExists = 409001;

// What the service said about a failure: `name` from the iothub-errorcode header or the
// "ErrorCode:<name>;" prefix, `number` (e.g. 403002) when the body carries one.
struct ServiceError {
  std::string name;
  std::int64_t number = 0;
  std::string text;
};

// The service's text for a message: printable ASCII on one line, bounded.
std::string Tidy(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, kMaxServiceText)) {
    const auto byte = static_cast<unsigned char>(c);
    out += byte >= 0x80 ? '?' : std::iscntrl(byte) ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (text.size() > kMaxServiceText) out += "...";
  return out;
}

const Json* Member(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

// Reads an optional string member: absent or null leaves `out` empty. False for another type.
bool OptionalString(const Json& object, const char* key, std::string* out) {
  const Json* value = Member(object, key);
  if (value == nullptr || value->is_null()) return true;
  if (!value->is_string()) return false;
  *out = value->get<std::string>();
  return true;
}

// Errors look like {"Message":"ErrorCode:DeviceNotFound;<text>","ExceptionMessage":..} (some
// with "errorCode":404001), or carry a JSON document inside Message:
// {"Message":"{\"errorCode\":403002,\"message\":\"..\",..}"}.
ServiceError ParseServiceError(const HttpResponse& response) {
  ServiceError error;
  if (auto header = response.Header("iothub-errorcode")) error.name = Tidy(*header);
  const std::optional<Json> body = ParseUntrustedJson(response.body);
  if (!body || !body->is_object()) {
    error.text = Tidy(response.body);
    return error;
  }
  if (const Json* code = Member(*body, "errorCode"); code && code->is_number_integer()) {
    error.number = code->get<std::int64_t>();
  }
  const Json* message = Member(*body, "Message");
  if (message == nullptr) message = Member(*body, "message");
  if (message == nullptr || !message->is_string()) return error;
  std::string_view text = message->get_ref<const std::string&>();
  if (text.rfind("ErrorCode:", 0) == 0) {
    text.remove_prefix(10);
    const std::size_t semicolon = text.find(';');
    if (error.name.empty()) error.name = Tidy(text.substr(0, semicolon));
    text = semicolon == std::string_view::npos ? std::string_view() : text.substr(semicolon + 1);
  } else if (const std::optional<Json> inner = ParseUntrustedJson(text);
             inner && inner->is_object()) {
    if (const Json* code = Member(*inner, "errorCode"); code && code->is_number_integer()) {
      error.number = code->get<std::int64_t>();
    }
    if (const Json* inner_text = Member(*inner, "message"); inner_text && inner_text->is_string()) {
      text = inner_text->get_ref<const std::string&>();
      error.text = Tidy(text);
      return error;
    }
  }
  error.text = Tidy(text);
  return error;
}

// The code callers switch on, for a final (not retried, or no longer retried) HTTP status.
std::string CodeFor(int status, const ServiceError& service) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return service.number == kQuotaExceeded || service.name == "IotHubQuotaExceeded"
                 ? "quota_exhausted"
                 : "forbidden";
    case 404:
      return "not_found";
    case 409:
      return "already_exists";
    case 412:
      return "precondition_failed";
    case 429:
      return "throttled";
    default:
      return status >= 500 ? "server_error" : "bad_response";
  }
}

// "GET /devices/dev1 failed: HTTP 404 DeviceNotFound (404001): Device 'dev1' is not registered."
Error ErrorFromResponse(std::string_view what, const HttpResponse& response, int attempts) {
  const ServiceError service = ParseServiceError(response);
  std::string message = fmt::format("{} failed: HTTP {}", what, response.status);
  if (!service.name.empty()) message += " " + service.name;
  if (service.number != 0) message += fmt::format(" ({})", service.number);
  if (!service.text.empty()) message += ": " + service.text;
  if (attempts > 1) message += fmt::format(" (after {} attempts)", attempts);
  return Error{CodeFor(response.status, service), std::move(message)};
}

Error BadResponse(std::string_view what, std::string_view why) {
  return Error{"bad_response", fmt::format("{}: unexpected answer from the hub: {}", what, why)};
}

Result<Device> ParseDeviceUnchecked(const Json& j) {
  if (!j.is_object()) return MakeError("bad_response", "a device is not a JSON object");
  Device d;
  const Json* id = Member(j, "deviceId");
  if (id == nullptr || !id->is_string() || id->get_ref<const std::string&>().empty()) {
    return MakeError("bad_response", "a device has no deviceId string");
  }
  d.id = id->get<std::string>();
  const Json* count = Member(j, "cloudToDeviceMessageCount");
  if (count != nullptr && !count->is_null()) {
    if (!count->is_number_integer()) {
      return MakeError("bad_response",
                       "cloudToDeviceMessageCount of device '" + d.id + "' is not an integer");
    }
    d.cloud_to_device_message_count = count->get<std::int64_t>();
  }
  bool ok = OptionalString(j, "status", &d.status) && OptionalString(j, "etag", &d.etag) &&
            OptionalString(j, "generationId", &d.generation_id) &&
            OptionalString(j, "connectionState", &d.connection_state) &&
            OptionalString(j, "lastActivityTime", &d.last_activity_time);
  if (const Json* auth = Member(j, "authentication"); ok && auth && !auth->is_null()) {
    const Json* keys = Member(*auth, "symmetricKey");
    ok = auth->is_object() &&
         (keys == nullptr || keys->is_null() ||
          (keys->is_object() && OptionalString(*keys, "primaryKey", &d.primary_key) &&
           OptionalString(*keys, "secondaryKey", &d.secondary_key)));
  }
  if (!ok) return MakeError("bad_response", "device '" + d.id + "' has a member of the wrong type");
  return d;
}

// The parsers check every type before reading; the catch is a backstop so that no JSON
// exception can leave the client.
Result<Device> ParseDevice(const Json& j) {
  try {
    return ParseDeviceUnchecked(j);
  } catch (const Json::exception& e) {
    return MakeError("bad_response", std::string("malformed device: ") + e.what());
  }
}

// A body that must be one device.
Result<Device> DeviceFromBody(std::string_view what, const std::string& body) {
  const std::optional<Json> json = ParseUntrustedJson(body);
  if (!json) return BadResponse(what, "the body is not JSON");
  Result<Device> device = ParseDevice(*json);
  if (!device) return BadResponse(what, device.error().message);
  return device;
}

// A bulk answer: {"isSuccessful":bool,"errors":[{"deviceId","errorCode","errorStatus"}..],
// "warnings":[..]}; errorCode is a name ("DeviceAlreadyExists") or a number (409001).
Result<BulkResult> BulkFromJsonUnchecked(std::string_view what, const Json& json,
                                         const std::vector<std::string>& ids) {
  const Json* successful = Member(json, "isSuccessful");
  if (successful == nullptr || !successful->is_boolean()) {
    return BadResponse(what, "no isSuccessful flag in the bulk result");
  }
  BulkResult result;
  std::unordered_map<std::string, std::size_t> index;
  for (const std::string& id : ids) {
    index.emplace(id, result.devices.size());
    result.devices.push_back({id, BulkOutcome::kCreated, "", ""});
  }
  const Json* errors = Member(json, "errors");
  if (errors == nullptr || errors->is_null()) {
    if (!successful->get<bool>()) return BadResponse(what, "a failed bulk result lists no errors");
    return result;
  }
  if (!errors->is_array()) return BadResponse(what, "errors is not an array");
  for (const Json& entry : *errors) {
    std::string id;
    std::string status;
    if (!entry.is_object() || !OptionalString(entry, "deviceId", &id) ||
        !OptionalString(entry, "errorStatus", &status)) {
      return BadResponse(what, "a bulk error entry is malformed");
    }
    const auto it = index.find(id);
    if (it == index.end()) {
      return BadResponse(what, "a bulk error names device '" + Tidy(id) + "', not in the request");
    }
    BulkDeviceResult& device = result.devices[it->second];
    const Json* code = Member(entry, "errorCode");
    if (code != nullptr && code->is_string()) {
      device.error_code = Tidy(code->get_ref<const std::string&>());
    } else if (code != nullptr && code->is_number_integer()) {
      device.error_code = std::to_string(code->get<std::int64_t>());
    }
    device.message = Tidy(status);
    const bool exists = device.error_code == "DeviceAlreadyExists" ||
                        device.error_code == std::to_string(kDeviceAlreadyExists);
    device.outcome = exists ? BulkOutcome::kAlreadyExisted : BulkOutcome::kFailed;
  }
  return result;
}

Result<BulkResult> BulkFromJson(std::string_view what, const Json& json,
                                const std::vector<std::string>& ids) {
  try {
    return BulkFromJsonUnchecked(what, json, ids);
  } catch (const Json::exception& e) {
    return BadResponse(what, std::string("malformed bulk result: ") + e.what());
  }
}

// Retry-After in delta-seconds (the HTTP-date form is not used by IoT Hub; it falls back to
// the backoff).
std::optional<std::int64_t> RetryAfterMs(const HttpResponse& response) {
  const std::optional<std::string> header = response.Header("Retry-After");
  if (!header) return std::nullopt;
  std::string_view text = *header;
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  std::int64_t seconds = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc() || end != text.data() + text.size() || seconds < 0) return std::nullopt;
  constexpr std::int64_t kMaxSeconds = std::int64_t{1} << 40;  // keeps the product in range
  return std::min(seconds, kMaxSeconds) * 1000;
}

Json NewDeviceBody() {
  return {{"status", "enabled"},
          {"authentication",
           {{"type", "sas"}, {"symmetricKey", {{"primaryKey", ""}, {"secondaryKey", ""}}}}}};
}

std::string DevicePath(const std::string& id) { return "/devices/" + UrlEncode(id); }

// The hub takes ASCII ids only (it answers the rest with 400); checking here also keeps the
// JSON bodies valid UTF-8, which nlohmann's dump() requires.
Status CheckId(const std::string& id) {
  if (id.empty()) return MakeError("bad_request", "a device id must not be empty");
  const bool printable = std::all_of(id.begin(), id.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
  if (!printable) {
    return MakeError("bad_request",
                     "device id '" + Tidy(id) + "' has a character outside printable ASCII");
  }
  return Ok{};
}

}  // namespace

std::size_t BulkResult::Count(BulkOutcome outcome) const {
  return static_cast<std::size_t>(
      std::count_if(devices.begin(), devices.end(),
                    [outcome](const BulkDeviceResult& d) { return d.outcome == outcome; }));
}

// One logical request and its retry state. Shared: held by the HTTP completion or by the
// retry timer, whichever comes next.
struct RegistryClient::Call {
  Call(BackoffPolicy policy, Random& random) : backoff(policy, random) {}
  std::string method;
  std::string path;  // without the query
  std::string body;
  HttpHeaders extra;
  std::string request_id;
  ResponseCallback done;
  Backoff backoff;
  int attempts = 0;
  std::string what() const { return method + " " + path; }
};

// A BulkCreate in progress. Shared: each batch's completion holds it.
struct RegistryClient::Bulk {
  std::vector<std::string> ids;
  std::size_t next = 0;  // first id of the next batch
  BulkResult result;
  BulkCallback done;
};

RegistryClient::RegistryClient(EventLoop& loop, HttpClient& http, ServiceConnectionString cs,
                               const Clock& wall, Random& random, RegistryOptions options)
    : loop_(loop),
      http_(http),
      cs_(std::move(cs)),
      wall_(wall),
      random_(random),
      options_(options) {}

RegistryClient::~RegistryClient() {
  for (const auto& [call, timer] : retry_timers_) loop_.Cancel(timer);
}

void RegistryClient::Defer(std::function<void()> task) {
  loop_.Post(liveness_.Guard(std::move(task)));
}

Result<std::string> RegistryClient::Authorization() {
  const std::int64_t now = wall_.NowSeconds();
  if (token_.empty() || now >= token_expiry_s_ - options_.token_renew_before_s) {
    const std::int64_t expiry = now + options_.token_ttl_s;
    Result<std::string> token = MakeSasToken(cs_.host_name, cs_.key, expiry, cs_.policy_name);
    if (!token) {
      return MakeError("unauthorized", "cannot sign a SAS token: the key of policy '" +
                                           cs_.policy_name + "' is not base64");
    }
    token_ = std::move(token).value();
    token_expiry_s_ = expiry;
  }
  return token_;
}

void RegistryClient::Execute(std::string method, std::string path, std::string body,
                             HttpHeaders extra, ResponseCallback done) {
  auto call = std::make_shared<Call>(options_.backoff, random_);
  call->method = std::move(method);
  call->path = std::move(path);
  call->body = std::move(body);
  call->extra = std::move(extra);
  call->request_id = NewUuid();
  call->done = std::move(done);
  Attempt(call);
}

void RegistryClient::Attempt(const std::shared_ptr<Call>& call) {
  ++call->attempts;
  Result<std::string> authorization = Authorization();
  if (!authorization) {
    Defer([call, error = authorization.error()] { call->done(error, call->attempts); });
    return;
  }
  HttpRequest request;
  request.method = call->method;
  request.path = call->path + "?api-version=" + kApiVersion;
  request.headers = {{"Authorization", std::move(authorization).value()},
                     {"Request-Id", call->request_id},
                     {"Accept", "application/json"}};
  if (!call->body.empty()) {
    request.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
  }
  request.headers.insert(request.headers.end(), call->extra.begin(), call->extra.end());
  request.body = call->body;
  http_.Send(std::move(request), liveness_.Guard([this, call](Result<HttpResponse> result) {
    OnAttemptDone(call, std::move(result));
  }));
}

void RegistryClient::OnAttemptDone(const std::shared_ptr<Call>& call, Result<HttpResponse> result) {
  const int status = result ? result->status : 0;
  const bool retryable = !result || status == 429 || status >= 500;
  if (!retryable || call->attempts >= options_.max_attempts) {
    if (!result) {  // the HttpClient's message names host:port; add the operation
      Error error = result.error();
      error.message = fmt::format("{} failed after {} attempt(s): {}", call->what(), call->attempts,
                                  error.message);
      call->done(std::move(error), call->attempts);
      return;
    }
    call->done(std::move(result), call->attempts);
    return;
  }
  std::optional<std::int64_t> delay_ms;
  if (status == 429) {
    if (auto retry_after = RetryAfterMs(*result)) {
      delay_ms = std::min(*retry_after, options_.max_retry_after_ms);
    }
  }
  if (!delay_ms) delay_ms = call->backoff.NextDelayMs();
  retry_timers_[call.get()] = loop_.RunAfter(*delay_ms, [this, call] {
    retry_timers_.erase(call.get());
    Attempt(call);
  });
}

void RegistryClient::CreateIfMissing(const std::string& device_id, DeviceCallback done) {
  if (Status valid = CheckId(device_id); !valid) {
    Defer([done = std::move(done), error = valid.error()] { done(error); });
    return;
  }
  Json body = NewDeviceBody();
  body["deviceId"] = device_id;
  const std::string path = DevicePath(device_id);
  Execute(
      "PUT", path, body.dump(), {},
      [this, device_id, path, done = std::move(done)](Result<HttpResponse> result, int attempts) {
        const std::string what = "PUT " + path;
        if (!result) return done(result.error());
        if (result->status == 409) {  // DeviceAlreadyExists: answer with the existing one
          return Get(device_id, done);
        }
        if (result->status != 200 && result->status != 201) {
          return done(ErrorFromResponse(what, *result, attempts));
        }
        Result<Device> device = DeviceFromBody(what, result->body);
        if (device) device->created = true;
        done(std::move(device));
      });
}

void RegistryClient::Get(const std::string& device_id, DeviceCallback done) {
  if (Status valid = CheckId(device_id); !valid) {
    Defer([done = std::move(done), error = valid.error()] { done(error); });
    return;
  }
  const std::string path = DevicePath(device_id);
  Execute("GET", path, "", {},
          [path, done = std::move(done)](Result<HttpResponse> result, int attempts) {
            const std::string what = "GET " + path;
            if (!result) return done(result.error());
            if (result->status != 200) return done(ErrorFromResponse(what, *result, attempts));
            done(DeviceFromBody(what, result->body));
          });
}

void RegistryClient::List(ListCallback done) {
  Execute("GET", "/devices", "", {},
          [done = std::move(done)](Result<HttpResponse> result, int attempts) {
            const std::string what = "GET /devices";
            if (!result) return done(result.error());
            if (result->status != 200) return done(ErrorFromResponse(what, *result, attempts));
            const std::optional<Json> json = ParseUntrustedJson(result->body);
            if (!json || !json->is_array())
              return done(BadResponse(what, "the body is not a JSON array"));
            std::vector<Device> devices;
            devices.reserve(json->size());
            for (const Json& entry : *json) {
              Result<Device> device = ParseDevice(entry);
              if (!device) return done(BadResponse(what, device.error().message));
              devices.push_back(std::move(device).value());
            }
            done(std::move(devices));
          });
}

void RegistryClient::Delete(const std::string& device_id, StatusCallback done) {
  if (Status valid = CheckId(device_id); !valid) {
    Defer([done = std::move(done), error = valid.error()] { done(error); });
    return;
  }
  const std::string path = DevicePath(device_id);
  Execute("DELETE", path, "", {{"If-Match", "\"*\""}},
          [path, done = std::move(done)](Result<HttpResponse> result, int attempts) {
            if (!result) return done(result.error());
            if (result->status != 200 && result->status != 204) {
              return done(ErrorFromResponse("DELETE " + path, *result, attempts));
            }
            done(Ok{});
          });
}

void RegistryClient::BulkCreate(std::vector<std::string> device_ids, BulkCallback done) {
  std::unordered_set<std::string_view> seen;
  for (const std::string& id : device_ids) {
    Status valid = CheckId(id);
    if (valid && !seen.insert(id).second) {
      valid = MakeError("bad_request", "device id '" + id + "' appears twice in a bulk create");
    }
    if (!valid) {
      Defer([done = std::move(done), error = valid.error()] { done(error); });
      return;
    }
  }
  auto bulk = std::make_shared<Bulk>();
  bulk->ids = std::move(device_ids);
  bulk->done = std::move(done);
  if (bulk->ids.empty()) {
    Defer([bulk] { bulk->done(std::move(bulk->result)); });
    return;
  }
  SendBulkBatch(bulk);
}

void RegistryClient::SendBulkBatch(const std::shared_ptr<Bulk>& bulk) {
  const std::size_t end = std::min(bulk->ids.size(), bulk->next + kMaxBulkDevices);
  std::vector<std::string> batch(bulk->ids.begin() + static_cast<std::ptrdiff_t>(bulk->next),
                                 bulk->ids.begin() + static_cast<std::ptrdiff_t>(end));
  Json body = Json::array();
  for (const std::string& id : batch) {
    Json entry = NewDeviceBody();
    entry["id"] = id;
    entry["importMode"] = "create";
    body.push_back(std::move(entry));
  }
  Execute("POST", "/devices", body.dump(), {},
          [this, bulk, batch = std::move(batch), end](Result<HttpResponse> result, int attempts) {
            const std::string what =
                fmt::format("POST /devices (bulk create of devices {}-{} of {})", bulk->next + 1,
                            end, bulk->ids.size());
            if (!result) return bulk->done(result.error());
            // A partial failure is a 400 carrying a bulk result; a 400 without one rejects the
            // whole request.
            std::optional<Json> json;
            if (result->status == 200 || result->status == 400)
              json = ParseUntrustedJson(result->body);
            const bool has_result = json && Member(*json, "isSuccessful") != nullptr;
            if (!has_result) {
              if (result->status == 200) {
                return bulk->done(BadResponse(what, "the body is not a bulk result"));
              }
              return bulk->done(ErrorFromResponse(what, *result, attempts));
            }
            Result<BulkResult> outcome = BulkFromJson(what, *json, batch);
            if (!outcome) return bulk->done(outcome.error());
            for (BulkDeviceResult& device : outcome->devices) {
              bulk->result.devices.push_back(std::move(device));
            }
            bulk->next = end;
            if (bulk->next < bulk->ids.size()) return SendBulkBatch(bulk);
            bulk->done(std::move(bulk->result));
          });
}

}  // namespace iothub::azure
