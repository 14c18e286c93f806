// KvEventQueue: the client's bounded end of a watch, fed frame by frame.
#include "transport/kv_channel.h"

#include <gtest/gtest.h>

#include "testing.h"
#include "transport/uds/kv_wire_convert.h"

namespace packice {
namespace {

using std::chrono::steady_clock;

wire::KvWatchEvents Frame(std::initializer_list<std::pair<std::string, int64_t>> events) {
  wire::KvWatchEvents f;
  for (const auto& [key, rev] : events) {
    KvEvent e;
    e.kv.key = key;
    e.kv.value = "v";
    e.kv.mod_revision = rev;
    ToWire(e, f.add_events());
  }
  return f;
}

TEST(KvEventQueueTest, DeliversInOrderThenTheNodesEnd) {
  int cancels = 0, notifies = 0;
  KvEventQueue q(5, 100, 1 << 20, [&] { ++cancels; });
  q.SetNotify([&] { ++notifies; });
  EXPECT_EQ(q.resume_revision(), 5);
  ASSERT_TRUE(q.Deliver(Frame({{"a", 5}, {"b", 6}})));
  wire::KvWatchEvents end = Frame({{"c", 7}});
  end.set_end_code(static_cast<int32_t>(StatusCode::kNotFound));
  end.set_end_message("namespace deleted");
  end.set_resume_revision(8);
  EXPECT_FALSE(q.Deliver(end));
  auto got = q.Next(steady_clock::now(), 2);
  ASSERT_OK_R(got);
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[1].kv.key, "b");
  got = q.Next(steady_clock::now());
  ASSERT_OK_R(got);
  EXPECT_EQ((*got)[0].kv.key, "c");
  EXPECT_EQ(q.Next(steady_clock::now()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(q.resume_revision(), 8);
  EXPECT_EQ(cancels, 0);  // the node ended it: nothing to cancel
  EXPECT_EQ(notifies, 2);
}

TEST(KvEventQueueTest, OverflowInsideARevisionResumesAtItsStart) {
  int cancels = 0;
  KvEventQueue q(1, 4, 1 << 20, [&] { ++cancels; });
  ASSERT_TRUE(q.Deliver(Frame({{"a", 1}, {"b", 2}, {"c", 3}})));  // revision 3 begins...
  EXPECT_FALSE(q.Deliver(Frame({{"d", 3}, {"e", 3}})));           // ...and overflows
  EXPECT_EQ(cancels, 1);
  EXPECT_EQ(q.resume_revision(), 3);  // not 4: revision 3 was not buffered whole
  auto got = q.Next(steady_clock::now());
  ASSERT_OK_R(got);
  ASSERT_EQ(got->size(), 2u);  // 1 and 2; the part of 3 was dropped
  Status end = q.Next(steady_clock::now()).status();
  EXPECT_EQ(end.code(), StatusCode::kOutOfCapacity);
  EXPECT_NE(end.message().find("resume from revision 3"), std::string::npos) << end.ToString();
  q.Cancel();  // already ended: no second cancel
  EXPECT_EQ(cancels, 1);
}

TEST(KvEventQueueTest, CancelEndsOnceAndTimesOutWhenQuiet) {
  int cancels = 0;
  KvEventQueue q(0, 10, 1 << 20, [&] { ++cancels; });
  EXPECT_EQ(q.Next(steady_clock::now() + std::chrono::milliseconds(20)).status().code(),
            StatusCode::kTimeout);
  q.Cancel();
  q.Cancel();
  EXPECT_EQ(cancels, 1);
  EXPECT_EQ(q.Next(steady_clock::now()).status().code(), StatusCode::kAborted);
  EXPECT_FALSE(q.Deliver(Frame({{"late", 9}})));
}

}  // namespace
}  // namespace packice
