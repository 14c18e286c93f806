// What the tiered backend adds to the contract (queue_backend_contract_test.cc runs it too):
// runs of records become objects in the store, the log lets go of them only once the store
// holds them durably, and an object that goes missing or rots is read from the log while it
// has the records and is data_loss after — never a silent gap.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <thread>

#include "backends/log/log_testing.h"
#include "backends/queue/queue_backend.h"
#include "core/env.h"
#include "packice/file_peer.h"
#include "packice/memory_peer.h"
#include "testing.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
constexpr int64_t kNow = 1'700'000'000'000;
constexpr char kPrefix[] = "queue/7/0/";

bool Eventually(const std::function<bool()>& done) {
  for (auto until = std::chrono::steady_clock::now() + 20s;
       std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(2ms)) {
    if (done()) return true;
  }
  return done();
}

std::vector<std::string> Keys(Peer& store) {
  std::vector<std::string> keys;
  auto page = store.List({.prefix = kPrefix});
  EXPECT_TRUE(page.ok());
  if (page.ok()) {
    for (const ObjectInfo& o : page->objects) keys.push_back(o.key);
  }
  return keys;
}

size_t LogSegments(const std::string& dir) {
  return NamesWithSuffix(*Env::Default(), dir, ".log").size();
}

// Replaces the object `key` with `bytes`.
void PutObject(Peer& store, const std::string& key, const std::string& bytes) {
  ASSERT_OK_AND_ASSIGN(Grant g, store.Acquire(testing::CreateRequest(key, bytes.size())));
  ASSERT_OK(g.blob->Write(0, std::as_bytes(std::span(bytes))));
  ASSERT_OK(store.Seal(g.lease, std::nullopt).status());
}

class TieredQueueBackendTest : public ::testing::Test {
 protected:
  void OpenDisk() {
    ASSERT_OK_AND_ASSIGN(disk_, FilePeer::Open({.dir = store_dir_.path(), .sync = false}));
    store_ = disk_;
  }
  void OpenMemory() { store_ = MemoryPeer::Create({.capacity_bytes = 64 << 20}); }

  Result<std::unique_ptr<QueueBackend>> Open(std::chrono::milliseconds interval = 2ms) {
    TieredQueueBackendOptions o;
    o.log = log_testing::SmallOptions(log_dir_.path());
    o.store = store_;
    o.key_prefix = kPrefix;
    o.object_bytes = 4 << 10;
    o.interval = interval;
    return OpenTieredQueueBackend(std::move(o));
  }

  // n records of about 1 KiB: "r<i>" and a pattern.
  void AppendN(QueueBackend& b, int n, int from = 0) {
    for (int i = from; i < from + n; ++i) {
      QueueRecord r;
      r.value = "r" + std::to_string(i) + ":" + testing::PatternString(1000, uint8_t(i));
      r.timestamp_unix_ms = kNow;
      ASSERT_OK(b.Append(std::span(&r, 1), kNow).status());
    }
  }

  // Every record from the start, read in small steps; checks values and offsets.
  void ExpectAll(const QueueBackend& b, int n) {
    uint64_t at = b.stats().start_offset;
    ASSERT_EQ(at, 0u);
    while (at < static_cast<uint64_t>(n)) {
      ASSERT_OK_AND_ASSIGN(auto got, b.Read(at, 3, 2500));
      ASSERT_FALSE(got.empty()) << at;
      for (const StoredRecord& r : got) {
        ASSERT_EQ(r.offset, at);
        EXPECT_EQ(r.record.value,
                  "r" + std::to_string(at) + ":" + testing::PatternString(1000, uint8_t(at)));
        ++at;
      }
    }
  }

  testing::TempDir log_dir_, store_dir_;
  std::shared_ptr<FilePeer> disk_;
  std::shared_ptr<Peer> store_;
};

TEST_F(TieredQueueBackendTest, FullRunsBecomeObjectsAndTheLogLetsGoOfThemOnceDurable) {
  OpenDisk();
  ASSERT_OK_AND_ASSIGN(auto b, Open());
  AppendN(*b, 100);  // about 100 KiB: 6 segments of 16 KiB, 24 objects of 4 KiB
  ASSERT_TRUE(Eventually([&] { return Keys(*store_).size() >= 20; })) << Keys(*store_).size();
  ASSERT_TRUE(Eventually([&] { return LogSegments(log_dir_.path()) <= 2; }))
      << LogSegments(log_dir_.path());
  const std::vector<std::string> keys = Keys(*store_);
  EXPECT_EQ(keys.front(), std::string(kPrefix) + "00000000000000000000");
  ExpectAll(*b, 100);
  // One read runs from the objects into the log.
  ASSERT_OK_AND_ASSIGN(auto all, b->Read(0, 1000, 1 << 20));
  ASSERT_EQ(all.size(), 100u);
  EXPECT_EQ(all.back().offset, 99u);
  // A reopen finds it all again, and appends go on.
  b.reset();
  ASSERT_OK_AND_ASSIGN(b, Open());
  ExpectAll(*b, 100);
  AppendN(*b, 1, 100);
  EXPECT_EQ(b->stats().end_offset, 101u);
}

TEST_F(TieredQueueBackendTest, AStoreThatIsNotDurableNeverCostsTheLogItsRecords) {
  OpenMemory();
  ASSERT_OK_AND_ASSIGN(auto b, Open());
  AppendN(*b, 100);
  ASSERT_TRUE(Eventually([&] { return Keys(*store_).size() >= 20; }));
  EXPECT_GE(LogSegments(log_dir_.path()), 6u);  // all of it still in the log
  ExpectAll(*b, 100);
  // The store loses everything (a restart of a memory store): reads come from the log, and a
  // reopen seals the runs again.
  for (const std::string& key : Keys(*store_)) ASSERT_OK(store_->Delete(key));
  ExpectAll(*b, 100);
  b.reset();
  ASSERT_OK_AND_ASSIGN(b, Open());
  ExpectAll(*b, 100);
  ASSERT_TRUE(Eventually([&] { return Keys(*store_).size() >= 20; }));
  ExpectAll(*b, 100);
}

TEST_F(TieredQueueBackendTest, AnObjectGoneAfterTheLogLetGoIsDataLossNeverAGap) {
  OpenDisk();
  ASSERT_OK_AND_ASSIGN(auto b, Open());
  AppendN(*b, 100);
  ASSERT_TRUE(Eventually([&] { return LogSegments(log_dir_.path()) <= 2; }));
  const std::string first = Keys(*store_).front();
  ASSERT_OK(store_->Delete(first));
  auto got = b->Read(0, 10, 1 << 20);
  EXPECT_CODE(got.status(), kDataLoss);
  EXPECT_NE(got.status().message().find(first), std::string_view::npos) << got.status().ToString();
  // Past the lost object, records read as before; and after a reopen the loss stays reported.
  ASSERT_OK_AND_ASSIGN(auto later, b->Read(50, 10, 1 << 20));
  EXPECT_EQ(later.size(), 10u);
  b.reset();
  ASSERT_OK_AND_ASSIGN(b, Open());
  EXPECT_CODE(b->Read(0, 10, 1 << 20).status(), kDataLoss);
  ASSERT_OK_AND_ASSIGN(later, b->Read(50, 10, 1 << 20));
  EXPECT_EQ(later.size(), 10u);
  // Retention past the lost run clears it.
  ASSERT_OK_AND_ASSIGN(uint64_t start, b->TruncateBefore(20));
  EXPECT_GT(start, 0u);
  ASSERT_OK_AND_ASSIGN(auto first_kept, b->Read(start, 1, 1 << 20));
  EXPECT_EQ(first_kept.size(), 1u);
}

TEST_F(TieredQueueBackendTest, ACorruptObjectIsDataLossNamingIt) {
  OpenDisk();
  ASSERT_OK_AND_ASSIGN(auto b, Open());
  AppendN(*b, 100);
  ASSERT_TRUE(Eventually([&] { return LogSegments(log_dir_.path()) <= 2; }));
  const std::string key = Keys(*store_).front();
  // The same object with one record byte flipped.
  ASSERT_OK_AND_ASSIGN(Grant g, store_->Acquire(testing::ReadRequest(key)));
  std::string bytes(g.info.size, '\0');
  ASSERT_OK(g.blob->Read(0, std::as_writable_bytes(std::span(bytes))));
  ASSERT_OK(store_->Release(g.lease));
  bytes[100] ^= 0x20;
  PutObject(*store_, key, bytes);
  auto got = b->Read(0, 100, 1 << 20);
  EXPECT_CODE(got.status(), kDataLoss);
  EXPECT_NE(got.status().message().find(key), std::string_view::npos) << got.status().ToString();
  // Something that is not a segment object at all.
  PutObject(*store_, key, "garbage");
  EXPECT_CODE(b->Read(0, 1, 1 << 20).status(), kDataLoss);
}

TEST_F(TieredQueueBackendTest, RetentionDeletesObjectsAndOrphansGoAtOpen) {
  OpenDisk();
  ASSERT_OK_AND_ASSIGN(auto b, Open());
  AppendN(*b, 100);
  ASSERT_TRUE(Eventually([&] { return LogSegments(log_dir_.path()) <= 2; }));
  const size_t before = Keys(*store_).size();
  ASSERT_OK_AND_ASSIGN(uint64_t start, b->TruncateBefore(60));
  EXPECT_GT(start, 40u);
  EXPECT_LE(start, 60u);
  EXPECT_LT(Keys(*store_).size(), before);
  for (const std::string& key : Keys(*store_)) {
    EXPECT_GE(key, std::string(kPrefix) + "00000000000000000040") << key;
  }
  EXPECT_CODE(b->Read(start - 1, 1, 1 << 20).status(), kOutOfRange);
  // An object under the prefix that the manifest does not name (a crash between a seal and
  // the manifest) is deleted when the backend opens; others' keys are left alone.
  b.reset();
  PutObject(*store_, std::string(kPrefix) + "00000000000000099999", "orphan");
  PutObject(*store_, "queue/8/0/00000000000000000000", "not ours");
  ASSERT_OK_AND_ASSIGN(b, Open(0ms));
  for (const std::string& key : Keys(*store_)) EXPECT_NE(key.find("99999"), 0u);
  EXPECT_CODE(store_->Stat(std::string(kPrefix) + "00000000000000099999").status(), kNotFound);
  EXPECT_OK(store_->Stat("queue/8/0/00000000000000000000").status());
  // Retention by size removes the objects, oldest first, then the log's segments.
  ASSERT_OK_AND_ASSIGN(start, b->Retain(8 << 10, 0ms, kNow));
  EXPECT_GT(start, 80u);
  EXPECT_EQ(b->stats().end_offset, 100u);
}

TEST_F(TieredQueueBackendTest, AManifestThatDoesNotParseRefusesToOpen) {
  OpenDisk();
  { ASSERT_OK_AND_ASSIGN(auto b, Open()); }
  ASSERT_OK(ReplaceFile(*Env::Default(), log_dir_.path(), "MANIFEST", "packice-queue-tiers 1\nx"));
  EXPECT_CODE(Open().status(), kDataLoss);
  ASSERT_OK(ReplaceFile(*Env::Default(), log_dir_.path(), "MANIFEST",
                        "packice-queue-tiers 1\nsealed_end 10\nobject 0 20 1 1 1 0\nend\n"));
  EXPECT_CODE(Open().status(), kDataLoss);  // an object past sealed_end
}

}  // namespace
}  // namespace packice
