#include <gtest/gtest.h>

#include <thread>

#include "core/slot_pool.h"
#include "core/status.h"

namespace vidscan {
namespace {

Expected<int> Half(int v) {
  if (v % 2) return MakeError(StatusCode::kInvalidArgument, "odd");
  return v / 2;
}

Expected<int> Quarter(int v) {
  VS_ASSIGN_OR_RETURN(int h, Half(v));
  return Half(h);
}

TEST(Status, CarriesCodeAndContext) {
  Status st = MakeError(StatusCode::kCorruptData, "bad slice").WithContext("a.mp4");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.ToString(), "corrupt data: a.mp4: bad slice");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

TEST(Expected, PropagatesErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(SlotPool, LeasesReturnSlotsAndAcquireBlocksWhenEmpty) {
  SlotPool pool(2);
  {
    SlotLease a(&pool, pool.Acquire());
    SlotLease b(&pool, pool.Acquire());
    EXPECT_NE(a.slot(), b.slot());
    EXPECT_FALSE(pool.TryAcquire().has_value());
    std::thread releaser([lease = std::move(a)]() mutable { lease.Reset(); });
    int c = pool.Acquire();  // blocks until the other thread gives its slot back
    releaser.join();
    pool.Release(c);
  }
  EXPECT_EQ(pool.free_count(), 2);
}

}  // namespace
}  // namespace vidscan
