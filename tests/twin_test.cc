#include "emulator/twin.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace iothub::emulator {
namespace {

constexpr std::int64_t kT0 = 1'700'000'000'000;

// {"l1":{"l2":...{"lN":"leaf"}}}: the root object plus `levels` nested objects below it.
Json Nested(int levels) {
  Json inner = "leaf";
  for (int i = levels; i >= 1; --i) inner = Json{{"l" + std::to_string(i), inner}};
  return inner;
}

// An object with 8 string members whose size by IoT Hub's rule (key lengths plus string
// lengths) is exactly `bytes` (16 <= bytes <= 16 + 8 * 4096).
Json OfTwinSize(std::size_t bytes) {
  // Keys "k0".."k7" count 2 each.
  std::size_t remaining = bytes - 16;
  Json j = Json::object();
  for (int i = 0; i < 8; ++i) {
    const std::size_t len = std::min<std::size_t>(remaining, 4096);
    j["k" + std::to_string(i)] = std::string(len, 'x');
    remaining -= len;
  }
  EXPECT_EQ(remaining, 0u);
  return j;
}

std::string ErrorOf(const Status& s) { return s.ok() ? "" : s.error().message; }

// ---- ValidateTwinPatch ----

TEST(ValidateTwinPatchTest, MustBeAnObject) {
  EXPECT_FALSE(ValidateTwinPatch(Json::array()).ok());
  EXPECT_FALSE(ValidateTwinPatch(Json("x")).ok());
  EXPECT_FALSE(ValidateTwinPatch(Json(nullptr)).ok());
  EXPECT_FALSE(ValidateTwinPatch(Json(3)).ok());
  EXPECT_TRUE(ValidateTwinPatch(Json::object()).ok());
}

TEST(ValidateTwinPatchTest, ErrorsCarryArgumentInvalid) {
  const Status s = ValidateTwinPatch(Json{{"a.b", 1}});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "ArgumentInvalid");
  EXPECT_NE(s.error().message.find("a.b"), std::string::npos) << s.error().message;
}

TEST(ValidateTwinPatchTest, ForbiddenKeyCharacters) {
  const std::vector<std::string> bad = {"a.b",  "$version", "a b",   std::string("a\x01"),
                                        "\x1f", "a\x7f",    "tab\t", ""};
  for (const std::string& key : bad) {
    EXPECT_FALSE(ValidateTwinPatch(Json{{key, 1}}).ok()) << "key '" << key << "'";
    EXPECT_FALSE(ValidateTwinPatch(Json{{"outer", {{key, 1}}}}).ok()) << "nested '" << key << "'";
  }
  EXPECT_TRUE(ValidateTwinPatch(Json{{"a-b_c:d@e#f", 1}}).ok());
  EXPECT_TRUE(ValidateTwinPatch(Json{{"température", 1}}).ok());
}

TEST(ValidateTwinPatchTest, KeysInsideArraysAreChecked) {
  EXPECT_FALSE(ValidateTwinPatch(Json{{"list", Json::array({Json{{"a.b", 1}}})}}).ok());
  EXPECT_TRUE(ValidateTwinPatch(Json{{"list", Json::array({Json{{"ab", 1}}, 2, "s"})}}).ok());
}

TEST(ValidateTwinPatchTest, KeyLengthAtAndOverTheLimit) {
  EXPECT_TRUE(ValidateTwinPatch(Json{{std::string(1024, 'k'), 1}}).ok());
  EXPECT_FALSE(ValidateTwinPatch(Json{{std::string(1025, 'k'), 1}}).ok());
}

TEST(ValidateTwinPatchTest, StringLengthAtAndOverTheLimit) {
  EXPECT_TRUE(ValidateTwinPatch(Json{{"s", std::string(4096, 'v')}}).ok());
  const Status over = ValidateTwinPatch(Json{{"s", std::string(4097, 'v')}});
  EXPECT_FALSE(over.ok());
  EXPECT_NE(ErrorOf(over).find("4096"), std::string::npos) << ErrorOf(over);
  EXPECT_FALSE(ValidateTwinPatch(Json{{"a", {{"b", std::string(5 * 1024, 'v')}}}}).ok());
  EXPECT_FALSE(ValidateTwinPatch(Json{{"a", Json::array({std::string(4097, 'v')})}}).ok());
}

TEST(ValidateTwinPatchTest, CustomLimitsApply) {
  TwinLimits limits;
  limits.max_key_bytes = 3;
  limits.max_string_bytes = 2;
  EXPECT_TRUE(ValidateTwinPatch(Json{{"abc", "xy"}}, limits).ok());
  EXPECT_FALSE(ValidateTwinPatch(Json{{"abcd", "xy"}}, limits).ok());
  EXPECT_FALSE(ValidateTwinPatch(Json{{"abc", "xyz"}}, limits).ok());
}

TEST(ValidateTwinPatchTest, NineLevelsBelowTheRootAreAccepted) {
  EXPECT_TRUE(ValidateTwinPatch(Nested(9)).ok()) << ErrorOf(ValidateTwinPatch(Nested(9)));
}

TEST(ValidateTwinPatchTest, ElevenObjectLevelsBelowTheSectionAreRejected) {
  // Nested(12) is one level deeper than Microsoft's documented ten-level example.
  const Status s = ValidateTwinPatch(Nested(12));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(ErrorOf(s).find("depth"), std::string::npos) << ErrorOf(s);
}

TEST(ValidateTwinPatchTest, DocumentedTenLevelExampleIsAccepted) {
  // iot-hub-devguide-device-twins.md, "Depth": {"one":{"two":...{"ten":{"property":"value"}}}}
  // is a valid value for tags/desired/reported.
  Json ten = {{"property", "value"}};
  for (const char* name :
       {"ten", "nine", "eight", "seven", "six", "five", "four", "three", "two", "one"}) {
    ten = Json{{name, ten}};
  }
  EXPECT_TRUE(ValidateTwinPatch(ten).ok()) << ErrorOf(ValidateTwinPatch(ten));
  EXPECT_TRUE(ValidateTwinPatch(Nested(11)).ok()) << "the same shape as the example";
}

TEST(ValidateTwinPatchTest, ObjectsInsideArraysCountTowardsDepth) {
  // {"a":[{"a":[...]}]}: an array and the object in it are one level each.
  auto wrapped = [](int pairs) {
    Json j = Json{{"leaf", 1}};
    for (int i = 0; i < pairs; ++i) j = Json{{"a", Json::array({j})}};
    return j;
  };
  EXPECT_TRUE(ValidateTwinPatch(wrapped(4)).ok()) << ErrorOf(ValidateTwinPatch(wrapped(4)));
  EXPECT_FALSE(ValidateTwinPatch(wrapped(6)).ok());
  EXPECT_TRUE(ValidateTwinPatch(Json{{"a", Json::array({1, "s", true})}}).ok());
}

// ---- ApplyTwinPatch: merge-patch semantics (RFC 7396) ----

TEST(ApplyTwinPatchTest, AddsAndReplacesMembers) {
  TwinSection s;
  ASSERT_TRUE(ApplyTwinPatch(s, Json{{"a", 1}, {"b", "x"}}, kT0).ok());
  ASSERT_TRUE(ApplyTwinPatch(s, Json{{"b", "y"}, {"c", true}}, kT0 + 1).ok());
  EXPECT_EQ(s.values, (Json{{"a", 1}, {"b", "y"}, {"c", true}}));
}

TEST(ApplyTwinPatchTest, NullDeletesAtAnyLevel) {
  TwinSection s;
  s.values = Json::parse(R"({"a":1,"o":{"x":1,"y":2},"keep":3})");
  ASSERT_TRUE(ApplyTwinPatch(s, Json::parse(R"({"a":null,"o":{"x":null}})"), kT0).ok());
  EXPECT_EQ(s.values, Json::parse(R"({"o":{"y":2},"keep":3})"));
  ASSERT_TRUE(ApplyTwinPatch(s, Json::parse(R"({"o":null,"missing":null})"), kT0).ok());
  EXPECT_EQ(s.values, Json::parse(R"({"keep":3})"));
}

TEST(ApplyTwinPatchTest, ObjectsMergeRecursively) {
  TwinSection s;
  s.values = Json::parse(R"({"o":{"a":1,"i":{"p":1,"q":2}}})");
  ASSERT_TRUE(ApplyTwinPatch(s, Json::parse(R"({"o":{"b":2,"i":{"q":3}}})"), kT0).ok());
  EXPECT_EQ(s.values, Json::parse(R"({"o":{"a":1,"b":2,"i":{"p":1,"q":3}}})"));
}

TEST(ApplyTwinPatchTest, ObjectReplacesScalarAndScalarReplacesObject) {
  TwinSection s;
  s.values = Json::parse(R"({"a":5,"o":{"x":1}})");
  ASSERT_TRUE(ApplyTwinPatch(s, Json::parse(R"({"a":{"n":{"z":null,"k":1}},"o":7})"), kT0).ok());
  // A null inside a new object is not stored (RFC 7396).
  EXPECT_EQ(s.values, Json::parse(R"({"a":{"n":{"k":1}},"o":7})"));
}

TEST(ApplyTwinPatchTest, ArraysAreReplacedWholesale) {
  TwinSection s;
  s.values = Json::parse(R"({"l":[1,2,3]})");
  ASSERT_TRUE(ApplyTwinPatch(s, Json::parse(R"({"l":[9]})"), kT0).ok());
  EXPECT_EQ(s.values, Json::parse(R"({"l":[9]})"));
}

TEST(ApplyTwinPatchTest, BumpsVersionAndTimestampOnSuccess) {
  TwinSection s;
  EXPECT_EQ(s.version, 1);
  ASSERT_TRUE(ApplyTwinPatch(s, Json{{"a", 1}}, kT0 + 5).ok());
  EXPECT_EQ(s.version, 2);
  EXPECT_EQ(s.last_updated_ms, kT0 + 5);
  ASSERT_TRUE(ApplyTwinPatch(s, Json::object(), kT0 + 9).ok());
  EXPECT_EQ(s.version, 3);
  EXPECT_EQ(s.last_updated_ms, kT0 + 9);
}

TEST(ApplyTwinPatchTest, InvalidPatchLeavesSectionUntouched) {
  TwinSection s;
  ASSERT_TRUE(ApplyTwinPatch(s, Json{{"a", 1}}, kT0).ok());
  const Json before = s.values;
  EXPECT_FALSE(ApplyTwinPatch(s, Json{{"b", 2}, {"bad.key", 3}}, kT0 + 1).ok());
  EXPECT_FALSE(ApplyTwinPatch(s, Json::array({1}), kT0 + 1).ok());
  EXPECT_EQ(s.values, before);
  EXPECT_EQ(s.version, 2);
  EXPECT_EQ(s.last_updated_ms, kT0);
}

TEST(ApplyTwinPatchTest, SectionSizeAtAndOverTheLimit) {
  // The hub measures a section by key and value lengths, as Microsoft documents.
  TwinSection s;
  const Json at = OfTwinSize(32 * 1024);
  EXPECT_TRUE(ApplyTwinPatch(s, at, kT0).ok());
  EXPECT_EQ(s.version, 2);
  Json one_more = Json::object();
  one_more["k7"] = at["k7"].get<std::string>() + "x";
  const Status over = ApplyTwinPatch(s, one_more, kT0 + 1);
  EXPECT_FALSE(over.ok());
  EXPECT_NE(ErrorOf(over).find("32769"), std::string::npos) << ErrorOf(over);
  EXPECT_EQ(s.values, at);
  EXPECT_EQ(s.version, 2);
}

TEST(ApplyTwinPatchTest, DeletingMakesRoomUnderTheLimit) {
  TwinSection s;
  ASSERT_TRUE(ApplyTwinPatch(s, OfTwinSize(32 * 1024), kT0).ok());
  // Deleting k0 and adding a new member in the same patch is measured on the result.
  EXPECT_TRUE(ApplyTwinPatch(s, Json{{"k0", nullptr}, {"n", std::string(100, 'y')}}, kT0).ok());
  EXPECT_FALSE(s.values.contains("k0"));
  EXPECT_EQ(s.values["n"], std::string(100, 'y'));
}

TEST(ApplyTwinPatchTest, SizeIsMeasuredAsMicrosoftDocuments) {
  // 8 members of key 1 byte + value 4095 bytes = 32,760 bytes by IoT Hub's rule (limit 32,768);
  // its compact JSON is 32,817 bytes.
  Json doc = Json::object();
  for (int i = 0; i < 8; ++i)
    doc[std::string(1, static_cast<char>('a' + i))] = std::string(4095, 'v');
  TwinSection s;
  EXPECT_TRUE(ApplyTwinPatch(s, doc, kT0).ok()) << ErrorOf(ApplyTwinPatch(s, doc, kT0));
  // 3,000 numeric members with 5-byte keys: 3,000 * (5 + 8) = 39,000 bytes by IoT Hub's rule,
  // over the limit; its compact JSON is only about 30 KB.
  Json numbers = Json::object();
  for (int i = 0; i < 3000; ++i) numbers["k" + std::to_string(1000 + i)] = 1;
  TwinSection n;
  EXPECT_FALSE(ApplyTwinPatch(n, numbers, kT0).ok());
}

// ---- ReplaceTwinSection ----

TEST(ReplaceTwinSectionTest, ReplacesWholesaleAndBumpsVersion) {
  TwinSection s;
  s.values = Json::parse(R"({"a":1,"b":2})");
  ASSERT_TRUE(ReplaceTwinSection(s, Json{{"c", 3}}, kT0 + 7).ok());
  EXPECT_EQ(s.values, (Json{{"c", 3}}));
  EXPECT_EQ(s.version, 2);
  EXPECT_EQ(s.last_updated_ms, kT0 + 7);
}

TEST(ReplaceTwinSectionTest, ValidatesLikeAPatch) {
  TwinSection s;
  s.values = Json{{"a", 1}};
  EXPECT_FALSE(ReplaceTwinSection(s, Json{{"x y", 1}}, kT0).ok());
  EXPECT_FALSE(ReplaceTwinSection(s, Nested(12), kT0).ok());
  EXPECT_FALSE(ReplaceTwinSection(s, OfTwinSize(32 * 1024 + 1), kT0).ok());
  EXPECT_TRUE(ReplaceTwinSection(s, OfTwinSize(32 * 1024), kT0).ok());
  EXPECT_EQ(s.version, 2);
}

// ---- rendering ----

TEST(TwinRenderingTest, DeviceViewAddsVersionOnly) {
  TwinSection s;
  s.values = Json{{"a", 1}};
  s.version = 7;
  EXPECT_EQ(SectionForDevice(s), (Json{{"a", 1}, {"$version", 7}}));
}

TEST(TwinRenderingTest, ServiceViewAddsMetadataPerMember) {
  TwinSection s;
  s.values = Json{{"a", 1}, {"b", {{"c", 2}}}};
  s.version = 4;
  s.last_updated_ms = kT0;
  const Json out = SectionForService(s);
  EXPECT_EQ(out["a"], 1);
  EXPECT_EQ(out["$version"], 4);
  EXPECT_EQ(out["$metadata"]["$lastUpdated"], "2023-11-14T22:13:20.0000000Z");
  EXPECT_EQ(out["$metadata"]["a"]["$lastUpdated"], "2023-11-14T22:13:20.0000000Z");
  EXPECT_EQ(out["$metadata"]["b"]["$lastUpdated"], "2023-11-14T22:13:20.0000000Z");
}

}  // namespace
}  // namespace iothub::emulator
