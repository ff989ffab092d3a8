// HttplibClient over plain HTTP (the way a local openHAB is reached), against a real server.
#include "common/http_client.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>

namespace iothub {
namespace {

TEST(HttplibClientPlainTest, TalksPlainHttpAndReportsStatusesAsResponses) {
  httplib::Server server;
  server.Get("/rest/", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.get_header_value("Authorization"), "text/plain");
  });
  server.Post("/rest/items/Lamp", [](const httplib::Request& req, httplib::Response& res) {
    res.status = req.body == "ON" ? 200 : 400;
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  // Bound and listening already: connections wait in the backlog until the thread accepts.
  std::thread serving([&] { server.listen_after_bind(); });

  PollLoop loop;
  HttpClientConfig config;
  config.host = "127.0.0.1";
  config.port = port;
  config.tls = false;
  auto http = HttplibClient::Create(loop, config);
  std::optional<Result<HttpResponse>> get;
  std::optional<Result<HttpResponse>> post;
  http->Send({"GET", "/rest/", {{"Authorization", "Bearer oh.test.x"}}, ""},
             [&](Result<HttpResponse> r) { get = std::move(r); });
  http->Send({"POST", "/rest/items/Lamp", {{"Content-Type", "text/plain"}}, "MAYBE"},
             [&](Result<HttpResponse> r) { post = std::move(r); });
  ASSERT_TRUE(loop.RunUntil([&] { return get && post; }, 10'000));
  ASSERT_TRUE(get->ok()) << get->error().message;
  EXPECT_EQ((*get)->status, 200);
  EXPECT_EQ((*get)->body, "Bearer oh.test.x");
  ASSERT_TRUE(post->ok());
  EXPECT_EQ((*post)->status, 400);
  http.reset();
  server.stop();
  serving.join();
}

}  // namespace
}  // namespace iothub
