// The KV's operations on every engine and write mode (one typed suite), namespaces and their
// persistence, limits, and Linear order under concurrent writers.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "core/env.h"
#include "services/kv/kv_testing.h"

namespace packice {
namespace {

using kv_testing::OpenStore;
using kv_testing::SmallOptions;
using testing::TempDir;

struct SwissLinear {
  static NamespaceOptions Options() { return {}; }
};
struct SwissNoLinear {
  static NamespaceOptions Options() { return {.write_mode = KvWriteMode::kNoLinear}; }
};
struct MemLinear {
  static NamespaceOptions Options() { return {.engine = KvEngine::kMemTable}; }
};
struct MemNoLinear {
  static NamespaceOptions Options() {
    return {.engine = KvEngine::kMemTable, .write_mode = KvWriteMode::kNoLinear};
  }
};

template <typename T>
class KvOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_ = std::make_shared<testing::FakeClock>();
    auto s = OpenStore(SmallOptions(dir_.path(), clock_));
    ASSERT_OK_R(s);
    store_ = std::move(s).value();
    ASSERT_OK(store_->CreateNamespace(kNs, T::Options()));
  }
  void Reopen() {
    store_.reset();
    auto s = OpenStore(SmallOptions(dir_.path(), clock_));
    ASSERT_OK_R(s);
    store_ = std::move(s).value();
  }
  static constexpr const char* kNs = "/team/proj/ds1";
  TempDir dir_;
  std::shared_ptr<testing::FakeClock> clock_;
  std::unique_ptr<kv::LocalKvStore> store_;
};

using Engines = ::testing::Types<SwissLinear, SwissNoLinear, MemLinear, MemNoLinear>;
TYPED_TEST_SUITE(KvOpsTest, Engines);

TYPED_TEST(KvOpsTest, PutGetDeleteAndRevisions) {
  auto& s = *this->store_;
  const char* ns = this->kNs;
  EXPECT_CODE(s.Get(ns, "a"), kNotFound);
  ASSERT_OK_AND_ASSIGN(PutResult p1, s.Put(ns, "a", "one"));
  EXPECT_EQ(p1.revision, 1);
  ASSERT_OK_AND_ASSIGN(PutResult p2, s.Put(ns, "a", "two", {.prev_kv = true}));
  EXPECT_EQ(p2.revision, 2);
  ASSERT_TRUE(p2.prev.has_value());
  EXPECT_EQ(p2.prev->value, "one");
  ASSERT_OK_AND_ASSIGN(KeyValue kv, s.Get(ns, "a"));
  EXPECT_EQ(kv.value, "two");
  EXPECT_EQ(kv.create_revision, 1);
  EXPECT_EQ(kv.mod_revision, 2);
  EXPECT_EQ(kv.version, 2);
  ASSERT_OK_AND_ASSIGN(DeleteResult d, s.Delete(ns, "a", {.prev_kv = true}));
  EXPECT_EQ(d.revision, 3);
  EXPECT_EQ(d.prev->value, "two");
  EXPECT_CODE(s.Get(ns, "a"), kNotFound);
  EXPECT_CODE(s.Delete(ns, "a"), kNotFound);
  ASSERT_OK_AND_ASSIGN(PutResult p4, s.Put(ns, "a", "again"));
  ASSERT_OK_AND_ASSIGN(kv, s.Get(ns, "a"));
  EXPECT_EQ(kv.create_revision, p4.revision);
  EXPECT_EQ(kv.version, 1);
}

TYPED_TEST(KvOpsTest, CompareAndSwap) {
  auto& s = *this->store_;
  const char* ns = this->kNs;
  ASSERT_OK_AND_ASSIGN(PutResult c, s.Put(ns, "k", "v1", {.if_mod_revision = 0}));
  EXPECT_CODE(s.Put(ns, "k", "x", {.if_mod_revision = 0}), kAlreadyExists);
  EXPECT_CODE(s.Put(ns, "k", "x", {.if_mod_revision = c.revision + 7}), kWrongState);
  EXPECT_CODE(s.Put(ns, "nope", "x", {.if_mod_revision = 1}), kNotFound);
  ASSERT_OK_AND_ASSIGN(PutResult c2, s.Put(ns, "k", "v2", {.if_mod_revision = c.revision}));
  EXPECT_CODE(s.Delete(ns, "k", {.if_mod_revision = c.revision}), kWrongState);
  EXPECT_CODE(s.Delete(ns, "k", {.if_mod_revision = 0}), kInvalidArgument);
  ASSERT_OK_R(s.Delete(ns, "k", {.if_mod_revision = c2.revision}));
  // A failed condition writes nothing: no revision was used.
  ASSERT_OK_AND_ASSIGN(auto list, s.ListNamespaces(""));
  EXPECT_EQ(list[0].revision, 3);
}

TYPED_TEST(KvOpsTest, BatchIsAllOrNothingUnderOneRevision) {
  auto& s = *this->store_;
  const char* ns = this->kNs;
  ASSERT_OK_R(s.Put(ns, "x", "0"));
  std::vector<BatchOp> bad = {{.key = "a", .value = "1"},
                              {.key = "b", .value = "2"},
                              {.kind = BatchOp::Kind::kDelete, .key = "missing"}};
  EXPECT_CODE(s.Commit(ns, bad), kNotFound);
  EXPECT_CODE(s.Get(ns, "a"), kNotFound);
  std::vector<BatchOp> twice = {{.key = "a", .value = "1"}, {.key = "a", .value = "2"}};
  EXPECT_CODE(s.Commit(ns, twice), kInvalidArgument);
  std::vector<BatchOp> good = {
      {.key = "a", .value = "1"},
      {.key = "b", .value = "2"},
      {.kind = BatchOp::Kind::kDelete, .key = "x"},
      {.kind = BatchOp::Kind::kDelete, .key = "gone", .ignore_missing = true}};
  ASSERT_OK_AND_ASSIGN(BatchResult r, s.Commit(ns, good));
  EXPECT_EQ(r.revision, 2);
  ASSERT_OK_AND_ASSIGN(KeyValue a, s.Get(ns, "a"));
  ASSERT_OK_AND_ASSIGN(KeyValue b, s.Get(ns, "b"));
  EXPECT_EQ(a.mod_revision, 2);
  EXPECT_EQ(b.mod_revision, 2);
  EXPECT_CODE(s.Get(ns, "x"), kNotFound);
  std::vector<BatchOp> cas = {{.key = "a", .value = "3", .if_mod_revision = 1}};
  EXPECT_CODE(s.Commit(ns, cas), kWrongState);
}

TYPED_TEST(KvOpsTest, ScansWithContinuation) {
  auto& s = *this->store_;
  const char* ns = this->kNs;
  std::map<std::string, std::string> want;
  for (int i = 0; i < 57; ++i) {
    const std::string k = "p/" + std::to_string(1000 + i);
    want[k] = std::to_string(i);
    ASSERT_OK_R(s.Put(ns, k, want[k]));
  }
  ASSERT_OK_R(s.Put(ns, "o", "before"));
  ASSERT_OK_R(s.Put(ns, "q", "after"));
  std::map<std::string, std::string> got;
  ScanOptions o{.prefix = "p/", .limit = 10};
  int pages = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(ScanResult r, s.Scan(ns, o));
    ++pages;
    for (size_t i = 1; i < r.kvs.size(); ++i) EXPECT_LT(r.kvs[i - 1].key, r.kvs[i].key);
    for (auto& kv : r.kvs) got[kv.key] = kv.value;
    if (r.next.empty()) break;
    o.after = r.next;
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(pages, 6);
  ASSERT_OK_AND_ASSIGN(ScanResult range,
                       s.Scan(ns, {.start = "p/1010", .end = "p/1013", .limit = 100}));
  ASSERT_EQ(range.kvs.size(), 3u);
  EXPECT_EQ(range.kvs[0].key, "p/1010");
  EXPECT_TRUE(range.next.empty());
  ASSERT_OK_AND_ASSIGN(ScanResult all, s.Scan(ns, {.limit = 1000, .keys_only = true}));
  EXPECT_EQ(all.kvs.size(), 59u);
  EXPECT_TRUE(all.kvs[0].value.empty());
  EXPECT_CODE(s.Scan(ns, {.limit = 0}), kInvalidArgument);
  EXPECT_CODE(s.Scan(ns, {.prefix = "p", .start = "a"}), kInvalidArgument);
}

TYPED_TEST(KvOpsTest, PutManyAppliesEachInOrderOnItsOwn) {
  auto& s = *this->store_;
  const char* ns = this->kNs;
  std::vector<KvPutItem> puts = {
      {"a", "1", {}},
      {"a", "2", {.if_mod_revision = 1, .prev_kv = true}},  // sees the put before it
      {"b", "x", {.if_mod_revision = 7}},                   // fails alone: absent
      {"", "empty key", {}},                                // fails alone: invalid
      {"c", "3", {}},
  };
  ASSERT_OK_AND_ASSIGN(auto r, s.PutMany(ns, puts));
  ASSERT_EQ(r.size(), 5u);
  ASSERT_OK_R(r[0]);
  EXPECT_EQ(r[0]->revision, 1);
  ASSERT_OK_R(r[1]);
  EXPECT_EQ(r[1]->revision, 2);
  ASSERT_TRUE(r[1]->prev.has_value());
  EXPECT_EQ(r[1]->prev->value, "1");
  EXPECT_CODE(r[2], kNotFound);
  EXPECT_CODE(r[3], kInvalidArgument);
  ASSERT_OK_R(r[4]);
  EXPECT_EQ(r[4]->revision, 3);
  ASSERT_OK_AND_ASSIGN(KeyValue a, s.Get(ns, "a"));
  EXPECT_EQ(a.value, "2");
  EXPECT_EQ(a.version, 2);
  EXPECT_CODE(s.PutMany("/absent", puts), kNotFound);
  this->Reopen();  // durable, as single puts are
  ASSERT_OK_AND_ASSIGN(KeyValue c, this->store_->Get(ns, "c"));
  EXPECT_EQ(c.mod_revision, 3);
}

TYPED_TEST(KvOpsTest, ScansStopAtTheirByteBudget) {
  KvOptions o = SmallOptions(this->dir_.path(), this->clock_);
  o.max_scan_bytes = 200 << 10;
  this->store_.reset();
  ASSERT_OK_AND_ASSIGN(this->store_, OpenStore(o));
  auto& s = *this->store_;
  const char* ns = this->kNs;
  std::vector<std::string> want;
  for (int i = 0; i < 40; ++i) {
    want.push_back("k/" + std::to_string(100 + i));
    ASSERT_OK_R(s.Put(ns, want.back(), std::string(50 << 10, static_cast<char>('a' + i % 26))));
  }
  std::vector<std::string> got;
  ScanOptions page{.prefix = "k/", .limit = 1000};
  int pages = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(ScanResult r, s.Scan(ns, page));
    ++pages;
    uint64_t bytes = 0;
    for (const KeyValue& kv : r.kvs) {
      bytes += kv.key.size() + kv.value.size();
      got.push_back(kv.key);
    }
    EXPECT_LE(bytes, o.max_scan_bytes + (64 << 10)) << "page " << pages;
    ASSERT_FALSE(r.kvs.empty() && !r.next.empty());
    if (r.next.empty()) break;
    page.after = r.next;
    ASSERT_LT(pages, 100);
  }
  EXPECT_EQ(got, want);  // every key once, in order
  EXPECT_GE(pages, 10);
  ASSERT_OK_AND_ASSIGN(ScanResult keys, s.Scan(ns, {.prefix = "k/", .keys_only = true}));
  EXPECT_EQ(keys.kvs.size(), 40u);
  EXPECT_TRUE(keys.next.empty());
}

TYPED_TEST(KvOpsTest, TtlHidesAndReaperDeletes) {
  auto& s = *this->store_;
  const char* ns = this->kNs;
  ASSERT_OK_R(s.Put(ns, "t", "v", {.ttl = Duration(1000)}));
  ASSERT_OK_R(s.Put(ns, "keep", "v"));
  ASSERT_OK_AND_ASSIGN(KeyValue kv, s.Get(ns, "t"));
  EXPECT_GT(kv.expires_unix_ms, 0);
  this->clock_->Advance(std::chrono::milliseconds(1001));
  EXPECT_CODE(s.Get(ns, "t"), kNotFound);
  ASSERT_OK_AND_ASSIGN(ScanResult r, s.Scan(ns, {.limit = 10}));
  EXPECT_EQ(r.kvs.size(), 1u);
  // Create-if-absent treats an expired key as absent.
  ASSERT_OK_R(s.Put(ns, "t", "new", {.ttl = Duration(1000), .if_mod_revision = 0}));
  this->clock_->Advance(std::chrono::milliseconds(1001));
  ASSERT_OK_AND_ASSIGN(auto w, s.Watch(ns, {.key = "t"}));
  EXPECT_EQ(this->store_->ReapExpired(), 1u);
  ASSERT_OK_AND_ASSIGN(auto events, w->Next(std::chrono::steady_clock::now()));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, KvEvent::Type::kDelete);
  EXPECT_TRUE(events[0].expired);
  EXPECT_EQ(this->store_->ReapExpired(), 0u);
  ASSERT_OK_AND_ASSIGN(auto list, s.ListNamespaces(""));
  EXPECT_EQ(list[0].keys, 1u);
}

TYPED_TEST(KvOpsTest, ReopenRecoversFromLogAndSnapshot) {
  const char* ns = this->kNs;
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK_R(this->store_->Put(ns, "k" + std::to_string(i % 30), std::to_string(i)));
  }
  ASSERT_OK(this->store_->Snapshot(ns));
  for (int i = 100; i < 150; ++i) {
    ASSERT_OK_R(this->store_->Put(ns, "k" + std::to_string(i % 30), std::to_string(i)));
  }
  ASSERT_OK_R(this->store_->Delete(ns, "k0"));
  this->Reopen();
  auto& s = *this->store_;
  EXPECT_CODE(s.Get(ns, "k0"), kNotFound);
  ASSERT_OK_AND_ASSIGN(KeyValue kv, s.Get(ns, "k1"));
  EXPECT_EQ(kv.value, "121");
  EXPECT_EQ(kv.version, 5);
  EXPECT_EQ(kv.create_revision, 2);
  ASSERT_OK_AND_ASSIGN(PutResult p, s.Put(ns, "k1", "more"));
  EXPECT_EQ(p.revision, 152);
  ASSERT_OK_AND_ASSIGN(auto list, s.ListNamespaces(""));
  EXPECT_EQ(list[0].keys, 29u);
}

TEST(KvLimitsTest, KeyValueAndBatchLimits) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
  ASSERT_OK(s->CreateNamespace("/a", {}));
  EXPECT_CODE(s->Put("/a", "", "v"), kInvalidArgument);
  EXPECT_CODE(s->Put("/a", std::string(4097, 'k'), "v"), kInvalidArgument);
  ASSERT_OK_R(s->Put("/a", std::string(4096, 'k'), "v"));
  EXPECT_CODE(s->Put("/a", "k", std::string((64 << 10) + 1, 'v')), kInvalidArgument);
  ASSERT_OK_R(s->Put("/a", "k", std::string(64 << 10, 'v')));
  std::vector<BatchOp> big;
  for (int i = 0; i < 5; ++i)
    big.push_back({.key = std::to_string(i), .value = std::string(60 << 10, 'b')});
  EXPECT_CODE(s->Commit("/a", big), kInvalidArgument);
  EXPECT_CODE(s->Commit("/a", std::vector<BatchOp>{}), kInvalidArgument);
  EXPECT_CODE(s->Put("/nope", "k", "v"), kNotFound);
  EXPECT_CODE(s->Put("bad", "k", "v"), kInvalidArgument);
}

// The hint the Unix socket uses to run a write on its io thread: only writes that cannot wait.
TEST(KvLimitsTest, WritesWaitForFsyncAlwaysAndNearASnapshot) {
  TempDir dir;
  KvOptions o = SmallOptions(dir.path());
  o.snapshot_after_bytes = 1 << 20;  // 1 MiB; a write may carry 256 KiB + 64 KiB
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(o));
  ASSERT_OK(s->CreateNamespace("/always", {}));
  ASSERT_OK(s->CreateNamespace("/never", {.fsync = KvFsync::kNever}));
  EXPECT_TRUE(s->WritesWait("/always"));
  EXPECT_FALSE(s->WritesWait("/never"));
  EXPECT_FALSE(s->WritesWait("/absent"));  // fails at once
  const std::string value(60 << 10, 'v');
  int i = 0;
  while (!s->WritesWait("/never")) {  // until a snapshot is near
    ASSERT_OK_R(s->Put("/never", "k" + std::to_string(i++), value));
    ASSERT_LT(i, 100);
  }
  EXPECT_GE(i * (60 << 10), (1 << 20) - (320 << 10) - (64 << 10));
  // The snapshot is taken by a write (the one that crosses), and then writes are quick again.
  while (s->WritesWait("/never")) {
    ASSERT_OK_R(s->Put("/never", "k" + std::to_string(i++), value));
    ASSERT_LT(i, 100);
  }
}

TEST(KvNamespaceTest, PathValidation) {
  for (const char* ok : {"/a", "/kevin/zonda/ds1", "/A-b_c.d/9"})
    EXPECT_OK(ValidateNamespacePath(ok));
  for (const char* bad :
       {"", "a", "/", "/a/", "//a", "/a//b", "/a/../b", "/./a", "/a b", "/a\n", "/a/\xc3\xa9"}) {
    EXPECT_CODE(ValidateNamespacePath(bad), kInvalidArgument) << bad;
  }
  EXPECT_CODE(ValidateNamespacePath("/" + std::string(300, 'a')), kInvalidArgument);
  std::string deep;
  for (int i = 0; i < 33; ++i) deep += "/a";
  EXPECT_CODE(ValidateNamespacePath(deep), kInvalidArgument);
}

TEST(KvNamespaceTest, CreateDeleteListAndPersist) {
  TempDir dir;
  {
    ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
    ASSERT_OK(s->CreateNamespace("/kevin/zonda/ds1", {.engine = KvEngine::kMemTable}));
    ASSERT_OK(s->CreateNamespace("/kevin/zonda", {.fsync = KvFsync::kNever}));  // a parent too
    ASSERT_OK(s->CreateNamespace("/kevin/other", {}));
    ASSERT_OK(s->CreateNamespace("/else", {.write_mode = KvWriteMode::kNoLinear}));
    EXPECT_CODE(s->CreateNamespace("/else", {}), kAlreadyExists);
    EXPECT_CODE(s->CreateNamespace("/x", {.fsync_interval = Duration(0)}), kInvalidArgument);
    ASSERT_OK_R(s->Put("/kevin/zonda/ds1", "k", "v"));
    ASSERT_OK_R(s->Put("/kevin/other", "k", "gone"));
    ASSERT_OK(s->DeleteNamespace("/kevin/other"));
    EXPECT_CODE(s->DeleteNamespace("/kevin/other"), kNotFound);
    EXPECT_CODE(s->Get("/kevin/other", "k"), kNotFound);
    ASSERT_OK_AND_ASSIGN(auto list, s->ListNamespaces("/kevin/"));
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0].path, "/kevin/zonda");
    EXPECT_EQ(list[1].path, "/kevin/zonda/ds1");
    // Another process (here: a second open) is refused.
    EXPECT_CODE(OpenStore(SmallOptions(dir.path())), kAlreadyExists);
  }
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
  ASSERT_OK_AND_ASSIGN(auto list, s->ListNamespaces(""));
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].path, "/else");
  EXPECT_EQ(list[0].options.write_mode, KvWriteMode::kNoLinear);
  EXPECT_EQ(list[1].options.fsync, KvFsync::kNever);
  EXPECT_EQ(list[2].options.engine, KvEngine::kMemTable);
  ASSERT_OK_AND_ASSIGN(KeyValue kv, s->Get("/kevin/zonda/ds1", "k"));
  EXPECT_EQ(kv.value, "v");
  // Created again, a deleted namespace starts empty.
  ASSERT_OK(s->CreateNamespace("/kevin/other", {}));
  EXPECT_CODE(s->Get("/kevin/other", "k"), kNotFound);
}

// Past snapshot_after_bytes the bucket snapshots and truncates its log by itself: the log
// stays a few segments long, and a reopen (snapshot + the records after it) is exact.
TEST(KvSnapshotTest, SnapshotsBySizeAndTruncatesTheLog) {
  TempDir dir;
  KvOptions o = SmallOptions(dir.path());
  o.segment_bytes = 64 << 10;
  o.max_value_bytes = 1 << 10;
  o.max_batch_bytes = 8 << 10;
  o.max_batch_ops = 16;
  o.snapshot_after_bytes = 16 << 10;
  std::map<std::string, std::string> want;
  {
    ASSERT_OK_AND_ASSIGN(auto s, OpenStore(o));
    ASSERT_OK(s->CreateNamespace("/s", {.engine = KvEngine::kMemTable, .fsync = KvFsync::kNever}));
    for (int i = 0; i < 3000; ++i) {
      const std::string k = "k" + std::to_string(i % 97), v = testing::PatternString(100, i);
      ASSERT_OK_R(s->Put("/s", k, v));
      want[k] = v;
    }
  }
  const std::string bucket = dir.path() + "/buckets/1";
  EXPECT_LE(NamesWithSuffix(*Env::Default(), bucket, ".log").size(), 3u);
  EXPECT_FALSE(testing::ReadFile(bucket + "/SNAPSHOT").empty());
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(o));
  ASSERT_OK_AND_ASSIGN(ScanResult all, s->Scan("/s", {.limit = 1000}));
  std::map<std::string, std::string> got;
  for (auto& kv : all.kvs) got[kv.key] = kv.value;
  EXPECT_EQ(got, want);
  EXPECT_EQ(all.revision, 3000);
  ASSERT_OK_AND_ASSIGN(KeyValue kv, s->Get("/s", "k5"));
  EXPECT_EQ(kv.version, 31);
  EXPECT_EQ(kv.create_revision, 6);
}

// 8 writers on one Linear namespace, half of them with PutMany: revisions are dense, each
// writer's own writes are in revision order, and the log replays them in the order they were
// acknowledged.
TEST(KvLinearTest, EightWritersGetDenseOrderedRevisions) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
  ASSERT_OK(s->CreateNamespace("/lin", {.fsync = KvFsync::kNever}));
  constexpr int kWriters = 8, kEach = 200;
  std::vector<std::vector<int64_t>> revs(kWriters);
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      if (t % 2 == 1) {  // half the writers queue theirs 20 at a time (PutMany)
        for (int i = 0; i < kEach; i += 20) {
          std::vector<KvPutItem> puts;
          for (int j = i; j < i + 20; ++j) {
            puts.push_back({"w" + std::to_string(t), std::to_string(j), {}});
          }
          auto r = s->PutMany("/lin", puts);
          ASSERT_TRUE(r.ok());
          for (auto& one : *r) {
            ASSERT_TRUE(one.ok());
            revs[t].push_back(one->revision);
          }
        }
        return;
      }
      for (int i = 0; i < kEach; ++i) {
        auto r = s->Put("/lin", "w" + std::to_string(t), std::to_string(i));
        ASSERT_TRUE(r.ok());
        revs[t].push_back(r->revision);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<int64_t> all;
  for (auto& v : revs) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    all.insert(all.end(), v.begin(), v.end());
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<int64_t>(i + 1));
  for (int t = 0; t < kWriters; ++t) {
    ASSERT_OK_AND_ASSIGN(KeyValue kv, s->Get("/lin", "w" + std::to_string(t)));
    EXPECT_EQ(kv.value, std::to_string(kEach - 1));
    EXPECT_EQ(kv.mod_revision, revs[t].back());
    EXPECT_EQ(kv.version, kEach);
  }
}

// Compare-and-swap under contention, in both write modes: 8 threads increment one counter
// with CAS (retrying on a lost race) and race to create keys only if absent. In Linear mode
// the writes of one group are checked against each other (the leader's overlay): no increment
// is lost and each key has one creator.
class KvContentionTest : public ::testing::TestWithParam<KvWriteMode> {};

TEST_P(KvContentionTest, CasIncrementsAndCreateOnceUnderEightThreads) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
  ASSERT_OK(s->CreateNamespace("/c", {.write_mode = GetParam(), .fsync = KvFsync::kAlways}));
  ASSERT_OK_R(s->Put("/c", "counter", "0"));
  constexpr int kThreads = 8, kEach = 40;
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        while (true) {
          auto cur = s->Get("/c", "counter");
          ASSERT_TRUE(cur.ok());
          const std::string next = std::to_string(std::stoi(cur->value) + 1);
          auto r = s->Put("/c", "counter", next, {.if_mod_revision = cur->mod_revision});
          if (r.ok()) break;
          ASSERT_EQ(r.status().code(), StatusCode::kWrongState) << r.status().ToString();
        }
        auto c = s->Put("/c", "once/" + std::to_string(i), "x", {.if_mod_revision = 0});
        if (c.ok()) {
          ++created;
        } else {
          ASSERT_EQ(c.status().code(), StatusCode::kAlreadyExists);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_OK_AND_ASSIGN(KeyValue kv, s->Get("/c", "counter"));
  EXPECT_EQ(kv.value, std::to_string(kThreads * kEach));
  EXPECT_EQ(kv.version, kThreads * kEach + 1);
  EXPECT_EQ(created.load(), kEach);
}

INSTANTIATE_TEST_SUITE_P(Modes, KvContentionTest,
                         ::testing::Values(KvWriteMode::kLinear, KvWriteMode::kNoLinear));

}  // namespace
}  // namespace packice
