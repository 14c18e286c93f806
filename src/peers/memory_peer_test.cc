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
#include <latch>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backends/memory/memory_store.h"
#include "peers/store_peer.h"
#include "testing.h"

// testing.h's ASSERT_OK and EXPECT_OK take a Status; these take a Status or a Result.
#define ASSERT_OK_R(expr) ASSERT_OK(::packice::testing::StatusOf(expr))
#define EXPECT_OK_R(expr) EXPECT_OK(::packice::testing::StatusOf(expr))

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
    AcquireRequest req;
    req.key = key;
    req.mode = LeaseMode::kCreate;
    req.size = size;
    req.create = std::move(create);
    req.session = session;
    req.lease_ttl = lease_ttl;
    return peer_->Acquire(req);
  }

  Result<Grant> Open(const std::string& key, SessionId session = 0,
                     std::optional<Duration> lease_ttl = std::nullopt) {
    AcquireRequest req;
    req.key = key;
    req.mode = LeaseMode::kRead;
    req.session = session;
    req.lease_ttl = lease_ttl;
    return peer_->Acquire(req);
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

// --- the create -> write -> seal -> read state machine, over a heap and a shared-memory size ---

class MemoryPeerSizeTest : public MemoryPeerTest, public ::testing::WithParamInterface<uint64_t> {
 protected:
  uint64_t size() const { return GetParam(); }
  bool large() const { return size() > kSmall; }
};

TEST_P(MemoryPeerSizeTest, CreateWriteSealRead) {
  auto c = Create("obj", size(), CreateOptions{.meta = {{"color", "blue"}}});
  ASSERT_OK_R(c);
  EXPECT_EQ(c->info.key, "obj");
  EXPECT_EQ(c->info.size, size());
  EXPECT_EQ(c->info.state, ObjectState::kCreating);
  EXPECT_GT(c->info.version, 0u);
  EXPECT_EQ(c->info.tier, "memory");
  EXPECT_EQ(c->info.created_unix_ms, clock_->UnixMillis());
  EXPECT_EQ(c->lease_ttl, seconds(30));
  ASSERT_EQ(MemBytes(c->blob).size(), size());
  EXPECT_TRUE(AllEqual(MemBytes(c->blob), B(0)));
  EXPECT_EQ(c->blob->Export(LeaseMode::kCreate)->kind,
            large() ? BlobExport::Kind::kFd : BlobExport::Kind::kInline);

  // Not visible under its key until sealed.
  EXPECT_CODE(peer_->Stat("obj"), kNotFound);
  auto early = Open("obj");
  EXPECT_CODE(early, kNotFound);
  EXPECT_NE(early.status().message().find("not sealed"), std::string::npos)
      << early.status().ToString();
  EXPECT_TRUE(peer_->List({})->objects.empty());
  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.objects, 0u);
  EXPECT_EQ(s.creating, 1u);
  EXPECT_EQ(s.leases, 1u);
  EXPECT_EQ(s.used_bytes, ChargeOf(size()));

  std::span<std::byte> w = MemBytes(c->blob);
  for (size_t i = 0; i < w.size(); ++i) w[i] = B(static_cast<int>(i * 7));
  auto sealed = peer_->Seal(c->lease, std::nullopt);
  ASSERT_OK_R(sealed);
  EXPECT_EQ(sealed->state, ObjectState::kSealed);
  EXPECT_EQ(sealed->size, size());
  EXPECT_EQ(sealed->version, c->info.version);
  EXPECT_EQ(sealed->expires_unix_ms, 0);
  s = Stats();
  EXPECT_EQ(s.objects, 1u);
  EXPECT_EQ(s.creating, 0u);
  EXPECT_EQ(s.leases, 0u);  // the create lease ended

  auto st = peer_->Stat("obj");
  ASSERT_OK_R(st);
  EXPECT_EQ(st->version, c->info.version);
  EXPECT_EQ(st->state, ObjectState::kSealed);
  EXPECT_EQ(st->meta, (Meta{{"color", "blue"}}));

  auto r = Open("obj");
  ASSERT_OK_R(r);
  EXPECT_EQ(r->info.version, c->info.version);
  EXPECT_EQ(r->info.state, ObjectState::kSealed);
  EXPECT_EQ(r->info.meta, (Meta{{"color", "blue"}}));
  std::span<std::byte> got = Content(*r);
  ASSERT_EQ(got.size(), size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], B(static_cast<int>(i * 7))) << i;
  EXPECT_EQ(Stats().leases, 1u);

  BlobExport e = r->blob->Export(LeaseMode::kRead).value();
  if (large()) {
    ASSERT_EQ(e.kind, BlobExport::Kind::kFd);
    EXPECT_EQ(e.map_size, ChargeOf(size()));
    void* p = mmap(nullptr, e.map_size, PROT_READ, MAP_SHARED, e.fd.get(), 0);
    ASSERT_NE(p, MAP_FAILED) << errno;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), static_cast<const std::byte*>(p)));
    munmap(p, e.map_size);
    errno = 0;
    EXPECT_EQ(mmap(nullptr, e.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, e.fd.get(), 0),
              MAP_FAILED);
    EXPECT_EQ(errno, EACCES);
  } else {
    EXPECT_EQ(e.kind, BlobExport::Kind::kInline);
  }

  ASSERT_OK_R(peer_->Release(r->lease));
  EXPECT_CODE(peer_->Release(r->lease), kLeaseExpired);
  EXPECT_EQ(Stats().leases, 0u);
}

TEST_P(MemoryPeerSizeTest, SealWithSizeTruncatesTheContent) {
  auto c = Create("obj", size());
  ASSERT_OK_R(c);
  auto sealed = peer_->Seal(c->lease, size() / 2);
  ASSERT_OK_R(sealed);
  EXPECT_EQ(sealed->size, size() / 2);
  EXPECT_EQ(peer_->Stat("obj")->size, size() / 2);
  auto r = Open("obj");
  ASSERT_OK_R(r);
  EXPECT_EQ(r->info.size, size() / 2);
  // The allocation is unchanged: the charge stays that of the allocated size.
  EXPECT_EQ(Stats().used_bytes, ChargeOf(size()));
}

TEST_P(MemoryPeerSizeTest, SealLargerThanAllocatedIsInvalidAndTheLeaseLivesOn) {
  auto c = Create("obj", size());
  ASSERT_OK_R(c);
  EXPECT_CODE(peer_->Seal(c->lease, size() + 1), kInvalidArgument);
  EXPECT_CODE(peer_->Stat("obj"), kNotFound);
  EXPECT_EQ(Stats().creating, 1u);
  EXPECT_EQ(Stats().leases, 1u);
  ASSERT_OK_R(peer_->Seal(c->lease, size()));
  EXPECT_OK_R(peer_->Stat("obj"));
}

TEST_P(MemoryPeerSizeTest, RebindKeepsOldReadersOnTheOldBytes) {
  auto v1 = Put("k", size(), B('a'));
  ASSERT_OK_R(v1);
  auto old_reader = Open("k");
  ASSERT_OK_R(old_reader);

  auto v2 = Put("k", size(), B('b'));
  ASSERT_OK_R(v2);
  EXPECT_GT(v2->version, v1->version);
  EXPECT_EQ(peer_->Stat("k")->version, v2->version);
  EXPECT_EQ(Stats().objects, 1u);
  // Both versions are held: the old one by its reader.
  EXPECT_EQ(Stats().used_bytes, 2 * ChargeOf(size()));

  EXPECT_EQ(old_reader->info.version, v1->version);
  EXPECT_TRUE(AllEqual(Content(*old_reader), B('a')));
  auto new_reader = Open("k");
  ASSERT_OK_R(new_reader);
  EXPECT_EQ(new_reader->info.version, v2->version);
  EXPECT_TRUE(AllEqual(Content(*new_reader), B('b')));

  // A third version while both readers hold theirs.
  ASSERT_OK_R(Put("k", size(), B('c')));
  EXPECT_TRUE(AllEqual(Content(*old_reader), B('a')));
  EXPECT_TRUE(AllEqual(Content(*new_reader), B('b')));
  EXPECT_EQ(Stats().used_bytes, 3 * ChargeOf(size()));

  ASSERT_OK_R(peer_->Release(old_reader->lease));
  old_reader->blob.reset();
  ASSERT_OK_R(peer_->Release(new_reader->lease));
  new_reader->blob.reset();
  EXPECT_EQ(Stats().used_bytes, ChargeOf(size()));
  EXPECT_EQ(Stats().leases, 0u);
}

TEST_P(MemoryPeerSizeTest, DeleteUnbindsButAReaderKeepsItsBytes) {
  ASSERT_OK_R(Put("k", size(), B('x')));
  auto r = Open("k");
  ASSERT_OK_R(r);
  ASSERT_OK_R(peer_->Delete("k"));
  EXPECT_CODE(peer_->Stat("k"), kNotFound);
  EXPECT_CODE(Open("k"), kNotFound);
  EXPECT_CODE(peer_->Delete("k"), kNotFound);
  EXPECT_EQ(Stats().objects, 0u);
  EXPECT_TRUE(AllEqual(Content(*r), B('x')));
  EXPECT_EQ(Stats().used_bytes, ChargeOf(size()));
  ASSERT_OK_R(peer_->Release(r->lease));
  r->blob.reset();
  EXPECT_EQ(Stats().used_bytes, 0u);
}

TEST_P(MemoryPeerSizeTest, ExpiredObjectIsGoneAndFreedWhenItsLastReaderLetsGo) {
  auto put = Put("k", size(), B('t'), CreateOptions{.ttl = seconds(10)});
  ASSERT_OK_R(put);
  EXPECT_EQ(put->ttl, seconds(10));
  EXPECT_EQ(put->expires_unix_ms, clock_->UnixMillis() + 10'000);
  auto r = Open("k", 0, minutes(5));
  ASSERT_OK_R(r);

  clock_->Advance(milliseconds(9'999));
  peer_->ReapExpired();
  EXPECT_OK_R(peer_->Stat("k"));
  clock_->Advance(milliseconds(1));
  EXPECT_CODE(Open("k"), kNotFound);  // expired even before the reaper runs
  peer_->ReapExpired();
  EXPECT_CODE(peer_->Stat("k"), kNotFound);
  EXPECT_EQ(Stats().objects, 0u);

  // The reader's lease still covers the bytes.
  EXPECT_TRUE(AllEqual(Content(*r), B('t')));
  EXPECT_EQ(Stats().used_bytes, ChargeOf(size()));
  ASSERT_OK_R(peer_->Release(r->lease));
  r->blob.reset();
  EXPECT_EQ(Stats().used_bytes, 0u);
}

INSTANTIATE_TEST_SUITE_P(Sizes, MemoryPeerSizeTest,
                         ::testing::Values(uint64_t{100}, kSmall + 2 * 4096 + 5),
                         [](const ::testing::TestParamInfo<uint64_t>& info) {
                           return info.param <= kSmall ? std::string("Heap")
                                                       : std::string("SharedMemory");
                         });

// --- lease misuse --------------------------------------------------------------------------

TEST_F(MemoryPeerTest, DoubleSealIsLeaseExpired) {
  auto c = Create("k", 10);
  ASSERT_OK_R(c);
  ASSERT_OK_R(peer_->Seal(c->lease, std::nullopt));
  EXPECT_CODE(peer_->Seal(c->lease, std::nullopt), kLeaseExpired);
  EXPECT_CODE(peer_->Release(c->lease), kLeaseExpired);
  EXPECT_CODE(peer_->Discard(c->lease), kLeaseExpired);
  EXPECT_OK_R(peer_->Stat("k"));  // the sealed object is untouched
}

TEST_F(MemoryPeerTest, ReadLeaseCannotSealOrDiscard) {
  ASSERT_OK_R(Put("k", 10, B(1)));
  auto r = Open("k");
  ASSERT_OK_R(r);
  EXPECT_CODE(peer_->Seal(r->lease, std::nullopt), kPermissionDenied);
  EXPECT_CODE(peer_->Discard(r->lease), kPermissionDenied);
  EXPECT_OK_R(peer_->Stat("k"));
  EXPECT_OK_R(peer_->Renew(r->lease));  // still live
  EXPECT_OK_R(peer_->Release(r->lease));
}

TEST_F(MemoryPeerTest, UnknownLeaseIsLeaseExpired) {
  EXPECT_CODE(peer_->Seal(12345, std::nullopt), kLeaseExpired);
  EXPECT_CODE(peer_->Release(12345), kLeaseExpired);
  EXPECT_CODE(peer_->Discard(12345), kLeaseExpired);
  EXPECT_CODE(peer_->Renew(12345), kLeaseExpired);
}

TEST_F(MemoryPeerTest, DiscardDropsTheUnsealedObject) {
  auto c = Create("k", 3 * kSmall);
  ASSERT_OK_R(c);
  ASSERT_OK_R(peer_->Discard(c->lease));
  EXPECT_CODE(peer_->Seal(c->lease, std::nullopt), kLeaseExpired);
  EXPECT_CODE(peer_->Discard(c->lease), kLeaseExpired);
  auto r = Open("k");
  EXPECT_CODE(r, kNotFound);
  EXPECT_EQ(r.status().message().find("not sealed"), std::string::npos);
  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.creating, 0u);
  EXPECT_EQ(s.leases, 0u);
  c->blob.reset();
  EXPECT_EQ(Stats().used_bytes, 0u);
}

TEST_F(MemoryPeerTest, ReleasingACreateLeaseDiscards) {
  auto c = Create("k", 100);
  ASSERT_OK_R(c);
  ASSERT_OK_R(peer_->Release(c->lease));
  EXPECT_CODE(peer_->Seal(c->lease, std::nullopt), kLeaseExpired);
  EXPECT_CODE(peer_->Stat("k"), kNotFound);
  EXPECT_EQ(Stats().creating, 0u);
  c->blob.reset();
  EXPECT_EQ(Stats().used_bytes, 0u);
  // The key is free again, even for an exclusive create.
  EXPECT_OK_R(Create("k", 100, CreateOptions{.exclusive = true}));
}

TEST_F(MemoryPeerTest, EmptyKeyGetsAGeneratedId) {
  auto a = Create("", 10);
  auto b = Create("", 10);
  ASSERT_OK_R(a);
  ASSERT_OK_R(b);
  for (const std::string& key : {a->info.key, b->info.key}) {
    EXPECT_EQ(key.size(), 32u);
    EXPECT_EQ(key.find_first_not_of("0123456789abcdef"), std::string::npos) << key;
  }
  EXPECT_NE(a->info.key, b->info.key);
  auto sealed = peer_->Seal(a->lease, std::nullopt);
  ASSERT_OK_R(sealed);
  EXPECT_EQ(sealed->key, a->info.key);
  EXPECT_OK_R(peer_->Stat(a->info.key));
  EXPECT_OK_R(Open(a->info.key));
  // A read names its key.
  EXPECT_CODE(Open(""), kInvalidArgument);
}

// --- exclusive creates ---------------------------------------------------------------------

TEST_F(MemoryPeerTest, ExclusiveCreateFailsWhenTheKeyIsBoundOrPending) {
  const CreateOptions excl{.exclusive = true};
  ASSERT_OK_R(Put("bound", 10, B(1)));
  EXPECT_CODE(Create("bound", 10, excl), kAlreadyExists);

  auto pending = Create("pending", 10);  // not exclusive itself
  ASSERT_OK_R(pending);
  EXPECT_CODE(Create("pending", 10, excl), kAlreadyExists);

  auto first = Create("fresh", 10, excl);
  ASSERT_OK_R(first);
  EXPECT_CODE(Create("fresh", 10, excl), kAlreadyExists);

  // A failed exclusive create holds nothing.
  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.creating, 2u);
  EXPECT_EQ(s.leases, 2u);
  EXPECT_EQ(s.used_bytes, 30u);

  // Once the pending create is gone, or the bound object deleted, the key is free.
  ASSERT_OK_R(peer_->Discard(pending->lease));
  EXPECT_OK_R(Create("pending", 10, excl));
  ASSERT_OK_R(peer_->Delete("bound"));
  EXPECT_OK_R(Create("bound", 10, excl));
  // Non-exclusive creates never conflict.
  EXPECT_OK_R(Create("fresh", 10));
}

TEST_F(MemoryPeerTest, OneOfManyConcurrentExclusiveCreatesWins) {
  constexpr int kThreads = 4;
  for (int round = 0; round < 20; ++round) {
    const std::string key = "race" + std::to_string(round);
    std::latch start(kThreads);
    std::atomic<int> won{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        start.arrive_and_wait();
        // Large enough for a segment of its own, so the allocation takes a while.
        auto c = Create(key, 4 * kSmall, CreateOptions{.exclusive = true});
        if (c.ok()) {
          ++won;
        } else if (c.status().code() != StatusCode::kAlreadyExists) {
          ADD_FAILURE() << c.status().ToString();
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(won.load(), 1) << key;
  }
  EXPECT_EQ(Stats().creating, 20u);
}

TEST_F(MemoryPeerTest, ExclusiveCreateOfAnExpiredKeySucceeds) {
  ASSERT_OK_R(Put("k", 10, B(1), CreateOptions{.ttl = seconds(1)}));
  clock_->Advance(seconds(1));
  auto c = Create("k", 10, CreateOptions{.exclusive = true});
  ASSERT_OK_R(c);
  ASSERT_OK_R(peer_->Seal(c->lease, std::nullopt));
  EXPECT_EQ(peer_->Stat("k")->version, c->info.version);
}

TEST_F(MemoryPeerTest, ExclusiveSealThatLosesTheRaceIsAlreadyExists) {
  auto excl = Create("k", 3 * kSmall, CreateOptions{.exclusive = true});
  ASSERT_OK_R(excl);
  auto other = Create("k", 100);  // a plain create of the same key is allowed meanwhile
  ASSERT_OK_R(other);
  ASSERT_OK_R(peer_->Seal(other->lease, std::nullopt));

  auto lost = peer_->Seal(excl->lease, std::nullopt);
  EXPECT_CODE(lost, kAlreadyExists);
  // The winner stays bound; the loser's lease and object are gone.
  EXPECT_EQ(peer_->Stat("k")->version, other->info.version);
  EXPECT_CODE(peer_->Release(excl->lease), kLeaseExpired);
  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.creating, 0u);
  EXPECT_EQ(s.leases, 0u);
  excl->blob.reset();
  other->blob.reset();
  EXPECT_EQ(Stats().used_bytes, 100u);
}

TEST_F(MemoryPeerTest, ExclusiveSealWinsWhenNothingWasBound) {
  auto excl = Create("k", 10, CreateOptions{.exclusive = true});
  ASSERT_OK_R(excl);
  ASSERT_OK_R(peer_->Seal(excl->lease, std::nullopt));
  EXPECT_EQ(peer_->Stat("k")->version, excl->info.version);
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

// --- object TTL ----------------------------------------------------------------------------

TEST_F(MemoryPeerTest, ObjectTtlCountsFromTheSeal) {
  auto c = Create("k", 10, CreateOptions{.ttl = seconds(10)});
  ASSERT_OK_R(c);
  clock_->Advance(seconds(5));
  ASSERT_OK_R(peer_->Seal(c->lease, std::nullopt));
  clock_->Advance(seconds(9));
  peer_->ReapExpired();
  EXPECT_OK_R(peer_->Stat("k"));
  clock_->Advance(seconds(1));
  EXPECT_CODE(peer_->Stat("k"), kNotFound);
}

TEST_F(MemoryPeerTest, DefaultObjectTtlAppliesUnlessTheCreateNamesOne) {
  MemoryPeerOptions o = Options();
  o.default_object_ttl = minutes(1);
  Restart(o);
  ASSERT_OK_R(Put("default", 10, B(1)));
  ASSERT_OK_R(Put("forever", 10, B(1), CreateOptions{.ttl = Duration(0)}));
  EXPECT_EQ(peer_->Stat("default")->ttl, minutes(1));
  EXPECT_EQ(peer_->Stat("forever")->expires_unix_ms, 0);
  clock_->Advance(minutes(1));
  peer_->ReapExpired();
  EXPECT_CODE(peer_->Stat("default"), kNotFound);
  EXPECT_OK_R(peer_->Stat("forever"));
}

TEST_F(MemoryPeerTest, RebindBeforeExpiryIsNotReapedWithTheOldVersion) {
  ASSERT_OK_R(Put("k", 10, B(1), CreateOptions{.ttl = seconds(10)}));
  auto v2 = Put("k", 10, B(2));  // no TTL
  ASSERT_OK_R(v2);
  clock_->Advance(seconds(10));
  peer_->ReapExpired();
  auto st = peer_->Stat("k");
  ASSERT_OK_R(st);
  EXPECT_EQ(st->version, v2->version);

  // And a rebind with a longer TTL lives its own TTL.
  ASSERT_OK_R(Put("j", 10, B(1), CreateOptions{.ttl = seconds(10)}));
  ASSERT_OK_R(Put("j", 10, B(2), CreateOptions{.ttl = seconds(20)}));
  clock_->Advance(seconds(10));
  peer_->ReapExpired();
  EXPECT_OK_R(peer_->Stat("j"));
  clock_->Advance(seconds(10));
  peer_->ReapExpired();
  EXPECT_CODE(peer_->Stat("j"), kNotFound);
}

TEST_F(MemoryPeerTest, ReapFreesAnUnreadExpiredObject) {
  ASSERT_OK_R(Put("k", 3 * kSmall, B(1), CreateOptions{.ttl = seconds(1)}));
  ASSERT_OK_R(Put("h", 100, B(1), CreateOptions{.ttl = seconds(1)}));
  EXPECT_EQ(Stats().used_bytes, ChargeOf(3 * kSmall) + 100);
  clock_->Advance(seconds(1));
  peer_->ReapExpired();
  EXPECT_EQ(Stats().objects, 0u);
  EXPECT_EQ(Stats().used_bytes, 0u);
}

TEST_F(MemoryPeerTest, HugeObjectTtlIsRejectedNotOverflowed) {
  for (Duration ttl : {Duration::max(), Duration(std::numeric_limits<int64_t>::max() / 1000)}) {
    auto c = Create("k", 10, CreateOptions{.ttl = ttl});
    EXPECT_CODE(c, kInvalidArgument);
  }
  // A long but sane TTL works and does not expire early.
  auto put = Put("k", 10, B(1), CreateOptions{.ttl = hours(24 * 365)});
  ASSERT_OK_R(put);
  EXPECT_EQ(put->expires_unix_ms, clock_->UnixMillis() + int64_t{365} * 24 * 3600 * 1000);
  clock_->Advance(hours(24 * 364));
  peer_->ReapExpired();
  EXPECT_OK_R(peer_->Stat("k"));
}

// --- lease TTL -----------------------------------------------------------------------------

TEST_F(MemoryPeerTest, ExpiredCreateLeaseDiscardsTheObject) {
  auto c = Create("k", 3 * kSmall, {}, 0, seconds(5));
  ASSERT_OK_R(c);
  EXPECT_EQ(c->lease_ttl, seconds(5));
  clock_->Advance(milliseconds(4'999));
  peer_->ReapExpired();
  EXPECT_EQ(Stats().creating, 1u);
  clock_->Advance(milliseconds(1));
  peer_->ReapExpired();
  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.creating, 0u);
  EXPECT_EQ(s.leases, 0u);
  EXPECT_CODE(peer_->Seal(c->lease, std::nullopt), kLeaseExpired);
  EXPECT_CODE(peer_->Stat("k"), kNotFound);
  c->blob.reset();
  s = Stats();
  EXPECT_EQ(s.used_bytes, 0u);
  // The holder never let go and may still map the segment: it is not pooled for reuse.
  EXPECT_EQ(s.pooled_bytes, 0u);
}

TEST_F(MemoryPeerTest, ExpiredCreateLeaseCannotSealEvenBeforeTheReaper) {
  auto c = Create("k", 10, {}, 0, seconds(5));
  ASSERT_OK_R(c);
  clock_->Advance(seconds(5));
  EXPECT_CODE(peer_->Seal(c->lease, std::nullopt), kLeaseExpired);
  EXPECT_EQ(Stats().creating, 0u);
  EXPECT_CODE(Open("k"), kNotFound);
}

TEST_F(MemoryPeerTest, ExpiredReadLeaseCannotBeReleased) {
  ASSERT_OK_R(Put("k", 10, B(1)));
  auto r = Open("k", 0, seconds(1));
  ASSERT_OK_R(r);
  clock_->Advance(seconds(1));
  peer_->ReapExpired();
  EXPECT_EQ(Stats().leases, 0u);
  EXPECT_CODE(peer_->Release(r->lease), kLeaseExpired);
  EXPECT_CODE(peer_->Renew(r->lease), kLeaseExpired);
  EXPECT_OK_R(peer_->Stat("k"));  // the object itself lives on

  // Without the reaper, the expiry is noticed on use.
  auto r2 = Open("k", 0, seconds(1));
  ASSERT_OK_R(r2);
  clock_->Advance(seconds(2));
  EXPECT_CODE(peer_->Release(r2->lease), kLeaseExpired);
  EXPECT_EQ(Stats().leases, 0u);
}

TEST_F(MemoryPeerTest, RenewExtendsALeaseByItsTtl) {
  auto c = Create("k", 10, {}, 0, seconds(10));
  ASSERT_OK_R(c);
  clock_->Advance(seconds(8));
  ASSERT_OK_R(peer_->Renew(c->lease));
  clock_->Advance(seconds(8));  // 16 s after the grant, 8 s after the renewal
  peer_->ReapExpired();
  EXPECT_EQ(Stats().leases, 1u);
  ASSERT_OK_R(peer_->Renew(c->lease));
  clock_->Advance(seconds(9));
  peer_->ReapExpired();
  ASSERT_OK_R(peer_->Seal(c->lease, std::nullopt));

  auto r = Open("k", 0, seconds(10));
  ASSERT_OK_R(r);
  clock_->Advance(seconds(10));
  EXPECT_CODE(peer_->Renew(r->lease), kLeaseExpired);  // too late
}

TEST_F(MemoryPeerTest, LeaseTtlIsClampedAndMustBePositive) {
  auto r = Create("k", 10, {}, 0, hours(5));
  ASSERT_OK_R(r);
  EXPECT_EQ(r->lease_ttl, hours(1));
  clock_->Advance(hours(1));
  peer_->ReapExpired();
  EXPECT_CODE(peer_->Seal(r->lease, std::nullopt), kLeaseExpired);

  EXPECT_EQ(Create("d", 10)->lease_ttl, seconds(30));  // the default
  EXPECT_CODE(Create("z", 10, {}, 0, Duration(0)), kInvalidArgument);
  EXPECT_CODE(Create("z", 10, {}, 0, seconds(-1)), kInvalidArgument);
  ASSERT_OK_R(Put("sealed", 10, B(1)));
  EXPECT_CODE(Open("sealed", 0, Duration(0)), kInvalidArgument);
  EXPECT_EQ(Open("sealed", 0, hours(2))->lease_ttl, hours(1));
}

// --- sessions ------------------------------------------------------------------------------

TEST_F(MemoryPeerTest, CloseSessionEndsItsLeases) {
  ASSERT_OK_R(Put("b", 10, B('b')));
  const SessionId s = peer_->OpenSession();
  const SessionId other = peer_->OpenSession();
  EXPECT_NE(s, other);
  auto pending = Create("a", 3 * kSmall, {}, s);
  ASSERT_OK_R(pending);
  auto reader = Open("b", s);
  ASSERT_OK_R(reader);
  auto other_reader = Open("b", other);
  ASSERT_OK_R(other_reader);
  auto no_session = Open("b");
  ASSERT_OK_R(no_session);
  EXPECT_EQ(Stats().leases, 4u);

  peer_->CloseSession(s);
  MemoryPeer::Stats st = Stats();
  EXPECT_EQ(st.leases, 2u);
  EXPECT_EQ(st.creating, 0u);
  EXPECT_CODE(peer_->Seal(pending->lease, std::nullopt), kLeaseExpired);
  EXPECT_CODE(peer_->Release(reader->lease), kLeaseExpired);
  EXPECT_CODE(Open("a"), kNotFound);
  EXPECT_OK_R(peer_->Stat("b"));  // sealed objects are not the session's
  EXPECT_OK_R(peer_->Release(other_reader->lease));
  EXPECT_OK_R(peer_->Release(no_session->lease));
  pending->blob.reset();
  EXPECT_EQ(Stats().used_bytes, 10u);

  // Closed and unknown sessions: closing is a no-op, acquiring is refused.
  peer_->CloseSession(s);
  peer_->CloseSession(987654);
  EXPECT_CODE(Open("b", s), kInvalidArgument);
  EXPECT_CODE(Create("c", 10, {}, s), kInvalidArgument);
  EXPECT_EQ(Stats().leases, 0u);
  EXPECT_EQ(Stats().creating, 0u);
  EXPECT_EQ(Stats().used_bytes, 10u);  // the refused create's allocation was returned
}

TEST_F(MemoryPeerTest, ReleasedLeaseLeavesItsSession) {
  ASSERT_OK_R(Put("b", 10, B('b')));
  const SessionId s = peer_->OpenSession();
  auto r = Open("b", s);
  ASSERT_OK_R(r);
  ASSERT_OK_R(peer_->Release(r->lease));
  auto c = Create("c", 10, {}, s);
  ASSERT_OK_R(c);
  ASSERT_OK_R(peer_->Seal(c->lease, std::nullopt));
  peer_->CloseSession(s);  // nothing left to end
  EXPECT_OK_R(peer_->Stat("c"));
  EXPECT_EQ(Stats().leases, 0u);
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

// --- listing -------------------------------------------------------------------------------

std::vector<std::string> Keys(const ListPage& page) {
  std::vector<std::string> keys;
  for (const ObjectInfo& info : page.objects) keys.push_back(info.key);
  return keys;
}

TEST_F(MemoryPeerTest, ListPagesThroughSealedObjectsInKeyOrder) {
  for (const char* key : {"b/1", "a/3", "c", "a/1", "a/2", "ab"}) ASSERT_OK_R(Put(key, 10, B(1)));
  ASSERT_OK_R(Create("a/0", 10));  // pending: not listed
  using V = std::vector<std::string>;

  auto all = peer_->List({});
  ASSERT_OK_R(all);
  EXPECT_EQ(Keys(*all), (V{"a/1", "a/2", "a/3", "ab", "b/1", "c"}));
  EXPECT_FALSE(all->truncated);
  EXPECT_EQ(all->objects[0].state, ObjectState::kSealed);
  EXPECT_EQ(all->objects[0].size, 10u);

  auto a = peer_->List({.prefix = "a/"});
  EXPECT_EQ(Keys(*a), (V{"a/1", "a/2", "a/3"}));
  EXPECT_FALSE(a->truncated);

  auto first = peer_->List({.prefix = "a/", .limit = 2});
  EXPECT_EQ(Keys(*first), (V{"a/1", "a/2"}));
  EXPECT_TRUE(first->truncated);
  auto next = peer_->List({.prefix = "a/", .start_after = "a/2", .limit = 2});
  EXPECT_EQ(Keys(*next), (V{"a/3"}));
  EXPECT_FALSE(next->truncated);

  auto exact = peer_->List({.prefix = "a/", .limit = 3});
  EXPECT_EQ(exact->objects.size(), 3u);
  EXPECT_FALSE(exact->truncated);

  // start_after before the prefix starts at the prefix; after all of it, nothing.
  EXPECT_EQ(Keys(*peer_->List({.prefix = "b/", .start_after = "a"})), (V{"b/1"}));
  EXPECT_EQ(Keys(*peer_->List({.prefix = "a/", .start_after = "a/9"})), V{});
  EXPECT_EQ(Keys(*peer_->List({.start_after = "ab"})), (V{"b/1", "c"}));
  EXPECT_EQ(Keys(*peer_->List({.prefix = "zzz"})), V{});
}

TEST_F(MemoryPeerTest, ListSkipsExpiredObjects) {
  ASSERT_OK_R(Put("a/1", 10, B(1)));
  ASSERT_OK_R(Put("a/2", 10, B(1), CreateOptions{.ttl = seconds(1)}));
  ASSERT_OK_R(Put("a/3", 10, B(1)));
  ASSERT_OK_R(Put("a/4", 10, B(1), CreateOptions{.ttl = seconds(1)}));
  clock_->Advance(seconds(1));  // expired, not yet reaped
  auto page = peer_->List({.prefix = "a/", .limit = 2});
  ASSERT_OK_R(page);
  EXPECT_EQ(Keys(*page), (std::vector<std::string>{"a/1", "a/3"}));
  // Only an expired key follows: not truncated.
  EXPECT_FALSE(page->truncated);
}

// --- bad input -----------------------------------------------------------------------------

TEST_F(MemoryPeerTest, InvalidKeysAndMetadataAreRefused) {
  const std::string too_long(kMaxKeyBytes + 1, 'k');
  for (const std::string& key : {too_long, std::string("a\nb"), std::string("a\0b", 3)}) {
    EXPECT_CODE(Create(key, 10), kInvalidArgument);
    EXPECT_CODE(Open(key), kInvalidArgument);
  }
  Meta many;
  for (size_t i = 0; i <= kMaxMetaEntries; ++i) many["m" + std::to_string(i)] = "v";
  EXPECT_CODE(Create("k", 10, CreateOptions{.meta = many}), kInvalidArgument);
  EXPECT_CODE(Create("k", 10, CreateOptions{.meta = {{"", "v"}}}), kInvalidArgument);
  EXPECT_CODE(Create("k", 10, CreateOptions{.meta = {{"k", std::string(kMaxMetaBytes, 'v')}}}),
              kInvalidArgument);
  EXPECT_CODE(Create("k", 10, CreateOptions{.ttl = seconds(-1)}), kInvalidArgument);
  // Nothing was allocated or left pending.
  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_EQ(s.creating, 0u);
  EXPECT_EQ(s.leases, 0u);
  // The longest valid key works.
  EXPECT_OK_R(Put(std::string(kMaxKeyBytes, 'k'), 10, B(1)));
}

// --- concurrency ---------------------------------------------------------------------------

TEST_F(MemoryPeerTest, ConcurrentPutGetDeleteOnOverlappingKeys) {
  // Sizes far enough apart that a pooled segment is only ever reused for its own size, so that
  // used_bytes is exactly the sum of the bound objects' charges at the end.
  const std::vector<uint64_t> sizes = {100, 3000, 2 * kSmall, 8 * kSmall};
  constexpr int kKeys = 8;
  constexpr int kThreads = 4;
  constexpr int kIterations = 1000;
  auto size_of = [&](int k) { return sizes[k % sizes.size()]; };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      const SessionId session = peer_->OpenSession();
      for (int i = 0; i < kIterations; ++i) {
        const int k = static_cast<int>(rng() % kKeys);
        const std::string key = "key" + std::to_string(k);
        switch (rng() % 6) {
          case 0:
          case 1: {  // put: every byte is the low byte of the version
            CreateOptions opts{.exclusive = rng() % 4 == 0};
            auto c = Create(key, size_of(k), opts, rng() % 2 ? session : 0);
            if (!c.ok()) {
              if (c.status().code() != StatusCode::kAlreadyExists || !opts.exclusive) {
                ADD_FAILURE() << c.status().ToString();
              }
              break;
            }
            std::span<std::byte> w = MemBytes(c->blob);
            std::fill(w.begin(), w.end(), B(static_cast<int>(c->info.version & 0xff)));
            if (rng() % 8 == 0) {
              if (!peer_->Discard(c->lease).ok()) ADD_FAILURE() << "discard";
              break;
            }
            auto sealed = peer_->Seal(c->lease, std::nullopt);
            if (!sealed.ok() &&
                (sealed.status().code() != StatusCode::kAlreadyExists || !opts.exclusive)) {
              ADD_FAILURE() << sealed.status().ToString();
            }
            break;
          }
          case 2:
          case 3:
          case 4: {  // get: a whole, sealed object of the version the lease names
            auto r = Open(key, rng() % 2 ? session : 0);
            if (!r.ok()) {
              if (r.status().code() != StatusCode::kNotFound)
                ADD_FAILURE() << r.status().ToString();
              break;
            }
            if (r->info.state != ObjectState::kSealed || r->info.size != size_of(k) ||
                !AllEqual(Content(*r), B(static_cast<int>(r->info.version & 0xff)))) {
              ADD_FAILURE() << "torn or recycled read of " << key;
            }
            if (!peer_->Release(r->lease).ok()) ADD_FAILURE() << "release";
            break;
          }
          case 5: {
            Status s = peer_->Delete(key);
            if (!s.ok() && s.code() != StatusCode::kNotFound) ADD_FAILURE() << s.ToString();
            break;
          }
        }
      }
      peer_->CloseSession(session);
    });
  }
  for (auto& th : threads) th.join();

  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.leases, 0u);
  EXPECT_EQ(s.creating, 0u);
  auto page = peer_->List({});
  ASSERT_OK_R(page);
  EXPECT_EQ(s.objects, page->objects.size());
  uint64_t bound_bytes = 0;
  for (const ObjectInfo& info : page->objects) {
    auto r = Open(info.key);
    ASSERT_OK_R(r);
    EXPECT_EQ(r->info.version, info.version);
    EXPECT_TRUE(AllEqual(Content(*r), B(static_cast<int>(info.version & 0xff)))) << info.key;
    ASSERT_OK_R(peer_->Release(r->lease));
    bound_bytes += ChargeOf(info.size);
  }
  s = Stats();
  EXPECT_EQ(s.used_bytes, bound_bytes);
  EXPECT_LE(s.used_bytes + s.pooled_bytes, s.capacity_bytes);
  for (const ObjectInfo& info : page->objects) ASSERT_OK_R(peer_->Delete(info.key));
  EXPECT_EQ(Stats().used_bytes, 0u);
  EXPECT_EQ(Stats().objects, 0u);
}

// --- statistics (LocalPeer::Stats hits, misses, evictions) ---------------------------------

TEST_F(MemoryPeerTest, ReadAcquiresCountHitsAndMisses) {
  ASSERT_OK_R(Put("a", 10, B(1)));
  for (int i = 0; i < 2; ++i) {
    auto r = Open("a");
    ASSERT_OK_R(r);
    ASSERT_OK_R(peer_->Release(r->lease));
  }
  EXPECT_CODE(Open("absent"), kNotFound);
  auto pending = Create("pending", 10);
  ASSERT_OK_R(pending);
  EXPECT_CODE(Open("pending"), kNotFound);  // not sealed yet: a miss
  ASSERT_OK_R(Put("short", 10, B(2), CreateOptions{.ttl = milliseconds(100)}));
  clock_->Advance(milliseconds(200));
  EXPECT_CODE(Open("short"), kNotFound);  // expired, not yet reaped: a miss
  // Refused requests are neither; nor are creates, stats and lists.
  EXPECT_CODE(Open(""), kInvalidArgument);
  EXPECT_CODE(Open("a", /*session=*/12345), kInvalidArgument);
  EXPECT_OK_R(peer_->Stat("a"));
  EXPECT_CODE(peer_->Stat("absent"), kNotFound);
  EXPECT_OK_R(peer_->List(ListOptions{}));
  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 3u);
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_EQ(peer_->tier_name(), "memory");
}

TEST_F(MemoryPeerTest, ConcurrentReadsCountExactly) {
  ASSERT_OK_R(Put("a", 10, B(1)));
  constexpr int kThreads = 4;
  constexpr int kReads = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < kReads; ++i) {
        auto r = Open("a");
        if (r.ok()) peer_->Release(r->lease).IgnoreError();
        Open("b").status().IgnoreError();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Stats().hits, uint64_t{kThreads} * kReads);
  EXPECT_EQ(Stats().misses, uint64_t{kThreads} * kReads);
}

TEST_F(MemoryPeerCapacityTest, AFullPeerRefusesCreatesAndEvictsNothing) {
  for (int i = 0; i < 16; ++i) ASSERT_OK_R(Put("s" + std::to_string(i), kSmall, B(i)));
  EXPECT_CODE(Create("x", 1), kOutOfCapacity);
  MemoryPeer::Stats s = Stats();
  EXPECT_EQ(s.objects, 16u);
  EXPECT_EQ(s.evictions, 0u);
}

}  // namespace
}  // namespace packice
