// The openHAB REST client with a fake HTTP transport: request shapes, authentication, and
// the mapping of openHAB's answers (shared/reference/openhab.md §1, §2, §4).
#include <gtest/gtest.h>

#include "openhab/rest_client.h"
#include "support/fake_http_client.h"
#include "support/manual_loop.h"

namespace iothub::openhab {
namespace {

using iothub::testing::FakeHttpClient;
using iothub::testing::ManualLoop;

std::optional<std::string> HeaderOf(const HttpRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return std::nullopt;
}

class RestClientTest : public ::testing::Test {
 protected:
  ManualLoop loop_;
  FakeHttpClient http_{loop_};
};

TEST_F(RestClientTest, RequestsCarryTheTokenAsBearerOrBasic) {
  RestClient bearer(loop_, http_, {.token = "oh.connector.abc"});
  bearer.GetServerInfo([](const Result<ServerInfo>&) {});
  EXPECT_EQ(http_.last().method, "GET");
  EXPECT_EQ(http_.last().path, "/rest/");
  EXPECT_EQ(HeaderOf(http_.last(), "Authorization"), "Bearer oh.connector.abc");
  RestClient basic(loop_, http_, {.token = "oh.connector.abc", .auth = AuthMode::kBasic});
  basic.GetItems([](const Result<ItemList>&) {});
  EXPECT_EQ(http_.last().path, "/rest/items?metadata=azureiothub");
  EXPECT_EQ(HeaderOf(http_.last(), "Authorization"), "Basic b2guY29ubmVjdG9yLmFiYzo=");
  RestClient anonymous(loop_, http_, {});
  anonymous.GetItems([](const Result<ItemList>&) {});
  EXPECT_FALSE(HeaderOf(http_.last(), "Authorization").has_value());
}

TEST_F(RestClientTest, EachAuthModeSendsExactlyOneHeader) {
  struct Case {
    RestClientConfig config;
    std::string name;
    std::string value;
  };
  const std::vector<Case> cases = {
      {{.token = "oh.connector.abc"}, "Authorization", "Bearer oh.connector.abc"},
      {{.token = "oh.connector.abc", .auth = AuthMode::kBasic},
       "Authorization",
       "Basic b2guY29ubmVjdG9yLmFiYzo="},
      {{.token = "oh.connector.abc", .auth = AuthMode::kHeader},
       "X-OPENHAB-TOKEN",
       "oh.connector.abc"},
  };
  for (const auto& c : cases) {
    RestClient client(loop_, http_, c.config);
    client.GetThings([](const Result<ThingList>&) {});
    const HttpRequest& r = http_.last();
    EXPECT_EQ(HeaderOf(r, c.name), c.value) << c.value;
    int auth_headers = 0;
    for (const auto& [k, v] : r.headers) {
      auth_headers += (k == "Authorization" || k == "X-OPENHAB-TOKEN") ? 1 : 0;
    }
    EXPECT_EQ(auth_headers, 1) << c.value;
    EXPECT_EQ(client.AuthHeader(), std::make_pair(c.name, c.value));
  }
  for (const AuthMode mode : {AuthMode::kBearer, AuthMode::kBasic, AuthMode::kHeader}) {
    RestClient anonymous(loop_, http_, {.token = "", .auth = mode});
    anonymous.GetLinks([](const Result<LinkList>&) {});
    EXPECT_FALSE(HeaderOf(http_.last(), "Authorization").has_value());
    EXPECT_FALSE(HeaderOf(http_.last(), "X-OPENHAB-TOKEN").has_value());
    EXPECT_EQ(anonymous.AuthHeader(), (std::pair<std::string, std::string>{}));
  }
}

TEST_F(RestClientTest, ThingsAndLinksAreFetchedAndParsed) {
  RestClient client(loop_, http_, {.token = "oh.admin.xyz"});
  std::optional<Result<ThingList>> things;
  std::optional<Result<LinkList>> links;
  client.GetThings([&](Result<ThingList> r) { things = std::move(r); });
  EXPECT_EQ(http_.last().method, "GET");
  EXPECT_EQ(http_.last().path, "/rest/things");
  EXPECT_EQ(HeaderOf(http_.last(), "Accept"), "application/json");
  client.GetLinks([&](Result<LinkList> r) { links = std::move(r); });
  EXPECT_EQ(http_.last().method, "GET");
  EXPECT_EQ(http_.last().path, "/rest/links");
  http_.Reply(
      0, 200,
      R"([{"channels":[],"statusInfo":{"status":"OFFLINE","statusDetail":"COMMUNICATION_ERROR",
                  "description":"timeout"},"editable":true,"label":"Broker","configuration":{},
                  "properties":{},"UID":"mqtt:broker:b","thingTypeUID":"mqtt:broker"},
                  {"UID":"broken"}])");
  http_.Reply(1, 200,
              R"([{"channelUID":"mqtt:topic:b:s:temp","configuration":{},"itemName":"LR_Temp",
                  "editable":true}])");
  EXPECT_FALSE(things.has_value());  // never inside the call
  loop_.RunReady();
  ASSERT_TRUE(things && things->ok());
  ASSERT_EQ((*things)->things.size(), 1u);
  EXPECT_EQ((*things)->things[0].status_detail, "COMMUNICATION_ERROR");
  EXPECT_EQ((*things)->skipped.size(), 1u);
  ASSERT_TRUE(links && links->ok());
  EXPECT_EQ((*links)->links.at(0).item_name, "LR_Temp");
}

TEST_F(RestClientTest, ThingsWithoutAdminRightsSayAnAdminTokenIsNeeded) {
  const std::string token = "oh.user.s3cr3tT0ken";
  const std::string basic = "b2gudXNlci5zM2NyM3RUMGtlbjo=";  // base64("oh.user.s3cr3tT0ken:")
  for (const AuthMode mode : {AuthMode::kBearer, AuthMode::kBasic, AuthMode::kHeader}) {
    RestClient client(loop_, http_, {.token = token, .auth = mode});
    for (const int status : {401, 403}) {
      std::optional<Result<ThingList>> things;
      std::optional<Result<LinkList>> links;
      client.GetThings([&](Result<ThingList> r) { things = std::move(r); });
      client.GetLinks([&](Result<LinkList> r) { links = std::move(r); });
      // A proxy or server that echoes the credentials back must not put them into the error.
      std::string body = R"({"error":{"message":"Invalid credentials for )";
      body.append(token).append(" / Basic ").append(basic).append(R"(","http-code":401}})");
      http_.ReplyNext(status, body);
      http_.ReplyNext(status, body);
      loop_.RunReady();
      const std::string code = status == 401 ? "unauthorized" : "forbidden";
      for (const Error* e : {&things->error(), &links->error()}) {
        EXPECT_EQ(e->code, code);
        EXPECT_NE(e->message.find("administrator's API token"), std::string::npos) << e->message;
        EXPECT_NE(e->message.find("Invalid credentials"), std::string::npos) << e->message;
        EXPECT_EQ(e->message.find(token), std::string::npos) << e->message;
        EXPECT_EQ(e->message.find(basic), std::string::npos) << e->message;
        EXPECT_NE(e->message.find("<redacted>"), std::string::npos) << e->message;
      }
      EXPECT_NE(things->error().message.find("GET /rest/things"), std::string::npos);
      EXPECT_NE(links->error().message.find("GET /rest/links"), std::string::npos);
    }
  }
  RestClient anonymous(loop_, http_, {});
  std::optional<Result<ThingList>> things;
  anonymous.GetThings([&](Result<ThingList> r) { things = std::move(r); });
  http_.ReplyNext(403);
  loop_.RunReady();
  EXPECT_EQ(things->error().code, "forbidden");
  EXPECT_NE(things->error().message.find("none was given"), std::string::npos);
}

TEST_F(RestClientTest, ThingErrorsOtherThanAuthAreMappedLikeTheRest) {
  RestClient client(loop_, http_, {.token = "oh.a.b", .auth = AuthMode::kHeader});
  std::vector<Result<ThingList>> results;
  for (int i = 0; i < 3; ++i) {
    client.GetThings([&](Result<ThingList> r) { results.push_back(std::move(r)); });
  }
  http_.ReplyNext(500, "<html>oops</html>");
  http_.ReplyNext(200, "<html>proxy login</html>");
  http_.ReplyNext(MakeError("http_transport", "cannot connect to 127.0.0.1:8080"));
  loop_.RunReady();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].error().code, "server_error");
  EXPECT_EQ(results[0].error().message.find("administrator"), std::string::npos);
  EXPECT_EQ(results[1].error().code, "bad_response");
  EXPECT_EQ(results[2].error().code, "http_transport");
}

TEST_F(RestClientTest, EchoedTokensAreRedactedEverywhere) {
  const std::string token = "oh.connector.e";  // short and made of common letters
  RestClient client(loop_, http_, {.token = token});
  std::optional<Status> command;
  std::optional<Result<ItemList>> items;
  client.SendCommand("Lamp", "ON", [&](const Status& s) { command = s; });
  client.GetItems([&](Result<ItemList> r) { items = std::move(r); });
  const std::string body =
      R"({"error":{"message":"bad token oh.connector.e, oh.connector.e","http-code":401}})";
  http_.ReplyNext(401, body);
  http_.ReplyNext(401, body);
  loop_.RunReady();
  for (const Error* e : {&command->error(), &items->error()}) {
    EXPECT_EQ(e->code, "unauthorized");
    EXPECT_EQ(e->message.find(token), std::string::npos) << e->message;
    EXPECT_NE(e->message.find("bad token <redacted>, <redacted>"), std::string::npos) << e->message;
  }
}

TEST_F(RestClientTest, ItemsAndServerInfoAreParsed) {
  RestClient client(loop_, http_, {});
  std::optional<Result<ItemList>> items;
  std::optional<Result<ServerInfo>> info;
  client.GetItems([&](Result<ItemList> r) { items = std::move(r); });
  client.GetServerInfo([&](Result<ServerInfo> r) { info = std::move(r); });
  http_.Reply(0, 200, R"([{"type":"Switch","name":"Lamp","state":"ON"}])");
  http_.Reply(1, 200, R"({"version":"8","runtimeInfo":{"version":"4.2.1"}})");
  loop_.RunReady();
  ASSERT_TRUE(items && items->ok());
  EXPECT_EQ((*items)->items.at(0).name, "Lamp");
  ASSERT_TRUE(info && info->ok());
  EXPECT_EQ((*info)->major, 4);
}

TEST_F(RestClientTest, CommandsAndStateUpdatesAreTextPlain) {
  RestClient client(loop_, http_, {});
  std::optional<Status> command;
  std::optional<Status> update;
  client.SendCommand("Lamp", "ON", [&](const Status& s) { command = s; });
  const HttpRequest& post = http_.requests().back();
  EXPECT_EQ(post.method, "POST");
  EXPECT_EQ(post.path, "/rest/items/Lamp");
  EXPECT_EQ(post.body, "ON");
  EXPECT_EQ(HeaderOf(post, "Content-Type"), "text/plain; charset=utf-8");
  client.UpdateState("Door", "OPEN", [&](const Status& s) { update = s; });
  EXPECT_EQ(http_.last().method, "PUT");
  EXPECT_EQ(http_.last().path, "/rest/items/Door/state");
  http_.Reply(0, 200);
  http_.Reply(1, 202);
  loop_.RunReady();
  EXPECT_TRUE(command && command->ok());
  EXPECT_TRUE(update && update->ok());
}

TEST_F(RestClientTest, OpenHabErrorAnswersBecomeMeaningfulCodes) {
  RestClient client(loop_, http_, {.token = "oh.secret.token"});
  struct Case {
    int status;
    std::string body;
    std::string code;
  };
  const std::vector<Case> cases = {
      {400, R"({"error":{"message":"State could not be parsed: MAYBE","http-code":400}})",
       "rejected"},
      {401, R"({"error":{"message":"Invalid credentials","http-code":401}})", "unauthorized"},
      {403, "", "forbidden"},
      {404, R"({"error":{"message":"Item Lamp does not exist!","http-code":404}})", "not_found"},
      {500, "<html>oops</html>", "server_error"},
      {302, "", "http_status"},
  };
  for (const auto& c : cases) {
    std::optional<Status> result;
    client.SendCommand("Lamp", "MAYBE", [&](const Status& s) { result = s; });
    http_.ReplyNext(c.status, c.body);
    loop_.RunReady();
    ASSERT_TRUE(result && !result->ok()) << c.status;
    EXPECT_EQ(result->error().code, c.code) << c.status;
    EXPECT_EQ(result->error().message.find("oh.secret.token"), std::string::npos);
  }
  std::optional<Status> rejected;
  client.SendCommand("Lamp", "MAYBE", [&](const Status& s) { rejected = s; });
  http_.ReplyNext(400,
                  R"({"error":{"message":"State could not be parsed: MAYBE","http-code":400}})");
  loop_.RunReady();
  EXPECT_NE(rejected->error().message.find("State could not be parsed"), std::string::npos);
}

TEST_F(RestClientTest, BadArgumentsFailWithoutARequestAndNeverSynchronously) {
  RestClient client(loop_, http_, {});
  std::vector<std::string> codes;
  client.SendCommand("../things", "ON", [&](const Status& s) { codes.push_back(s.error().code); });
  client.UpdateState("Lamp", "", [&](const Status& s) { codes.push_back(s.error().code); });
  EXPECT_TRUE(codes.empty());
  loop_.RunReady();
  EXPECT_EQ(codes, (std::vector<std::string>{"bad_argument", "bad_argument"}));
  EXPECT_TRUE(http_.requests().empty());
}

TEST_F(RestClientTest, GarbageBodiesAndTransportErrors) {
  RestClient client(loop_, http_, {});
  std::optional<Result<ItemList>> items;
  client.GetItems([&](Result<ItemList> r) { items = std::move(r); });
  http_.ReplyNext(200, "<html>proxy login</html>");
  std::optional<Result<ServerInfo>> info;
  client.GetServerInfo([&](Result<ServerInfo> r) { info = std::move(r); });
  http_.ReplyNext(MakeError("http_transport", "cannot connect to 127.0.0.1:8080"));
  loop_.RunReady();
  EXPECT_EQ(items->error().code, "bad_response");
  EXPECT_EQ(info->error().code, "http_transport");
}

}  // namespace
}  // namespace iothub::openhab
