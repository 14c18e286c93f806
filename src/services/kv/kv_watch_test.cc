// Watch: order, prev values, prefixes, a slow watcher cancelled and resumed, compacted
// history, a future revision, history after a restart, a deleted namespace.
#include <gtest/gtest.h>

#include <thread>

#include "services/kv/kv_testing.h"

namespace packice {
namespace {

using kv_testing::OpenStore;
using kv_testing::SmallOptions;
using testing::TempDir;

auto Soon() { return std::chrono::steady_clock::now() + std::chrono::seconds(5); }
auto Now() { return std::chrono::steady_clock::now(); }

TEST(KvWatchTest, EventsInOrderWithPrevAndPrefix) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
  ASSERT_OK(s->CreateNamespace("/w", {.engine = KvEngine::kMemTable}));
  ASSERT_OK_AND_ASSIGN(auto w, s->Watch("/w", {.key = "a/", .prefix = true, .prev_kv = true}));
  ASSERT_OK_AND_ASSIGN(auto one, s->Watch("/w", {.key = "a/1"}));
  ASSERT_OK_R(s->Put("/w", "a/1", "x"));
  ASSERT_OK_R(s->Put("/w", "b", "not watched"));
  ASSERT_OK_R(s->Put("/w", "a/1", "y"));
  ASSERT_OK_R(s->Delete("/w", "a/1"));
  std::vector<BatchOp> batch = {{.key = "a/2", .value = "p"}, {.key = "a/3", .value = "q"}};
  ASSERT_OK_R(s->Commit("/w", batch));
  ASSERT_OK_AND_ASSIGN(auto ev, w->Next(Soon(), 100));
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].kv.mod_revision, 1);
  EXPECT_FALSE(ev[0].prev.has_value());
  EXPECT_EQ(ev[1].kv.value, "y");
  EXPECT_EQ(ev[1].prev->value, "x");
  EXPECT_EQ(ev[2].type, KvEvent::Type::kDelete);
  EXPECT_EQ(ev[2].kv.mod_revision, 4);
  EXPECT_EQ(ev[2].prev->value, "y");
  EXPECT_EQ(ev[3].kv.mod_revision, 5);
  EXPECT_EQ(ev[4].kv.mod_revision, 5);
  ASSERT_OK_AND_ASSIGN(auto ev1, one->Next(Soon(), 100));
  ASSERT_EQ(ev1.size(), 3u);
  EXPECT_FALSE(ev1[1].prev.has_value());  // not asked for
  EXPECT_CODE(one->Next(Now()), kTimeout);
  // From a past revision: history.
  ASSERT_OK_AND_ASSIGN(auto past, s->Watch("/w", {.key = "", .prefix = true, .start_revision = 2}));
  ASSERT_OK_AND_ASSIGN(auto pev, past->Next(Soon(), 100));
  ASSERT_EQ(pev.size(), 5u);
  EXPECT_EQ(pev[0].kv.key, "b");
  EXPECT_CODE(s->Watch("/w", {.key = "a", .start_revision = 7}), kInvalidArgument);
  ASSERT_OK_R(s->Watch("/w", {.key = "a", .start_revision = 6}));
}

TEST(KvWatchTest, SlowWatcherIsCancelledAndResumes) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
  ASSERT_OK(s->CreateNamespace("/w", {}));
  ASSERT_OK_AND_ASSIGN(auto w, s->Watch("/w", {.key = "k", .buffer_events = 4}));
  int notified = 0;
  w->SetNotify([&] { ++notified; });
  for (int i = 0; i < 10; ++i) ASSERT_OK_R(s->Put("/w", "k", std::to_string(i)));
  ASSERT_OK_AND_ASSIGN(auto ev, w->Next(Soon(), 100));
  ASSERT_EQ(ev.size(), 4u);
  auto end = w->Next(Soon());
  EXPECT_CODE(end, kOutOfCapacity);
  EXPECT_NE(end.status().message().find("too slow, resume from revision 5"), std::string::npos)
      << end.status().ToString();
  EXPECT_EQ(w->resume_revision(), 5);
  EXPECT_EQ(notified, 5);  // four events and the end
  ASSERT_OK_AND_ASSIGN(auto again, s->Watch("/w", {.key = "k", .start_revision = 5}));
  ASSERT_OK_AND_ASSIGN(auto rest, again->Next(Soon(), 100));
  ASSERT_EQ(rest.size(), 6u);
  EXPECT_EQ(rest[0].kv.value, "4");
  EXPECT_EQ(rest[5].kv.value, "9");
  again->Cancel();
  EXPECT_CODE(again->Next(Soon()), kAborted);
}

// A revision larger than the buffer still gets through an empty buffer (else it could never
// be delivered); a byte bound ends a watcher like the event bound.
TEST(KvWatchTest, BigRevisionFitsAnEmptyBufferAndBytesAreBounded) {
  TempDir dir;
  KvOptions o = SmallOptions(dir.path());
  o.watcher_buffer_bytes = 4 << 10;
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(o));
  ASSERT_OK(s->CreateNamespace("/w", {}));
  ASSERT_OK_AND_ASSIGN(auto w, s->Watch("/w", {.key = "", .prefix = true, .buffer_events = 4}));
  std::vector<BatchOp> batch;
  for (int i = 0; i < 10; ++i) batch.push_back({.key = std::to_string(i), .value = "v"});
  ASSERT_OK_R(s->Commit("/w", batch));
  ASSERT_OK_AND_ASSIGN(auto ev, w->Next(Soon(), 2));
  EXPECT_EQ(ev.size(), 10u);  // whole revisions, even past max_events
  ASSERT_OK_R(s->Put("/w", "big1", std::string(3 << 10, 'b')));
  ASSERT_OK_R(s->Put("/w", "big2", std::string(3 << 10, 'b')));
  ASSERT_OK_AND_ASSIGN(auto one, w->Next(Soon(), 100));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_CODE(w->Next(Soon()), kOutOfCapacity);
  EXPECT_EQ(w->resume_revision(), 3);
}

// A put over an expired key that the reaper has not deleted yet creates it afresh: version 1,
// no previous value, in the result and in the event.
TEST(KvWatchTest, PutOverExpiredKeyHasNoPrevious) {
  TempDir dir;
  auto clock = std::make_shared<testing::FakeClock>();
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path(), clock)));
  ASSERT_OK(s->CreateNamespace("/w", {}));
  ASSERT_OK_R(s->Put("/w", "k", "old", {.ttl = Duration(10)}));
  clock->Advance(std::chrono::milliseconds(20));
  ASSERT_OK_AND_ASSIGN(auto w, s->Watch("/w", {.key = "k", .prev_kv = true}));
  ASSERT_OK_AND_ASSIGN(PutResult p, s->Put("/w", "k", "new", {.prev_kv = true}));
  EXPECT_FALSE(p.prev.has_value());
  ASSERT_OK_AND_ASSIGN(auto ev, w->Next(Soon()));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_FALSE(ev[0].prev.has_value());
  EXPECT_EQ(ev[0].kv.version, 1);
  EXPECT_EQ(ev[0].kv.create_revision, 2);
  EXPECT_EQ(s->ReapExpired(), 0u);
}

// Beyond the in-memory window, history is read back from the log (without previous values:
// prev_kv from there is refused); once a snapshot truncated the log, it is compacted.
TEST(KvWatchTest, OldHistoryFromTheLogThenCompacted) {
  TempDir dir;
  KvOptions o = SmallOptions(dir.path());
  o.history_events = 10;
  o.segment_bytes = 64 << 10;
  o.max_value_bytes = 1 << 10;
  o.max_batch_bytes = 8 << 10;
  o.max_batch_ops = 16;
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(o));
  ASSERT_OK(s->CreateNamespace("/w", {}));
  for (int i = 0; i < 30; ++i) ASSERT_OK_R(s->Put("/w", "k", std::to_string(i)));
  auto with_prev = s->Watch("/w", {.key = "k", .start_revision = 1, .prev_kv = true});
  EXPECT_CODE(with_prev, kOutOfRange);
  EXPECT_NE(with_prev.status().message().find("compacted, oldest is 21"), std::string::npos)
      << with_prev.status().ToString();
  ASSERT_OK_AND_ASSIGN(auto w, s->Watch("/w", {.key = "k", .start_revision = 2}));
  ASSERT_OK_R(s->Put("/w", "k", "30"));
  ASSERT_OK_AND_ASSIGN(auto ev, w->Next(Soon(), 1000));
  ASSERT_EQ(ev.size(), 30u);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(ev[i].kv.mod_revision, i + 2);
    EXPECT_EQ(ev[i].kv.value, std::to_string(i + 1));
    EXPECT_EQ(ev[i].kv.version, i + 2);
  }
  // A small buffer fills from the log too: too slow, and the resume goes on from there.
  ASSERT_OK_AND_ASSIGN(auto small,
                       s->Watch("/w", {.key = "k", .start_revision = 1, .buffer_events = 4}));
  ASSERT_OK_AND_ASSIGN(auto first, small->Next(Soon(), 100));
  EXPECT_EQ(first.size(), 4u);
  EXPECT_CODE(small->Next(Soon()), kOutOfCapacity);
  EXPECT_EQ(small->resume_revision(), 5);
  // Fill segments, snapshot: the log before the snapshot is gone.
  for (int i = 0; i < 2000; ++i) ASSERT_OK_R(s->Put("/w", "k", std::string(100, 'x')));
  ASSERT_OK(s->Snapshot("/w"));
  auto gone = s->Watch("/w", {.key = "k", .start_revision = 1});
  EXPECT_CODE(gone, kOutOfRange);
  EXPECT_NE(gone.status().message().find("compacted, oldest is"), std::string::npos);
}

TEST(KvWatchTest, ResumeAfterRestartFromReplayedHistory) {
  TempDir dir;
  {
    ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
    ASSERT_OK(s->CreateNamespace("/w", {}));
    for (int i = 0; i < 5; ++i) ASSERT_OK_R(s->Put("/w", "k", std::to_string(i)));
  }
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
  ASSERT_OK_AND_ASSIGN(auto w, s->Watch("/w", {.key = "k", .start_revision = 3, .prev_kv = true}));
  ASSERT_OK_R(s->Put("/w", "k", "5"));
  ASSERT_OK_AND_ASSIGN(auto ev, w->Next(Soon(), 100));
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].kv.value, "2");
  EXPECT_EQ(ev[0].prev->value, "1");
  EXPECT_EQ(ev[3].kv.mod_revision, 6);
  // After a snapshot, what it covers is compacted for watches once the process restarts.
  ASSERT_OK(s->Snapshot("/w"));
}

TEST(KvWatchTest, DeletedNamespaceEndsWatchers) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
  ASSERT_OK(s->CreateNamespace("/w", {}));
  ASSERT_OK_AND_ASSIGN(auto w, s->Watch("/w", {.key = "k"}));
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    s->DeleteNamespace("/w").IgnoreError();
  });
  EXPECT_CODE(w->Next(Soon()), kNotFound);
  t.join();
}

// NoLinear writers from 8 threads: every watcher still sees dense revisions in order.
TEST(KvWatchTest, NoLinearEventsArriveInRevisionOrder) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
  ASSERT_OK(
      s->CreateNamespace("/n", {.write_mode = KvWriteMode::kNoLinear, .fsync = KvFsync::kNever}));
  ASSERT_OK_AND_ASSIGN(auto w, s->Watch("/n", {.key = "", .prefix = true, .buffer_events = 10000}));
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE(s->Put("/n", std::to_string(t) + "/" + std::to_string(i), "v").ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  int64_t next = 1;
  while (next <= 800) {
    ASSERT_OK_AND_ASSIGN(auto ev, w->Next(Soon(), 1000));
    for (auto& e : ev) ASSERT_EQ(e.kv.mod_revision, next++);
  }
}

}  // namespace
}  // namespace packice
