#include "azure/property_bag.h"

#include <gtest/gtest.h>

namespace iothub::azure {
namespace {

PropertyBag ParseOk(std::string_view text) {
  auto bag = ParsePropertyBag(text);
  EXPECT_TRUE(bag.ok()) << text << ": " << (bag.ok() ? "" : bag.error().message);
  return bag.ok() ? *bag : PropertyBag{};
}

TEST(PropertyBagTest, ParsesTelemetryExampleFromReference) {
  constexpr std::string_view kBag =
      "%24.mid=mid-1&%24.ct=application%2Fjson&%24.ce=utf-8&alert=hot%20%26%20humid";
  const PropertyBag expected = {{"$.mid", "mid-1"},
                                {"$.ct", "application/json"},
                                {"$.ce", "utf-8"},
                                {"alert", "hot & humid"}};
  EXPECT_EQ(ParseOk(kBag), expected);
  EXPECT_EQ(EncodePropertyBag(expected), kBag);
}

TEST(PropertyBagTest, ParsesDeviceboundExampleFromReference) {
  constexpr std::string_view kBag =
      "%24.mid=6b82...&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&color=blue";
  const PropertyBag bag = ParseOk(kBag);
  const PropertyBag expected = {
      {"$.mid", "6b82..."}, {"$.to", "/devices/dev1/messages/devicebound"}, {"color", "blue"}};
  EXPECT_EQ(bag, expected);
  EXPECT_EQ(FindProperty(bag, kMessageId), "6b82...");
  EXPECT_EQ(FindProperty(bag, kTo), "/devices/dev1/messages/devicebound");
  EXPECT_EQ(EncodePropertyBag(bag), kBag);
}

TEST(PropertyBagTest, RawDollarAndPercentFormsAreTheSame) {
  const PropertyBag raw = ParseOk("$.mid=m1&$.cid=c1&$.ct=application%2Fjson&$.sub=thermostat1");
  const PropertyBag encoded =
      ParseOk("%24.mid=m1&%24.cid=c1&%24.ct=application%2Fjson&%24.sub=thermostat1");
  ASSERT_EQ(raw.size(), 4u);
  EXPECT_EQ(raw, encoded);
  EXPECT_EQ(raw[0].name, "$.mid");
  EXPECT_EQ(FindProperty(raw, kCorrelationId), "c1");
  EXPECT_EQ(FindProperty(raw, kComponent), "thermostat1");
  // The encoder always writes the SDK form.
  EXPECT_EQ(EncodePropertyBag(raw),
            "%24.mid=m1&%24.cid=c1&%24.ct=application%2Fjson&%24.sub=thermostat1");
}

TEST(PropertyBagTest, LowercaseEscapesDecode) {
  EXPECT_EQ(ParseOk("%24.to=%2fdevices%2fdev1"), (PropertyBag{{"$.to", "/devices/dev1"}}));
}

TEST(PropertyBagTest, NullAndEmptyValuesAreDistinct) {
  const PropertyBag bag = ParseOk("flag&empty=&full=1");
  ASSERT_EQ(bag.size(), 3u);
  EXPECT_EQ(bag[0], (Property{"flag", std::nullopt}));
  EXPECT_EQ(bag[1], (Property{"empty", ""}));
  EXPECT_EQ(bag[2], (Property{"full", "1"}));
  EXPECT_EQ(FindProperty(bag, "flag"), std::nullopt);
  EXPECT_EQ(FindProperty(bag, "empty"), std::optional<std::string>(""));
  EXPECT_EQ(EncodePropertyBag(bag), "flag&empty=&full=1");
}

TEST(PropertyBagTest, EmptyBags) {
  EXPECT_TRUE(ParseOk("").empty());
  EXPECT_TRUE(ParseOk("/").empty());
  EXPECT_EQ(EncodePropertyBag({}), "");
}

TEST(PropertyBagTest, EncodesSpecialCharactersWithUppercaseHex) {
  const PropertyBag bag = {{"a b", "x&y=z/%"}, {"ü", "✓"}, {"$.ct", "text/plain; charset=utf-8"}};
  EXPECT_EQ(EncodePropertyBag(bag),
            "a%20b=x%26y%3Dz%2F%25&%C3%BC=%E2%9C%93&%24.ct=text%2Fplain%3B%20charset%3Dutf-8");
}

TEST(PropertyBagTest, RoundTripsSpecialCharacters) {
  const PropertyBag bag = {{"$.mid", "id with spaces"},
                           {"amp&ersand", "a&b&c"},
                           {"eq=uals", "1=2=3"},
                           {"path", "/devices/dev1/messages/devicebound"},
                           {"unicode", "温度 Grüße ✓"},
                           {"percent", "100% %24 %zz"},
                           {"plus", "a+b"},
                           {"null", std::nullopt},
                           {"empty", ""}};
  const std::string encoded = EncodePropertyBag(bag);
  EXPECT_EQ(encoded.find(' '), std::string::npos) << encoded;
  EXPECT_EQ(ParseOk(encoded), bag);
}

TEST(PropertyBagTest, ValueSplitsAtFirstEquals) {
  EXPECT_EQ(ParseOk("k=a=b"), (PropertyBag{{"k", "a=b"}}));
}

TEST(PropertyBagTest, PlusIsNotASpace) { EXPECT_EQ(FindProperty(ParseOk("k=a+b"), "k"), "a+b"); }

TEST(PropertyBagTest, EmptyEntriesAreSkipped) {
  EXPECT_EQ(ParseOk("a=1&&b=2&"), (PropertyBag{{"a", "1"}, {"b", "2"}}));
}

TEST(PropertyBagTest, KeepsWireOrderAndDuplicates) {
  const PropertyBag bag = ParseOk("k=1&z=0&k=2");
  EXPECT_EQ(bag, (PropertyBag{{"k", "1"}, {"z", "0"}, {"k", "2"}}));
  EXPECT_EQ(FindProperty(bag, "k"), "1");
  EXPECT_EQ(FindProperty(bag, "missing"), std::nullopt);
}

TEST(PropertyBagTest, RejectsBadEscapesAndEmptyNames) {
  for (std::string_view bad : {"%zz=1", "a=%4", "a=%", "ok=1&b=%g1", "=value", "%24.mid=1&=2"}) {
    auto bag = ParsePropertyBag(bad);
    ASSERT_FALSE(bag.ok()) << bad;
    EXPECT_EQ(bag.error().code, "InvalidPropertyBag") << bad;
    EXPECT_FALSE(bag.error().message.empty()) << bad;
  }
  EXPECT_NE(ParsePropertyBag("=value").error().message.find("empty name"), std::string::npos);
  EXPECT_NE(ParsePropertyBag("color=%g1").error().message.find("color"), std::string::npos);
}

TEST(PropertyBagTest, SystemPropertyNames) {
  EXPECT_EQ(kMessageId, "$.mid");
  EXPECT_EQ(kCorrelationId, "$.cid");
  EXPECT_EQ(kContentType, "$.ct");
  EXPECT_EQ(kContentEncoding, "$.ce");
  EXPECT_EQ(kExpiryTime, "$.exp");
  EXPECT_EQ(kTo, "$.to");
  EXPECT_EQ(kUserId, "$.uid");
  EXPECT_EQ(kComponent, "$.sub");
  EXPECT_TRUE(IsSystemProperty("$.mid"));
  EXPECT_TRUE(IsSystemProperty(kComponent));
  EXPECT_FALSE(IsSystemProperty("$mid"));
  EXPECT_FALSE(IsSystemProperty("%24.mid"));
  EXPECT_FALSE(IsSystemProperty("mid"));
  EXPECT_FALSE(IsSystemProperty(""));
}

}  // namespace
}  // namespace iothub::azure
