// Host names are resolved off the loop: the real resolver against /etc/hosts names, and a
// libmosquitto connection whose resolver never answers (a dead DNS server), which must not
// stall the loop and must end by its connect timeout.
#include "common/resolver.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "azure/mosquitto_connection.h"

namespace iothub {
namespace {

TEST(ResolverTest, NumericHostsNeedNoLookup) {
  EXPECT_TRUE(IsNumericHost("127.0.0.1"));
  EXPECT_TRUE(IsNumericHost("::1"));
  EXPECT_TRUE(IsNumericHost("fe80::1"));
  EXPECT_FALSE(IsNumericHost("localhost"));
  EXPECT_FALSE(IsNumericHost("myhub.azure-devices.net"));
  EXPECT_FALSE(IsNumericHost("127.0.0.1.example"));
  EXPECT_FALSE(IsNumericHost(""));
}

TEST(ResolverTest, ThreadResolverAnswersOnTheLoop) {
  PollLoop loop;
  ThreadResolver resolver(loop);
  std::optional<Result<std::vector<std::string>>> local;
  std::optional<Result<std::vector<std::string>>> empty;
  resolver.Resolve("localhost", [&](Result<std::vector<std::string>> r) { local = std::move(r); });
  resolver.Resolve("", [&](Result<std::vector<std::string>> r) { empty = std::move(r); });
  EXPECT_FALSE(local.has_value()) << "never inside the call";
  ASSERT_TRUE(loop.RunUntil([&] { return local && empty; }, 10'000));
  ASSERT_TRUE(local->ok()) << local->error().message;
  ASSERT_FALSE((*local)->empty());
  const std::string first = (*local)->front();
  EXPECT_TRUE(first == "127.0.0.1" || first == "::1") << first;
  ASSERT_FALSE(empty->ok());
  EXPECT_EQ(empty->error().code, "resolve");
}

// A resolver whose DNS never answers.
class SilentResolver final : public Resolver {
 public:
  void Resolve(const std::string& host, Done done) override {
    hosts.push_back(host);
    pending.push_back(std::move(done));
  }
  std::vector<std::string> hosts;
  std::vector<Done> pending;
};

struct Events final : azure::MqttHandler {
  void OnConnack(int code) override { connacks.push_back(code); }
  void OnConnectionLost(std::string_view why) override { lost.emplace_back(why); }
  void OnPuback(int) override {}
  void OnMessage(std::string_view, std::string_view) override {}
  std::vector<int> connacks;
  std::vector<std::string> lost;
};

TEST(ResolverTest, ADeadResolverStallsNeitherTheLoopNorTheConnection) {
  PollLoop loop;
  SilentResolver dns;
  auto connector = azure::MosquittoConnector::Create(loop, {"", "hub.example.net"}, &dns);
  ASSERT_TRUE(connector.ok()) << connector.error().message;
  Events events;
  auto connection = (*connector)->Create(events);
  azure::MqttConnectOptions options;
  options.host = "hub.example.net";
  options.client_id = "dev1";
  options.connect_timeout_ms = 300;
  ASSERT_TRUE(connection->Connect(options).ok());
  EXPECT_EQ(dns.hosts, std::vector<std::string>{"hub.example.net"});
  int ticks = 0;
  loop.RunAfter(50, [&] { ++ticks; });
  ASSERT_TRUE(loop.RunUntil([&] { return !events.lost.empty(); }, 5'000));
  EXPECT_EQ(ticks, 1) << "the loop ran on while the lookup hung";
  EXPECT_NE(events.lost[0].find("cannot resolve host name 'hub.example.net' within 300 ms"),
            std::string::npos)
      << events.lost[0];
  // The answer that finally comes, and one for a connection already destroyed, change nothing.
  dns.pending[0](std::vector<std::string>{"127.0.0.1"});
  loop.RunUntil([] { return false; }, 20);
  EXPECT_EQ(events.lost.size(), 1u);
  EXPECT_TRUE(events.connacks.empty());
  auto second = (*connector)->Create(events);
  ASSERT_TRUE(second->Connect(options).ok());
  second.reset();
  dns.pending[1](std::vector<std::string>{"127.0.0.1"});
  loop.RunUntil([] { return false; }, 20);
  EXPECT_EQ(events.lost.size(), 1u);
}

TEST(ResolverTest, AFailedLookupEndsTheAttemptWithItsReason) {
  PollLoop loop;
  SilentResolver dns;
  auto connector = azure::MosquittoConnector::Create(loop, {"", "hub.example.net"}, &dns);
  ASSERT_TRUE(connector.ok());
  Events events;
  auto connection = (*connector)->Create(events);
  azure::MqttConnectOptions options;
  options.host = "hub.example.net";
  options.client_id = "dev1";
  ASSERT_TRUE(connection->Connect(options).ok());
  dns.pending[0](MakeError("resolve", "cannot resolve host name 'hub.example.net': no such host"));
  ASSERT_TRUE(loop.RunUntil([&] { return !events.lost.empty(); }, 1'000));
  EXPECT_NE(events.lost[0].find("no such host"), std::string::npos) << events.lost[0];
}

}  // namespace
}  // namespace iothub
