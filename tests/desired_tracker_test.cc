#include "azure/desired_tracker.h"

#include <gtest/gtest.h>

#include "common/json_merge_patch.h"

namespace iothub::azure {
namespace {

Json Doc(const char* text) { return Json::parse(text); }

TEST(MergeDiffTest, AddsChangesAndNullsRemovals) {
  EXPECT_EQ(MergeDiff(Doc(R"({"a":1,"b":2,"n":{"x":1,"y":2}})"),
                      Doc(R"({"a":1,"c":3,"n":{"x":1,"y":5}})")),
            Doc(R"({"b":null,"c":3,"n":{"y":5}})"));
  EXPECT_EQ(MergeDiff(Doc("{}"), Doc("{}")), Doc("{}"));
  EXPECT_EQ(MergeDiff(Doc(R"({"a":{"x":1}})"), Doc(R"({"a":7})")), Doc(R"({"a":7})"));
}

TEST(DesiredTrackerTest, NeedsAFullGetFirstAndBuffersEarlyPatches) {
  DesiredTracker t;
  EXPECT_TRUE(t.NeedsFullGet());
  EXPECT_TRUE(t.OnPatch(Doc(R"({"rate":5,"$version":4})")).empty()) << "no baseline yet";
  auto first = t.OnFullDocument(Doc(R"({"rate":2,"mode":"eco","$version":3,"$metadata":{}})"));
  ASSERT_TRUE(first);
  // The document (v3) plus the buffered v4, folded into one change.
  EXPECT_EQ(first->patch, Doc(R"({"rate":5,"mode":"eco"})"));
  EXPECT_EQ(first->version, 4);
  EXPECT_EQ(t.desired(), Doc(R"({"rate":5,"mode":"eco"})"));
  EXPECT_FALSE(t.NeedsFullGet());
}

TEST(DesiredTrackerTest, ADeletionInABufferedPatchSurvivesFolding) {
  DesiredTracker t;
  EXPECT_TRUE(t.OnPatch(Doc(R"({"a":null,"$version":3})")).empty());
  auto change = t.OnFullDocument(Doc(R"({"a":1,"b":1,"$version":2})"));
  ASSERT_TRUE(change);
  EXPECT_EQ(change->patch, Doc(R"({"a":null,"b":1})")) << "a was set by v2, then deleted by v3";
  EXPECT_EQ(t.desired(), Doc(R"({"b":1})"));
}

TEST(DesiredTrackerTest, AppliesInOrderExactlyOnce) {
  DesiredTracker t;
  ASSERT_TRUE(t.OnFullDocument(Doc(R"({"a":1,"$version":1})")));
  auto two = t.OnPatch(Doc(R"({"b":2,"$version":2})"));
  ASSERT_EQ(two.size(), 1u);
  EXPECT_EQ(two[0].version, 2);
  EXPECT_TRUE(t.OnPatch(Doc(R"({"b":2,"$version":2})")).empty()) << "duplicate";
  EXPECT_TRUE(t.OnPatch(Doc(R"({"a":0,"$version":1})")).empty()) << "stale";
  EXPECT_EQ(t.desired(), Doc(R"({"a":1,"b":2})"));
}

TEST(DesiredTrackerTest, AGapAsksForAFullGetAndIsFilledInOrder) {
  DesiredTracker t;
  ASSERT_TRUE(t.OnFullDocument(Doc(R"({"$version":1})")));
  EXPECT_TRUE(t.OnPatch(Doc(R"({"c":3,"$version":3})")).empty());
  EXPECT_TRUE(t.NeedsFullGet()) << "version 2 is missing";
  auto filled = t.OnPatch(Doc(R"({"b":2,"$version":2})"));
  ASSERT_EQ(filled.size(), 2u);
  EXPECT_EQ(filled[0].version, 2);
  EXPECT_EQ(filled[1].version, 3);
  EXPECT_FALSE(t.NeedsFullGet());
  EXPECT_EQ(t.desired(), Doc(R"({"b":2,"c":3})"));
}

TEST(DesiredTrackerTest, ReconnectMissedChangesComeFromTheFullDocument) {
  DesiredTracker t;
  ASSERT_TRUE(t.OnFullDocument(Doc(R"({"a":1,"b":1,"$version":5})")));
  t.OnReconnect();
  EXPECT_TRUE(t.NeedsFullGet());
  // While away: a deleted, b changed, c added (versions 6..8).
  auto change = t.OnFullDocument(Doc(R"({"b":2,"c":3,"$version":8})"));
  ASSERT_TRUE(change);
  EXPECT_EQ(change->patch, Doc(R"({"a":null,"b":2,"c":3})"));
  EXPECT_EQ(change->version, 8);
  // The same document again (a second GET) changes nothing.
  EXPECT_FALSE(t.OnFullDocument(Doc(R"({"b":2,"c":3,"$version":8})")));
  // A late push of version 7 is stale.
  EXPECT_TRUE(t.OnPatch(Doc(R"({"b":9,"$version":7})")).empty());
  EXPECT_EQ(t.desired(), Doc(R"({"b":2,"c":3})"));
}

TEST(DesiredTrackerTest, PatchesWithoutAVersionAreIgnored) {
  DesiredTracker t;
  ASSERT_TRUE(t.OnFullDocument(Doc(R"({"$version":1})")));
  EXPECT_TRUE(t.OnPatch(Doc(R"({"x":1})")).empty());
  EXPECT_TRUE(t.OnPatch(Doc(R"({"x":1,"$version":"2"})")).empty());
  EXPECT_FALSE(t.OnFullDocument(Doc(R"({"x":1})")));
  EXPECT_EQ(t.desired(), Doc("{}"));
}

}  // namespace
}  // namespace iothub::azure
