// RegistryClient: unit tests over FakeHttpClient and ManualLoop (request shape, status
// mapping, retries on loop time, bulk splitting, hostile bodies), then integration tests of
// RegistryClient + HttplibClient + PollLoop against the real emulator.
#include "azure/registry_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "azure/connection_string.h"
#include "azure/sas_token.h"
#include "common/event_loop.h"
#include "common/http_client.h"
#include "support/emulator_fixture.h"
#include "support/fake_http_client.h"
#include "support/manual_loop.h"

namespace iothub::azure {
namespace {

using iothub::testing::FakeHttpClient;
using iothub::testing::ManualLoop;
using Json = nlohmann::json;

constexpr const char* kHost = "myhub.azure-devices.net";
constexpr const char* kKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

std::string DeviceJson(const std::string& id) {
  return Json{{"deviceId", id},
              {"generationId", "638123"},
              {"etag", "MA=="},
              {"connectionState", "Disconnected"},
              {"status", "enabled"},
              {"statusReason", nullptr},
              {"lastActivityTime", "0001-01-01T00:00:00Z"},
              {"cloudToDeviceMessageCount", 3},
              {"authentication",
               {{"type", "sas"},
                {"symmetricKey", {{"primaryKey", "cHJpbWFyeQ=="}, {"secondaryKey", "c2Vjb25k"}}},
                {"x509Thumbprint", {{"primaryThumbprint", nullptr}}}}}}
      .dump();
}

// The service's error shape, with the iothub-errorcode header.
HttpResponse ErrorResponse(int status, const std::string& name, const std::string& text) {
  return FakeHttpClient::Response(
      status,
      Json{{"Message", "ErrorCode:" + name + ";" + text},
           {"ExceptionMessage", "Tracking ID:abc-G:0-TimeStamp:2024-01-01T00:00:00Z"}}
          .dump(),
      {{"iothub-errorcode", name}});
}

std::optional<std::string> HeaderOf(const HttpRequest& request, const std::string& name) {
  for (const auto& [k, v] : request.headers) {
    if (k == name) return v;
  }
  return std::nullopt;
}

// Holds the one result of an operation; fails the test if a second one arrives.
template <typename T>
class Capture {
 public:
  std::function<void(T)> callback() {
    return [this](T value) {
      EXPECT_FALSE(value_.has_value()) << "callback called twice";
      value_.emplace(std::move(value));
      ++calls_;
    };
  }
  bool done() const { return value_.has_value(); }
  const T& get() const { return *value_; }
  int calls() const { return calls_; }

 private:
  std::optional<T> value_;
  int calls_ = 0;
};

class RegistryClientTest : public ::testing::Test {
 protected:
  RegistryClientTest() { Recreate({}); }

  void Recreate(RegistryOptions options) {
    client_.reset();
    client_ = std::make_unique<RegistryClient>(loop_, http_, cs_, wall_, random_, options);
  }
  RegistryClient& client() { return *client_; }
  const HttpRequest& request(std::size_t i) { return http_.requests().at(i); }

  ManualLoop loop_;
  FakeHttpClient http_{loop_};
  ManualClock wall_{1'700'000'000'000};
  ScriptedRandom random_{0.0};  // no jitter: each backoff delay is its base delay
  ServiceConnectionString cs_{kHost, "iothubowner", kKey};
  std::unique_ptr<RegistryClient> client_;
};

TEST_F(RegistryClientTest, GetSendsAnEncodedPathApiVersionAndAVerifiableToken) {
  Capture<Result<Device>> got;
  client().Get("dev 1/x#?%", got.callback());
  ASSERT_EQ(http_.requests().size(), 1u);
  const HttpRequest& r = request(0);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/devices/dev%201%2Fx%23%3F%25?api-version=2021-04-12");
  EXPECT_TRUE(r.body.empty());
  EXPECT_FALSE(HeaderOf(r, "Content-Type").has_value()) << "no body, no content type";
  EXPECT_FALSE(HeaderOf(r, "If-Match").has_value());
  const auto request_id = HeaderOf(r, "Request-Id");
  ASSERT_TRUE(request_id.has_value());
  EXPECT_EQ(request_id->size(), 36u);

  const auto authorization = HeaderOf(r, "Authorization");
  ASSERT_TRUE(authorization.has_value());
  auto token = ParseSasToken(*authorization);
  ASSERT_TRUE(token) << token.error().message;
  EXPECT_EQ(token->resource, kHost);
  EXPECT_EQ(token->policy, "iothubowner");
  EXPECT_EQ(token->expiry, wall_.NowSeconds() + 3600);
  EXPECT_TRUE(VerifySasSignature(*token, kKey));

  http_.Reply(0, 200, DeviceJson("dev 1/x#?%"));
  EXPECT_FALSE(got.done()) << "answers arrive through the loop";
  loop_.RunReady();
  ASSERT_TRUE(got.done());
  ASSERT_TRUE(got.get()) << got.get().error().message;
  const Device& d = got.get().value();
  EXPECT_EQ(d.id, "dev 1/x#?%");
  EXPECT_EQ(d.status, "enabled");
  EXPECT_EQ(d.etag, "MA==");
  EXPECT_EQ(d.generation_id, "638123");
  EXPECT_EQ(d.connection_state, "Disconnected");
  EXPECT_EQ(d.primary_key, "cHJpbWFyeQ==");
  EXPECT_EQ(d.secondary_key, "c2Vjb25k");
  EXPECT_EQ(d.cloud_to_device_message_count, 3);
  EXPECT_EQ(d.last_activity_time, "0001-01-01T00:00:00Z");
  EXPECT_FALSE(d.created);
}

TEST_F(RegistryClientTest, TokenIsCachedAndReSignedShortlyBeforeExpiry) {
  Capture<Result<Device>> a, b, c;
  client().Get("a", a.callback());
  wall_.Advance(3'000'000);  // 50 minutes: still more than 5 minutes left
  client().Get("b", b.callback());
  EXPECT_EQ(HeaderOf(request(0), "Authorization"), HeaderOf(request(1), "Authorization"));
  wall_.Advance(300'000);  // 55 minutes: within 5 minutes of expiry
  client().Get("c", c.callback());
  auto token = ParseSasToken(*HeaderOf(request(2), "Authorization"));
  ASSERT_TRUE(token);
  EXPECT_EQ(token->expiry, wall_.NowSeconds() + 3600);
  EXPECT_TRUE(VerifySasSignature(*token, kKey));
}

TEST_F(RegistryClientTest, CreateIfMissingPutsWithoutIfMatchAndReportsCreated) {
  Capture<Result<Device>> got;
  client().CreateIfMissing("dev1", got.callback());
  ASSERT_EQ(http_.requests().size(), 1u);
  const HttpRequest& r = request(0);
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.path, "/devices/dev1?api-version=2021-04-12");
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "application/json; charset=utf-8");
  EXPECT_FALSE(HeaderOf(r, "If-Match").has_value()) << "If-Match would make it an update";
  const Json body = Json::parse(r.body);
  EXPECT_EQ(body["deviceId"], "dev1");
  EXPECT_EQ(body["status"], "enabled");
  EXPECT_EQ(body["authentication"]["type"], "sas");
  EXPECT_EQ(body["authentication"]["symmetricKey"]["primaryKey"], "") << "the hub generates keys";
  http_.Reply(0, 200, DeviceJson("dev1"));
  loop_.RunReady();
  ASSERT_TRUE(got.done());
  ASSERT_TRUE(got.get()) << got.get().error().message;
  EXPECT_TRUE(got.get()->created);
  EXPECT_EQ(got.get()->id, "dev1");
}

TEST_F(RegistryClientTest, CreateIfMissingFallsBackToGetOnConflict) {
  Capture<Result<Device>> got;
  client().CreateIfMissing("dev1", got.callback());
  http_.Reply(0, ErrorResponse(409, "DeviceAlreadyExists", "A device with ID 'dev1' exists."));
  loop_.RunReady();
  ASSERT_EQ(http_.requests().size(), 2u);
  EXPECT_EQ(request(1).method, "GET");
  EXPECT_EQ(request(1).path, "/devices/dev1?api-version=2021-04-12");
  EXPECT_FALSE(got.done());
  http_.Reply(1, 200, DeviceJson("dev1"));
  loop_.RunReady();
  ASSERT_TRUE(got.done());
  ASSERT_TRUE(got.get()) << got.get().error().message;
  EXPECT_FALSE(got.get()->created);
  EXPECT_EQ(got.get()->primary_key, "cHJpbWFyeQ==");
}

TEST_F(RegistryClientTest, DeleteSendsIfMatchStarAndMaps404ToNotFound) {
  Capture<Status> deleted, missing;
  client().Delete("dev1", deleted.callback());
  client().Delete("ghost", missing.callback());
  ASSERT_EQ(http_.requests().size(), 2u);
  EXPECT_EQ(request(0).method, "DELETE");
  EXPECT_EQ(request(0).path, "/devices/dev1?api-version=2021-04-12");
  EXPECT_EQ(HeaderOf(request(0), "If-Match"), "\"*\"");
  http_.Reply(0, 204);
  http_.Reply(1, ErrorResponse(404, "DeviceNotFound", "Device 'ghost' is not registered."));
  loop_.RunReady();
  ASSERT_TRUE(deleted.done() && missing.done());
  EXPECT_TRUE(deleted.get());
  ASSERT_FALSE(missing.get());
  EXPECT_EQ(missing.get().error().code, "not_found");
  EXPECT_NE(missing.get().error().message.find("DELETE /devices/ghost"), std::string::npos)
      << missing.get().error().message;
  EXPECT_NE(missing.get().error().message.find("DeviceNotFound"), std::string::npos);
  EXPECT_NE(missing.get().error().message.find("is not registered"), std::string::npos);
}

TEST_F(RegistryClientTest, ListParsesEveryDevice) {
  Capture<Result<std::vector<Device>>> got;
  client().List(got.callback());
  EXPECT_EQ(request(0).method, "GET");
  EXPECT_EQ(request(0).path, "/devices?api-version=2021-04-12");
  http_.Reply(0, 200, "[" + DeviceJson("a") + "," + DeviceJson("b") + "]");
  loop_.RunReady();
  ASSERT_TRUE(got.done());
  ASSERT_TRUE(got.get()) << got.get().error().message;
  ASSERT_EQ(got.get()->size(), 2u);
  EXPECT_EQ(got.get()->at(0).id, "a");
  EXPECT_EQ(got.get()->at(1).id, "b");
}

struct StatusCase {
  HttpResponse response;
  std::string code;
  std::string in_message;  // a fragment the message must carry
};

TEST_F(RegistryClientTest, StatusesMapToErrorCodesWithTheServiceText) {
  const std::vector<StatusCase> cases = {
      {ErrorResponse(400, "ArgumentInvalid", "DeviceId 'x y' is invalid"), "bad_request",
       "DeviceId 'x y' is invalid"},
      {ErrorResponse(401, "IotHubUnauthorizedAccess", "Unauthorized: token expired"),
       "unauthorized", "IotHubUnauthorizedAccess"},
      {ErrorResponse(403, "IotHubQuotaExceeded", "Total number of messages exceeded"),
       "quota_exhausted", "IotHubQuotaExceeded"},
      // The real hub also nests a JSON document, with the numeric code, inside Message.
      {FakeHttpClient::Response(
           403, Json{{"Message", Json{{"errorCode", 403002}, {"message", "Quota exceeded"}}.dump()},
                     {"ExceptionMessage", ""}}
                    .dump()),
       "quota_exhausted", "403002"},
      {FakeHttpClient::Response(403,
                                Json{{"Message", "ErrorCode:x;y"}, {"errorCode", 403002}}.dump()),
       "quota_exhausted", "403002"},
      {ErrorResponse(403, "TooManyDevices", "The hub has too many devices"), "forbidden",
       "TooManyDevices"},
      {FakeHttpClient::Response(
           403, Json{{"Message", Json{{"errorCode", 403004}, {"message", "Device count"}}.dump()}}
                    .dump()),
       "forbidden", "Device count"},
      {ErrorResponse(404, "DeviceNotFound", "Device 'x' is not registered."), "not_found",
       "not registered"},
      {ErrorResponse(409, "DeviceAlreadyExists", "exists"), "already_exists", "exists"},
      {ErrorResponse(412, "PreconditionFailed", "etag mismatch"), "precondition_failed",
       "etag mismatch"},
      {FakeHttpClient::Response(404, "<html>Not Found</html>"), "not_found", "<html>Not Found"},
      {FakeHttpClient::Response(302, ""), "bad_response", "HTTP 302"},
  };
  for (const StatusCase& c : cases) {
    SCOPED_TRACE(c.code + " / " + c.response.body);
    Capture<Result<Device>> got;
    const std::size_t index = http_.requests().size();
    client().Get("x", got.callback());
    http_.Reply(index, c.response);
    loop_.RunReady();
    ASSERT_TRUE(got.done());
    ASSERT_FALSE(got.get());
    EXPECT_EQ(got.get().error().code, c.code);
    EXPECT_NE(got.get().error().message.find(c.in_message), std::string::npos)
        << got.get().error().message;
    EXPECT_NE(got.get().error().message.find("GET /devices/x"), std::string::npos);
    EXPECT_EQ(got.get().error().message.find(kKey), std::string::npos);
    EXPECT_EQ(got.get().error().message.find("sig="), std::string::npos);
    EXPECT_EQ(http_.requests().size(), index + 1) << "4xx is not retried";
  }
}

TEST_F(RegistryClientTest, RetryAfterIsHonouredExactly) {
  Capture<Result<Device>> got;
  client().Get("dev1", got.callback());
  HttpResponse throttled = ErrorResponse(429, "ThrottlingException", "slow down");
  throttled.headers.emplace_back("Retry-After", "7");
  http_.Reply(0, throttled);
  loop_.RunReady();
  loop_.Advance(6'999);
  EXPECT_EQ(http_.requests().size(), 1u) << "no request before Retry-After has passed";
  loop_.Advance(1);
  ASSERT_EQ(http_.requests().size(), 2u);
  EXPECT_EQ(HeaderOf(request(1), "Request-Id"), HeaderOf(request(0), "Request-Id"))
      << "one Request-Id across the retries of one operation";
  EXPECT_FALSE(got.done());
  http_.Reply(1, 200, DeviceJson("dev1"));
  loop_.RunReady();
  ASSERT_TRUE(got.done());
  EXPECT_TRUE(got.get()) << got.get().error().message;
}

TEST_F(RegistryClientTest, RetryAfterIsCapped) {
  RegistryOptions options;
  options.max_retry_after_ms = 60'000;
  Recreate(options);
  Capture<Status> got;
  client().Delete("dev1", got.callback());
  HttpResponse throttled = ErrorResponse(429, "ThrottlingException", "slow down");
  throttled.headers.emplace_back("retry-after", "86400");  // header names are case-insensitive
  http_.Reply(0, throttled);
  loop_.RunReady();
  loop_.Advance(59'999);
  EXPECT_EQ(http_.requests().size(), 1u);
  loop_.Advance(1);
  EXPECT_EQ(http_.requests().size(), 2u);
}

TEST_F(RegistryClientTest, ThrottlingWithoutRetryAfterBacksOffExponentially) {
  Capture<Result<Device>> got;
  client().Get("dev1", got.callback());
  const std::int64_t expected_delays[] = {500, 1'000, 2'000, 4'000};
  for (std::size_t i = 0; i < std::size(expected_delays); ++i) {
    SCOPED_TRACE(i);
    http_.Reply(i, ErrorResponse(429, "ThrottlingException", "slow down"));
    loop_.RunReady();
    EXPECT_EQ(loop_.pending_timers(), 1u) << "the wait is a loop timer";
    loop_.Advance(expected_delays[i] - 1);
    EXPECT_EQ(http_.requests().size(), i + 1);
    loop_.Advance(1);
    ASSERT_EQ(http_.requests().size(), i + 2);
  }
  http_.Reply(4, 200, DeviceJson("dev1"));
  loop_.RunReady();
  ASSERT_TRUE(got.done());
  EXPECT_TRUE(got.get()) << got.get().error().message;
}

TEST_F(RegistryClientTest, ServerErrorsAndTransportFailuresAreRetried) {
  Capture<Result<Device>> got;
  client().Get("dev1", got.callback());
  http_.Reply(0, ErrorResponse(503, "ServiceUnavailable", "busy"));
  loop_.RunReady();
  loop_.Advance(500);
  http_.Reply(1, Error{"http_transport", "cannot connect to myhub:443"});
  loop_.RunReady();
  loop_.Advance(1'000);
  ASSERT_EQ(http_.requests().size(), 3u);
  http_.Reply(2, 200, DeviceJson("dev1"));
  loop_.RunReady();
  ASSERT_TRUE(got.done());
  EXPECT_TRUE(got.get()) << got.get().error().message;
}

TEST_F(RegistryClientTest, RetriesStopAfterMaxAttemptsWithTheLastError) {
  struct Case {
    Result<HttpResponse> answer;
    std::string code;
  };
  const std::vector<Case> cases = {
      {ErrorResponse(429, "ThrottlingException", "slow down"), "throttled"},
      {ErrorResponse(500, "ServerError", "oops"), "server_error"},
      {ErrorResponse(504, "GatewayTimeout", "late"), "server_error"},
      {Error{"http_transport", "cannot connect to myhub:443"}, "http_transport"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.code);
    const std::size_t first = http_.requests().size();
    Capture<Result<Device>> got;
    client().Get("dev1", got.callback());
    for (int attempt = 0; attempt < 6; ++attempt) {
      ASSERT_EQ(http_.requests().size(), first + attempt + 1);
      http_.Reply(first + attempt, c.answer);
      loop_.RunReady();
      loop_.Advance(60'000);  // past any backoff
    }
    EXPECT_EQ(http_.requests().size(), first + 6) << "six attempts in all, then no more";
    EXPECT_EQ(loop_.pending_timers(), 0u);
    ASSERT_TRUE(got.done());
    ASSERT_FALSE(got.get());
    EXPECT_EQ(got.get().error().code, c.code);
    EXPECT_NE(got.get().error().message.find("6 attempt"), std::string::npos)
        << got.get().error().message;
  }
}

TEST_F(RegistryClientTest, GarbageBodiesAreBadResponses) {
  const std::vector<std::string> device_bodies = {
      "not json",
      "",
      "[]",
      "{}",
      R"({"deviceId":5})",
      R"({"deviceId":"x","etag":7})",
      R"({"deviceId":"x","cloudToDeviceMessageCount":"3"})",
      R"({"deviceId":"x","authentication":"sas"})",
      R"({"deviceId":"x","authentication":{"symmetricKey":{"primaryKey":1}}})",
      std::string(100'000, '[') + std::string(100'000, ']'),
  };
  for (const std::string& body : device_bodies) {
    SCOPED_TRACE(body.substr(0, 80));
    Capture<Result<Device>> got;
    const std::size_t index = http_.requests().size();
    client().Get("x", got.callback());
    http_.Reply(index, 200, body);
    loop_.RunReady();
    ASSERT_TRUE(got.done());
    ASSERT_FALSE(got.get());
    EXPECT_EQ(got.get().error().code, "bad_response") << got.get().error().message;
  }
  for (const std::string& body : {std::string("{}"), std::string("[1]"), std::string("[{}]")}) {
    SCOPED_TRACE(body);
    Capture<Result<std::vector<Device>>> got;
    const std::size_t index = http_.requests().size();
    client().List(got.callback());
    http_.Reply(index, 200, body);
    loop_.RunReady();
    ASSERT_TRUE(got.done());
    ASSERT_FALSE(got.get());
    EXPECT_EQ(got.get().error().code, "bad_response");
  }
  for (const std::string& body :
       {std::string("nope"), std::string(R"({"isSuccessful":"yes"})"),
        std::string(R"({"isSuccessful":false})"),
        std::string(R"({"isSuccessful":false,"errors":{}})"),
        std::string(R"({"isSuccessful":false,"errors":[{"deviceId":"stranger"}]})"),
        std::string(R"({"isSuccessful":false,"errors":[7]})")}) {
    SCOPED_TRACE(body);
    Capture<Result<BulkResult>> got;
    const std::size_t index = http_.requests().size();
    client().BulkCreate({"a", "b"}, got.callback());
    http_.Reply(index, 200, body);
    loop_.RunReady();
    ASSERT_TRUE(got.done());
    ASSERT_FALSE(got.get());
    EXPECT_EQ(got.get().error().code, "bad_response") << got.get().error().message;
  }
}

std::vector<std::string> Ids(std::size_t count) {
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < count; ++i) ids.push_back("bulk-" + std::to_string(i));
  return ids;
}

TEST_F(RegistryClientTest, BulkCreateSplitsIntoSequentialRequestsOfAtMost100) {
  Capture<Result<BulkResult>> got;
  client().BulkCreate(Ids(250), got.callback());
  const std::size_t sizes[] = {100, 100, 50};
  for (std::size_t batch = 0; batch < 3; ++batch) {
    SCOPED_TRACE(batch);
    ASSERT_EQ(http_.requests().size(), batch + 1) << "one request at a time";
    const HttpRequest& r = request(batch);
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/devices?api-version=2021-04-12");
    EXPECT_EQ(HeaderOf(r, "Content-Type"), "application/json; charset=utf-8");
    const Json body = Json::parse(r.body);
    ASSERT_TRUE(body.is_array());
    ASSERT_EQ(body.size(), sizes[batch]);
    EXPECT_EQ(body[0]["id"], "bulk-" + std::to_string(batch * 100));
    EXPECT_EQ(body[0]["importMode"], "create");
    EXPECT_EQ(body[0]["authentication"]["type"], "sas");
    if (batch == 1) {
      // The service's partial failure: 400 with a bulk result naming the failed devices.
      http_.Reply(batch, 400,
                  Json{{"isSuccessful", false},
                       {"errors",
                        {{{"deviceId", "bulk-101"},
                          {"errorCode", "DeviceAlreadyExists"},
                          {"errorStatus", "A device with ID 'bulk-101' is already registered."}},
                         {{"deviceId", "bulk-150"},
                          {"errorCode", "ArgumentInvalid"},
                          {"errorStatus", "something about bulk-150"}},
                         {{"deviceId", "bulk-160"}, {"errorCode", 409001}}}},
                       {"warnings", Json::array()}}
                      .dump());
    } else {
      http_.Reply(batch, 200, R"({"isSuccessful":true,"errors":[],"warnings":[]})");
    }
    loop_.RunReady();
  }
  ASSERT_TRUE(got.done());
  ASSERT_TRUE(got.get()) << got.get().error().message;
  const BulkResult& result = got.get().value();
  ASSERT_EQ(result.devices.size(), 250u);
  for (std::size_t i = 0; i < 250; ++i)
    EXPECT_EQ(result.devices[i].id, "bulk-" + std::to_string(i));
  EXPECT_EQ(result.Count(BulkOutcome::kCreated), 247u);
  EXPECT_EQ(result.Count(BulkOutcome::kAlreadyExisted), 2u);
  EXPECT_EQ(result.Count(BulkOutcome::kFailed), 1u);
  EXPECT_EQ(result.devices[101].outcome, BulkOutcome::kAlreadyExisted);
  EXPECT_EQ(result.devices[101].error_code, "DeviceAlreadyExists");
  EXPECT_EQ(result.devices[160].outcome, BulkOutcome::kAlreadyExisted);
  EXPECT_EQ(result.devices[150].outcome, BulkOutcome::kFailed);
  EXPECT_EQ(result.devices[150].error_code, "ArgumentInvalid");
  EXPECT_EQ(result.devices[150].message, "something about bulk-150");
}

TEST_F(RegistryClientTest, BulkRequestRejectedAsAWholeEndsTheOperation) {
  Capture<Result<BulkResult>> got;
  client().BulkCreate(Ids(150), got.callback());
  http_.Reply(0, ErrorResponse(400, "ArgumentInvalid", "bulk registry operations take 1 to 100"));
  loop_.RunReady();
  ASSERT_TRUE(got.done());
  ASSERT_FALSE(got.get());
  EXPECT_EQ(got.get().error().code, "bad_request");
  EXPECT_NE(got.get().error().message.find("take 1 to 100"), std::string::npos);
  EXPECT_EQ(http_.requests().size(), 1u) << "no further batch";
}

TEST_F(RegistryClientTest, BulkQuotaAndThrottlingAreHandledLikeOtherCalls) {
  Capture<Result<BulkResult>> got;
  client().BulkCreate(Ids(3), got.callback());
  http_.Reply(0, ErrorResponse(429, "ThrottlingException", "slow down"));
  loop_.RunReady();
  loop_.Advance(500);
  ASSERT_EQ(http_.requests().size(), 2u);
  EXPECT_EQ(request(1).body, request(0).body);
  http_.Reply(1, ErrorResponse(403, "IotHubQuotaExceeded", "quota"));
  loop_.RunReady();
  ASSERT_TRUE(got.done());
  ASSERT_FALSE(got.get());
  EXPECT_EQ(got.get().error().code, "quota_exhausted");
}

TEST_F(RegistryClientTest, BadArgumentsFailThroughTheLoopWithoutRequests) {
  Capture<Result<Device>> empty_id, not_ascii;
  Capture<Status> control;
  Capture<Result<BulkResult>> duplicate, nothing;
  client().Get("", empty_id.callback());
  client().CreateIfMissing("caf\xc3\xa9", not_ascii.callback());
  client().Delete("a\nb", control.callback());
  client().BulkCreate({"a", "b", "a"}, duplicate.callback());
  client().BulkCreate({}, nothing.callback());
  EXPECT_FALSE(empty_id.done() || duplicate.done() || nothing.done()) << "never synchronous";
  loop_.RunReady();
  EXPECT_TRUE(http_.requests().empty());
  ASSERT_TRUE(empty_id.done() && duplicate.done() && nothing.done());
  EXPECT_EQ(empty_id.get().error().code, "bad_request");
  ASSERT_TRUE(not_ascii.done() && control.done());
  EXPECT_EQ(not_ascii.get().error().code, "bad_request");
  EXPECT_EQ(control.get().error().code, "bad_request");
  EXPECT_EQ(duplicate.get().error().code, "bad_request");
  EXPECT_NE(duplicate.get().error().message.find("'a'"), std::string::npos);
  ASSERT_TRUE(nothing.get());
  EXPECT_TRUE(nothing.get()->devices.empty());
}

TEST_F(RegistryClientTest, DestroyedClientCancelsRetriesAndDropsLateAnswers) {
  Capture<Result<Device>> waiting_retry, in_flight;
  client().Get("a", waiting_retry.callback());
  client().Get("b", in_flight.callback());
  http_.Reply(0, ErrorResponse(503, "ServiceUnavailable", "busy"));
  loop_.RunReady();
  EXPECT_EQ(loop_.pending_timers(), 1u);
  client_.reset();
  EXPECT_EQ(loop_.pending_timers(), 0u);
  http_.Reply(1, 200, DeviceJson("b"));
  loop_.Advance(60'000);
  EXPECT_FALSE(waiting_retry.done());
  EXPECT_FALSE(in_flight.done());
  EXPECT_EQ(http_.requests().size(), 2u);
}

// ---------------------------------------------------------------------------------------
// Against the real emulator, over HTTPS.

using iothub::testing::EmulatorInfo;
using iothub::testing::EmulatorProcess;
using iothub::testing::ServiceClient;
using iothub::testing::TempDir;

constexpr std::int64_t kWaitMs = 30'000;

class RegistryEmulatorTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra = {}, RegistryOptions options = {}) {
    auto started = EmulatorProcess::Start(dir_.path(), std::move(extra));
    ASSERT_TRUE(started) << started.error().message;
    emulator_ = std::move(started).value();
    const EmulatorInfo& info = emulator_->info();
    http_ = HttplibClient::Create(loop_, {info.host_name, info.https_port, info.ca_file});
    auto cs = ParseServiceConnectionString(info.service_connection_string);
    ASSERT_TRUE(cs) << cs.error().message;
    client_ = std::make_unique<RegistryClient>(loop_, *http_, *cs, wall_, random_, options);
  }
  const EmulatorInfo& info() const { return emulator_->info(); }
  RegistryClient& client() { return *client_; }

  // Runs the loop until `capture` holds a result (or the wait times out).
  template <typename T>
  const T& Await(const Capture<T>& capture) {
    EXPECT_TRUE(loop_.RunUntil([&] { return capture.done(); }, kWaitMs)) << "timed out";
    if (!capture.done()) std::abort();  // nothing sensible left to test
    return capture.get();
  }
  Result<Device> CreateIfMissing(const std::string& id) {
    Capture<Result<Device>> got;
    client().CreateIfMissing(id, got.callback());
    return Await(got);
  }
  Result<Device> Get(const std::string& id) {
    Capture<Result<Device>> got;
    client().Get(id, got.callback());
    return Await(got);
  }
  Status Delete(const std::string& id) {
    Capture<Status> got;
    client().Delete(id, got.callback());
    return Await(got);
  }
  Result<std::vector<Device>> List() {
    Capture<Result<std::vector<Device>>> got;
    client().List(got.callback());
    return Await(got);
  }

  TempDir dir_;
  std::unique_ptr<EmulatorProcess> emulator_;
  PollLoop loop_;
  SystemClock wall_;
  SystemRandom random_;
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<RegistryClient> client_;
};

TEST_F(RegistryEmulatorTest, CreateGetListDelete) {
  Start();
  const std::string id = "dev:1@x$'(y)!*%-_.";  // every special character the hub allows
  auto created = CreateIfMissing(id);
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->id, id);
  EXPECT_EQ(created->status, "enabled");
  EXPECT_EQ(created->connection_state, "Disconnected");
  EXPECT_FALSE(created->etag.empty());
  EXPECT_FALSE(created->generation_id.empty());
  EXPECT_FALSE(created->primary_key.empty()) << "the hub generated the keys";
  EXPECT_FALSE(created->secondary_key.empty());

  auto again = CreateIfMissing(id);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->primary_key, created->primary_key);

  auto got = Get(id);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->generation_id, created->generation_id);

  ASSERT_TRUE(CreateIfMissing("second"));
  auto listed = List();
  ASSERT_TRUE(listed) << listed.error().message;
  std::set<std::string> ids;
  for (const Device& d : *listed) ids.insert(d.id);
  EXPECT_EQ(ids, (std::set<std::string>{id, "second"}));

  Status deleted = Delete(id);
  EXPECT_TRUE(deleted) << deleted.error().message;
  Status missing = Delete(id);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "not_found");
  EXPECT_NE(missing.error().message.find("DeviceNotFound"), std::string::npos)
      << missing.error().message;
  auto gone = Get(id);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, "not_found");
}

TEST_F(RegistryEmulatorTest, BulkCreateOf150ReportsEachDevice) {
  // A bulk request takes one registry token per device: 150 devices (and the calls around
  // them) in one go need the 200 operations a minute of two S1 units.
  Start({"--units", "2"});
  ASSERT_TRUE(CreateIfMissing("bulk-7"));
  ASSERT_TRUE(CreateIfMissing("bulk-120"));
  Capture<Result<BulkResult>> got;
  client().BulkCreate(Ids(150), got.callback());
  const Result<BulkResult>& result = Await(got);
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->devices.size(), 150u);
  EXPECT_EQ(result->Count(BulkOutcome::kCreated), 148u);
  EXPECT_EQ(result->Count(BulkOutcome::kAlreadyExisted), 2u);
  EXPECT_EQ(result->devices[7].outcome, BulkOutcome::kAlreadyExisted);
  EXPECT_EQ(result->devices[120].outcome, BulkOutcome::kAlreadyExisted);
  EXPECT_EQ(result->devices[120].error_code, "DeviceAlreadyExists");
  auto listed = List();
  ASSERT_TRUE(listed) << listed.error().message;
  EXPECT_EQ(listed->size(), 150u);
  auto one = Get("bulk-149");
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_FALSE(one->primary_key.empty());
}

TEST_F(RegistryEmulatorTest, ThrottledRegistryCallsAreRetriedUntilTheySucceed) {
  RegistryOptions options;
  options.backoff = {100, 1'000, 2.0, 0.5};
  options.max_attempts = 40;
  Start({}, options);
  ASSERT_TRUE(CreateIfMissing("busy"));
  // The hub allows 100 registry operations a minute (a burst of 100, refilled at 100/min):
  // 110 at once must meet 429s.
  constexpr int kCalls = 110;
  std::vector<Capture<Result<Device>>> results(kCalls);
  for (auto& r : results) client().Get("busy", r.callback());
  EXPECT_TRUE(loop_.RunUntil(
      [&] { return std::all_of(results.begin(), results.end(), [](auto& r) { return r.done(); }); },
      kWaitMs));
  for (auto& r : results) {
    ASSERT_TRUE(r.done());
    EXPECT_TRUE(r.get()) << r.get().error().message;
  }
  ServiceClient service(info());
  auto stats = service.Request("GET", "/emulator/stats?api-version=2021-04-12");
  ASSERT_EQ(stats.status, 200);
  EXPECT_GE(stats.body["throttled"].get<int>(), 10) << "the hub did throttle, and we retried";
}

// The emulator, like the hub (§4), never charges registry operations to the daily quota,
// so it has no registry call that answers 403002: the mapping is covered by the unit tests.
// Here: an exhausted quota does not disturb the registry client.
TEST_F(RegistryEmulatorTest, RegistryWorksWhileTheMessageQuotaIsExhausted) {
  Start({"--tier", "free"});
  ASSERT_TRUE(CreateIfMissing("sink-a"));
  ASSERT_TRUE(CreateIfMissing("sink-b"));
  ServiceClient service(info());
  // 8,000 messages a day in 0.5 KB chunks: 16 messages of 256 KB use it all.
  auto key = Get("sink-a");
  ASSERT_TRUE(key) << key.error().message;
  testing::DeviceClient device(info(), "sink-a", key->primary_key);
  ASSERT_EQ(device.Connect(), 0);
  for (int i = 0; i < 16; ++i) {
    device.PublishAsync("devices/sink-a/messages/events/", std::string(256 * 1024, 'q'));
  }
  ASSERT_TRUE(device.WaitAcks(16, std::chrono::seconds(30)));
  const int status =
      service.Request("POST", "/emulator/devices/sink-b/messages", Json{{"body", "x"}}).status;
  ASSERT_EQ(status, 403) << "the quota was exhausted";
  auto created = CreateIfMissing("after-quota");
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_TRUE(created->created);
  EXPECT_TRUE(Delete("sink-a"));
}

TEST_F(RegistryEmulatorTest, TransportFailuresAreRetriedUntilTheHubIsBack) {
  RegistryOptions options;
  options.backoff = {200, 2'000, 2.0, 0.5};
  options.max_attempts = 20;
  Start({}, options);
  ASSERT_TRUE(CreateIfMissing("phoenix"));
  ServiceClient service(info());
  ASSERT_EQ(service.Request("POST", "/emulator/faults/broker-down", Json{{"seconds", 2}}).status,
            202);
  // Probe without retries until the hub is really down, so the call below must retry.
  RegistryOptions once;
  once.max_attempts = 1;
  RegistryClient probe(loop_, *http_,
                       *ParseServiceConnectionString(info().service_connection_string), wall_,
                       random_, once);
  bool down = false;
  for (int i = 0; i < 200 && !down; ++i) {
    Capture<Result<Device>> got;
    probe.Get("phoenix", got.callback());
    const Result<Device>& result = Await(got);
    down = !result && result.error().code == "http_transport";
    if (!down) loop_.RunUntil([] { return false; }, 50);  // a loop-driven pause between probes
  }
  ASSERT_TRUE(down) << "the broker-down fault never took the hub down";
  auto got = Get("phoenix");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->id, "phoenix");
}

// A loopback port nobody listens on (bound once to pick it, then released); 0 on failure.
int UnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool picked = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  return picked ? ntohs(addr.sin_port) : 0;
}

TEST(HttplibClientTest, RefusedConnectionIsATransportErrorNamingHostAndPort) {
  PollLoop loop;
  const int port = UnusedPort();
  ASSERT_NE(port, 0);
  auto http = HttplibClient::Create(loop, {"127.0.0.1", port, "", 2'000, 2'000});
  Capture<Result<HttpResponse>> got;
  http->Send({"GET", "/devices", {}, ""}, got.callback());
  EXPECT_FALSE(got.done()) << "never synchronous";
  ASSERT_TRUE(loop.RunUntil([&] { return got.done(); }, kWaitMs));
  ASSERT_FALSE(got.get());
  EXPECT_EQ(got.get().error().code, "http_transport");
  EXPECT_NE(got.get().error().message.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << got.get().error().message;
}

Result<HttpResponse> GetDevices(PollLoop& loop, HttpClientConfig config) {
  auto http = HttplibClient::Create(loop, std::move(config));
  Capture<Result<HttpResponse>> got;
  http->Send({"GET", "/devices?api-version=2021-04-12", {}, ""}, got.callback());
  EXPECT_TRUE(loop.RunUntil([&] { return got.done(); }, kWaitMs));
  if (!got.done()) std::abort();
  return got.get();
}

TEST_F(RegistryEmulatorTest, ServerCertificateMustBeTrusted) {
  Start();
  auto trusted = GetDevices(loop_, {"localhost", info().https_port, info().ca_file});
  ASSERT_TRUE(trusted) << trusted.error().message;
  EXPECT_EQ(trusted->status, 401) << "reached the hub (no token sent)";
  EXPECT_TRUE(trusted->Header("IOTHUB-ERRORCODE").has_value()) << "case-insensitive lookup";

  auto untrusted = GetDevices(loop_, {"localhost", info().https_port, ""});  // system CAs
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().code, "http_transport");
  EXPECT_NE(untrusted.error().message.find("localhost:" + std::to_string(info().https_port)),
            std::string::npos)
      << untrusted.error().message;
  EXPECT_NE(untrusted.error().message.find("certificate"), std::string::npos)
      << untrusted.error().message;
}

TEST_F(RegistryEmulatorTest, ServerCertificateMustNameTheHost) {
  // The certificate names localhost, 127.0.0.1 and ::1; this hub listens on 127.0.0.2.
  Start({"--bind", "127.0.0.2"});
  auto wrong_name = GetDevices(loop_, {"127.0.0.2", info().https_port, info().ca_file});
  ASSERT_FALSE(wrong_name);
  EXPECT_EQ(wrong_name.error().code, "http_transport");
  EXPECT_NE(wrong_name.error().message.find("not issued for host '127.0.0.2'"), std::string::npos)
      << wrong_name.error().message;
}

}  // namespace
}  // namespace iothub::azure
