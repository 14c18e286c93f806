// The Peer contract (include/packice/peer.h), one typed suite over every peer: what any peer
// must do with acquires, seals, releases, discards, renewals, stats, lists and deletes, with
// leases, TTLs and sessions, and which stable error codes it answers. Peer-specific behaviour
// (memory pooling and segments, file recovery, sharedfs between processes, tiered moves) is
// tested beside each peer.
//
// A new peer joins by adding a factory struct (below) and one entry in PeerTypes. Where a peer
// differs from another by documented design, the factory says so in a trait, and the tests
// check the documented behaviour instead.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "packice/file_peer.h"
#include "packice/memory_peer.h"
#include "packice/sharedfs_peer.h"
#include "packice/tiered_peer.h"
#include "packice/version_sequence.h"
#include "peers/cluster_peer.h"
#include "peers/prefix_peer.h"
#include "testing.h"

namespace packice {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::FakeClock;

// The settings every factory opens its peer with.
constexpr uint64_t kSmall = 4096;  // memory stores: objects above it get a segment
constexpr uint64_t kMaxObject = 8 << 20;
constexpr Duration kDefaultLeaseTtl = seconds(30);
constexpr Duration kMaxLeaseTtl = hours(1);
// Two sizes every lifecycle test runs with: a heap object and one with its own segment.
constexpr uint64_t kSizes[] = {100, 3 * kSmall + 5};

// What a factory gets: a directory of its own (fresh for each open), the test's clock, and the
// default object TTL.
struct PeerEnv {
  std::string dir;
  std::shared_ptr<FakeClock> clock;
  Duration default_object_ttl{0};
};

// --- factories: one per peer type ----------------------------------------------------------
//
// Each has:
//   Open(env)       the peer, with no background threads, on env.clock, with the lease TTLs
//                   above, refusing creates above kMaxObject bytes (kOutOfCapacity).
//   kTier           ObjectInfo::tier of what a create makes.
//   kTierName       LocalPeer::tier_name().
//   kOneWriterPerKey  a create of a key another create holds is kAlreadyExists even when not
//                   exclusive (sharedfs: one writer per key across processes, by design).
//   kCountsHeldBytes  Stats::used_bytes counts every allocated object, bound or held by a lease
//                   (sharedfs counts the sealed files its last collection saw).
//   kCreateVersionIsFinal  the version a create's grant reports is the one its seal binds (a
//                   cluster peer's create of another node's key gets its version from the
//                   owner, at the seal).
//   Stats(peer)     its LocalPeer::Stats as of now.

// The lease and TTL policy every factory gives its peer (or tier): the TTLs above, env's clock and
// default object TTL, and no background threads.
template <typename Options>
void ApplyPolicy(const PeerEnv& env, Options* o) {
  o->default_lease_ttl = kDefaultLeaseTtl;
  o->max_lease_ttl = kMaxLeaseTtl;
  o->default_object_ttl = env.default_object_ttl;
  o->background_threads = false;
  o->clock = env.clock;
}

struct MemoryFactory {
  static constexpr bool kCreateVersionIsFinal = true;
  static constexpr std::string_view kTier = "memory";
  static constexpr std::string_view kTierName = "memory";
  static constexpr bool kOneWriterPerKey = false;
  static constexpr bool kCountsHeldBytes = true;
  static Result<std::shared_ptr<LocalPeer>> Open(const PeerEnv& env) {
    MemoryPeerOptions o;
    o.capacity_bytes = kMaxObject;
    o.small_object_bytes = kSmall;
    o.pool_bytes = kMaxObject;
    ApplyPolicy(env, &o);
    return std::shared_ptr<LocalPeer>(MemoryPeer::Create(o));
  }
  static LocalPeer::Stats Stats(LocalPeer& peer) { return peer.GetStats(); }
};

struct FileFactory {
  static constexpr bool kCreateVersionIsFinal = true;
  static constexpr std::string_view kTier = "disk";
  static constexpr std::string_view kTierName = "disk";
  static constexpr bool kOneWriterPerKey = false;
  static constexpr bool kCountsHeldBytes = true;
  static Result<std::shared_ptr<LocalPeer>> Open(const PeerEnv& env) {
    FilePeerOptions o;
    o.dir = env.dir;
    o.capacity_bytes = kMaxObject;
    o.sync = false;
    ApplyPolicy(env, &o);
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<FilePeer> peer, FilePeer::Open(o));
    return std::shared_ptr<LocalPeer>(std::move(peer));
  }
  static LocalPeer::Stats Stats(LocalPeer& peer) { return peer.GetStats(); }
};

struct SharedFSFactory {
  static constexpr bool kCreateVersionIsFinal = true;
  static constexpr std::string_view kTier = "sharedfs";
  static constexpr std::string_view kTierName = "sharedfs";
  static constexpr bool kOneWriterPerKey = true;
  static constexpr bool kCountsHeldBytes = false;
  static Result<std::shared_ptr<LocalPeer>> Open(const PeerEnv& env) {
    SharedFSPeerOptions o;
    o.dir = env.dir;
    o.max_object_bytes = kMaxObject;
    o.sync = false;
    ApplyPolicy(env, &o);
    o.writer_id = "contract:1";
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<SharedFSPeer> peer, SharedFSPeer::Open(o));
    return std::shared_ptr<LocalPeer>(std::move(peer));
  }
  // Object counts come from the last garbage collection (docs/sharedfs.md): collect first.
  static LocalPeer::Stats Stats(LocalPeer& peer) {
    static_cast<SharedFSPeer&>(peer).CollectGarbage().IgnoreError();
    return peer.GetStats();
  }
};

// Hot: memory of 1 MiB; cold: a disk of kMaxObject. Larger objects go cold.
struct TieredFactory {
  static constexpr bool kCreateVersionIsFinal = true;
  static constexpr std::string_view kTier = "memory";
  static constexpr std::string_view kTierName = "tiered";
  static constexpr bool kOneWriterPerKey = false;
  static constexpr bool kCountsHeldBytes = true;
  static Result<std::shared_ptr<LocalPeer>> Open(const PeerEnv& env) {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<VersionSequence> versions,
                             VersionSequence::OpenDurable(env.dir + ".VERSION"));
    MemoryPeerOptions hot;
    hot.capacity_bytes = 1 << 20;
    hot.small_object_bytes = kSmall;
    ApplyPolicy(env, &hot);
    hot.versions = versions;
    FilePeerOptions cold;
    cold.dir = env.dir;
    cold.capacity_bytes = kMaxObject;
    cold.sync = false;
    ApplyPolicy(env, &cold);
    cold.versions = versions;
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<FilePeer> file, FilePeer::Open(cold));
    TieredPeerOptions options;
    options.background_threads = false;
    options.clock = env.clock;
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<TieredPeer> peer,
                             TieredPeer::Create(MemoryPeer::Create(hot), file, options));
    return std::shared_ptr<LocalPeer>(std::move(peer));
  }
  static LocalPeer::Stats Stats(LocalPeer& peer) { return peer.GetStats(); }
};

// A ClusterPeer of two nodes in this process: the peer under test is node "a", over a memory
// peer; node "b" (reached in-process, the real cluster logic without the network) owns about
// half of the keys, so creates of those are staged here and sealed there, and reads of them are
// copies fetched from b. Stats and reaping cover both nodes' stores, as the contract's
// counters speak of every object the peer serves.
struct ClusterFactory {
  static constexpr bool kCreateVersionIsFinal = false;
  static constexpr std::string_view kTier = "memory";
  static constexpr std::string_view kTierName = "memory";
  static constexpr bool kOneWriterPerKey = false;
  static constexpr bool kCountsHeldBytes = true;
  static Result<std::shared_ptr<LocalPeer>> Open(const PeerEnv& env) {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<LocalPeer> a, MemoryFactory::Open(env));
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<LocalPeer> b, MemoryFactory::Open(env));
    ClusterPeerOptions options;
    options.self_id = "a";
    options.clock = env.clock;
    options.copies.capacity_bytes = kMaxObject;
    options.copies.small_object_bytes = kSmall;
    ApplyPolicy(env, &options.copies);
    options.mirror_min_rate = 1e9;  // no mirrors: every remote read fetches
    auto connect = [b](const ClusterMember&) -> Result<std::shared_ptr<ClusterNode>> {
      return NewInProcessClusterNode(b, {});
    };
    std::shared_ptr<ClusterPeer> peer = ClusterPeer::Create(a, connect, options);
    peer->SetMembers({{"b", "in-process"}});
    Others()[peer.get()] = b;
    return std::shared_ptr<LocalPeer>(std::move(peer));
  }
  static LocalPeer::Stats Stats(LocalPeer& peer) {
    LocalPeer::Stats s = peer.GetStats();
    LocalPeer& b = *Others().at(&peer);
    b.ReapExpired();
    const LocalPeer::Stats o = b.GetStats();
    s.objects += o.objects;
    s.creating += o.creating;
    s.leases += o.leases;
    s.used_bytes += o.used_bytes;
    return s;
  }
  // Node b of each cluster under test.
  static std::map<LocalPeer*, std::shared_ptr<LocalPeer>>& Others() {
    static auto* others = new std::map<LocalPeer*, std::shared_ptr<LocalPeer>>;
    return *others;
  }
};

// A PrefixPeer over two memory peers: keys under "a/" (a few of the tests' keys) go to one, the
// rest to the other, so lists merge both and one test's leases come from both.
struct PrefixFactory {
  static constexpr bool kCreateVersionIsFinal = true;
  static constexpr std::string_view kTier = "memory";
  static constexpr std::string_view kTierName = "memory";
  static constexpr bool kOneWriterPerKey = false;
  static constexpr bool kCountsHeldBytes = true;
  static Result<std::shared_ptr<LocalPeer>> Open(const PeerEnv& env) {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<LocalPeer> fallback, MemoryFactory::Open(env));
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<LocalPeer> routed, MemoryFactory::Open(env));
    return NewPrefixPeer(fallback, routed, PrefixPeerOptions{"a/", env.clock});
  }
  static LocalPeer::Stats Stats(LocalPeer& peer) { return peer.GetStats(); }
};

using PeerTypes = ::testing::Types<MemoryFactory, FileFactory, SharedFSFactory, TieredFactory,
                                   ClusterFactory, PrefixFactory>;

class PeerTypeNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if (std::is_same_v<T, MemoryFactory>) return "Memory";
    if (std::is_same_v<T, FileFactory>) return "File";
    if (std::is_same_v<T, SharedFSFactory>) return "SharedFS";
    if (std::is_same_v<T, TieredFactory>) return "Tiered";
    if (std::is_same_v<T, ClusterFactory>) return "Cluster";
    if (std::is_same_v<T, PrefixFactory>) return "Prefix";
    return "Unknown";
  }
};

std::byte B(int v) { return std::byte{static_cast<unsigned char>(v)}; }

// The first `size` bytes of a blob.
std::vector<std::byte> ReadBytes(Blob& blob, uint64_t size) {
  std::vector<std::byte> out(size);
  if (size > 0) EXPECT_OK(blob.Read(0, out));
  return out;
}

bool AllEqual(const std::vector<std::byte>& bytes, std::byte value) {
  return std::all_of(bytes.begin(), bytes.end(), [value](std::byte b) { return b == value; });
}

// The object's content as the lease holder of `g` sees it.
std::vector<std::byte> Content(const Grant& g) { return ReadBytes(*g.blob, g.info.size); }

std::vector<std::string> Keys(const ListPage& page) {
  std::vector<std::string> keys;
  for (const ObjectInfo& info : page.objects) keys.push_back(info.key);
  return keys;
}

template <typename F>
class PeerContractTest : public ::testing::Test {
 protected:
  PeerContractTest() { Reopen(); }

  // A fresh peer in a fresh directory.
  void Reopen(Duration default_object_ttl = Duration(0)) {
    peer_.reset();
    auto peer = F::Open(
        PeerEnv{dir_.path() + "/peer" + std::to_string(++opens_), clock_, default_object_ttl});
    ASSERT_TRUE(peer.ok()) << peer.status().ToString();
    peer_ = *peer;
  }

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
    std::vector<std::byte> bytes(size, fill);
    if (size > 0) PACKICE_RETURN_IF_ERROR(g->blob->Write(0, bytes));
    return peer_->Seal(g->lease, std::nullopt);
  }

  LocalPeer::Stats Stats() { return F::Stats(*peer_); }
  uint64_t Used() { return Stats().used_bytes; }

  testing::TempDir dir_;
  int opens_ = 0;
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  std::shared_ptr<LocalPeer> peer_;
};

TYPED_TEST_SUITE(PeerContractTest, PeerTypes, PeerTypeNames);

// --- the create -> write -> seal -> read state machine -------------------------------------

TYPED_TEST(PeerContractTest, CreateWriteSealRead) {
  auto& peer = this->peer_;
  for (uint64_t size : kSizes) {
    SCOPED_TRACE(size);
    const std::string key = "obj" + std::to_string(size);
    auto c = this->Create(key, size, CreateOptions{.meta = {{"color", "blue"}}});
    ASSERT_OK_R(c);
    EXPECT_EQ(c->info.key, key);
    EXPECT_EQ(c->info.size, size);
    EXPECT_EQ(c->info.state, ObjectState::kCreating);
    EXPECT_GT(c->info.version, 0u);
    EXPECT_EQ(c->info.tier, TypeParam::kTier);
    EXPECT_EQ(c->info.created_unix_ms, this->clock_->UnixMillis());
    EXPECT_EQ(c->lease_ttl, kDefaultLeaseTtl);
    ASSERT_GE(c->blob->size(), size);
    EXPECT_TRUE(AllEqual(ReadBytes(*c->blob, size), B(0)));  // a new object is all zero

    // Not visible under its key until sealed.
    EXPECT_CODE(peer->Stat(key), kNotFound);
    EXPECT_CODE(this->Open(key), kNotFound);
    EXPECT_TRUE(peer->List({})->objects.empty());
    LocalPeer::Stats s = this->Stats();
    EXPECT_EQ(s.objects, 0u);
    EXPECT_EQ(s.creating, 1u);
    EXPECT_EQ(s.leases, 1u);

    std::vector<std::byte> pattern(size);
    for (size_t i = 0; i < size; ++i) pattern[i] = B(static_cast<int>(i * 7));
    ASSERT_OK(c->blob->Write(0, pattern));
    auto sealed = peer->Seal(c->lease, std::nullopt);
    ASSERT_OK_R(sealed);
    EXPECT_EQ(sealed->state, ObjectState::kSealed);
    EXPECT_EQ(sealed->size, size);
    EXPECT_EQ(sealed->version, c->info.version);
    EXPECT_EQ(sealed->expires_unix_ms, 0);
    s = this->Stats();
    EXPECT_EQ(s.objects, 1u);
    EXPECT_EQ(s.creating, 0u);
    EXPECT_EQ(s.leases, 0u);  // the create lease ended

    auto st = peer->Stat(key);
    ASSERT_OK_R(st);
    EXPECT_EQ(st->version, c->info.version);
    EXPECT_EQ(st->state, ObjectState::kSealed);
    EXPECT_EQ(st->meta, (Meta{{"color", "blue"}}));

    auto r = this->Open(key);
    ASSERT_OK_R(r);
    EXPECT_EQ(r->info.version, c->info.version);
    EXPECT_EQ(r->info.state, ObjectState::kSealed);
    EXPECT_EQ(r->info.size, size);
    EXPECT_EQ(r->info.meta, (Meta{{"color", "blue"}}));
    EXPECT_EQ(Content(*r), pattern);
    EXPECT_EQ(this->Stats().leases, 1u);

    ASSERT_OK_R(peer->Release(r->lease));
    EXPECT_CODE(peer->Release(r->lease), kLeaseExpired);
    EXPECT_EQ(this->Stats().leases, 0u);
    ASSERT_OK(peer->Delete(key));
  }
}

// A reader's descriptor is read-only: its mapping can never be made writable.
TYPED_TEST(PeerContractTest, ReadExportsCannotWrite) {
  for (uint64_t size : kSizes) {
    SCOPED_TRACE(size);
    const std::string key = "ro" + std::to_string(size);
    ASSERT_OK_R(this->Put(key, size, B('r')));
    auto r = this->Open(key);
    ASSERT_OK_R(r);
    auto e = r->blob->Export(LeaseMode::kRead);
    ASSERT_OK_R(e);
    if (e->kind != BlobExport::Kind::kFd) continue;  // inline: the bytes travel as a copy
    void* p = mmap(nullptr, e->map_size, PROT_READ, MAP_SHARED, e->fd.get(),
                   static_cast<off_t>(e->offset));
    ASSERT_NE(p, MAP_FAILED) << errno;
    const auto* bytes = static_cast<const std::byte*>(p);
    EXPECT_TRUE(std::all_of(bytes, bytes + size, [](std::byte b) { return b == B('r'); }));
    munmap(p, e->map_size);
    errno = 0;
    EXPECT_EQ(mmap(nullptr, e->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd.get(),
                   static_cast<off_t>(e->offset)),
              MAP_FAILED);
    EXPECT_EQ(errno, EACCES);
    char c = 'x';
    EXPECT_EQ(pwrite(e->fd.get(), &c, 1, static_cast<off_t>(e->offset)), -1);
    ASSERT_OK(this->peer_->Release(r->lease));
  }
}

TYPED_TEST(PeerContractTest, SealWithSizeTruncatesTheContent) {
  for (uint64_t size : kSizes) {
    SCOPED_TRACE(size);
    const std::string key = "t" + std::to_string(size);
    auto c = this->Create(key, size);
    ASSERT_OK_R(c);
    std::vector<std::byte> fill(size, B('z'));
    ASSERT_OK(c->blob->Write(0, fill));
    auto sealed = this->peer_->Seal(c->lease, size / 2);
    ASSERT_OK_R(sealed);
    EXPECT_EQ(sealed->size, size / 2);
    EXPECT_EQ(this->peer_->Stat(key)->size, size / 2);
    auto r = this->Open(key);
    ASSERT_OK_R(r);
    EXPECT_EQ(r->info.size, size / 2);
    EXPECT_EQ(Content(*r), std::vector<std::byte>(size / 2, B('z')));
    ASSERT_OK(this->peer_->Release(r->lease));
  }
}

TYPED_TEST(PeerContractTest, SealLargerThanAllocatedIsInvalidAndTheLeaseLivesOn) {
  for (uint64_t size : kSizes) {
    SCOPED_TRACE(size);
    const std::string key = "big" + std::to_string(size);
    auto c = this->Create(key, size);
    ASSERT_OK_R(c);
    EXPECT_CODE(this->peer_->Seal(c->lease, size + 1), kInvalidArgument);
    EXPECT_CODE(this->peer_->Stat(key), kNotFound);
    EXPECT_EQ(this->Stats().creating, 1u);
    EXPECT_EQ(this->Stats().leases, 1u);
    ASSERT_OK_R(this->peer_->Seal(c->lease, size));
    EXPECT_OK_R(this->peer_->Stat(key));
  }
}

TYPED_TEST(PeerContractTest, RebindKeepsOldReadersOnTheOldBytes) {
  auto& peer = this->peer_;
  for (uint64_t size : kSizes) {
    SCOPED_TRACE(size);
    const std::string key = "k" + std::to_string(size);
    const uint64_t before = this->Used();
    auto v1 = this->Put(key, size, B('a'));
    ASSERT_OK_R(v1);
    const uint64_t one = this->Used() - before;  // what one object of `size` is charged
    auto old_reader = this->Open(key);
    ASSERT_OK_R(old_reader);

    auto v2 = this->Put(key, size, B('b'));
    ASSERT_OK_R(v2);
    EXPECT_GT(v2->version, v1->version);
    EXPECT_EQ(peer->Stat(key)->version, v2->version);
    EXPECT_EQ(this->Stats().objects, 1u);
    if constexpr (TypeParam::kCountsHeldBytes) {
      EXPECT_EQ(this->Used(), before + 2 * one);  // the old version is held by its reader
    }
    EXPECT_EQ(old_reader->info.version, v1->version);
    EXPECT_TRUE(AllEqual(Content(*old_reader), B('a')));
    auto new_reader = this->Open(key);
    ASSERT_OK_R(new_reader);
    EXPECT_EQ(new_reader->info.version, v2->version);
    EXPECT_TRUE(AllEqual(Content(*new_reader), B('b')));

    // A third version while both readers hold theirs.
    ASSERT_OK_R(this->Put(key, size, B('c')));
    EXPECT_TRUE(AllEqual(Content(*old_reader), B('a')));
    EXPECT_TRUE(AllEqual(Content(*new_reader), B('b')));
    if constexpr (TypeParam::kCountsHeldBytes) {
      EXPECT_EQ(this->Used(), before + 3 * one);
    }

    ASSERT_OK_R(peer->Release(old_reader->lease));
    old_reader->blob.reset();
    ASSERT_OK_R(peer->Release(new_reader->lease));
    new_reader->blob.reset();
    EXPECT_EQ(this->Used(), before + one);
    EXPECT_EQ(this->Stats().leases, 0u);
    ASSERT_OK(peer->Delete(key));
    EXPECT_EQ(this->Used(), before);
  }
}

TYPED_TEST(PeerContractTest, DeleteUnbindsButAReaderKeepsItsBytes) {
  auto& peer = this->peer_;
  for (uint64_t size : kSizes) {
    SCOPED_TRACE(size);
    const uint64_t before = this->Used();
    ASSERT_OK_R(this->Put("k", size, B('x')));
    const uint64_t one = this->Used() - before;
    auto r = this->Open("k");
    ASSERT_OK_R(r);
    ASSERT_OK_R(peer->Delete("k"));
    EXPECT_CODE(peer->Stat("k"), kNotFound);
    EXPECT_CODE(this->Open("k"), kNotFound);
    EXPECT_CODE(peer->Delete("k"), kNotFound);
    EXPECT_EQ(this->Stats().objects, 0u);
    EXPECT_TRUE(AllEqual(Content(*r), B('x')));
    if constexpr (TypeParam::kCountsHeldBytes) {
      EXPECT_EQ(this->Used(), before + one);
    }
    ASSERT_OK_R(peer->Release(r->lease));
    r->blob.reset();
    EXPECT_EQ(this->Used(), before);
  }
}

TYPED_TEST(PeerContractTest, ExpiredObjectIsGoneAndFreedWhenItsLastReaderLetsGo) {
  auto& peer = this->peer_;
  for (uint64_t size : kSizes) {
    SCOPED_TRACE(size);
    const uint64_t before = this->Used();
    auto put = this->Put("k", size, B('t'), CreateOptions{.ttl = seconds(10)});
    ASSERT_OK_R(put);
    const uint64_t one = this->Used() - before;
    EXPECT_EQ(put->ttl, seconds(10));
    EXPECT_EQ(put->expires_unix_ms, this->clock_->UnixMillis() + 10'000);
    auto r = this->Open("k", 0, minutes(5));
    ASSERT_OK_R(r);

    this->clock_->Advance(milliseconds(9'999));
    peer->ReapExpired();
    EXPECT_OK_R(peer->Stat("k"));
    this->clock_->Advance(milliseconds(1));
    EXPECT_CODE(this->Open("k"), kNotFound);  // expired even before the reaper runs
    peer->ReapExpired();
    EXPECT_CODE(peer->Stat("k"), kNotFound);
    EXPECT_EQ(this->Stats().objects, 0u);

    // The reader's lease still covers the bytes.
    EXPECT_TRUE(AllEqual(Content(*r), B('t')));
    if constexpr (TypeParam::kCountsHeldBytes) {
      EXPECT_EQ(this->Used(), before + one);
    }
    ASSERT_OK_R(peer->Release(r->lease));
    r->blob.reset();
    EXPECT_EQ(this->Used(), before);
  }
}

// --- lease misuse --------------------------------------------------------------------------

TYPED_TEST(PeerContractTest, DoubleSealIsLeaseExpired) {
  auto c = this->Create("k", 10);
  ASSERT_OK_R(c);
  ASSERT_OK_R(this->peer_->Seal(c->lease, std::nullopt));
  EXPECT_CODE(this->peer_->Seal(c->lease, std::nullopt), kLeaseExpired);
  EXPECT_CODE(this->peer_->Release(c->lease), kLeaseExpired);
  EXPECT_CODE(this->peer_->Discard(c->lease), kLeaseExpired);
  EXPECT_CODE(this->peer_->Renew(c->lease), kLeaseExpired);
  EXPECT_OK_R(this->peer_->Stat("k"));  // the sealed object is untouched
}

TYPED_TEST(PeerContractTest, OneOfConcurrentSealsOfALeaseWins) {
  constexpr int kThreads = 3;
  constexpr int kRounds = 24;  // keys of either owner when the peer is a cluster's
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = "seal" + std::to_string(round);
    auto c = this->Create(key, kSmall);
    ASSERT_OK_R(c);
    std::vector<std::byte> bytes(kSmall, B(round));
    ASSERT_OK(c->blob->Write(0, bytes));
    std::latch start(kThreads);
    std::atomic<int> won{0};
    std::atomic<uint64_t> version{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        start.arrive_and_wait();
        Result<ObjectInfo> sealed = this->peer_->Seal(c->lease, std::nullopt);
        if (sealed.ok()) {
          ++won;
          version = sealed->version;
        } else if (sealed.status().code() != StatusCode::kLeaseExpired &&
                   sealed.status().code() != StatusCode::kWrongState) {
          ADD_FAILURE() << sealed.status().ToString();
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(won.load(), 1) << key;
    auto stat = this->peer_->Stat(key);
    ASSERT_OK_R(stat);
    EXPECT_EQ(stat->version, version.load()) << key;
  }
  EXPECT_EQ(this->Stats().objects, uint64_t{kRounds});  // each sealed once, in one place
  EXPECT_EQ(this->Stats().creating, 0u);
}

TYPED_TEST(PeerContractTest, ReadLeaseCannotSealOrDiscard) {
  ASSERT_OK_R(this->Put("k", 10, B(1)));
  auto r = this->Open("k");
  ASSERT_OK_R(r);
  EXPECT_CODE(this->peer_->Seal(r->lease, std::nullopt), kPermissionDenied);
  EXPECT_CODE(this->peer_->Discard(r->lease), kPermissionDenied);
  EXPECT_OK_R(this->peer_->Stat("k"));
  EXPECT_OK_R(this->peer_->Renew(r->lease));  // still live
  EXPECT_OK_R(this->peer_->Release(r->lease));
  EXPECT_CODE(this->peer_->Release(r->lease), kLeaseExpired);
}

TYPED_TEST(PeerContractTest, UnknownLeaseIsLeaseExpired) {
  EXPECT_CODE(this->peer_->Seal(12345, std::nullopt), kLeaseExpired);
  EXPECT_CODE(this->peer_->Release(12345), kLeaseExpired);
  EXPECT_CODE(this->peer_->Discard(12345), kLeaseExpired);
  EXPECT_CODE(this->peer_->Renew(12345), kLeaseExpired);
}

TYPED_TEST(PeerContractTest, DiscardDropsTheUnsealedObject) {
  const uint64_t before = this->Used();
  auto c = this->Create("k", 3 * kSmall);
  ASSERT_OK_R(c);
  ASSERT_OK_R(this->peer_->Discard(c->lease));
  EXPECT_CODE(this->peer_->Seal(c->lease, std::nullopt), kLeaseExpired);
  EXPECT_CODE(this->peer_->Discard(c->lease), kLeaseExpired);
  EXPECT_CODE(this->Open("k"), kNotFound);
  LocalPeer::Stats s = this->Stats();
  EXPECT_EQ(s.creating, 0u);
  EXPECT_EQ(s.leases, 0u);
  c->blob.reset();
  EXPECT_EQ(this->Used(), before);
  // The key is free again, even for an exclusive create.
  EXPECT_OK_R(this->Create("k", 10, CreateOptions{.exclusive = true}));
}

TYPED_TEST(PeerContractTest, ReleasingACreateLeaseDiscards) {
  const uint64_t before = this->Used();
  auto c = this->Create("k", 100);
  ASSERT_OK_R(c);
  ASSERT_OK_R(this->peer_->Release(c->lease));
  EXPECT_CODE(this->peer_->Seal(c->lease, std::nullopt), kLeaseExpired);
  EXPECT_CODE(this->peer_->Stat("k"), kNotFound);
  EXPECT_EQ(this->Stats().creating, 0u);
  c->blob.reset();
  EXPECT_EQ(this->Used(), before);
  EXPECT_OK_R(this->Create("k", 100, CreateOptions{.exclusive = true}));
}

TYPED_TEST(PeerContractTest, EmptyKeyGetsAGeneratedId) {
  auto a = this->Create("", 10);
  auto b = this->Create("", 10);
  ASSERT_OK_R(a);
  ASSERT_OK_R(b);
  for (const std::string& key : {a->info.key, b->info.key}) {
    EXPECT_EQ(key.size(), 32u);
    EXPECT_EQ(key.find_first_not_of("0123456789abcdef"), std::string::npos) << key;
  }
  EXPECT_NE(a->info.key, b->info.key);
  auto sealed = this->peer_->Seal(a->lease, std::nullopt);
  ASSERT_OK_R(sealed);
  EXPECT_EQ(sealed->key, a->info.key);
  EXPECT_OK_R(this->peer_->Stat(a->info.key));
  EXPECT_OK_R(this->Open(a->info.key));
  EXPECT_CODE(this->Open(""), kInvalidArgument);  // a read names its key
}

// --- exclusive creates ---------------------------------------------------------------------

TYPED_TEST(PeerContractTest, ExclusiveCreateFailsWhenTheKeyIsBoundOrPending) {
  const CreateOptions excl{.exclusive = true};
  ASSERT_OK_R(this->Put("bound", 10, B(1)));
  EXPECT_CODE(this->Create("bound", 10, excl), kAlreadyExists);

  auto pending = this->Create("pending", 10);  // not exclusive itself
  ASSERT_OK_R(pending);
  EXPECT_CODE(this->Create("pending", 10, excl), kAlreadyExists);

  auto first = this->Create("fresh", 10, excl);
  ASSERT_OK_R(first);
  EXPECT_CODE(this->Create("fresh", 10, excl), kAlreadyExists);

  // A failed exclusive create holds nothing.
  LocalPeer::Stats s = this->Stats();
  EXPECT_EQ(s.creating, 2u);
  EXPECT_EQ(s.leases, 2u);

  // Once the pending create is gone, or the bound object deleted, the key is free.
  ASSERT_OK_R(this->peer_->Discard(pending->lease));
  EXPECT_OK_R(this->Create("pending", 10, excl));
  ASSERT_OK_R(this->peer_->Delete("bound"));
  EXPECT_OK_R(this->Create("bound", 10, excl));
  if constexpr (TypeParam::kOneWriterPerKey) {
    EXPECT_CODE(this->Create("fresh", 10), kAlreadyExists);
  } else {
    EXPECT_OK_R(this->Create("fresh", 10));  // non-exclusive creates never conflict
  }
}

TYPED_TEST(PeerContractTest, OneOfManyConcurrentExclusiveCreatesWins) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 20;
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = "race" + std::to_string(round);
    std::latch start(kThreads);
    std::atomic<int> won{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        start.arrive_and_wait();
        auto c = this->Create(key, 4 * kSmall, CreateOptions{.exclusive = true});
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
  EXPECT_EQ(this->Stats().creating, uint64_t{kRounds});
}

TYPED_TEST(PeerContractTest, ExclusiveCreateOfAnExpiredKeySucceeds) {
  ASSERT_OK_R(this->Put("k", 10, B(1), CreateOptions{.ttl = seconds(1)}));
  this->clock_->Advance(seconds(1));
  auto c = this->Create("k", 10, CreateOptions{.exclusive = true});
  ASSERT_OK_R(c);
  auto sealed = this->peer_->Seal(c->lease, std::nullopt);
  ASSERT_OK_R(sealed);
  EXPECT_EQ(this->peer_->Stat("k")->version, sealed->version);
  if (TypeParam::kCreateVersionIsFinal) {
    EXPECT_EQ(sealed->version, c->info.version);
  }
}

TYPED_TEST(PeerContractTest, ExclusiveSealThatLosesTheRaceIsAlreadyExists) {
  auto& peer = this->peer_;
  const uint64_t before = this->Used();
  auto excl = this->Create("k", 3 * kSmall, CreateOptions{.exclusive = true});
  ASSERT_OK_R(excl);
  auto other = this->Create("k", 100);  // a plain create of the same key meanwhile
  if constexpr (TypeParam::kOneWriterPerKey) {
    // One writer per key: no race to lose; the exclusive create's seal wins.
    EXPECT_CODE(other, kAlreadyExists);
    ASSERT_OK_R(peer->Seal(excl->lease, std::nullopt));
    EXPECT_EQ(peer->Stat("k")->version, excl->info.version);
    return;
  }
  ASSERT_OK_R(other);
  auto winner = peer->Seal(other->lease, std::nullopt);
  ASSERT_OK_R(winner);
  const uint64_t winner_bytes = this->Used() - before;

  EXPECT_CODE(peer->Seal(excl->lease, std::nullopt), kAlreadyExists);
  // The winner stays bound; the loser's lease and object are gone.
  EXPECT_EQ(peer->Stat("k")->version, winner->version);
  EXPECT_CODE(peer->Release(excl->lease), kLeaseExpired);
  LocalPeer::Stats s = this->Stats();
  EXPECT_EQ(s.creating, 0u);
  EXPECT_EQ(s.leases, 0u);
  excl->blob.reset();
  other->blob.reset();
  EXPECT_LE(this->Used(), before + winner_bytes);
  ASSERT_OK(peer->Delete("k"));
  EXPECT_EQ(this->Used(), before);
}

TYPED_TEST(PeerContractTest, ExclusiveSealWinsWhenNothingWasBound) {
  auto excl = this->Create("k", 10, CreateOptions{.exclusive = true});
  ASSERT_OK_R(excl);
  ASSERT_OK_R(this->peer_->Seal(excl->lease, std::nullopt));
  EXPECT_EQ(this->peer_->Stat("k")->version, excl->info.version);
}

// --- object TTL ----------------------------------------------------------------------------

TYPED_TEST(PeerContractTest, ObjectTtlCountsFromTheSeal) {
  auto c = this->Create("k", 10, CreateOptions{.ttl = seconds(10)});
  ASSERT_OK_R(c);
  this->clock_->Advance(seconds(5));
  ASSERT_OK_R(this->peer_->Seal(c->lease, std::nullopt));
  this->clock_->Advance(seconds(9));
  this->peer_->ReapExpired();
  EXPECT_OK_R(this->peer_->Stat("k"));
  this->clock_->Advance(seconds(1));
  EXPECT_CODE(this->peer_->Stat("k"), kNotFound);
}

TYPED_TEST(PeerContractTest, DefaultObjectTtlAppliesUnlessTheCreateNamesOne) {
  this->Reopen(minutes(1));
  ASSERT_OK_R(this->Put("default", 10, B(1)));
  ASSERT_OK_R(this->Put("forever", 10, B(1), CreateOptions{.ttl = Duration(0)}));
  EXPECT_EQ(this->peer_->Stat("default")->ttl, minutes(1));
  EXPECT_EQ(this->peer_->Stat("forever")->expires_unix_ms, 0);
  this->clock_->Advance(minutes(1));
  this->peer_->ReapExpired();
  EXPECT_CODE(this->peer_->Stat("default"), kNotFound);
  EXPECT_OK_R(this->peer_->Stat("forever"));
}

TYPED_TEST(PeerContractTest, RebindBeforeExpiryIsNotReapedWithTheOldVersion) {
  auto& peer = this->peer_;
  ASSERT_OK_R(this->Put("k", 10, B(1), CreateOptions{.ttl = seconds(10)}));
  auto v2 = this->Put("k", 10, B(2));  // no TTL
  ASSERT_OK_R(v2);
  this->clock_->Advance(seconds(10));
  peer->ReapExpired();
  auto st = peer->Stat("k");
  ASSERT_OK_R(st);
  EXPECT_EQ(st->version, v2->version);

  // And a rebind with a longer TTL lives its own TTL.
  ASSERT_OK_R(this->Put("j", 10, B(1), CreateOptions{.ttl = seconds(10)}));
  ASSERT_OK_R(this->Put("j", 10, B(2), CreateOptions{.ttl = seconds(20)}));
  this->clock_->Advance(seconds(10));
  peer->ReapExpired();
  EXPECT_OK_R(peer->Stat("j"));
  this->clock_->Advance(seconds(10));
  peer->ReapExpired();
  EXPECT_CODE(peer->Stat("j"), kNotFound);
}

TYPED_TEST(PeerContractTest, ReapFreesAnUnreadExpiredObject) {
  const uint64_t before = this->Used();
  ASSERT_OK_R(this->Put("k", 3 * kSmall, B(1), CreateOptions{.ttl = seconds(1)}));
  ASSERT_OK_R(this->Put("h", 100, B(1), CreateOptions{.ttl = seconds(1)}));
  EXPECT_GT(this->Used(), before);
  this->clock_->Advance(seconds(1));
  this->peer_->ReapExpired();
  EXPECT_EQ(this->Stats().objects, 0u);
  EXPECT_EQ(this->Used(), before);
}

TYPED_TEST(PeerContractTest, HugeObjectTtlIsRejectedNotOverflowed) {
  for (Duration ttl : {Duration::max(), Duration(std::numeric_limits<int64_t>::max() / 1000)}) {
    EXPECT_CODE(this->Create("k", 10, CreateOptions{.ttl = ttl}), kInvalidArgument);
  }
  // A long but sane TTL works and does not expire early.
  auto put = this->Put("k", 10, B(1), CreateOptions{.ttl = hours(24 * 365)});
  ASSERT_OK_R(put);
  EXPECT_EQ(put->expires_unix_ms, this->clock_->UnixMillis() + int64_t{365} * 24 * 3600 * 1000);
  this->clock_->Advance(hours(24 * 364));
  this->peer_->ReapExpired();
  EXPECT_OK_R(this->peer_->Stat("k"));
}

// --- lease TTL -----------------------------------------------------------------------------

TYPED_TEST(PeerContractTest, ExpiredCreateLeaseDiscardsTheObject) {
  const uint64_t before = this->Used();
  auto c = this->Create("k", 3 * kSmall, {}, 0, seconds(5));
  ASSERT_OK_R(c);
  EXPECT_EQ(c->lease_ttl, seconds(5));
  this->clock_->Advance(milliseconds(4'999));
  this->peer_->ReapExpired();
  EXPECT_EQ(this->Stats().creating, 1u);
  this->clock_->Advance(milliseconds(1));
  this->peer_->ReapExpired();
  LocalPeer::Stats s = this->Stats();
  EXPECT_EQ(s.creating, 0u);
  EXPECT_EQ(s.leases, 0u);
  EXPECT_CODE(this->peer_->Seal(c->lease, std::nullopt), kLeaseExpired);
  EXPECT_CODE(this->peer_->Stat("k"), kNotFound);
  c->blob.reset();
  EXPECT_EQ(this->Used(), before);
  EXPECT_OK_R(this->Create("k", 10, CreateOptions{.exclusive = true}));  // the key is free
}

TYPED_TEST(PeerContractTest, ExpiredCreateLeaseCannotSealEvenBeforeTheReaper) {
  auto c = this->Create("k", 10, {}, 0, seconds(5));
  ASSERT_OK_R(c);
  this->clock_->Advance(seconds(5));
  EXPECT_CODE(this->peer_->Seal(c->lease, std::nullopt), kLeaseExpired);
  EXPECT_EQ(this->Stats().creating, 0u);
  EXPECT_CODE(this->Open("k"), kNotFound);
}

TYPED_TEST(PeerContractTest, ExpiredReadLeaseCannotBeReleased) {
  ASSERT_OK_R(this->Put("k", 10, B(1)));
  auto r = this->Open("k", 0, seconds(1));
  ASSERT_OK_R(r);
  this->clock_->Advance(seconds(1));
  this->peer_->ReapExpired();
  EXPECT_EQ(this->Stats().leases, 0u);
  EXPECT_CODE(this->peer_->Release(r->lease), kLeaseExpired);
  EXPECT_CODE(this->peer_->Renew(r->lease), kLeaseExpired);
  EXPECT_OK_R(this->peer_->Stat("k"));  // the object itself lives on

  // Without the reaper, the expiry is noticed on use.
  auto r2 = this->Open("k", 0, seconds(1));
  ASSERT_OK_R(r2);
  this->clock_->Advance(seconds(2));
  EXPECT_CODE(this->peer_->Release(r2->lease), kLeaseExpired);
  EXPECT_EQ(this->Stats().leases, 0u);
}

TYPED_TEST(PeerContractTest, RenewExtendsALeaseByItsTtl) {
  auto& peer = this->peer_;
  auto c = this->Create("k", 10, {}, 0, seconds(10));
  ASSERT_OK_R(c);
  this->clock_->Advance(seconds(8));
  ASSERT_OK_R(peer->Renew(c->lease));
  this->clock_->Advance(seconds(8));  // 16 s after the grant, 8 s after the renewal
  peer->ReapExpired();
  EXPECT_EQ(this->Stats().leases, 1u);
  ASSERT_OK_R(peer->Renew(c->lease));
  this->clock_->Advance(seconds(9));
  peer->ReapExpired();
  ASSERT_OK_R(peer->Seal(c->lease, std::nullopt));

  auto r = this->Open("k", 0, seconds(10));
  ASSERT_OK_R(r);
  this->clock_->Advance(seconds(10));
  EXPECT_CODE(peer->Renew(r->lease), kLeaseExpired);  // too late
}

TYPED_TEST(PeerContractTest, LeaseTtlIsClampedAndMustBePositive) {
  auto r = this->Create("k", 10, {}, 0, hours(5));
  ASSERT_OK_R(r);
  EXPECT_EQ(r->lease_ttl, kMaxLeaseTtl);
  this->clock_->Advance(kMaxLeaseTtl);
  this->peer_->ReapExpired();
  EXPECT_CODE(this->peer_->Seal(r->lease, std::nullopt), kLeaseExpired);

  EXPECT_EQ(this->Create("d", 10)->lease_ttl, kDefaultLeaseTtl);
  EXPECT_CODE(this->Create("z", 10, {}, 0, Duration(0)), kInvalidArgument);
  EXPECT_CODE(this->Create("z", 10, {}, 0, seconds(-1)), kInvalidArgument);
  ASSERT_OK_R(this->Put("sealed", 10, B(1)));
  EXPECT_CODE(this->Open("sealed", 0, Duration(0)), kInvalidArgument);
  EXPECT_EQ(this->Open("sealed", 0, hours(2))->lease_ttl, kMaxLeaseTtl);
}

// --- sessions ------------------------------------------------------------------------------

TYPED_TEST(PeerContractTest, CloseSessionEndsItsLeases) {
  auto& peer = this->peer_;
  ASSERT_OK_R(this->Put("b", 10, B('b')));
  const uint64_t one = this->Used();
  const SessionId s = peer->OpenSession();
  const SessionId other = peer->OpenSession();
  EXPECT_NE(s, other);
  auto pending = this->Create("a", 3 * kSmall, {}, s);
  ASSERT_OK_R(pending);
  auto reader = this->Open("b", s);
  ASSERT_OK_R(reader);
  auto other_reader = this->Open("b", other);
  ASSERT_OK_R(other_reader);
  auto no_session = this->Open("b");
  ASSERT_OK_R(no_session);
  EXPECT_EQ(this->Stats().leases, 4u);

  peer->CloseSession(s);
  LocalPeer::Stats st = this->Stats();
  EXPECT_EQ(st.leases, 2u);
  EXPECT_EQ(st.creating, 0u);
  EXPECT_CODE(peer->Seal(pending->lease, std::nullopt), kLeaseExpired);
  EXPECT_CODE(peer->Release(reader->lease), kLeaseExpired);
  EXPECT_CODE(this->Open("a"), kNotFound);
  EXPECT_OK_R(peer->Stat("b"));  // sealed objects are not the session's
  EXPECT_OK_R(peer->Release(other_reader->lease));
  EXPECT_OK_R(peer->Release(no_session->lease));
  // Dropped blobs: a reader's copy (a cluster peer's read of another node's key) is memory of
  // its own, held by its blob pointer.
  for (auto* g : {&pending, &reader, &other_reader, &no_session}) (*g)->blob.reset();
  EXPECT_EQ(this->Used(), one);

  // Closed and unknown sessions: closing is a no-op, acquiring is refused.
  peer->CloseSession(s);
  peer->CloseSession(987654);
  EXPECT_CODE(this->Open("b", s), kInvalidArgument);
  EXPECT_CODE(this->Create("c", 10, {}, s), kInvalidArgument);
  EXPECT_CODE(this->Create("c", 10, {}, 987654), kInvalidArgument);
  EXPECT_EQ(this->Stats().leases, 0u);
  EXPECT_EQ(this->Stats().creating, 0u);
  EXPECT_EQ(this->Used(), one);  // the refused create's allocation was returned
  EXPECT_OK_R(this->Create("c", 10, CreateOptions{.exclusive = true}));  // and its key
}

TYPED_TEST(PeerContractTest, ReleasedLeaseLeavesItsSession) {
  ASSERT_OK_R(this->Put("b", 10, B('b')));
  const SessionId s = this->peer_->OpenSession();
  auto r = this->Open("b", s);
  ASSERT_OK_R(r);
  ASSERT_OK_R(this->peer_->Release(r->lease));
  auto c = this->Create("c", 10, {}, s);
  ASSERT_OK_R(c);
  ASSERT_OK_R(this->peer_->Seal(c->lease, std::nullopt));
  this->peer_->CloseSession(s);  // nothing left to end
  EXPECT_OK_R(this->peer_->Stat("c"));
  EXPECT_EQ(this->Stats().leases, 0u);
}

// --- size bounds ---------------------------------------------------------------------------

TYPED_TEST(PeerContractTest, ObjectOverTheMaximumIsOutOfCapacity) {
  EXPECT_CODE(this->Create("k", kMaxObject + 1), kOutOfCapacity);
  EXPECT_CODE(this->Create("k", std::numeric_limits<uint64_t>::max()), kOutOfCapacity);
  EXPECT_CODE(this->Create("k", std::numeric_limits<uint64_t>::max() - 100), kOutOfCapacity);
  LocalPeer::Stats s = this->Stats();
  EXPECT_EQ(s.creating, 0u);
  EXPECT_EQ(s.leases, 0u);
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_OK_R(this->Create("k", kMaxObject / 2));
}

// --- listing -------------------------------------------------------------------------------

TYPED_TEST(PeerContractTest, ListPagesThroughSealedObjectsInKeyOrder) {
  auto& peer = this->peer_;
  for (const char* key : {"b/1", "a/3", "c", "a/1", "a/2", "ab"}) {
    ASSERT_OK_R(this->Put(key, 10, B(1)));
  }
  ASSERT_OK_R(this->Create("a/0", 10));  // pending: not listed
  using V = std::vector<std::string>;

  auto all = peer->List({});
  ASSERT_OK_R(all);
  EXPECT_EQ(Keys(*all), (V{"a/1", "a/2", "a/3", "ab", "b/1", "c"}));
  EXPECT_FALSE(all->truncated);
  EXPECT_EQ(all->objects[0].state, ObjectState::kSealed);
  EXPECT_EQ(all->objects[0].size, 10u);
  EXPECT_EQ(all->objects[0].tier, TypeParam::kTier);

  auto a = peer->List({.prefix = "a/"});
  EXPECT_EQ(Keys(*a), (V{"a/1", "a/2", "a/3"}));
  EXPECT_FALSE(a->truncated);

  auto first = peer->List({.prefix = "a/", .limit = 2});
  EXPECT_EQ(Keys(*first), (V{"a/1", "a/2"}));
  EXPECT_TRUE(first->truncated);
  auto next = peer->List({.prefix = "a/", .start_after = "a/2", .limit = 2});
  EXPECT_EQ(Keys(*next), (V{"a/3"}));
  EXPECT_FALSE(next->truncated);

  auto exact = peer->List({.prefix = "a/", .limit = 3});
  EXPECT_EQ(exact->objects.size(), 3u);
  EXPECT_FALSE(exact->truncated);

  // start_after before the prefix starts at the prefix; after all of it, nothing.
  EXPECT_EQ(Keys(*peer->List({.prefix = "b/", .start_after = "a"})), (V{"b/1"}));
  EXPECT_EQ(Keys(*peer->List({.prefix = "a/", .start_after = "a/9"})), V{});
  EXPECT_EQ(Keys(*peer->List({.start_after = "ab"})), (V{"b/1", "c"}));
  EXPECT_EQ(Keys(*peer->List({.prefix = "zzz"})), V{});
}

TYPED_TEST(PeerContractTest, ListSkipsExpiredObjects) {
  ASSERT_OK_R(this->Put("a/1", 10, B(1)));
  ASSERT_OK_R(this->Put("a/2", 10, B(1), CreateOptions{.ttl = seconds(1)}));
  ASSERT_OK_R(this->Put("a/3", 10, B(1)));
  ASSERT_OK_R(this->Put("a/4", 10, B(1), CreateOptions{.ttl = seconds(1)}));
  this->clock_->Advance(seconds(1));  // expired, not yet reaped
  auto page = this->peer_->List({.prefix = "a/", .limit = 2});
  ASSERT_OK_R(page);
  EXPECT_EQ(Keys(*page), (std::vector<std::string>{"a/1", "a/3"}));
  EXPECT_FALSE(page->truncated);  // only an expired key follows
}

// --- bad input -----------------------------------------------------------------------------

TYPED_TEST(PeerContractTest, InvalidKeysAndMetadataAreRefused) {
  const std::string too_long(kMaxKeyBytes + 1, 'k');
  for (const std::string& key :
       {too_long, std::string("a\nb"), std::string("a\0b", 3), std::string("bad\x01key")}) {
    EXPECT_CODE(this->Create(key, 10), kInvalidArgument);
    EXPECT_CODE(this->Open(key), kInvalidArgument);
  }
  Meta many;
  for (size_t i = 0; i <= kMaxMetaEntries; ++i) many["m" + std::to_string(i)] = "v";
  EXPECT_CODE(this->Create("k", 10, CreateOptions{.meta = many}), kInvalidArgument);
  EXPECT_CODE(this->Create("k", 10, CreateOptions{.meta = {{"", "v"}}}), kInvalidArgument);
  EXPECT_CODE(
      this->Create("k", 10, CreateOptions{.meta = {{"k", std::string(kMaxMetaBytes, 'v')}}}),
      kInvalidArgument);
  EXPECT_CODE(this->Create("k", 10, CreateOptions{.ttl = seconds(-1)}), kInvalidArgument);
  // Nothing was allocated or left pending.
  LocalPeer::Stats s = this->Stats();
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_EQ(s.creating, 0u);
  EXPECT_EQ(s.leases, 0u);
  // The longest valid key works.
  EXPECT_OK_R(this->Put(std::string(kMaxKeyBytes, 'k'), 10, B(1)));
}

// --- concurrency ---------------------------------------------------------------------------

TYPED_TEST(PeerContractTest, ConcurrentPutGetDeleteOnOverlappingKeys) {
  auto& peer = this->peer_;
  const std::vector<uint64_t> sizes = {100, 3000, 2 * kSmall, 8 * kSmall};
  constexpr int kKeys = 8;
  constexpr int kThreads = 4;
  constexpr int kIterations = 1000;
  auto size_of = [&](int k) { return sizes[k % sizes.size()]; };
  // What every byte of a whole read must be: the low byte of its version, or where a create's
  // version is provisional, the same as its first byte (a torn read mixes two).
  auto Fill = [](const Grant& r) {
    if (!TypeParam::kCreateVersionIsFinal)
      return r.info.size == 0 ? B(0) : ReadBytes(*r.blob, 1)[0];
    return B(static_cast<int>(r.info.version & 0xff));
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      const SessionId session = peer->OpenSession();
      for (int i = 0; i < kIterations; ++i) {
        const int k = static_cast<int>(rng() % kKeys);
        const std::string key = "key" + std::to_string(k);
        switch (rng() % 6) {
          case 0:
          case 1: {  // put: every byte is the low byte of the version
            CreateOptions opts{.exclusive = rng() % 4 == 0};
            const bool may_conflict = opts.exclusive || TypeParam::kOneWriterPerKey;
            auto c = this->Create(key, size_of(k), opts, rng() % 2 ? session : 0);
            if (!c.ok()) {
              if (c.status().code() != StatusCode::kAlreadyExists || !may_conflict) {
                ADD_FAILURE() << c.status().ToString();
              }
              break;
            }
            std::vector<std::byte> w(size_of(k), B(static_cast<int>(c->info.version & 0xff)));
            if (!c->blob->Write(0, w).ok()) ADD_FAILURE() << "write";
            if (rng() % 8 == 0) {
              if (!peer->Discard(c->lease).ok()) ADD_FAILURE() << "discard";
              break;
            }
            auto sealed = peer->Seal(c->lease, std::nullopt);
            if (!sealed.ok() &&
                (sealed.status().code() != StatusCode::kAlreadyExists || !opts.exclusive)) {
              ADD_FAILURE() << sealed.status().ToString();
            }
            break;
          }
          case 2:
          case 3:
          case 4: {  // get: a whole, sealed object of the version the lease names
            auto r = this->Open(key, rng() % 2 ? session : 0);
            if (!r.ok()) {
              if (r.status().code() != StatusCode::kNotFound) {
                ADD_FAILURE() << r.status().ToString();
              }
              break;
            }
            if (r->info.state != ObjectState::kSealed || r->info.size != size_of(k) ||
                !AllEqual(Content(*r), Fill(*r))) {
              ADD_FAILURE() << "torn or recycled read of " << key;
            }
            if (!peer->Release(r->lease).ok()) ADD_FAILURE() << "release";
            break;
          }
          case 5: {
            Status s = peer->Delete(key);
            if (!s.ok() && s.code() != StatusCode::kNotFound) ADD_FAILURE() << s.ToString();
            break;
          }
        }
      }
      peer->CloseSession(session);
    });
  }
  for (auto& th : threads) th.join();

  LocalPeer::Stats s = this->Stats();
  EXPECT_EQ(s.leases, 0u);
  EXPECT_EQ(s.creating, 0u);
  auto page = peer->List({});
  ASSERT_OK_R(page);
  EXPECT_EQ(s.objects, page->objects.size());
  for (const ObjectInfo& info : page->objects) {
    auto r = this->Open(info.key);
    ASSERT_OK_R(r);
    EXPECT_EQ(r->info.version, info.version);
    EXPECT_TRUE(AllEqual(Content(*r), Fill(*r))) << info.key;
    ASSERT_OK_R(peer->Release(r->lease));
  }
  for (const ObjectInfo& info : page->objects) ASSERT_OK_R(peer->Delete(info.key));
  s = this->Stats();
  EXPECT_EQ(s.objects, 0u);
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_LE(s.used_bytes + s.pooled_bytes, s.capacity_bytes);
}

// --- statistics (LocalPeer::Stats hits, misses, evictions) ---------------------------------

TYPED_TEST(PeerContractTest, ReadAcquiresCountHitsAndMisses) {
  auto& peer = this->peer_;
  ASSERT_OK_R(this->Put("a", 10, B(1)));
  for (int i = 0; i < 2; ++i) {
    auto r = this->Open("a");
    ASSERT_OK_R(r);
    ASSERT_OK_R(peer->Release(r->lease));
  }
  EXPECT_CODE(this->Open("absent"), kNotFound);
  auto pending = this->Create("pending", 10);
  ASSERT_OK_R(pending);
  EXPECT_CODE(this->Open("pending"), kNotFound);  // not sealed yet: a miss
  ASSERT_OK_R(this->Put("short", 10, B(2), CreateOptions{.ttl = milliseconds(100)}));
  this->clock_->Advance(milliseconds(200));
  EXPECT_CODE(this->Open("short"), kNotFound);  // expired, not yet reaped: a miss
  // Refused requests are neither; nor are creates, stats and lists.
  EXPECT_CODE(this->Open(""), kInvalidArgument);
  EXPECT_CODE(this->Open("a", /*session=*/12345), kInvalidArgument);
  EXPECT_OK_R(peer->Stat("a"));
  EXPECT_CODE(peer->Stat("absent"), kNotFound);
  EXPECT_OK_R(peer->List(ListOptions{}));
  LocalPeer::Stats s = this->Stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 3u);
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_EQ(peer->tier_name(), TypeParam::kTierName);
}

TYPED_TEST(PeerContractTest, ConcurrentReadsCountExactly) {
  ASSERT_OK_R(this->Put("a", 10, B(1)));
  constexpr int kThreads = 4;
  constexpr int kReads = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < kReads; ++i) {
        auto r = this->Open("a");
        if (r.ok()) this->peer_->Release(r->lease).IgnoreError();
        this->Open("b").status().IgnoreError();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(this->Stats().hits, uint64_t{kThreads} * kReads);
  EXPECT_EQ(this->Stats().misses, uint64_t{kThreads} * kReads);
}

}  // namespace
}  // namespace packice
