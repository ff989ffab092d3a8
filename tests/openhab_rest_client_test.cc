// The openHAB REST client with a fake HTTP transport: request shapes, authentication, and
// the mapping of openHAB's answers (shared/reference/openhab.md §1, §4).
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
  RestClient bearer(loop_, http_, {"oh.connector.abc", false});
  bearer.GetServerInfo([](Result<ServerInfo>) {});
  EXPECT_EQ(http_.last().method, "GET");
  EXPECT_EQ(http_.last().path, "/rest/");
  EXPECT_EQ(HeaderOf(http_.last(), "Authorization"), "Bearer oh.connector.abc");
  RestClient basic(loop_, http_, {"oh.connector.abc", true});
  basic.GetItems([](Result<ItemList>) {});
  EXPECT_EQ(http_.last().path, "/rest/items?metadata=azureiothub");
  EXPECT_EQ(HeaderOf(http_.last(), "Authorization"), "Basic b2guY29ubmVjdG9yLmFiYzo=");
  RestClient anonymous(loop_, http_, {});
  anonymous.GetItems([](Result<ItemList>) {});
  EXPECT_FALSE(HeaderOf(http_.last(), "Authorization").has_value());
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
  client.SendCommand("Lamp", "ON", [&](Status s) { command = s; });
  const HttpRequest& post = http_.requests().back();
  EXPECT_EQ(post.method, "POST");
  EXPECT_EQ(post.path, "/rest/items/Lamp");
  EXPECT_EQ(post.body, "ON");
  EXPECT_EQ(HeaderOf(post, "Content-Type"), "text/plain; charset=utf-8");
  client.UpdateState("Door", "OPEN", [&](Status s) { update = s; });
  EXPECT_EQ(http_.last().method, "PUT");
  EXPECT_EQ(http_.last().path, "/rest/items/Door/state");
  http_.Reply(0, 200);
  http_.Reply(1, 202);
  loop_.RunReady();
  EXPECT_TRUE(command && command->ok());
  EXPECT_TRUE(update && update->ok());
}

TEST_F(RestClientTest, OpenHabErrorAnswersBecomeMeaningfulCodes) {
  RestClient client(loop_, http_, {"oh.secret.token", false});
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
    client.SendCommand("Lamp", "MAYBE", [&](Status s) { result = s; });
    http_.ReplyNext(c.status, c.body);
    loop_.RunReady();
    ASSERT_TRUE(result && !result->ok()) << c.status;
    EXPECT_EQ(result->error().code, c.code) << c.status;
    EXPECT_EQ(result->error().message.find("oh.secret.token"), std::string::npos);
  }
  std::optional<Status> rejected;
  client.SendCommand("Lamp", "MAYBE", [&](Status s) { rejected = s; });
  http_.ReplyNext(400,
                  R"({"error":{"message":"State could not be parsed: MAYBE","http-code":400}})");
  loop_.RunReady();
  EXPECT_NE(rejected->error().message.find("State could not be parsed"), std::string::npos);
}

TEST_F(RestClientTest, BadArgumentsFailWithoutARequestAndNeverSynchronously) {
  RestClient client(loop_, http_, {});
  std::vector<std::string> codes;
  client.SendCommand("../things", "ON", [&](Status s) { codes.push_back(s.error().code); });
  client.UpdateState("Lamp", "", [&](Status s) { codes.push_back(s.error().code); });
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
