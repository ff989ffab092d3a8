#include "emulator/topics.h"

#include <gtest/gtest.h>

#include <string>

namespace iothub::emulator {
namespace {

template <typename T>
T As(const DevicePublish& kind, const std::string& topic) {
  EXPECT_TRUE(std::holds_alternative<T>(kind)) << topic << " classified as index " << kind.index();
  return std::holds_alternative<T>(kind) ? std::get<T>(kind) : T{};
}

bool Forbidden(std::string_view device, std::string_view topic) {
  return std::holds_alternative<ForbiddenTopic>(ClassifyPublish(device, topic));
}

// ---- TopicQueryParam ----

TEST(TopicQueryParamTest, FindsParametersInAnyPosition) {
  const std::string topic = "$iothub/twin/res/204/?$rid=17&$version=5";
  EXPECT_EQ(TopicQueryParam(topic, "$rid"), "17");
  EXPECT_EQ(TopicQueryParam(topic, "$version"), "5");
}

TEST(TopicQueryParamTest, MissingQueryOrNameIsNullopt) {
  EXPECT_EQ(TopicQueryParam("$iothub/twin/GET/", "$rid"), std::nullopt);
  EXPECT_EQ(TopicQueryParam("a/?x=1", "$rid"), std::nullopt);
  EXPECT_EQ(TopicQueryParam("a/?", "$rid"), std::nullopt);
}

TEST(TopicQueryParamTest, NameMustMatchWholly) {
  EXPECT_EQ(TopicQueryParam("a/?$ri=1&$ridx=2", "$rid"), std::nullopt);
  EXPECT_EQ(TopicQueryParam("a/?$ridx=2&$rid=3", "$rid"), "3");
}

TEST(TopicQueryParamTest, ValueWithoutEqualsIsEmptyAndNotDecoded) {
  EXPECT_EQ(TopicQueryParam("a/?flag&b=2", "flag"), "");
  EXPECT_EQ(TopicQueryParam("a/?b=x%20y", "b"), "x%20y");
  EXPECT_EQ(TopicQueryParam("a/?b=", "b"), "");
}

TEST(TopicQueryParamTest, FirstOccurrenceWins) {
  EXPECT_EQ(TopicQueryParam("a/?k=1&k=2", "k"), "1");
}

// ---- ClassifyPublish: telemetry ----

TEST(ClassifyPublishTest, TelemetryWithAndWithoutBag) {
  EXPECT_EQ(As<TelemetryTopic>(ClassifyPublish("dev1", "devices/dev1/messages/events/"), "").bag,
            "");
  EXPECT_EQ(As<TelemetryTopic>(ClassifyPublish("dev1", "devices/dev1/messages/events"), "").bag,
            "");
  const std::string topic = "devices/dev1/messages/events/%24.mid=mid-1&alert=hot%20%26%20humid";
  EXPECT_EQ(As<TelemetryTopic>(ClassifyPublish("dev1", topic), topic).bag,
            "%24.mid=mid-1&alert=hot%20%26%20humid");
}

TEST(ClassifyPublishTest, TelemetryOfAnotherDeviceIsForbidden) {
  EXPECT_TRUE(Forbidden("dev1", "devices/dev2/messages/events/"));
  EXPECT_TRUE(Forbidden("dev1", "devices/dev10/messages/events/"));
  EXPECT_TRUE(Forbidden("dev10", "devices/dev1/messages/events/"));
  EXPECT_TRUE(Forbidden("dev1", "devices/+/messages/events/"));
}

TEST(ClassifyPublishTest, OtherDeviceTopicsAreForbidden) {
  EXPECT_TRUE(Forbidden("dev1", "devices/dev1/messages/devicebound/x"));
  EXPECT_TRUE(Forbidden("dev1", "devices/dev1/messages/event"));
  EXPECT_TRUE(Forbidden("dev1", "devices/dev1/messages/eventsX"));
  EXPECT_TRUE(Forbidden("dev1", "devices/dev1"));
  EXPECT_TRUE(Forbidden("dev1", "devices/dev1/"));
  EXPECT_TRUE(Forbidden("dev1", "devices/dev1/modules/m1/messages/events/"));
  EXPECT_TRUE(Forbidden("dev1", ""));
  EXPECT_TRUE(Forbidden("dev1", "random/topic"));
  EXPECT_TRUE(Forbidden("dev1", "$iothub/twin/PATCH/properties/desired/?$version=1"));
  EXPECT_TRUE(Forbidden("dev1", "$iothub/methods/POST/m/?$rid=1"));
}

// ---- ClassifyPublish: twin ----

TEST(ClassifyPublishTest, TwinGetYieldsRid) {
  EXPECT_EQ(As<TwinGetTopic>(ClassifyPublish("d", "$iothub/twin/GET/?$rid=42"), "").rid, "42");
  EXPECT_EQ(As<TwinGetTopic>(ClassifyPublish("d", "$iothub/twin/GET/?%24rid=ab-c"), "").rid,
            "ab-c");
  EXPECT_EQ(As<TwinGetTopic>(ClassifyPublish("d", "$iothub/twin/GET/?x=1&$rid=7"), "").rid, "7");
}

TEST(ClassifyPublishTest, TwinGetWithoutRidIsForbidden) {
  EXPECT_TRUE(Forbidden("d", "$iothub/twin/GET/"));
  EXPECT_TRUE(Forbidden("d", "$iothub/twin/GET/?$rid="));
  EXPECT_TRUE(Forbidden("d", "$iothub/twin/GET/?rid=1"));
  EXPECT_TRUE(Forbidden("d", "$iothub/twin/GET?$rid=1"));
  EXPECT_TRUE(Forbidden("d", "$iothub/twin/get/?$rid=1"));
}

TEST(ClassifyPublishTest, ReportedPatchYieldsRid) {
  const std::string topic = "$iothub/twin/PATCH/properties/reported/?$rid=9&$version=3";
  EXPECT_EQ(As<TwinReportedPatchTopic>(ClassifyPublish("d", topic), topic).rid, "9");
  EXPECT_TRUE(Forbidden("d", "$iothub/twin/PATCH/properties/reported/"));
  EXPECT_TRUE(Forbidden("d", "$iothub/twin/PATCH/properties/desired/?$rid=1"));
}

// ---- ClassifyPublish: method responses ----

TEST(ClassifyPublishTest, MethodResponseYieldsStatusAndRid) {
  const auto r =
      As<MethodResponseTopic>(ClassifyPublish("d", "$iothub/methods/res/200/?$rid=1f"), "res/200");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.rid, "1f");
  const auto r2 =
      As<MethodResponseTopic>(ClassifyPublish("d", "$iothub/methods/res/404/?%24rid=x"), "res/404");
  EXPECT_EQ(r2.status, 404);
  EXPECT_EQ(r2.rid, "x");
}

TEST(ClassifyPublishTest, MalformedMethodResponsesAreForbidden) {
  EXPECT_TRUE(Forbidden("d", "$iothub/methods/res/200"));
  EXPECT_TRUE(Forbidden("d", "$iothub/methods/res/200/"));
  EXPECT_TRUE(Forbidden("d", "$iothub/methods/res/200/?$rid="));
  EXPECT_TRUE(Forbidden("d", "$iothub/methods/res//?$rid=1"));
  EXPECT_TRUE(Forbidden("d", "$iothub/methods/res/ok/?$rid=1"));
  EXPECT_TRUE(Forbidden("d", "$iothub/methods/res/20x/?$rid=1"));
  EXPECT_TRUE(Forbidden("d", "$iothub/methods/res/200/extra?$rid=1"));
  EXPECT_TRUE(Forbidden("d", "$iothub/methods/res/99999999999/?$rid=1"));
}

// ---- ClassifySubscription ----

TEST(ClassifySubscriptionTest, AllowedFilters) {
  EXPECT_EQ(ClassifySubscription("dev1", "devices/dev1/messages/devicebound/#"),
            Subscription::kCloudToDevice);
  EXPECT_EQ(ClassifySubscription("dev1", "devices/+/messages/devicebound/#"),
            Subscription::kCloudToDevice);
  EXPECT_EQ(ClassifySubscription("dev1", "$iothub/twin/res/#"), Subscription::kTwinResponses);
  EXPECT_EQ(ClassifySubscription("dev1", "$iothub/twin/PATCH/properties/desired/#"),
            Subscription::kDesiredPatches);
  EXPECT_EQ(ClassifySubscription("dev1", "$iothub/methods/POST/#"), Subscription::kMethods);
}

TEST(ClassifySubscriptionTest, ForeignOrWildcardFiltersAreRefused) {
  for (const char* filter :
       {"devices/dev2/messages/devicebound/#", "devices/dev10/messages/devicebound/#", "devices/#",
        "devices/+/#", "devices/dev1/#", "devices/dev1/messages/devicebound/+",
        "devices/dev1/messages/devicebound", "devices/dev1/messages/events/#", "#", "+/+",
        "$iothub/#", "$iothub/twin/#", "$iothub/twin/res/+", "$iothub/methods/#",
        "$iothub/methods/POST/+", "$iothub/twin/PATCH/properties/reported/#", ""}) {
    EXPECT_EQ(ClassifySubscription("dev1", filter), Subscription::kNone) << filter;
  }
}

TEST(ClassifySubscriptionTest, SubscriptionBitsAreDistinct) {
  const unsigned all = static_cast<unsigned>(Subscription::kCloudToDevice) |
                       static_cast<unsigned>(Subscription::kTwinResponses) |
                       static_cast<unsigned>(Subscription::kDesiredPatches) |
                       static_cast<unsigned>(Subscription::kMethods);
  EXPECT_EQ(all, 15u);
}

}  // namespace
}  // namespace iothub::emulator
