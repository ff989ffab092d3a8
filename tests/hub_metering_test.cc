// Unit tests of what the Hub bills, throttles and refuses (shared/reference/azure-iothub.md §5,
// docs/emulator-api.md "What is billed"). Each expected count is computed from the published
// rule in the test, not read back from the implementation.
#include <gtest/gtest.h>

#include <string>

#include "common/crypto.h"
#include "emulator/hub.h"
#include "emulator/quota.h"
#include "support/hub_rig.h"

namespace iothub::emulator {
namespace {

// Messages a billable operation of `bytes` counts as with `chunk`-byte chunks: the rule of
// the pricing page, ceil(bytes / chunk) and at least one.
std::int64_t Chunks(std::size_t bytes, std::int64_t chunk) {
  return bytes == 0 ? 1 : (static_cast<std::int64_t>(bytes) + chunk - 1) / chunk;
}
constexpr std::int64_t kFreeChunk = 512;
constexpr std::int64_t kPaidChunk = 4096;

std::int64_t Used(Hub& hub) { return hub.Stats().body["quota"]["used"].get<std::int64_t>(); }

TEST_F(HubTest, FreeTierMetersHalfKilobyteChunks) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), std::string(1200, 'x')),
            PublishVerdict::kAccept);
  Json quota = Stats()["quota"];
  EXPECT_EQ(quota["dailyMessages"], 8000);
  EXPECT_EQ(quota["chunkBytes"], 512);
  EXPECT_EQ(quota["used"], 3);
  EXPECT_EQ(Stats()["tier"], "free");
  // Registry operations are not billable.
  CreateDevice("dev2");
  EXPECT_EQ(Stats()["quota"]["used"], 3);
}

TEST_F(HubTest, ExhaustedQuotaClosesPublishesUntilMidnight) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  const std::string big(256 * 1024, 'x');  // 512 messages on Free
  for (int i = 0; i < 15; ++i) {
    ASSERT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), big), PublishVerdict::kAccept) << i;
  }
  EXPECT_EQ(Stats()["quota"]["used"], 7680);
  EXPECT_EQ(Stats()["quota"]["exhausted"], false);
  // The message that crosses the quota is still taken; the hub stops after it.
  ASSERT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), big), PublishVerdict::kAccept);
  EXPECT_EQ(Stats()["quota"]["used"], 8192);
  EXPECT_EQ(Stats()["quota"]["exhausted"], true);
  EXPECT_EQ(Stats()["quota"]["resetsAt"], "2023-11-15T00:00:00.0000000Z");

  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), "small"), PublishVerdict::kClose);
  EXPECT_EQ(Stored().size(), 16u);
  ASSERT_EQ(Connect(Conn(1), "dev1", key), AuthOutcome::kAccepted);  // CONNECT still works
  EXPECT_EQ(Pub(Conn(1), "dev1", "$iothub/twin/GET/?$rid=1"), PublishVerdict::kClose);
  const ServiceReply c2d = hub().SendCloudToDevice("dev1", Json{{"body", "x"}});
  EXPECT_EQ(c2d.status, 403);
  EXPECT_EQ(ErrorCode(c2d), 403002);
  EXPECT_EQ(c2d.headers.at("iothub-errorcode"), "IotHubQuotaExceeded");
  MethodCall call;
  hub().InvokeMethod("dev1", Json{{"methodName", "m"}}, call.Callback());
  ASSERT_TRUE(call.reply.has_value());
  EXPECT_EQ(ErrorCode(*call.reply), 403002);
  EXPECT_GE(Stats()["quota"]["rejected"].get<int>(), 4);

  wall_.Set(kMidnight - 1);
  EXPECT_EQ(Pub(Conn(1), "dev1", Telemetry("dev1"), "still no"), PublishVerdict::kClose);
  wall_.Set(kMidnight);
  EXPECT_EQ(Pub(Conn(1), "dev1", Telemetry("dev1"), "new day"), PublishVerdict::kAccept);
  // Queued, not yet billed: a cloud-to-device message is billed when the device receives it.
  EXPECT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", "x"}}).status, 202);
  EXPECT_EQ(Stats()["quota"]["used"], 1);
  EXPECT_EQ(Stats()["quota"]["exhausted"], false);
  EXPECT_EQ(Stored().back().body, "new day");
}

TEST_F(HubTest, S1QuotaMetersFourKilobyteChunks) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), std::string(1200, 'x')),
            PublishVerdict::kAccept);
  ASSERT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), std::string(4097, 'x')),
            PublishVerdict::kAccept);
  EXPECT_EQ(Stats()["quota"]["used"], 3);
  EXPECT_EQ(Stats()["quota"]["dailyMessages"], 400000);
}

TEST_F(HubTest, TelemetryIsMeteredByBodySystemValuesAndApplicationProperties) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  // System properties count by value only ("mid-1", "application/json"); the application
  // property "room=kitchen" counts name and value.
  const std::string bag = "%24.mid=mid-1&%24.ct=application%2Fjson&room=kitchen";
  const std::size_t properties = std::string("mid-1").size() +
                                 std::string("application/json").size() +
                                 std::string("room").size() + std::string("kitchen").size();
  const std::size_t fits = kFreeChunk - properties;  // exactly one chunk
  ASSERT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1", bag), std::string(fits, 'x')),
            PublishVerdict::kAccept);
  EXPECT_EQ(Used(hub()), Chunks(fits + properties, kFreeChunk));
  EXPECT_EQ(Used(hub()), 1);  // counting the names "$.mid" and "$.ct" too would make it 2
  ASSERT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1", bag), std::string(fits + 1, 'x')),
            PublishVerdict::kAccept);
  EXPECT_EQ(Used(hub()), 1 + Chunks(fits + 1 + properties, kFreeChunk));
  EXPECT_EQ(Stats()["quota"]["billed"]["telemetry"], Used(hub()));
}

TEST_F(HubTest, TelemetrySizeLimitIsTheMeteredSize) {
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  constexpr std::size_t kMax = 256 * 1024;
  // "$.mid=abcd": four bytes of value count, the name does not.
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1", "%24.mid=abcd"), std::string(kMax - 4, 'x')),
            PublishVerdict::kAccept);
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1", "%24.mid=abcde"), std::string(kMax - 4, 'x')),
            PublishVerdict::kClose);
  EXPECT_EQ(Stored().size(), 1u);
}

TEST_F(HubTest, CloudToDeviceIsBilledWhenReceivedWithItsSystemValues) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  const std::string key = CreateDevice("dev1");
  const Json send = {{"body", std::string(480, 'b')},
                     {"messageId", "c2d-1"},
                     {"correlationId", "corr"},
                     {"properties", {{"item", "Light"}}},
                     {"ttlSeconds", 60}};
  ASSERT_EQ(hub().SendCloudToDevice("dev1", send).status, 202);
  EXPECT_EQ(Used(hub()), 0);  // queued for an offline device: not received, not billed
  Online(Conn(0), "dev1", key);
  hub().OnTick();
  const auto delivered = broker_.Take();
  ASSERT_EQ(delivered.size(), 1u);
  const std::size_t metered =
      480 + std::string("c2d-1").size() + std::string("/devices/dev1/messages/devicebound").size() +
      FormatIsoTime(kWallStart + 60'000).size() + std::string("corr").size() +
      std::string("item").size() + std::string("Light").size();
  EXPECT_EQ(BagValue(delivered[0].topic, "$.cid"), "corr");
  EXPECT_EQ(Used(hub()), Chunks(metered, kFreeChunk));
  EXPECT_EQ(Used(hub()), 2);  // 480 bytes of body alone would be one chunk
  EXPECT_EQ(Stats()["quota"]["billed"]["cloudToDevice"], 2);
}

TEST_F(HubTest, ExpiredCloudToDeviceMessagesAreNotBilled) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(hub().SendCloudToDevice("dev1", Json{{"body", "x"}, {"ttlSeconds", 5}}).status, 202);
  wall_.Advance(6'000);
  Online(Conn(0), "dev1", key);
  hub().OnTick();
  EXPECT_TRUE(broker_.Take().empty());
  EXPECT_EQ(Stats()["devices"]["dev1"]["c2dExpired"], 1);
  EXPECT_EQ(Used(hub()), 0);
}

TEST_F(HubTest, DeviceTwinGetIsBilledByTheTwinReturned) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  ASSERT_EQ(
      hub()
          .UpdateTwin("dev1", {{"properties", {{"desired", {{"big", std::string(1400, 'd')}}}}}},
                      "", false)
          .status,
      200);
  const std::int64_t before = Used(hub());
  broker_.Take();
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/GET/?$rid=7"), PublishVerdict::kAccept);
  const auto answers = broker_.Take();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(Used(hub()) - before, Chunks(answers[0].payload.size(), kFreeChunk));
  EXPECT_EQ(Used(hub()) - before, 3);  // ~1.5 KB of twin
}

TEST_F(HubTest, ReportedPatchesAreBilledOnlyWhenApplied) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=1", "{not json"),
            PublishVerdict::kAccept);
  ASSERT_EQ(
      Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=2", R"({"bad.key":1})"),
      PublishVerdict::kAccept);
  EXPECT_EQ(Used(hub()), 0);  // both refused with res/400, for free
  const std::string patch = R"({"firmware":")" + std::string(600, 'f') + R"("})";
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=3", patch),
            PublishVerdict::kAccept);
  EXPECT_EQ(Used(hub()), Chunks(patch.size(), kFreeChunk));
  EXPECT_EQ(Stats()["quota"]["billed"]["twinUpdates"], 2);
}

TEST_F(HubTest, ServiceTwinReadsAreBilledByTagsAndProperties) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  CreateDevice("dev1");
  ASSERT_EQ(
      hub().UpdateTwin("dev1", {{"tags", {{"note", std::string(1800, 't')}}}}, "", false).status,
      200);
  const std::int64_t before = Used(hub());
  const ServiceReply twin = hub().GetTwin("dev1");
  ASSERT_EQ(twin.status, 200);
  // Tags and properties as read, without the $metadata the hub adds to them.
  Json properties = twin.body["properties"];
  properties["desired"].erase("$metadata");
  properties["reported"].erase("$metadata");
  const Json read = {{"tags", twin.body["tags"]}, {"properties", properties}};
  EXPECT_EQ(Used(hub()) - before, Chunks(read.dump().size(), kFreeChunk));
  EXPECT_EQ(Used(hub()) - before, 4);
  EXPECT_EQ(Stats()["quota"]["billed"]["twinReads"], 4);
}

TEST_F(HubTest, ServiceTwinUpdatesAndReplacesAreBilledIncludingTagsOnly) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  CreateDevice("dev1");
  const Json tags_only = {{"tags", {{"site", std::string(700, 's')}}}};
  ASSERT_EQ(hub().UpdateTwin("dev1", tags_only, "", false).status, 200);
  EXPECT_EQ(Used(hub()), Chunks(tags_only.dump().size(), kFreeChunk));
  EXPECT_EQ(Used(hub()), 2);
  const Json replace = {{"tags", {{"a", "b"}}}, {"properties", {{"desired", {{"x", 1}}}}}};
  ASSERT_EQ(hub().UpdateTwin("dev1", replace, "*", true).status, 200);
  EXPECT_EQ(Used(hub()), 2 + Chunks(replace.dump().size(), kFreeChunk));
  // A refused update costs nothing.
  ASSERT_EQ(hub().UpdateTwin("dev1", {{"tags", {{"bad.key", 1}}}}, "", false).status, 400);
  ASSERT_EQ(hub().UpdateTwin("dev1", {{"tags", {{"k", 1}}}}, "\"wrong-etag\"", false).status, 412);
  EXPECT_EQ(Used(hub()), 3);
}

TEST_F(HubTest, ServiceTwinCallsAreRefusedWhenTheQuotaIsGone) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  const std::string key = CreateDevice("dev1");
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  ASSERT_NO_FATAL_FAILURE(ExhaustFreeQuota(Conn(0), "dev1"));
  ASSERT_TRUE(Stats()["quota"]["exhausted"].get<bool>());
  for (const ServiceReply& r :
       {hub().GetTwin("dev1"), hub().UpdateTwin("dev1", {{"tags", {{"a", 1}}}}, "", false),
        hub().UpdateTwin("dev1", {{"tags", {{"a", 1}}}}, "*", true)}) {
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(ErrorCode(r), 403002);
  }
  EXPECT_EQ(Used(hub()), 16 * 512);
  EXPECT_EQ(hub().GetTwin("dev1").headers.at("iothub-errorcode"), "IotHubQuotaExceeded");
}

TEST_F(HubTest, ServiceTwinReadsAndUpdatesAreThrottledAsTwinOperations) {
  CreateDevice("dev1");
  // S1: twin reads 100/s, twin updates 50/s (quotas page), whatever the unit count.
  for (int i = 0; i < 100; ++i) ASSERT_EQ(hub().GetTwin("dev1").status, 200) << i;
  const ServiceReply read = hub().GetTwin("dev1");
  EXPECT_EQ(read.status, 429);
  EXPECT_EQ(ErrorCode(read), 429001);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(hub().UpdateTwin("dev1", {{"tags", {{"i", i}}}}, "", false).status, 200) << i;
  }
  EXPECT_EQ(hub().UpdateTwin("dev1", {{"tags", {{"i", 50}}}}, "", false).status, 429);
  steady_.Advance(1000);
  EXPECT_EQ(hub().GetTwin("dev1").status, 200);
  EXPECT_EQ(hub().UpdateTwin("dev1", {{"tags", {{"i", 51}}}}, "", false).status, 200);
}

TEST_F(HubTest, MethodToAnOfflineDeviceIsBilledRequestChunksPlusOne) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  CreateDevice("dev1");
  const std::string text(1000, 'p');
  MethodCall call;
  hub().InvokeMethod("dev1", {{"methodName", "m"}, {"payload", text}}, call.Callback());
  ASSERT_TRUE(call.reply.has_value());
  EXPECT_EQ(ErrorCode(*call.reply), 404103);
  const std::size_t request = Json(text).dump().size();
  EXPECT_EQ(Used(hub()), Chunks(request, kFreeChunk) + 1);
  EXPECT_EQ(Used(hub()), 3);
  // Waiting for the device to connect and running out of time is billed the same way.
  MethodCall waiting;
  hub().InvokeMethod("dev1", {{"methodName", "m"}, {"connectTimeoutInSeconds", 5}},
                     waiting.Callback());
  EXPECT_FALSE(waiting.reply.has_value());
  steady_.Advance(5'000);
  hub().OnTick();
  ASSERT_TRUE(waiting.reply.has_value());
  EXPECT_EQ(ErrorCode(*waiting.reply), 404103);
  EXPECT_EQ(Used(hub()), 3 + Chunks(std::string("null").size(), kFreeChunk) + 1);
  EXPECT_EQ(Stats()["quota"]["billed"]["methods"], 5);
}

TEST_F(HubTest, MethodRequestAndResponseAreBilledApart) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  broker_.Take();
  const std::string text(600, 'q');
  MethodCall call;
  hub().InvokeMethod("dev1", {{"methodName", "m"}, {"payload", text}}, call.Callback());
  const auto sent = broker_.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(Used(hub()), Chunks(sent[0].payload.size(), kFreeChunk));
  ASSERT_EQ(Pub(Conn(0), "dev1", "$iothub/methods/res/200/?$rid=" + Rid(sent[0].topic), ""),
            PublishVerdict::kAccept);
  ASSERT_TRUE(call.reply.has_value());
  EXPECT_EQ(call.reply->status, 200);
  // A response without payload is one message.
  EXPECT_EQ(Used(hub()), Chunks(sent[0].payload.size(), kFreeChunk) + 1);
}

TEST_F(HubTest, MethodsAreThrottledByPayloadInFourKilobyteSteps) {
  CreateDevice("dev1");
  // S1, one unit: 160 KB/s of request payload, counted in 4 KB steps = 40 steps a second.
  auto invoke = [&](std::size_t payload_bytes) {
    MethodCall call;
    // A JSON string of n bytes of text is n + 2 bytes of payload.
    hub().InvokeMethod("dev1",
                       {{"methodName", "m"}, {"payload", std::string(payload_bytes - 2, 'z')}},
                       call.Callback());
    return ErrorCode(*call.reply);
  };
  for (int i = 0; i < 40; ++i) ASSERT_EQ(invoke(100), 404103) << i;  // 40 calls of one step
  EXPECT_EQ(invoke(100), 429001);
  steady_.Advance(1000);
  // A 128 KB request is 32 steps: one passes, a second cannot, but small calls still fit.
  EXPECT_EQ(invoke(128 * 1024), 404103);
  EXPECT_EQ(invoke(128 * 1024), 429001);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(invoke(4096), 404103) << i;  // exactly one step each
  EXPECT_EQ(invoke(4097), 429001);                                   // two steps
}

TEST_F(HubTest, BulkRegistryRequestsTakeOneTokenPerDevice) {
  // S1, one unit: 100 registry operations a minute; a bulk of 50 devices is 50 of them.
  EXPECT_TRUE(hub().AllowRegistryOperation(50));
  EXPECT_TRUE(hub().AllowRegistryOperation(50));
  EXPECT_FALSE(hub().AllowRegistryOperation(50));
  EXPECT_FALSE(hub().AllowRegistryOperation(1));
  steady_.Advance(30'000);  // half a minute refills 50
  EXPECT_FALSE(hub().AllowRegistryOperation(51));
  EXPECT_TRUE(hub().AllowRegistryOperation(50));
  EXPECT_EQ(Stats()["throttled"], 3);
}

TEST_F(HubTest, BasicTierHasTelemetryOnly) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kB1));
  const std::string key = CreateDevice("dev1");
  EXPECT_EQ(Stats()["tier"], "B1");
  EXPECT_EQ(Stats()["quota"]["dailyMessages"], 400000);
  EXPECT_EQ(Stats()["quota"]["chunkBytes"], 4096);
  ASSERT_EQ(Connect(Conn(0), "dev1", key), AuthOutcome::kAccepted);
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), "t"), PublishVerdict::kAccept);
  MethodCall call;
  hub().InvokeMethod("dev1", {{"methodName", "m"}}, call.Callback());
  ASSERT_TRUE(call.reply.has_value());
  for (const ServiceReply& r :
       {hub().GetTwin("dev1"), hub().UpdateTwin("dev1", {{"tags", {{"a", 1}}}}, "", false),
        hub().UpdateTwin("dev1", Json::object(), "*", true),
        hub().SendCloudToDevice("dev1", {{"body", "x"}}), *call.reply}) {
    EXPECT_EQ(r.status, 403) << r.body.dump();
    EXPECT_EQ(ErrorCode(r), 403010);
    EXPECT_EQ(r.headers.at("iothub-errorcode"), "OperationNotAvailableInCurrentTier");
  }
  // A device that uses its twin is disconnected.
  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/GET/?$rid=1"), PublishVerdict::kClose);
  ASSERT_EQ(Connect(Conn(1), "dev1", key), AuthOutcome::kAccepted);
  EXPECT_EQ(Pub(Conn(1), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=2", "{}"),
            PublishVerdict::kClose);
  EXPECT_EQ(Used(hub()), 1);
  EXPECT_EQ(Stored().size(), 1u);
}

TEST_F(HubTest, QuotaTwinAnswerCanBeA403) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree, 1, QuotaTwinAnswer::kStatus));
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  ASSERT_NO_FATAL_FAILURE(ExhaustFreeQuota(Conn(0), "dev1"));
  broker_.Take();
  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/GET/?$rid=a1"), PublishVerdict::kAccept);
  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=a2", "{}"),
            PublishVerdict::kAccept);
  const auto answers = broker_.Take();
  ASSERT_EQ(answers.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(answers[i].topic, "$iothub/twin/res/403/?$rid=a" + std::to_string(i + 1));
    EXPECT_EQ(Json::parse(answers[i].payload)["errorCode"], 403002);
  }
  // Telemetry is not a twin request: no PUBACK, connection closed.
  EXPECT_EQ(Pub(Conn(0), "dev1", Telemetry("dev1"), "x"), PublishVerdict::kClose);
  EXPECT_EQ(Used(hub()), 16 * 512);
}

TEST_F(HubTest, QuotaTwinAnswerDefaultsToClosing) {
  ASSERT_NO_FATAL_FAILURE(StartHub(Tier::kFree));
  const std::string key = CreateDevice("dev1");
  Online(Conn(0), "dev1", key);
  ASSERT_NO_FATAL_FAILURE(ExhaustFreeQuota(Conn(0), "dev1"));
  broker_.Take();
  EXPECT_EQ(Pub(Conn(0), "dev1", "$iothub/twin/PATCH/properties/reported/?$rid=b", "{}"),
            PublishVerdict::kClose);
  EXPECT_TRUE(broker_.Take().empty());
}

TEST(TierUnitsTest, UnitsAsAzureAllowsThem) {
  EXPECT_TRUE(CheckUnits(Tier::kFree, 1).ok());
  const Status free2 = CheckUnits(Tier::kFree, 2);
  ASSERT_FALSE(free2.ok());
  EXPECT_NE(free2.error().message.find("exactly 1 unit"), std::string::npos)
      << free2.error().message;
  for (Tier t : {Tier::kB1, Tier::kB2, Tier::kS1, Tier::kS2}) {
    EXPECT_TRUE(CheckUnits(t, 200).ok()) << TierName(t);
    EXPECT_FALSE(CheckUnits(t, 201).ok()) << TierName(t);
  }
  for (Tier t : {Tier::kB3, Tier::kS3}) {
    EXPECT_TRUE(CheckUnits(t, 10).ok()) << TierName(t);
    const Status over = CheckUnits(t, 11);
    ASSERT_FALSE(over.ok()) << TierName(t);
    EXPECT_NE(over.error().message.find("1 to 10 units"), std::string::npos);
  }
  for (Tier t : {Tier::kFree, Tier::kB1, Tier::kS3}) EXPECT_FALSE(CheckUnits(t, 0).ok());
}

TEST(TierLimitsTest, TwinThrottlesPerTierAsPublished) {
  for (int units : {1, 200}) {  // S1: flat
    EXPECT_EQ(LimitsFor(Tier::kS1, units).twin_reads_per_second, 100);
    EXPECT_EQ(LimitsFor(Tier::kS1, units).twin_updates_per_second, 50);
  }
  EXPECT_EQ(LimitsFor(Tier::kS2, 1).twin_reads_per_second, 100);  // the floor
  EXPECT_EQ(LimitsFor(Tier::kS2, 1).twin_updates_per_second, 50);
  EXPECT_EQ(LimitsFor(Tier::kS2, 30).twin_reads_per_second, 300);  // 10/s/unit
  EXPECT_EQ(LimitsFor(Tier::kS2, 30).twin_updates_per_second, 150);
  EXPECT_EQ(LimitsFor(Tier::kS3, 2).twin_reads_per_second, 1000);  // 500/s/unit
  EXPECT_EQ(LimitsFor(Tier::kS3, 2).twin_updates_per_second, 500);
  EXPECT_EQ(LimitsFor(Tier::kFree, 1).twin_reads_per_second, 100);
}

TEST(TierLimitsTest, MethodThrottleIsKilobytesPerSecondInFourKilobyteSteps) {
  EXPECT_EQ(LimitsFor(Tier::kFree, 1).method_steps_per_second, 160 / 4);
  EXPECT_EQ(LimitsFor(Tier::kS1, 3).method_steps_per_second, 3 * 160 / 4);
  EXPECT_EQ(LimitsFor(Tier::kS2, 2).method_steps_per_second, 2 * 480 / 4);
  EXPECT_EQ(LimitsFor(Tier::kS3, 1).method_steps_per_second, 24 * 1024 / 4);
  EXPECT_EQ(ThrottleSteps(0), 1);
  EXPECT_EQ(ThrottleSteps(4096), 1);
  EXPECT_EQ(ThrottleSteps(4097), 2);
}

TEST(TierLimitsTest, BasicTiersCarryTheQuotasOfTheirStandardSizes) {
  const std::pair<Tier, Tier> pairs[] = {
      {Tier::kB1, Tier::kS1}, {Tier::kB2, Tier::kS2}, {Tier::kB3, Tier::kS3}};
  for (const auto& [basic, standard] : pairs) {
    EXPECT_TRUE(IsBasicTier(basic));
    EXPECT_FALSE(IsBasicTier(standard));
    EXPECT_EQ(LimitsFor(basic, 2).daily_messages, LimitsFor(standard, 2).daily_messages);
    EXPECT_EQ(LimitsFor(basic, 2).chunk_bytes, kPaidChunk);
    EXPECT_EQ(*ParseTier(TierName(basic)), basic);
  }
  EXPECT_EQ(LimitsFor(Tier::kB2, 1).daily_messages, 6'000'000);
  EXPECT_FALSE(IsBasicTier(Tier::kFree));
}

TEST(MeteredBytesTest, CountsSystemValuesAndApplicationNamesAndValues) {
  const azure::PropertyBag bag = {
      {"$.mid", "12345"}, {"$.ct", std::nullopt}, {"alert", "hot"}, {"flag", std::nullopt}};
  EXPECT_EQ(MeteredBytes("body", bag), 4 + 5 + std::string("alert").size() + 3 + 4);
  EXPECT_EQ(MeteredBytes("", {}), 0);
}

}  // namespace
}  // namespace iothub::emulator
