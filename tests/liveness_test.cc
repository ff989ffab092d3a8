// The liveness token that keeps late callbacks away from an owner that is gone.
#include "common/liveness.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>

namespace iothub {
namespace {

TEST(LivenessTest, AGuardedCallbackRunsWhileTheOwnerLivesAndNotAfter) {
  auto owner = std::make_unique<Liveness>();
  int calls = 0;
  std::function<void(int)> guarded = owner->Guard([&](int n) { calls += n; });
  const Liveness::Watch watch = owner->watch();
  guarded(2);
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(watch.alive());
  owner.reset();
  guarded(5);
  EXPECT_EQ(calls, 2) << "the owner is gone: nothing runs";
  EXPECT_FALSE(watch.alive());
}

TEST(LivenessTest, EachOwnerHasItsOwnToken) {
  std::optional<Liveness> first;
  first.emplace();
  Liveness second;
  const Liveness::Watch a = first->watch();
  const Liveness::Watch b = second.watch();
  first.reset();
  EXPECT_FALSE(a.alive());
  EXPECT_TRUE(b.alive());
}

}  // namespace
}  // namespace iothub
