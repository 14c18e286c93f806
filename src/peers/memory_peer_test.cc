#include "packice/memory_peer.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backends/memory/memory_store.h"
#include "peers/store_peer.h"
#include "testing.h"

// testing.h's ASSERT_OK and EXPECT_OK take a Status; these take a Status or a Result.

namespace packice {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr uint64_t kSmall = 4096;  // small_object_bytes of the peers under test

uint64_t Page() { return static_cast<uint64_t>(sysconf(_SC_PAGESIZE)); }

// What the store charges for an object of `size` bytes.
uint64_t ChargeOf(uint64_t size) {
  return size <= kSmall ? size : (size + Page() - 1) / Page() * Page();
}

std::byte B(int v) { return std::byte{static_cast<unsigned char>(v)}; }

bool AllEqual(std::span<const std::byte> bytes, std::byte value) {
  return std::all_of(bytes.begin(), bytes.end(), [value](std::byte b) { return b == value; });
}

// The object's content as a lease holder sees it.
// The node-side bytes of a memory blob.
std::span<std::byte> MemBytes(const std::shared_ptr<Blob>& blob) {
  return static_cast<MemoryBlob&>(*blob).bytes();
}

std::span<std::byte> Content(const Grant& g) { return MemBytes(g.blob).first(g.info.size); }

class MemoryPeerTest : public ::testing::Test {
 protected:
  MemoryPeerTest() { Restart(Options()); }

  MemoryPeerOptions Options() const {
    MemoryPeerOptions o;
    o.capacity_bytes = 4 << 20;
    o.small_object_bytes = kSmall;
    o.pool_bytes = o.capacity_bytes;
    o.default_lease_ttl = seconds(30);
    o.max_lease_ttl = hours(1);
    o.background_threads = false;
    o.clock = clock_;
    return o;
  }

  void Restart(MemoryPeerOptions o) { peer_ = MemoryPeer::Create(std::move(o)); }

  Result<Grant> Create(const std::string& key, uint64_t size, CreateOptions create = {},
                       SessionId session = 0, std::optional<Duration> lease_ttl = std::nullopt) {
    return peer_->Acquire(testing::CreateRequest(key, size, std::move(create), session, lease_ttl));
  }

  Result<Grant> Open(const std::string& key, SessionId session = 0,
                     std::optional<Duration> lease_ttl = std::nullopt) {
    return peer_->Acquire(testing::ReadRequest(key, session, lease_ttl));
  }

  // Creates `key`, fills it with `fill`, seals it.
  Result<ObjectInfo> Put(const std::string& key, uint64_t size, std::byte fill,
                         CreateOptions create = {}) {
    auto g = Create(key, size, std::move(create));
    if (!g.ok()) return g.status();
    std::span<std::byte> bytes = MemBytes(g->blob);
    std::fill(bytes.begin(), bytes.end(), fill);
    return peer_->Seal(g->lease, std::nullopt);
  }

  MemoryPeer::Stats Stats() { return peer_->GetStats(); }

  std::shared_ptr<testing::FakeClock> clock_ = std::make_shared<testing::FakeClock>();
  std::shared_ptr<MemoryPeer> peer_;
};

// --- per size: heap objects travel inline, larger ones get a segment of their own -----------
// (The Peer contract itself is tested over every peer in peer_contract_test.cc.)

class MemoryPeerSizeTest : public MemoryPeerTest, public ::testing::WithParamInterface<uint64_t> {
 protected:
  uint64_t size() const { return GetParam(); }
  bool large() const { return size() > kSmall; }
};

TEST_P(MemoryPeerSizeTest, GrantsExportAndChargeByKind) {
  auto c = Create("obj", size());
  ASSERT_OK_R(c);
  ASSERT_EQ(MemBytes(c->blob).size(), size());
  EXPECT_EQ(c->blob->Export(LeaseMode::kCreate)->kind,
            large() ? BlobExport::Kind::kFd : BlobExport::Kind::kInline);
  EXPECT_EQ(Stats().used_bytes, ChargeOf(size()));
  // A read of the pending key says why it is not found.
  auto early = Open("obj");
  EXPECT_CODE(early, kNotFound);
  EXPECT_NE(early.status().message().find("not sealed"), std::string::npos)
      << early.status().ToString();

  std::span<std::byte> w = MemBytes(c->blob);
  for (size_t i = 0; i < w.size(); ++i) w[i] = B(static_cast<int>(i * 7));
  ASSERT_OK_R(peer_->Seal(c->lease, size() / 2));
  // A truncating seal keeps the allocation: the charge stays that of the allocated size.
  EXPECT_EQ(Stats().used_bytes, ChargeOf(size()));
  c->blob.reset();

  auto r = Open("obj");
  ASSERT_OK_R(r);
  std::span<std::byte> got = Content(*r);
  BlobExport e = r->blob->Export(LeaseMode::kRead).value();
  if (large()) {
    ASSERT_EQ(e.kind, BlobExport::Kind::kFd);
    EXPECT_EQ(e.map_size, ChargeOf(size()));
    void* p = mmap(nullptr, e.map_size, PROT_READ, MAP_SHARED, e.fd.get(), 0);
    ASSERT_NE(p, MAP_FAILED) << errno;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), static_cast<const std::byte*>(p)));
    munmap(p, e.map_size);
  } else {
    EXPECT_EQ(e.kind, BlobExport::Kind::kInline);
  }

  // A rebind while the reader holds the old object: both are charged until it lets go.
  ASSERT_OK_R(Put("obj", size(), B('b')));
  EXPECT_EQ(Stats().used_bytes, 2 * ChargeOf(size()));
  ASSERT_OK_R(peer_->Release(r->lease));
  r->blob.reset();
  EXPECT_EQ(Stats().used_bytes, ChargeOf(size()));
  ASSERT_OK_R(peer_->Delete("obj"));
  EXPECT_EQ(Stats().used_bytes, 0u);
}

INSTANTIATE_TEST_SUITE_P(Sizes, MemoryPeerSizeTest,
                         ::testing::Values(uint64_t{100}, kSmall + 2 * 4096 + 5),
                         [](const ::testing::TestParamInfo<uint64_t>& info) {
                           return info.param <= kSmall ? std::string("Heap")
                                                       : std::string("SharedMemory");
                         });

TEST_F(MemoryPeerTest, DiscardedKeyIsNotReportedAsPending) {
  auto c = Create("k", 3 * kSmall);
  ASSERT_OK_R(c);
  ASSERT_OK_R(peer_->Discard(c->lease));
  auto r = Open("k");
  EXPECT_CODE(r, kNotFound);
  EXPECT_EQ(r.status().message().find("not sealed"), std::string::npos);
}

// --- calls racing a seal's commit (the store's part, run outside the table lock) -------------

// A memory store whose next Commit, once armed, waits until the test lets it finish: the seal
// is held between ending its lease and binding its key while the test makes other calls.
class GatedStore final : public BlobStore {
 public:
  explicit GatedStore(MemoryStoreOptions options) : inner_(options) {}

  void ArmNextCommit() {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = true;
  }
  void WaitUntilHeld() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return held_; });
  }
  void Finish() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = false;
    cv_.notify_all();
  }

  std::string_view tier() const override { return inner_.tier(); }
  uint64_t capacity_bytes() const override { return inner_.capacity_bytes(); }
  uint64_t ChargeFor(uint64_t size) const override { return inner_.ChargeFor(size); }
  Result<std::shared_ptr<Blob>> Allocate(const ObjectInfo& info) override {
    return inner_.Allocate(info);
  }
  Status Commit(Blob& blob, const ObjectInfo& info) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!armed_) return Status::Ok();
    armed_ = false;
    held_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !held_; });
    return Status::Ok();
  }
  StoreStats GetStats() const override { return inner_.GetStats(); }

 private:
  MemoryStore inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;
  bool held_ = false;
};

class MemoryPeerCommitTest : public MemoryPeerTest {
 protected:
  MemoryPeerCommitTest() {
    MemoryPeerOptions o = Options();
    auto store = std::make_unique<GatedStore>(
        MemoryStoreOptions{o.capacity_bytes, o.small_object_bytes, o.pool_bytes, false});
    store_ = store.get();
    auto peer = std::make_shared<StorePeer<MemoryPeer>>(
        std::move(store), LeasePolicy{o.default_lease_ttl, o.default_object_ttl, o.max_lease_ttl,
                                      o.background_threads, o.clock});
    EXPECT_OK(peer->Start());
    peer_ = std::move(peer);
  }

  // A seal on another thread, held in its commit until Finish() (or the end of the scope).
  class HeldSeal {
   public:
    HeldSeal(MemoryPeerCommitTest* test, LeaseId lease, std::optional<uint64_t> size)
        : store_(test->store_) {
      store_->ArmNextCommit();
      thread_ = std::thread(
          [this, peer = test->peer_, lease, size] { result_ = peer->Seal(lease, size); });
      store_->WaitUntilHeld();
    }
    ~HeldSeal() { Finish(); }
    // Lets the commit finish; the seal's result.
    const Result<ObjectInfo>& Finish() {
      if (thread_.joinable()) {
        store_->Finish();
        thread_.join();
      }
      return result_;
    }

   private:
    GatedStore* store_;
    Result<ObjectInfo> result_ = Internal("not sealed");
    std::thread thread_;
  };

  GatedStore* store_;
};

TEST_F(MemoryPeerCommitTest, CallsDuringTheCommitFindTheLeaseEndedAndTheSealCompletes) {
  ASSERT_OK_R(Put("k", 10, B(1)));
  auto old_reader = Open("k");
  ASSERT_OK_R(old_reader);
  const SessionId session = peer_->OpenSession();
  auto w = Create("k", 3 * kSmall, {}, session, seconds(1));
  ASSERT_OK_R(w);
  std::fill(MemBytes(w->blob).begin(), MemBytes(w->blob).end(), B(2));

  HeldSeal seal(this, w->lease, 2 * kSmall);
  // The lease ended when the seal began: no second seal, discard, release or renew.
  EXPECT_CODE(peer_->Seal(w->lease, std::nullopt), kLeaseExpired);
  EXPECT_CODE(peer_->Discard(w->lease), kLeaseExpired);
  EXPECT_CODE(peer_->Release(w->lease), kLeaseExpired);
  EXPECT_CODE(peer_->Renew(w->lease), kLeaseExpired);
  // The key is pending: an exclusive create is refused.
  EXPECT_CODE(Create("k", 10, CreateOptions{.exclusive = true}), kAlreadyExists);
  // The lease's expiry, the reaper and its session closing cannot reach the object any more.
  clock_->Advance(seconds(2));
  peer_->ReapExpired();
  peer_->CloseSession(session);
  // A delete unbinds the old object; the seal then binds the new one.
  ASSERT_OK(peer_->Delete("k"));
  EXPECT_CODE(Open("k"), kNotFound);
  EXPECT_EQ(Stats().creating, 1u);

  const Result<ObjectInfo>& sealed = seal.Finish();
  ASSERT_OK_R(sealed);
  EXPECT_EQ(sealed->version, w->info.version);
  EXPECT_EQ(sealed->size, 2 * kSmall);
  auto now = Open("k");
  ASSERT_OK_R(now);
  EXPECT_EQ(now->info.version, w->info.version);
  EXPECT_TRUE(AllEqual(Content(*now), B(2)));
  EXPECT_TRUE(AllEqual(Content(*old_reader), B(1)));  // the old reader kept its bytes
  ASSERT_OK(peer_->Release(now->lease));
  ASSERT_OK(peer_->Release(old_reader->lease));
  MemoryPeer::Stats st = Stats();
  EXPECT_EQ(st.creating, 0u);
  EXPECT_EQ(st.leases, 0u);
  EXPECT_EQ(st.objects, 1u);
}

TEST_F(MemoryPeerCommitTest, ExclusiveSealOvertakenDuringItsCommitIsAlreadyExists) {
  auto excl = Create("k", 3 * kSmall, CreateOptions{.exclusive = true});
  ASSERT_OK_R(excl);
  HeldSeal seal(this, excl->lease, std::nullopt);
  // A plain create and seal of the same key completes while the exclusive one commits.
  auto winner = Put("k", 100, B(7));
  ASSERT_OK_R(winner);
  EXPECT_CODE(seal.Finish(), kAlreadyExists);
  EXPECT_EQ(peer_->Stat("k")->version, winner->version);
  MemoryPeer::Stats st = Stats();
  EXPECT_EQ(st.creating, 0u);
  EXPECT_EQ(st.leases, 0u);
  excl->blob.reset();
  EXPECT_EQ(Stats().used_bytes, 100u);  // the loser's memory went back
}

// --- lease TTL -----------------------------------------------------------------------------

// The holder of an expired lease never let go and may still map the segment: it is not pooled.
TEST_F(MemoryPeerTest, ExpiredCreateLeaseRetiresItsSegment) {
  auto c = Create("k", 3 * kSmall, {}, 0, seconds(5));
  ASSERT_OK_R(c);
  clock_->Advance(seconds(5));
  peer_->ReapExpired();
  EXPECT_EQ(Stats().creating, 0u);
  c->blob.reset();
  peer_->DrainCleaner();
  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_EQ(s.pooled_bytes, 0u);
}

// --- capacity ------------------------------------------------------------------------------

class MemoryPeerCapacityTest : public MemoryPeerTest {
 protected:
  MemoryPeerCapacityTest() {
    MemoryPeerOptions o = Options();
    o.capacity_bytes = 16 * kSmall;
    o.pool_bytes = o.capacity_bytes;
    Restart(o);
  }
  uint64_t capacity() const { return 16 * kSmall; }
};

TEST_F(MemoryPeerCapacityTest, ObjectLargerThanTheCapacityIsOutOfCapacity) {
  auto r = Create("k", capacity() + 1);
  EXPECT_CODE(r, kOutOfCapacity);
  EXPECT_NE(r.status().message().find(std::to_string(capacity())), std::string::npos)
      << r.status().ToString();
  EXPECT_CODE(Create("k", std::numeric_limits<uint64_t>::max()), kOutOfCapacity);
  EXPECT_CODE(Create("k", std::numeric_limits<uint64_t>::max() - 100), kOutOfCapacity);
  EXPECT_EQ(Stats().used_bytes, 0u);
  EXPECT_EQ(Stats().creating, 0u);
  EXPECT_OK_R(Create("k", capacity()));
}

TEST_F(MemoryPeerCapacityTest, FullPeerRefusesCreatesUntilRoomComesBack) {
  std::vector<Grant> pending;
  for (int i = 0; i < 8; ++i) {
    auto c = Create("p" + std::to_string(i), kSmall);
    ASSERT_OK_R(c);
    pending.push_back(std::move(c).value());
  }
  for (int i = 0; i < 8; ++i) ASSERT_OK_R(Put("s" + std::to_string(i), kSmall, B(i)));
  EXPECT_EQ(Stats().used_bytes, capacity());

  auto full = Create("x", 1);
  EXPECT_CODE(full, kOutOfCapacity);
  EXPECT_CODE(Create("x", 2 * kSmall), kOutOfCapacity);
  // Reads need no room.
  auto r = Open("s0");
  ASSERT_OK_R(r);
  ASSERT_OK_R(peer_->Release(r->lease));
  r->blob.reset();

  // Releasing a pending create gives its room back.
  ASSERT_OK_R(peer_->Release(pending[0].lease));
  pending[0].blob.reset();
  auto c = Create("x", kSmall);
  ASSERT_OK_R(c);
  EXPECT_CODE(Create("y", 1), kOutOfCapacity);

  // So does deleting a sealed object nobody reads.
  ASSERT_OK_R(peer_->Delete("s1"));
  EXPECT_OK_R(Create("y", kSmall));
}

TEST_F(MemoryPeerCapacityTest, PooledSegmentsMakeRoomForOtherSizes) {
  ASSERT_OK_R(Put("big", 8 * kSmall, B(1)));
  ASSERT_OK_R(peer_->Delete("big"));
  peer_->DrainCleaner();
  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_EQ(s.pooled_bytes, ChargeOf(8 * kSmall));
  EXPECT_LE(s.used_bytes + s.pooled_bytes, s.capacity_bytes);

  // Twelve of sixteen: only possible if the pooled eight are given up.
  auto c = Create("other", 12 * kSmall);
  ASSERT_OK_R(c);
  EXPECT_TRUE(AllEqual(MemBytes(c->blob), B(0)));
  s = Stats();
  EXPECT_EQ(s.used_bytes, 12 * kSmall);
  EXPECT_LE(s.used_bytes + s.pooled_bytes, s.capacity_bytes);
}

TEST_F(MemoryPeerCapacityTest, RecycledSegmentIsZeroForTheNextObject) {
  ASSERT_OK_R(Put("a", 4 * kSmall, B(0xEE)));
  ASSERT_OK_R(peer_->Delete("a"));
  peer_->DrainCleaner();
  auto c = Create("b", 4 * kSmall);
  ASSERT_OK_R(c);
  EXPECT_EQ(Stats().pooled_bytes, 0u);  // it was the pooled segment
  EXPECT_TRUE(AllEqual(MemBytes(c->blob), B(0)));
}

TEST_F(MemoryPeerCapacityTest, BackgroundCleanerZeroesRecycledSegments) {
  MemoryPeerOptions o = Options();
  o.capacity_bytes = 16 * kSmall;
  o.background_threads = true;  // a cleaner thread zeroes freed segments
  Restart(o);
  for (int i = 0; i < 10; ++i) {
    auto c = Create("k", 4 * kSmall);
    ASSERT_OK_R(c);
    ASSERT_TRUE(AllEqual(MemBytes(c->blob), B(0))) << "round " << i;
    std::fill(MemBytes(c->blob).begin(), MemBytes(c->blob).end(), B(0xCD));
    ASSERT_OK_R(peer_->Seal(c->lease, std::nullopt));
    c->blob.reset();
    if (i % 2 == 0) peer_->DrainCleaner();
  }
  peer_->DrainCleaner();
  ASSERT_OK_R(peer_->Delete("k"));
  peer_->DrainCleaner();
  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_GT(s.pooled_bytes, 0u);
  EXPECT_LE(s.pooled_bytes, s.capacity_bytes);
}

// --- statistics (LocalPeer::Stats hits, misses, evictions) ---------------------------------

TEST_F(MemoryPeerCapacityTest, AFullPeerRefusesCreatesAndEvictsNothing) {
  for (int i = 0; i < 16; ++i) ASSERT_OK_R(Put("s" + std::to_string(i), kSmall, B(i)));
  EXPECT_CODE(Create("x", 1), kOutOfCapacity);
  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.objects, 16u);
  EXPECT_EQ(s.evictions, 0u);
}

}  // namespace
}  // namespace packice
