#include "core/hot_keys.h"

#include <gtest/gtest.h>

#include <string>

#include "testing.h"

namespace packice {
namespace {

using namespace std::chrono_literals;

TEST(HotKeyTrackerTest, RateSlidesOverTheWindow) {
  auto clock = std::make_shared<testing::FakeClock>();
  HotKeyTracker rates(clock, 1000ms);
  EXPECT_EQ(rates.Rate("k"), 0);
  for (int i = 1; i <= 10; ++i) EXPECT_EQ(rates.Record("k"), i);  // per second, window 1 s
  EXPECT_EQ(rates.Rate("other"), 0);
  clock->Advance(1500ms);  // half of the previous window still counts
  EXPECT_DOUBLE_EQ(rates.Rate("k"), 5);
  clock->Advance(500ms);  // the previous window has slid out
  EXPECT_DOUBLE_EQ(rates.Rate("k"), 0);
  EXPECT_EQ(rates.Record("k"), 1);
  clock->Advance(5000ms);  // idle for several windows: nothing left
  EXPECT_DOUBLE_EQ(rates.Rate("k"), 0);
}

TEST(HotKeyTrackerTest, ManyColdKeysDoNotMakeOneLookHot) {
  auto clock = std::make_shared<testing::FakeClock>();
  HotKeyTracker rates(clock, 1000ms, 1024);
  for (int i = 0; i < 2000; ++i) rates.Record("cold-" + std::to_string(i));
  // A count-min sketch over-counts only on collisions in all four rows: rare at this load.
  int looks_hot = 0;
  for (int i = 0; i < 2000; ++i) looks_hot += rates.Rate("cold-" + std::to_string(i)) >= 5;
  EXPECT_LT(looks_hot, 20);
}

}  // namespace
}  // namespace packice
