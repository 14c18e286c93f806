// The QueueBackend contract (queue_backend.h), one suite over every backend: offsets, reads
// with limits, bounds and errors, waiting for records, retention from the front, concurrent
// appenders and readers, and — for durable backends — what a reopen keeps.
//
// A new backend joins with a factory below and one line in Backends.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/log/log_testing.h"
#include "backends/queue/queue_backend.h"
#include "backends/queue/record_codec.h"
#include "packice/file_peer.h"
#include "testing.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr int64_t kNow = 1'700'000'000'000;

// A backend under test. Limits are small so that the suite reaches them: records up to
// about 4 KiB, appends up to about 8 KiB.
class Factory {
 public:
  virtual ~Factory() = default;
  virtual std::unique_ptr<QueueBackend> Open() = 0;
  // Whether a reopen (a new Open on the same storage) keeps what was appended.
  virtual bool durable() const = 0;
};

class MemoryFactory final : public Factory {
 public:
  std::unique_ptr<QueueBackend> Open() override {
    MemoryQueueBackendOptions o;
    o.max_record_bytes = 4 << 10;
    o.max_append_bytes = 8 << 10;
    o.max_bytes = 1 << 20;
    return NewMemoryQueueBackend(o);
  }
  bool durable() const override { return false; }
};

class LogFactory final : public Factory {
 public:
  std::unique_ptr<QueueBackend> Open() override {
    auto b = OpenLogQueueBackend(log_testing::SmallOptions(dir_.path()));
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? *std::move(b) : nullptr;
  }
  bool durable() const override { return true; }

 private:
  testing::TempDir dir_;
};

// Objects of about 4 KiB in a disk store of its own, sealed by the background pass as the
// suite appends (every 2 ms), so that reads, retention and reopens meet objects and the log.
class TieredFactory final : public Factory {
 public:
  std::unique_ptr<QueueBackend> Open() override {
    if (store_ == nullptr) {
      auto peer = FilePeer::Open({.dir = store_dir_.path(), .sync = false});
      EXPECT_TRUE(peer.ok()) << peer.status().ToString();
      if (!peer.ok()) return nullptr;
      store_ = *peer;
    }
    TieredQueueBackendOptions o;
    o.log = log_testing::SmallOptions(log_dir_.path());
    o.store = store_;
    o.key_prefix = "queue/1/0/";
    o.object_bytes = 4 << 10;
    o.interval = std::chrono::milliseconds(2);
    auto b = OpenTieredQueueBackend(std::move(o));
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? *std::move(b) : nullptr;
  }
  bool durable() const override { return true; }

 private:
  testing::TempDir log_dir_, store_dir_;
  std::shared_ptr<Peer> store_;
};

struct Backend {
  std::string name;
  std::function<std::unique_ptr<Factory>()> make;
};

const Backend kBackends[] = {
    {"memory", [] { return std::make_unique<MemoryFactory>(); }},
    {"log", [] { return std::make_unique<LogFactory>(); }},
    {"tiered", [] { return std::make_unique<TieredFactory>(); }},
};

QueueRecord Rec(std::string value, std::optional<std::string> key = std::nullopt,
                std::vector<std::pair<std::string, std::string>> headers = {}) {
  QueueRecord r;
  r.key = std::move(key);
  r.headers = std::move(headers);
  r.value = std::move(value);
  r.timestamp_unix_ms = 1700000000000;
  return r;
}

class QueueBackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    factory_ = GetParam().make();
    backend_ = factory_->Open();
    ASSERT_NE(backend_, nullptr);
  }
  // Appends n records "v<i>" one at a time; returns their offsets.
  std::vector<uint64_t> AppendN(int n, int from = 0) {
    std::vector<uint64_t> offsets;
    for (int i = from; i < from + n; ++i) {
      const QueueRecord r = Rec("v" + std::to_string(i));
      auto at = backend_->Append(std::span(&r, 1), kNow);
      EXPECT_TRUE(at.ok()) << at.status().ToString();
      offsets.push_back(at.ok() ? *at : ~0ull);
    }
    return offsets;
  }

  std::unique_ptr<Factory> factory_;
  std::unique_ptr<QueueBackend> backend_;
};

TEST_P(QueueBackendTest, AppendsTakeDenseOffsetsAndReadBackInOrder) {
  EXPECT_EQ(backend_->stats().end_offset, 0u);
  const std::vector<QueueRecord> batch = {
      Rec("first", "user-1", {{"type", "click"}, {"type", "again"}}),
      Rec("", std::nullopt, {}),        // empty value, no key
      Rec(std::string(3000, 'x'), ""),  // an empty key is a key
  };
  ASSERT_OK_AND_ASSIGN(uint64_t first, backend_->Append(batch, kNow));
  EXPECT_EQ(first, 0u);
  const std::vector<uint64_t> more = AppendN(3);
  EXPECT_EQ(more, (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(backend_->stats().end_offset, 6u);

  ASSERT_OK_AND_ASSIGN(auto got, backend_->Read(0, 100, 1 << 20));
  ASSERT_EQ(got.size(), 6u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].offset, i);
  for (size_t i = 0; i < batch.size(); ++i) EXPECT_EQ(got[i].record, batch[i]) << i;
  EXPECT_EQ(got[5].record.value, "v2");
  ASSERT_OK_AND_ASSIGN(auto tail, backend_->Read(4, 100, 1 << 20));
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].offset, 4u);
  EXPECT_EQ(tail[0].record.value, "v1");
  // A timestamp left 0 is stored as the append's now.
  QueueRecord unset = Rec("unset");
  unset.timestamp_unix_ms = 0;
  ASSERT_OK_AND_ASSIGN(uint64_t u, backend_->Append(std::span(&unset, 1), 777));
  ASSERT_OK_AND_ASSIGN(auto stamped, backend_->Read(u, 1, 1 << 20));
  ASSERT_EQ(stamped.size(), 1u);
  EXPECT_EQ(stamped[0].record.timestamp_unix_ms, 777);
}

TEST_P(QueueBackendTest, ReadsStopAtTheLimitAndTheByteBoundButReturnOneRecordAtLeast) {
  AppendN(10);
  ASSERT_OK_AND_ASSIGN(auto three, backend_->Read(2, 3, 1 << 20));
  ASSERT_EQ(three.size(), 3u);
  EXPECT_EQ(three.back().offset, 4u);
  ASSERT_OK_AND_ASSIGN(auto none, backend_->Read(2, 0, 1 << 20));
  EXPECT_TRUE(none.empty());
  // A byte bound below one record still gives that record.
  ASSERT_OK_AND_ASSIGN(auto one, backend_->Read(0, 100, 1));
  ASSERT_EQ(one.size(), 1u);
  // Two records' worth: two.
  const size_t each = EncodedRecordBytes(Rec("v0"));
  ASSERT_OK_AND_ASSIGN(auto two, backend_->Read(0, 100, 2 * each));
  EXPECT_EQ(two.size(), 2u);
}

TEST_P(QueueBackendTest, TheEndReadsEmptyAndPastItIsOutOfRange) {
  AppendN(2);
  ASSERT_OK_AND_ASSIGN(auto at_end, backend_->Read(2, 10, 1 << 20));
  EXPECT_TRUE(at_end.empty());
  EXPECT_EQ(backend_->Read(3, 10, 1 << 20).status().code(), StatusCode::kOutOfRange);
}

TEST_P(QueueBackendTest, BadAppendsAreRefusedAndAppendNothing) {
  EXPECT_EQ(backend_->Append({}, kNow).status().code(), StatusCode::kInvalidArgument);
  const QueueRecord huge = Rec(std::string(64 << 10, 'h'));
  EXPECT_EQ(backend_->Append(std::span(&huge, 1), kNow).status().code(),
            StatusCode::kInvalidArgument);
  // Each fits, not all three in one append.
  const std::vector<QueueRecord> three(3, Rec(std::string(3500, 'm')));
  EXPECT_EQ(backend_->Append(three, kNow).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->stats().end_offset, 0u);
  EXPECT_EQ(AppendN(1), (std::vector<uint64_t>{0}));
}

TEST_P(QueueBackendTest, WaitForReturnsOnAppendAndTimesOutWithout) {
  EXPECT_EQ(backend_->WaitFor(0, Clock::now() + 20ms).code(), StatusCode::kTimeout);
  std::thread writer([&] {
    std::this_thread::sleep_for(50ms);
    AppendN(1);
  });
  const auto start = Clock::now();
  EXPECT_OK(backend_->WaitFor(0, Clock::now() + 10s));
  EXPECT_LT(Clock::now() - start, 5s);
  writer.join();
  EXPECT_OK(backend_->WaitFor(0, Clock::now()));  // already there
}

TEST_P(QueueBackendTest, RetentionRemovesFromTheFrontAndOffsetsGoOn) {
  // Enough records to fill several of the log's 16 KiB segments.
  const std::string value(1000, 'r');
  std::vector<QueueRecord> batch(4, Rec(value));
  for (int i = 0; i < 20; ++i) ASSERT_OK(backend_->Append(batch, kNow).status());
  const uint64_t end = backend_->stats().end_offset;
  ASSERT_EQ(end, 80u);
  ASSERT_OK_AND_ASSIGN(uint64_t start, backend_->TruncateBefore(50));
  EXPECT_LE(start, 50u);
  EXPECT_GT(start, 0u) << "nothing removed";
  EXPECT_EQ(backend_->stats().start_offset, start);
  EXPECT_EQ(backend_->stats().end_offset, end);
  EXPECT_EQ(backend_->Read(start - 1, 1, 1 << 20).status().code(), StatusCode::kOutOfRange);
  ASSERT_OK_AND_ASSIGN(auto first, backend_->Read(start, 1, 1 << 20));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].offset, start);
  EXPECT_EQ(AppendN(1), (std::vector<uint64_t>{80}));
  // Truncating again below the start removes nothing.
  ASSERT_OK_AND_ASSIGN(uint64_t again, backend_->TruncateBefore(start));
  EXPECT_EQ(again, start);
}

TEST_P(QueueBackendTest, RetentionBySizeAndAgeRemovesWholeUnitsOldestFirst) {
  // 80 records of about 1 KiB, the first 40 written "long ago".
  for (int i = 0; i < 80; ++i) {
    QueueRecord r = Rec(std::string(1000, 'a') + std::to_string(i));
    r.timestamp_unix_ms = i < 40 ? 1000 : 1'000'000;
    ASSERT_OK(backend_->Append(std::span(&r, 1), kNow).status());
  }
  const QueueBackendStats full = backend_->stats();
  ASSERT_GT(full.bytes, 80u * 1000);
  // No bound: nothing goes.
  ASSERT_OK_AND_ASSIGN(uint64_t start,
                       backend_->Retain(0, std::chrono::milliseconds(0), 2'000'000));
  EXPECT_EQ(start, 0u);
  // Older than 10 s at t = 1,000 s: the old records go (whole units: maybe fewer, never a
  // young one).
  ASSERT_OK_AND_ASSIGN(start, backend_->Retain(0, std::chrono::seconds(10), 1'005'000));
  EXPECT_GT(start, 0u);
  EXPECT_LE(start, 40u);
  ASSERT_OK_AND_ASSIGN(auto first, backend_->Read(start, 1, 1 << 20));
  ASSERT_EQ(first.size(), 1u);
  // By size: at most about a third kept (plus the unit being appended to).
  ASSERT_OK_AND_ASSIGN(start, backend_->Retain(full.bytes / 3, std::chrono::milliseconds(0), 0));
  EXPECT_GE(start, 40u);
  const QueueBackendStats after = backend_->stats();
  EXPECT_EQ(after.start_offset, start);
  EXPECT_EQ(after.end_offset, 80u);
  EXPECT_LT(after.bytes, full.bytes / 3 + (20u << 10));  // the log's 16 KiB segment, and slack
  ASSERT_OK_AND_ASSIGN(auto last, backend_->Read(79, 1, 1 << 20));
  EXPECT_EQ(last.size(), 1u);
}

TEST_P(QueueBackendTest, ConcurrentAppendersGetDistinctOffsetsAndReadersSeeWholeAppends) {
  constexpr int kThreads = 4, kAppends = 100;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    // An append is two records "t:i:a" and "t:i:b" with consecutive offsets: a reader never
    // sees the first without the second.
    while (!done) {
      auto got = backend_->Read(0, 100000, 64 << 20);
      if (!got.ok()) {
        ++bad;
        return;
      }
      for (size_t i = 0; i < got->size(); ++i) {
        const std::string& v = (*got)[i].record.value;
        if (v.back() == 'a' && (i + 1 >= got->size() ||
                                (*got)[i + 1].record.value != v.substr(0, v.size() - 1) + "b")) {
          ++bad;
        }
      }
    }
  });
  std::vector<std::thread> writers;
  std::vector<std::vector<uint64_t>> offsets(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kAppends; ++i) {
        const std::string tag = std::to_string(t) + ":" + std::to_string(i) + ":";
        const std::vector<QueueRecord> pair = {Rec(tag + "a"), Rec(tag + "b")};
        auto at = backend_->Append(pair, kNow);
        if (!at.ok()) {
          ++bad;
          return;
        }
        offsets[t].push_back(*at);
      }
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  std::vector<uint64_t> all;
  for (const auto& o : offsets) all.insert(all.end(), o.begin(), o.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kAppends));
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], 2 * i);
  // Each writer's appends are in its order.
  for (const auto& o : offsets) EXPECT_TRUE(std::is_sorted(o.begin(), o.end()));
}

// AppendAsync: many in flight from one thread take consecutive offsets in the order of the
// calls, their `done`s come in that order, a bad one is refused with what Append says, and
// what they appended reads back (after a reopen too, for a durable backend).
TEST_P(QueueBackendTest, AppendAsyncKeepsTheOrderOfItsCalls) {
  constexpr int kAppends = 200;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint64_t> offsets;  // in the order the `done`s came
  int finished = 0;
  int failed = 0;
  for (int i = 0; i < kAppends; ++i) {
    const std::vector<QueueRecord> pair = {Rec("a" + std::to_string(i)),
                                           Rec("b" + std::to_string(i))};
    backend_->AppendAsync(pair, kNow, [&](Result<uint64_t> at) {
      std::lock_guard<std::mutex> lock(mu);
      if (at.ok()) {
        offsets.push_back(*at);
      } else {
        ++failed;
      }
      ++finished;
      cv.notify_all();
    });
  }
  Result<uint64_t> refused = InvalidArgument("not called");
  bool called = false;
  backend_->AppendAsync({}, kNow, [&](Result<uint64_t> at) {
    refused = std::move(at);
    called = true;
  });
  EXPECT_TRUE(called);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return finished == kAppends; }));
  }
  EXPECT_EQ(failed, 0);
  ASSERT_EQ(offsets.size(), static_cast<size_t>(kAppends));
  for (int i = 0; i < kAppends; ++i) EXPECT_EQ(offsets[i], 2u * i) << i;
  auto check = [&] {
    ASSERT_OK_AND_ASSIGN(auto got, backend_->Read(0, 2 * kAppends, 64 << 20));
    ASSERT_EQ(got.size(), 2u * kAppends);
    for (int i = 0; i < kAppends; ++i) {
      EXPECT_EQ(got[2 * i].record.value, "a" + std::to_string(i));
      EXPECT_EQ(got[2 * i + 1].record.value, "b" + std::to_string(i));
    }
  };
  check();
  if (!factory_->durable()) return;
  backend_.reset();
  backend_ = factory_->Open();
  ASSERT_NE(backend_, nullptr);
  check();
}

// A backend destroyed with appends in flight answers each of them first, exactly once; the
// ones answered with an offset are there after a reopen of a durable backend.
TEST_P(QueueBackendTest, DestroyingItAnswersTheAppendsInFlight) {
  constexpr int kAppends = 1000;
  std::atomic<int> answered{0};
  std::atomic<uint64_t> end{0};  // past the last offset answered
  for (int i = 0; i < kAppends; ++i) {
    backend_->AppendAsync(std::vector<QueueRecord>{Rec(std::string(3000, 'x'))}, kNow,
                          [&](Result<uint64_t> at) {
                            if (at.ok()) {
                              uint64_t seen = end.load();
                              while (seen < *at + 1 && !end.compare_exchange_weak(seen, *at + 1)) {
                              }
                            }
                            ++answered;
                          });
  }
  backend_.reset();
  EXPECT_EQ(answered.load(), kAppends);
  EXPECT_GT(end.load(), 0u);
  if (!factory_->durable()) return;
  backend_ = factory_->Open();
  ASSERT_NE(backend_, nullptr);
  EXPECT_GE(backend_->stats().end_offset, end.load());
}

TEST_P(QueueBackendTest, AReopenKeepsEveryRecordOfADurableBackend) {
  if (!factory_->durable()) GTEST_SKIP() << GetParam().name << " is not durable";
  AppendN(30);
  ASSERT_OK(backend_->Flush());
  ASSERT_OK(backend_->TruncateBefore(10).status());
  const QueueBackendStats before = backend_->stats();
  backend_.reset();
  backend_ = factory_->Open();
  ASSERT_NE(backend_, nullptr);
  EXPECT_EQ(backend_->stats().start_offset, before.start_offset);
  EXPECT_EQ(backend_->stats().end_offset, 30u);
  ASSERT_OK_AND_ASSIGN(auto got, backend_->Read(before.start_offset, 100, 1 << 20));
  ASSERT_EQ(got.size(), 30u - before.start_offset);
  EXPECT_EQ(got.back().record.value, "v29");
  EXPECT_EQ(AppendN(1, 30), (std::vector<uint64_t>{30}));
}

INSTANTIATE_TEST_SUITE_P(Backends, QueueBackendTest, ::testing::ValuesIn(kBackends),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace packice
