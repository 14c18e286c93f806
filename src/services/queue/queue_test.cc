// The queue service (include/packice/queue.h): topics, appends and reads by bucket, readers
// that wait, writers that partition, consumer groups that resume, kill -9 mid-append, reopen,
// deletion, and bad input. Runs in memory and on disk where both apply.
#include "packice/queue.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "core/env.h"
#include "packice/file_peer.h"
#include "testing.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

QueueRecord Rec(std::string value, std::optional<std::string> key = std::nullopt) {
  QueueRecord r;
  r.key = std::move(key);
  r.value = std::move(value);
  return r;
}

std::vector<std::string> Values(const std::vector<BucketRecords>& got) {
  std::vector<std::string> out;
  for (const BucketRecords& b : got) {
    for (const StoredRecord& r : b.records) out.push_back(r.record.value);
  }
  return out;
}

class QueueTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    queue_.reset();
    auto q = OpenQueue({.dir = GetParam() ? dir_.path() + "/q" : ""});
    ASSERT_OK_R(q);
    queue_ = *std::move(q);
  }
  bool durable() const { return GetParam(); }

  TempDir dir_;
  std::shared_ptr<Queue> queue_;
};

TEST_P(QueueTest, TopicsAreCreatedListedAndDeleted) {
  ASSERT_OK(queue_->CreateTopic("events", {.buckets = 4}));
  EXPECT_EQ(queue_->CreateTopic("events", {}).code(), StatusCode::kAlreadyExists);
  ASSERT_OK(queue_->CreateTopic("logs.v2", {.buckets = 1, .fsync = QueueFsync::kNever}));
  ASSERT_OK_AND_ASSIGN(auto topics, queue_->ListTopics());
  ASSERT_EQ(topics.size(), 2u);
  EXPECT_EQ(topics[0].name, "events");
  EXPECT_EQ(topics[0].options.buckets, 4u);
  EXPECT_EQ(topics[1].options.fsync, QueueFsync::kNever);
  // Only a disk's fdatasync makes an append wait (a transport runs the others on its io thread).
  EXPECT_EQ(queue_->AppendsWait("events"), durable());  // fsync always, the default
  EXPECT_FALSE(queue_->AppendsWait("logs.v2"));
  EXPECT_FALSE(queue_->AppendsWait("nosuch"));
  ASSERT_OK_AND_ASSIGN(auto buckets, queue_->Buckets("events"));
  ASSERT_EQ(buckets.size(), 4u);
  EXPECT_EQ(buckets[3].end_offset, 0u);
  ASSERT_OK(queue_->DeleteTopic("events"));
  EXPECT_EQ(queue_->Buckets("events").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(queue_->DeleteTopic("events").code(), StatusCode::kNotFound);
  // The name is free again, and the new topic is empty.
  ASSERT_OK(queue_->CreateTopic("events", {.buckets = 2}));
  ASSERT_OK_AND_ASSIGN(buckets, queue_->Buckets("events"));
  EXPECT_EQ(buckets.size(), 2u);
}

TEST_P(QueueTest, BadInputGetsClearErrorsAndChangesNothing) {
  EXPECT_EQ(queue_->CreateTopic("", {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->CreateTopic("a/b", {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->CreateTopic("..", {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->CreateTopic(std::string(129, 'x'), {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->CreateTopic("t", {.buckets = 0}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->CreateTopic("t", {.buckets = 5000}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->CreateTopic("t", {.segment_bytes = 4096}).code(), StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(auto none, queue_->ListTopics());
  EXPECT_TRUE(none.empty());

  ASSERT_OK(queue_->CreateTopic("t", {.buckets = 2}));
  const QueueRecord r = Rec("x");
  EXPECT_EQ(queue_->Append("missing", 0, std::span(&r, 1)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(queue_->Append("t", 2, std::span(&r, 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Append("t", 0, {}).status().code(), StatusCode::kInvalidArgument);
  const QueueRecord huge = Rec(std::string(5 << 20, 'h'));
  auto too_big = queue_->Append("t", 0, std::span(&huge, 1));
  EXPECT_EQ(too_big.status().code(), StatusCode::kInvalidArgument) << too_big.status().ToString();
  ASSERT_OK(queue_->Append("t", 0, std::span(&r, 1)).status());
  const QueuePosition past{0, 5}, bad_bucket{7, 0};
  EXPECT_EQ(queue_->Read("t", std::span(&past, 1), 10, 0ms).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(queue_->Read("t", std::span(&bad_bucket, 1), 10, 0ms).status().code(),
            StatusCode::kInvalidArgument);
  const QueuePosition start{0, 0};
  EXPECT_EQ(queue_->Read("t", std::span(&start, 1), 10, -1ms).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Commit("t", "g", 0, 2).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(queue_->Commit("t", "bad group", 0, 1).code(), StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(auto buckets, queue_->Buckets("t"));
  EXPECT_EQ(buckets[0].end_offset, 1u);
}

TEST_P(QueueTest, AppendsAndReadsKeepOrderPerBucket) {
  ASSERT_OK(queue_->CreateTopic("t", {.buckets = 2}));
  const std::vector<QueueRecord> a = {Rec("a0"), Rec("a1"), Rec("a2")};
  ASSERT_OK_AND_ASSIGN(uint64_t first, queue_->Append("t", 0, a));
  EXPECT_EQ(first, 0u);
  const QueueRecord b = Rec("b0");
  ASSERT_OK_AND_ASSIGN(uint64_t b0, queue_->Append("t", 1, std::span(&b, 1)));
  EXPECT_EQ(b0, 0u);
  const std::vector<QueuePosition> from = {{0, 1}, {1, 0}};
  ASSERT_OK_AND_ASSIGN(auto got, queue_->Read("t", from, 10, 0ms));
  EXPECT_EQ(Values(got), (std::vector<std::string>{"a1", "a2", "b0"}));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].records[0].offset, 1u);
  EXPECT_GT(got[0].records[0].record.timestamp_unix_ms, 1'600'000'000'000);  // set on append
  // The limit counts records across buckets.
  ASSERT_OK_AND_ASSIGN(got, queue_->Read("t", from, 2, 0ms));
  EXPECT_EQ(Values(got), (std::vector<std::string>{"a1", "a2"}));
}

TEST_P(QueueTest, AReaderWaitingAtTheEndWakesOnAppend) {
  ASSERT_OK(queue_->CreateTopic("t", {.buckets = 3}));
  const std::vector<QueuePosition> ends = {{0, 0}, {1, 0}, {2, 0}};
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(auto none, queue_->Read("t", ends, 10, 50ms));
  EXPECT_TRUE(none.empty());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);
  std::thread writer([&] {
    std::this_thread::sleep_for(100ms);
    const QueueRecord r = Rec("late");
    EXPECT_OK(queue_->Append("t", 2, std::span(&r, 1)).status());
  });
  ASSERT_OK_AND_ASSIGN(auto got, queue_->Read("t", ends, 10, 10s));
  writer.join();
  EXPECT_EQ(Values(got), (std::vector<std::string>{"late"}));
  EXPECT_EQ(got[0].bucket, 2u);
  // Deleting the topic wakes a waiting reader with kNotFound.
  std::thread deleter([&] {
    std::this_thread::sleep_for(100ms);
    EXPECT_OK(queue_->DeleteTopic("t"));
  });
  const std::vector<QueuePosition> after = {{2, 1}};
  EXPECT_EQ(queue_->Read("t", after, 10, 10s).status().code(), StatusCode::kNotFound);
  deleter.join();
}

TEST_P(QueueTest, WritersPartitionByKeyAndReadersOfAGroupResumeWhereTheyCommitted) {
  ASSERT_OK(queue_->CreateTopic("orders", {.buckets = 4}));
  std::vector<std::string> seen;
  {  // the writer and the first reader hold the queue: gone before a reopen
    ASSERT_OK_AND_ASSIGN(QueueWriter w, QueueWriter::Open(queue_, "orders"));
    std::map<std::string, uint32_t> bucket_of;
    for (int i = 0; i < 40; ++i) {
      const std::string key = "user-" + std::to_string(i % 5);
      ASSERT_OK_AND_ASSIGN(AppendResult at, w.Put(Rec(key + ":" + std::to_string(i), key)));
      auto [it, fresh] = bucket_of.emplace(key, at.bucket);
      EXPECT_EQ(it->second, at.bucket) << "one key, one bucket";
    }
    std::vector<QueueRecord> unkeyed;
    for (int i = 0; i < 8; ++i) unkeyed.push_back(Rec("free" + std::to_string(i)));
    ASSERT_OK_AND_ASSIGN(auto spread, w.PutBatch(unkeyed));
    std::set<uint32_t> used;
    for (const AppendResult& a : spread) used.insert(a.bucket);
    EXPECT_EQ(used.size(), 4u) << "round robin over the buckets";

    // A reader reads everything once, in key order within a key; commits half way.
    ASSERT_OK_AND_ASSIGN(QueueReader r, QueueReader::Open(queue_, "orders", "billing"));
    while (seen.size() < 24) {
      ASSERT_OK_AND_ASSIGN(auto got, r.Get(24 - seen.size(), 0ms));
      ASSERT_FALSE(got.empty());
      for (const std::string& v : Values(got)) seen.push_back(v);
    }
    ASSERT_OK(r.Commit());
  }
  if (durable()) Reopen();
  // A new reader of the group starts where the group committed: the rest, nothing twice.
  ASSERT_OK_AND_ASSIGN(QueueReader again, QueueReader::Open(queue_, "orders", "billing"));
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto got, again.Get(100, 0ms));
    if (got.empty()) break;
    for (const std::string& v : Values(got)) seen.push_back(v);
  }
  EXPECT_EQ(seen.size(), 48u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 48u);
  std::map<std::string, int> last;  // per key, values in the order written
  for (const std::string& v : seen) {
    if (!v.starts_with("user-")) continue;
    const std::string key = v.substr(0, v.find(':'));
    const int i = std::stoi(v.substr(v.find(':') + 1));
    auto it = last.find(key);
    if (it != last.end()) {
      EXPECT_GT(i, it->second) << v;
    }
    last[key] = i;
  }
  // Another group has its own positions: it reads from the start.
  ASSERT_OK_AND_ASSIGN(QueueReader other, QueueReader::Open(queue_, "orders", "audit"));
  ASSERT_OK_AND_ASSIGN(auto first, other.Get(1000, 0ms));
  EXPECT_EQ(Values(first).size(), 48u);
  ASSERT_OK_AND_ASSIGN(auto committed, queue_->Committed("orders", "audit", 0));
  EXPECT_FALSE(committed.has_value());
}

// PutBatchAsync with many batches in flight: each record's bucket is its key's, each bucket's
// offsets follow the order of the calls, a reader waiting at the end wakes, the counters count
// every record, and errors (no topic, an oversize record) come through `done`.
TEST_P(QueueTest, PutBatchAsyncKeepsEachBucketsOrder) {
  ASSERT_OK(queue_->CreateTopic("clicks", {.buckets = 3}));
  ASSERT_OK_AND_ASSIGN(QueueWriter w, QueueWriter::Open(queue_, "clicks"));
  std::thread waiter([&] {
    ASSERT_OK_AND_ASSIGN(QueueReader r, QueueReader::Open(queue_, "clicks", "g"));
    ASSERT_OK_AND_ASSIGN(auto got, r.Get(1, 10s));
    EXPECT_EQ(Values(got).size(), 1u);
  });
  std::this_thread::sleep_for(20ms);
  constexpr int kBatches = 60, kPerBatch = 10;
  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;
  std::map<std::string, uint32_t> bucket_of;                             // key -> bucket
  std::map<uint32_t, std::vector<std::pair<uint64_t, int>>> per_bucket;  // (offset, call)
  for (int b = 0; b < kBatches; ++b) {
    std::vector<QueueRecord> batch;
    for (int i = 0; i < kPerBatch; ++i) {
      const std::string key = "k" + std::to_string(i % 7);
      batch.push_back(Rec(key + ":" + std::to_string(b), key));
    }
    w.PutBatchAsync(batch, [&, b, batch](Result<std::vector<AppendResult>> r) {
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) {
        EXPECT_EQ(r->size(), batch.size());
        for (size_t i = 0; i < r->size(); ++i) {
          auto [it, fresh] = bucket_of.emplace(*batch[i].key, (*r)[i].bucket);
          EXPECT_EQ(it->second, (*r)[i].bucket) << "one key, one bucket";
          per_bucket[(*r)[i].bucket].push_back({(*r)[i].offset, b});
        }
      }
      ++finished;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return finished == kBatches; }));
  }
  waiter.join();
  uint64_t records = 0;
  for (auto& [bucket, got] : per_bucket) {
    std::sort(got.begin(), got.end());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].first, i) << "bucket " << bucket << ": dense offsets";
      if (i > 0) {
        EXPECT_LE(got[i - 1].second, got[i].second) << "in the order of the calls";
      }
    }
    records += got.size();
  }
  EXPECT_EQ(records, uint64_t{kBatches * kPerBatch});
  ASSERT_OK_AND_ASSIGN(std::vector<BucketInfo> info, queue_->Buckets("clicks"));
  uint64_t in = 0;
  for (const BucketInfo& b : info) in += b.records_in;
  EXPECT_EQ(in, records);

  // Errors come through `done`: no topic; a record over the limit (nothing appended).
  Result<std::vector<AppendResult>> e = InvalidArgument("not called");
  auto keep = [&](Result<std::vector<AppendResult>> r) { e = std::move(r); };
  ASSERT_OK_AND_ASSIGN(QueueWriter gone, QueueWriter::Open(queue_, "clicks"));
  ASSERT_OK(queue_->DeleteTopic("clicks"));
  gone.PutBatchAsync(std::vector<QueueRecord>{Rec("x")}, keep);
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  ASSERT_OK(queue_->CreateTopic("big", {}));
  ASSERT_OK_AND_ASSIGN(QueueWriter big, QueueWriter::Open(queue_, "big"));
  std::atomic<bool> called{false};
  big.PutBatchAsync(std::vector<QueueRecord>{Rec(std::string(5u << 20, 'x'))},
                    [&](Result<std::vector<AppendResult>> r) {
                      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
                      called = true;
                    });
  for (int i = 0; i < 1000 && !called; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(called);
  ASSERT_OK_AND_ASSIGN(info, queue_->Buckets("big"));
  EXPECT_EQ(info[0].end_offset, 0u);
  big.PutBatchAsync({}, keep);
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
}

// A topic deleted while appends are in flight answers every one of them, once, on a live
// topic: the last reference goes on the deleting thread, never on the log's own.
TEST_P(QueueTest, DeletingATopicAnswersTheAppendsInFlight) {
  for (int round = 0; round < 5; ++round) {
    ASSERT_OK(queue_->CreateTopic("t", {.buckets = 2}));
    constexpr int kAppends = 2000;
    std::atomic<int> answered{0}, ok{0};
    for (int i = 0; i < kAppends; ++i) {
      queue_->AppendAsync("t", i % 2, std::vector<QueueRecord>{Rec(std::string(4096, 'x'))},
                          [&](Result<uint64_t> at) {
                            if (at.ok()) ++ok;
                            ++answered;
                          });
    }
    ASSERT_OK(queue_->DeleteTopic("t"));  // waits for the callbacks of its buckets
    EXPECT_EQ(answered.load(), kAppends);
    EXPECT_GT(ok.load(), 0);
  }
}

TEST_P(QueueTest, RetentionRemovesTheOldestWholeSegmentsAndReadersMoveOn) {
  ASSERT_OK(queue_->CreateTopic(
      "metrics", {.buckets = 1, .segment_bytes = 1 << 20, .retention_bytes = 2 << 20}));
  ASSERT_OK(queue_->Commit("metrics", "slow", 0, 0));
  const QueueRecord big = Rec(std::string(64 << 10, 'm'));
  for (int i = 0; i < 96; ++i) ASSERT_OK(queue_->Append("metrics", 0, std::span(&big, 1)).status());
  ASSERT_OK(queue_->EnforceRetention());
  ASSERT_OK_AND_ASSIGN(auto buckets, queue_->Buckets("metrics"));
  const uint64_t start = buckets[0].start_offset;
  EXPECT_GT(start, 48u);  // at most 2 MiB (plus the active segment) of 6 MiB kept
  EXPECT_EQ(buckets[0].end_offset, 96u);
  const QueuePosition gone{0, 0};
  auto old = queue_->Read("metrics", std::span(&gone, 1), 1, 0ms);
  EXPECT_EQ(old.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(old.status().message().find(std::to_string(start)), std::string_view::npos)
      << old.status().ToString();
  // A group whose position was removed resumes at the oldest record kept.
  ASSERT_OK_AND_ASSIGN(QueueReader r, QueueReader::Open(queue_, "metrics", "slow"));
  EXPECT_EQ(r.positions()[0].offset, start);
  ASSERT_OK_AND_ASSIGN(auto got, r.Get(1, 0ms));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].records[0].offset, start);
}

TEST_P(QueueTest, SubscribersHearEveryAppendAndTheDeletionUntilTheyLetGo) {
  ASSERT_OK(queue_->CreateTopic("s", {}));
  std::atomic<int> calls{0};
  ASSERT_OK_AND_ASSIGN(QueueSubscription sub, queue_->Subscribe("s", [&] { ++calls; }));
  const QueueRecord r = Rec("x");
  ASSERT_OK_R(queue_->Append("s", 0, std::span(&r, 1)));
  ASSERT_OK_R(queue_->Append("s", 0, std::span(&r, 1)));
  EXPECT_EQ(calls.load(), 2);
  ASSERT_OK_AND_ASSIGN(QueueSubscription other, queue_->Subscribe("s", [&] { calls += 100; }));
  other.reset();  // let go: never called again
  ASSERT_OK_R(queue_->Append("s", 0, std::span(&r, 1)));
  EXPECT_EQ(calls.load(), 3);
  ASSERT_OK(queue_->DeleteTopic("s"));
  EXPECT_EQ(calls.load(), 4);
  sub.reset();  // after the deletion: harmless
  EXPECT_EQ(queue_->Subscribe("s", [] {}).status().code(), StatusCode::kNotFound);

  // The counters behind /metrics.
  ASSERT_OK(queue_->CreateTopic("c", {}));
  const QueueRecord rs[] = {Rec("a"), Rec("b")};
  ASSERT_OK_R(queue_->Append("c", 0, rs));
  const QueuePosition from[] = {{0, 0}};
  ASSERT_OK_R(queue_->Read("c", from, 10, std::chrono::milliseconds(0)));
  ASSERT_OK_AND_ASSIGN(auto buckets, queue_->Buckets("c"));
  EXPECT_EQ(buckets[0].records_in, 2u);
  EXPECT_EQ(buckets[0].records_out, 2u);
  EXPECT_EQ(buckets[0].appends, 1u);
  EXPECT_EQ(buckets[0].bytes_in, buckets[0].bytes_out);
  EXPECT_GT(buckets[0].bytes_in, 0u);
}

INSTANTIATE_TEST_SUITE_P(Stores, QueueTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "disk" : "memory"; });

TEST(QueueDurabilityTest, RecordsAndPositionsSurviveAReopen) {
  TempDir dir;
  {
    ASSERT_OK_AND_ASSIGN(auto q, OpenQueue({.dir = dir.path()}));
    ASSERT_OK(q->CreateTopic("t", {.buckets = 2, .segment_bytes = 1 << 20}));
    ASSERT_OK_AND_ASSIGN(QueueWriter w, QueueWriter::Open(q, "t"));
    for (int i = 0; i < 5000; ++i) {
      ASSERT_OK(w.Put(Rec(std::string(100, 'v') + std::to_string(i))).status());
    }
    // More commits than a snapshot is taken after: positions come back from snapshot + log.
    for (uint64_t i = 1; i <= 5000; ++i) ASSERT_OK(q->Commit("t", "g", 0, i % 2500));
    ASSERT_OK(q->CreateTopic("gone", {}));
    ASSERT_OK(q->DeleteTopic("gone"));
  }
  ASSERT_OK_AND_ASSIGN(auto q, OpenQueue({.dir = dir.path()}));
  ASSERT_OK_AND_ASSIGN(auto topics, q->ListTopics());
  ASSERT_EQ(topics.size(), 1u);
  EXPECT_EQ(topics[0].options.segment_bytes, 1u << 20);
  ASSERT_OK_AND_ASSIGN(auto buckets, q->Buckets("t"));
  EXPECT_EQ(buckets[0].end_offset + buckets[1].end_offset, 5000u);
  ASSERT_OK_AND_ASSIGN(auto at, q->Committed("t", "g", 0));
  EXPECT_EQ(at, std::optional<uint64_t>(5000 % 2500));
  const QueuePosition p{1, buckets[1].end_offset - 1};
  ASSERT_OK_AND_ASSIGN(auto last, q->Read("t", std::span(&p, 1), 1, 0ms));
  ASSERT_EQ(Values(last).size(), 1u);
  EXPECT_EQ(Values(last)[0].substr(0, 100), std::string(100, 'v'));
  // Only the live topic's directory is left.
  std::vector<std::string> names = NamesWithSuffix(*Env::Default(), dir.path() + "/topics", "");
  EXPECT_EQ(names.size(), 1u);
}

// A tiered topic seals its full segments into the object store as "queue/<id>/<bucket>/...":
// its records read back the same, across a reopen, and its objects go with the topic.
TEST(QueueTieredTest, SegmentsGoToTheObjectStoreAndReadBack) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Peer> store,
                       FilePeer::Open({.dir = dir.path() + "/objects", .sync = false}));
  auto open = [&] {
    return OpenQueue({.dir = dir.path() + "/q", .object_store = store, .object_bytes = 64 << 10});
  };
  auto keys = [&](const std::string& prefix) {
    auto page = store->List({.prefix = prefix});
    return page.ok() ? page->objects.size() : 0;
  };
  const TopicOptions tiered{
      .buckets = 2, .segment_bytes = 1 << 20, .storage = QueueStorage::kTiered};
  {
    ASSERT_OK_AND_ASSIGN(auto q, open());
    ASSERT_OK(q->CreateTopic("t", tiered));
    ASSERT_OK(q->CreateTopic("plain", {}));
    ASSERT_OK_AND_ASSIGN(QueueWriter w, QueueWriter::Open(q, "t"));
    for (int i = 0; i < 3000; ++i) {
      ASSERT_OK(w.Put(Rec(std::string(200, 'v') + std::to_string(i), std::to_string(i))).status());
    }
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (keys("queue/1/") < 8 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(5ms);
    }
    EXPECT_GE(keys("queue/1/0/"), 3u);
    EXPECT_GE(keys("queue/1/1/"), 3u);
  }
  ASSERT_OK_AND_ASSIGN(auto q, open());
  ASSERT_OK_AND_ASSIGN(auto topics, q->ListTopics());
  ASSERT_EQ(topics.size(), 2u);
  EXPECT_EQ(topics[1].name, "t");
  EXPECT_EQ(topics[1].options, tiered);
  EXPECT_EQ(topics[0].options.storage, QueueStorage::kLog);
  std::set<std::string> seen;
  ASSERT_OK_AND_ASSIGN(auto buckets, q->Buckets("t"));
  for (const BucketInfo& b : buckets) {
    for (uint64_t at = b.start_offset; at < b.end_offset;) {
      const QueuePosition p{b.bucket, at};
      ASSERT_OK_AND_ASSIGN(auto got, q->Read("t", std::span(&p, 1), 500, 0ms));
      ASSERT_EQ(got.size(), 1u);
      ASSERT_FALSE(got[0].records.empty());
      for (const StoredRecord& r : got[0].records) {
        EXPECT_EQ(r.offset, at++);
        seen.insert(r.record.value);
      }
    }
  }
  EXPECT_EQ(seen.size(), 3000u);
  EXPECT_TRUE(seen.contains(std::string(200, 'v') + "2999"));
  // Deleting the topic deletes its objects.
  ASSERT_OK(q->DeleteTopic("t"));
  q.reset();
  EXPECT_EQ(keys("queue/"), 0u);
}

TEST(QueueTieredTest, ATieredTopicNeedsADiskQueueWithAStore) {
  const TopicOptions tiered{.storage = QueueStorage::kTiered};
  ASSERT_OK_AND_ASSIGN(auto memory, OpenQueue({}));
  EXPECT_CODE(memory->CreateTopic("t", tiered), kInvalidArgument);
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto no_store, OpenQueue({.dir = dir.path()}));
  EXPECT_CODE(no_store->CreateTopic("t", tiered), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(auto topics, no_store->ListTopics());
  EXPECT_TRUE(topics.empty());
  EXPECT_CODE(ParseQueueStorage("cold").status(), kInvalidArgument);
  EXPECT_EQ(ParseQueueStorage(QueueStorageName(QueueStorage::kTiered)).value(),
            QueueStorage::kTiered);
}

using testing::ReadFile;

// A child appends from 4 threads with fsync always and is killed with SIGKILL, twice: every
// record it acknowledged is there after each restart, at its offset, and each thread's
// records are in order in their bucket.
TEST(QueueDurabilityTest, KillNineLosesNoAcknowledgedRecord) {
  TempDir dir;
  const std::string qdir = dir.path() + "/q";
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    const std::string out = dir.path() + "/acked" + std::to_string(round) + ".txt";
    {
      testing::ChildProcess child;
      ASSERT_OK(child.Start(
          {testing::BinPath("queue_crash_child"), qdir, "4", "r" + std::to_string(round)}, out));
      ASSERT_TRUE(testing::WaitUntil(
          [&] {
            const std::string text = ReadFile(out);
            return std::count(text.begin(), text.end(), '\n') >= 200;
          },
          60s))
          << ReadFile(out);
      child.Stop(SIGKILL);
    }
    ASSERT_OK_AND_ASSIGN(auto q, OpenQueue({.dir = qdir}));
    size_t checked = 0;
    for (int r = 0; r <= round; ++r) {
      std::istringstream text(ReadFile(dir.path() + "/acked" + std::to_string(r) + ".txt"));
      std::string line;
      std::map<int, std::pair<uint32_t, uint64_t>> last;  // thread -> (bucket, offset)
      while (std::getline(text, line)) {
        unsigned bucket = 0;
        unsigned long offset = 0;
        int t = 0, i = 0;
        if (std::sscanf(line.c_str(), "%u %lu %d %d", &bucket, &offset, &t, &i) != 4) continue;
        const QueuePosition p{bucket, offset};
        auto got = q->Read("crash", std::span(&p, 1), 1, 0ms);
        ASSERT_TRUE(got.ok()) << line << ": " << got.status().ToString();
        ASSERT_EQ(Values(*got).size(), 1u) << line;
        EXPECT_EQ(Values(*got)[0],
                  "r" + std::to_string(r) + "/t" + std::to_string(t) + "/" + std::to_string(i));
        auto it = last.find(t);
        if (it != last.end()) {
          EXPECT_EQ(it->second.first, bucket);
          EXPECT_GT(offset, it->second.second);
        }
        last[t] = {bucket, offset};
        ++checked;
      }
    }
    EXPECT_GE(checked, 200u * (round + 1));
  }
}

}  // namespace
}  // namespace packice
