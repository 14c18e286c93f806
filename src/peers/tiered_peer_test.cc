#include "packice/tiered_peer.h"

#include <gtest/gtest.h>

#include "packice/client.h"
#include "packice/file_peer.h"
#include "packice/memory_peer.h"
#include "packice/version_sequence.h"
#include "testing.h"

namespace packice {
namespace {

using testing::TempDir;

constexpr uint64_t kKiB = 1024;

std::string AsString(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

class TieredPeerTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  // Hot: 1 MiB of memory; cold: `cold_capacity` on disk. Both tiers share one durable version
  // sequence and the fake clock, as packiced's do.
  void Open(uint64_t cold_capacity = 64 << 20, std::string policy = "lru2",
            bool write_through = false) {
    peer_.reset();
    auto versions = VersionSequence::OpenDurable(dir_.path() + "/VERSION");
    ASSERT_OK(versions.status());
    MemoryPeerOptions hot;
    hot.capacity_bytes = 1 << 20;
    hot.small_object_bytes = 4 * kKiB;
    hot.background_threads = false;
    hot.clock = clock_;
    hot.versions = *versions;
    FilePeerOptions cold;
    cold.dir = dir_.path() + "/cold";
    cold.capacity_bytes = cold_capacity;
    cold.sync = false;
    cold.background_threads = false;
    cold.clock = clock_;
    cold.versions = *versions;
    auto file = FilePeer::Open(cold);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    TieredPeerOptions options;
    options.high_watermark = 0.5;
    options.low_watermark = 0.25;
    options.policy = std::move(policy);
    options.write_through = write_through;
    options.background_threads = false;
    options.clock = clock_;
    auto tiered = TieredPeer::Create(MemoryPeer::Create(hot), *file, options);
    ASSERT_TRUE(tiered.ok()) << tiered.status().ToString();
    peer_ = *tiered;
  }

  Client client() { return Connect(peer_); }

  std::string TierOf(const std::string& key) {
    auto info = peer_->Stat(key);
    return info.ok() ? info->tier : info.status().ToString();
  }

  void PutObject(const std::string& key, size_t size, char fill) {
    ASSERT_OK(client().Put(key, std::string(size, fill)).status());
  }

  TempDir dir_;
  std::shared_ptr<testing::FakeClock> clock_ = std::make_shared<testing::FakeClock>();
  std::shared_ptr<TieredPeer> peer_;
};

TEST_F(TieredPeerTest, WritesLandHotAndDemotionMovesThemCold) {
  for (int i = 0; i < 6; ++i) PutObject("k" + std::to_string(i), 100 * kKiB, 'a' + i);
  EXPECT_EQ(TierOf("k0"), "memory");
  EXPECT_GT(peer_->hot().GetStats().used_bytes, 512 * kKiB);  // over the high watermark
  auto moved = peer_->Demote();
  ASSERT_OK(moved.status());
  EXPECT_GT(*moved, 0u);
  EXPECT_LE(peer_->hot().GetStats().used_bytes, 256 * kKiB + 100 * kKiB);
  EXPECT_EQ(TierOf("k0"), "disk");  // the oldest went first
  EXPECT_EQ(TierOf("k5"), "memory");
  for (int i = 0; i < 6; ++i) {
    auto r = client().Get("k" + std::to_string(i));
    ASSERT_OK(r.status());
    EXPECT_EQ(AsString(r->data()), std::string(100 * kKiB, 'a' + i)) << i;
  }
  EXPECT_GE(peer_->GetTierStats().demoted_objects, 3u);
  EXPECT_EQ(peer_->Demote().value(), 0u);  // under the high watermark: nothing to do
}

TEST_F(TieredPeerTest, AReaderKeepsItsBytesWhileTheObjectIsDemoted) {
  PutObject("read-me", 200 * kKiB, 'r');
  auto reader = client().Get("read-me");
  ASSERT_OK(reader.status());
  EXPECT_EQ(reader->info().tier, "memory");
  ASSERT_OK(peer_->Demote(/*force=*/true).status());
  EXPECT_EQ(TierOf("read-me"), "disk");
  EXPECT_EQ(AsString(reader->data()), std::string(200 * kKiB, 'r'));
  ASSERT_OK(reader->Release());
}

TEST_F(TieredPeerTest, Lru2KeepsObjectsReadTwiceHot) {
  PutObject("hot", 100 * kKiB, 'h');
  ASSERT_OK(client().Get("hot").status());  // a second use: protected
  for (int i = 0; i < 5; ++i) PutObject("scan" + std::to_string(i), 100 * kKiB, 's');
  ASSERT_OK(peer_->Demote().status());
  EXPECT_EQ(TierOf("hot"), "memory");
  EXPECT_EQ(TierOf("scan0"), "disk");
}

TEST_F(TieredPeerTest, ColdHitsPromoteAndTheColdCopyStays) {
  PutObject("p", 100 * kKiB, 'p');
  ASSERT_OK(peer_->Demote(true).status());
  ASSERT_EQ(TierOf("p"), "disk");
  for (int i = 0; i < 2; ++i) {
    auto r = client().Get("p");
    ASSERT_OK(r.status());
    EXPECT_EQ(r->info().tier, "disk");
  }
  peer_->RunPromotions();
  EXPECT_EQ(TierOf("p"), "memory");
  EXPECT_EQ(peer_->GetTierStats().promoted_objects, 1u);
  EXPECT_OK(peer_->cold().Stat("p").status());  // still durable
  auto r = client().Get("p");
  ASSERT_OK(r.status());
  EXPECT_EQ(AsString(r->data()), std::string(100 * kKiB, 'p'));
}

TEST_F(TieredPeerTest, RewritingADemotedKeyDropsTheColdCopy) {
  PutObject("k", 100 * kKiB, '1');
  ASSERT_OK(peer_->Demote(true).status());
  ASSERT_EQ(TierOf("k"), "disk");
  PutObject("k", 50 * kKiB, '2');
  EXPECT_EQ(TierOf("k"), "memory");
  EXPECT_CODE(peer_->cold().Stat("k"), kNotFound);
  auto r = client().Get("k");
  ASSERT_OK(r.status());
  EXPECT_EQ(AsString(r->data()), std::string(50 * kKiB, '2'));
}

TEST_F(TieredPeerTest, DeleteRemovesBothTiers) {
  PutObject("d", 100 * kKiB, 'd');
  ASSERT_OK(peer_->Demote(true).status());
  PutObject("e", 10, 'e');
  ASSERT_OK(client().Delete("d"));
  ASSERT_OK(client().Delete("e"));
  EXPECT_CODE(client().Get("d"), kNotFound);
  EXPECT_CODE(client().Get("e"), kNotFound);
  EXPECT_CODE(client().Delete("d"), kNotFound);
}

TEST_F(TieredPeerTest, AnObjectTooBigForHotGoesCold) {
  PutObject("huge", 2 << 20, 'x');
  EXPECT_EQ(TierOf("huge"), "disk");
}

TEST_F(TieredPeerTest, BothTiersFullIsAClearError) {
  Open(/*cold_capacity=*/1 << 20);
  PutObject("a", 900 * kKiB, 'a');  // hot
  PutObject("b", 900 * kKiB, 'b');  // demotes a to cold, lands hot
  auto c = client().Put("c", std::string(900 * kKiB, 'c'));
  EXPECT_CODE(c, kOutOfCapacity);
  EXPECT_NE(c.status().message().find("both tiers are full"), std::string::npos)
      << c.status().ToString();
  // What was stored is intact.
  auto a = client().Get("a");
  ASSERT_OK(a.status());
  EXPECT_EQ(AsString(a->data()), std::string(900 * kKiB, 'a'));
}

TEST_F(TieredPeerTest, TtlCarriesAcrossTiers) {
  CreateOptions options;
  options.ttl = std::chrono::hours(1);
  options.meta = {{"m", "v"}};
  ASSERT_OK(client().Put("t", std::string(100 * kKiB, 't'), options).status());
  const int64_t expires = peer_->Stat("t")->expires_unix_ms;
  ASSERT_OK(peer_->Demote(true).status());
  auto cold = peer_->Stat("t");
  ASSERT_OK(cold.status());
  EXPECT_EQ(cold->tier, "disk");
  EXPECT_EQ(cold->expires_unix_ms, expires);
  EXPECT_EQ(cold->meta.at("m"), "v");
  clock_->Advance(std::chrono::hours(1) - std::chrono::milliseconds(1));
  EXPECT_OK(peer_->Stat("t").status());
  clock_->Advance(std::chrono::milliseconds(1));
  EXPECT_CODE(peer_->Stat("t"), kNotFound);
}

TEST_F(TieredPeerTest, ListMergesTiers) {
  PutObject("l/1", 100 * kKiB, '1');
  ASSERT_OK(peer_->Demote(true).status());
  PutObject("l/2", 10, '2');
  auto page = peer_->List(ListOptions{"l/", "", 10});
  ASSERT_OK(page.status());
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "l/1");
  EXPECT_EQ(page->objects[0].tier, "disk");
  EXPECT_EQ(page->objects[1].tier, "memory");
  EXPECT_FALSE(page->truncated);
}

TEST_F(TieredPeerTest, SessionsEndLeasesInBothTiers) {
  PutObject("s1", 100 * kKiB, '1');
  ASSERT_OK(peer_->Demote(true).status());
  PutObject("s2", 10, '2');
  SessionId s = peer_->OpenSession();
  ASSERT_OK(peer_->Acquire(AcquireRequest{"s1", LeaseMode::kRead, 0, {}, s}).status());
  ASSERT_OK(peer_->Acquire(AcquireRequest{"s2", LeaseMode::kRead, 0, {}, s}).status());
  EXPECT_EQ(peer_->GetStats().leases, 2u);
  EXPECT_EQ(peer_->GetTierStats().client_leases, 2u);
  peer_->CloseSession(s);
  EXPECT_EQ(peer_->GetStats().leases, 0u);
  EXPECT_EQ(peer_->GetTierStats().client_leases, 0u);
}

// A client lease whose inner lease expired without a release used to stay in the tiered
// peer's table until its session closed; the table's deadlines now forget it at the sweep.
TEST_F(TieredPeerTest, ExpiredLeasesAreForgottenWithoutARelease) {
  PutObject("cold", 100 * kKiB, 'c');
  ASSERT_OK(peer_->Demote(true).status());
  PutObject("hot", 10, 'h');
  const SessionId s = peer_->OpenSession();
  for (const char* key : {"hot", "cold"}) {
    ASSERT_OK(
        peer_->Acquire(AcquireRequest{key, LeaseMode::kRead, 0, {}, s, std::chrono::seconds(5)})
            .status());
  }
  auto w = peer_->Acquire(
      AcquireRequest{"new", LeaseMode::kCreate, 10, {}, 0, std::chrono::seconds(10)});
  ASSERT_OK(w.status());
  EXPECT_EQ(peer_->GetTierStats().client_leases, 3u);
  EXPECT_EQ(peer_->GetStats().leases, 3u);

  clock_->Advance(std::chrono::seconds(5));
  peer_->ReapExpired();
  EXPECT_EQ(peer_->GetTierStats().client_leases, 1u);  // the session is still open
  EXPECT_EQ(peer_->GetStats().leases, 1u);
  ASSERT_OK(peer_->Renew(w->lease));  // a renewed lease moves its deadline in both tables
  clock_->Advance(std::chrono::seconds(9));
  peer_->ReapExpired();
  EXPECT_EQ(peer_->GetTierStats().client_leases, 1u);
  clock_->Advance(std::chrono::seconds(1));
  peer_->ReapExpired();
  EXPECT_EQ(peer_->GetTierStats().client_leases, 0u);
  EXPECT_EQ(peer_->GetStats().leases, 0u);
  EXPECT_EQ(peer_->GetStats().creating, 0u);
  EXPECT_CODE(peer_->Seal(w->lease, std::nullopt), kLeaseExpired);
  peer_->CloseSession(s);
}

TEST_F(TieredPeerTest, DemotedObjectsSurviveARestart) {
  PutObject("kept", 100 * kKiB, 'k');
  ASSERT_OK(peer_->Demote(true).status());
  PutObject("lost", 10, 'l');  // only in memory
  Open();
  EXPECT_OK(client().Get("kept").status());
  EXPECT_CODE(client().Get("lost"), kNotFound);
}

TEST(TieredPeerCreateTest, RejectsBadOptions) {
  auto a = MemoryPeer::Create({});
  auto b = MemoryPeer::Create({});
  TieredPeerOptions options;
  options.low_watermark = 0.9;
  options.high_watermark = 0.5;
  EXPECT_CODE(TieredPeer::Create(a, b, options), kInvalidArgument);
  EXPECT_CODE(TieredPeer::Create(a, a, {}), kInvalidArgument);
  TieredPeerOptions bad_policy;
  bad_policy.policy = "fifo";
  EXPECT_CODE(TieredPeer::Create(a, b, bad_policy), kInvalidArgument);
}

// --- statistics (LocalPeer::Stats, TierStats) ------------------------------------------------

// Reads straight through the peer (one acquire each), released at once.
Status ReadOnce(Peer& peer, const std::string& key) {
  auto r = peer.Acquire(AcquireRequest{key, LeaseMode::kRead});
  if (!r.ok()) return r.status();
  return peer.Release(r->lease);
}

TEST_F(TieredPeerTest, EachReadCountsOnceInTheTierThatServedIt) {
  PutObject("cold", 100 * kKiB, 'c');
  ASSERT_OK(peer_->Demote(/*force=*/true).status());
  ASSERT_EQ(TierOf("cold"), "disk");
  PutObject("hot", 10, 'h');
  ASSERT_OK(ReadOnce(*peer_, "hot"));
  ASSERT_OK(ReadOnce(*peer_, "hot"));
  ASSERT_OK(ReadOnce(*peer_, "cold"));                  // a hot miss, then a cold hit: a cold hit
  EXPECT_CODE(ReadOnce(*peer_, "missing"), kNotFound);  // missed by both tiers: one miss
  EXPECT_CODE(ReadOnce(*peer_, ""), kInvalidArgument);  // refused: neither

  TieredPeer::TierStats t = peer_->GetTierStats();
  EXPECT_EQ(t.hot_hits, 2u);
  EXPECT_EQ(t.cold_hits, 1u);
  EXPECT_EQ(t.misses, 1u);
  EXPECT_EQ(t.demoted_objects, 1u);
  LocalPeer::Stats s = peer_->GetStats();
  EXPECT_EQ(s.hits, 3u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.evictions, 1u);  // the demotion: pushed out of memory for room
  // The tiers' own counters also saw the probes and the demotion's read of "cold", which is
  // why the tiered peer does not add them up.
  EXPECT_EQ(peer_->hot().GetStats().misses, 2u);  // "cold" and "missing"
  EXPECT_EQ(peer_->hot().GetStats().hits, 3u);    // "hot" twice, and the demotion's read

  EXPECT_EQ(peer_->tier_name(), "tiered");
  EXPECT_EQ(peer_->hot().tier_name(), "memory");
  EXPECT_EQ(peer_->cold().tier_name(), "disk");
}

TEST_F(TieredPeerTest, PromotionsAreNotReadsAndPromotedObjectsHitHot) {
  PutObject("p", 100 * kKiB, 'p');
  ASSERT_OK(peer_->Demote(/*force=*/true).status());
  ASSERT_OK(ReadOnce(*peer_, "p"));
  ASSERT_OK(ReadOnce(*peer_, "p"));  // the second cold hit queues a promotion
  peer_->RunPromotions();
  ASSERT_EQ(TierOf("p"), "memory");
  ASSERT_OK(ReadOnce(*peer_, "p"));
  TieredPeer::TierStats t = peer_->GetTierStats();
  EXPECT_EQ(t.cold_hits, 2u);  // the promotion's own read of the cold copy is not counted
  EXPECT_EQ(t.hot_hits, 1u);
  EXPECT_EQ(t.misses, 0u);
  EXPECT_EQ(t.promoted_objects, 1u);
  // Demoting the promoted (clean) copy again is still an eviction from memory.
  ASSERT_OK(peer_->Demote(/*force=*/true).status());
  EXPECT_EQ(TierOf("p"), "disk");
  EXPECT_EQ(peer_->GetStats().evictions, 2u);
}

}  // namespace
}  // namespace packice

namespace packice {
namespace {

// --- one object, one version, in either tier ----------------------------------------------

TEST_F(TieredPeerTest, AnObjectKeepsItsVersionAndCreationTimeWhenItMoves) {
  PutObject("v", 100 * kKiB, 'v');
  const ObjectInfo hot = peer_->Stat("v").value();
  clock_->Advance(std::chrono::seconds(5));
  ASSERT_OK(peer_->Demote(true).status());
  const ObjectInfo cold = peer_->Stat("v").value();
  EXPECT_EQ(cold.tier, "disk");
  EXPECT_EQ(cold.version, hot.version);
  EXPECT_EQ(cold.created_unix_ms, hot.created_unix_ms);
  for (int i = 0; i < 2; ++i) ASSERT_OK(client().Get("v").status());  // promote_after = 2
  peer_->RunPromotions();
  const ObjectInfo back = peer_->Stat("v").value();
  EXPECT_EQ(back.tier, "memory");
  EXPECT_EQ(back.version, hot.version);
  EXPECT_EQ(back.created_unix_ms, hot.created_unix_ms);
  PutObject("v", 10, 'w');  // a new object: a new version
  EXPECT_GT(peer_->Stat("v")->version, hot.version);
}

TEST_F(TieredPeerTest, VersionsNeverRepeatAfterARestart) {
  PutObject("a", 10, 'a');
  PutObject("b", 10, 'b');
  const uint64_t before = peer_->Stat("b")->version;
  Open();  // what was only in memory is gone; the version mark is not
  PutObject("c", 10, 'c');
  EXPECT_GT(peer_->Stat("c")->version, before);
}

// --- a clean stop keeps what only memory holds -----------------------------------------------

TEST_F(TieredPeerTest, PersistWritesWhatOnlyMemoryHoldsAndARestartServesIt) {
  PutObject("p/0", 50 * kKiB, 'a');
  ASSERT_OK(peer_->Demote(true).status());  // p/0 is on disk already
  ASSERT_EQ(TierOf("p/0"), "disk");
  for (int i = 1; i < 5; ++i) PutObject("p/" + std::to_string(i), 50 * kKiB, 'a' + i);
  PutObject("p/small", 10, 's');
  const uint64_t version = peer_->Stat("p/3")->version;
  LocalPeer::PersistReport r = peer_->Persist(nullptr, nullptr);
  EXPECT_EQ(r.objects, 5u);  // p/1..p/4 and p/small
  EXPECT_EQ(r.bytes, 4 * 50 * kKiB + 10);
  EXPECT_EQ(r.failed + r.left, 0u);
  EXPECT_FALSE(r.full || r.cancelled);
  EXPECT_EQ(peer_->Persist(nullptr, nullptr).durable, 5u) << "a second pass has nothing to do";
  Open();
  for (int i = 0; i < 5; ++i) {
    auto got = client().Get("p/" + std::to_string(i));
    ASSERT_OK(got.status());
    EXPECT_EQ(AsString(got->data()), std::string(50 * kKiB, 'a' + i));
  }
  EXPECT_EQ(AsString(client().Get("p/small")->data()), "ssssssssss");
  EXPECT_EQ(peer_->Stat("p/3")->version, version) << "its ETag survives the restart";
}

TEST_F(TieredPeerTest, PersistStopsWhenTheDiskIsFullOrWhenCancelled) {
  Open(/*cold_capacity=*/160 * kKiB);
  for (int i = 0; i < 4; ++i) PutObject("f/" + std::to_string(i), 60 * kKiB, 'a' + i);
  LocalPeer::PersistReport full = peer_->Persist(nullptr, nullptr);
  EXPECT_TRUE(full.full);
  EXPECT_EQ(full.objects, 2u);
  EXPECT_EQ(full.left, 2u);
  Open();
  for (int i = 0; i < 4; ++i) PutObject("g/" + std::to_string(i), 10, 'a' + i);
  // A second signal arrives once the first object is written.
  const uint64_t on_disk = peer_->cold().GetStats().objects;
  LocalPeer::PersistReport stopped =
      peer_->Persist([&] { return peer_->cold().GetStats().objects > on_disk; }, nullptr);
  EXPECT_TRUE(stopped.cancelled);
  EXPECT_EQ(stopped.objects, 1u);
  EXPECT_EQ(stopped.left, 3u);
}

// --- write-through ------------------------------------------------------------------------

TEST_F(TieredPeerTest, WriteThroughSealsReturnWithADurableCopyAndReadsStayHot) {
  Open(64 << 20, "lru2", /*write_through=*/true);
  PutObject("w", 100 * kKiB, 'w');
  const ObjectInfo info = peer_->Stat("w").value();
  EXPECT_EQ(info.tier, "memory");
  auto on_disk = peer_->cold().Stat("w");
  ASSERT_OK(on_disk.status());
  EXPECT_EQ(on_disk->version, info.version);
  EXPECT_EQ(on_disk->size, info.size);
  ASSERT_OK(client().Get("w").status());
  EXPECT_EQ(peer_->GetTierStats().hot_hits, 1u);
  // Demotion has nothing to copy: the object is dropped from memory, and reads go to disk.
  ASSERT_OK(peer_->Demote(true).status());
  EXPECT_EQ(TierOf("w"), "disk");
  EXPECT_EQ(peer_->Stat("w")->version, info.version);
  Open(64 << 20, "lru2", true);  // as after kill -9: memory is gone
  auto got = client().Get("w");
  ASSERT_OK(got.status());
  EXPECT_EQ(AsString(got->data()), std::string(100 * kKiB, 'w'));
}

TEST_F(TieredPeerTest, WriteThroughWithAFullDiskRefusesTheSealAndKeepsNothing) {
  Open(/*cold_capacity=*/64 * kKiB, "lru2", /*write_through=*/true);
  PutObject("old", 10, 'o');
  auto put = client().Put("big", std::string(100 * kKiB, 'b'));
  EXPECT_CODE(put, kOutOfCapacity);
  EXPECT_CODE(peer_->Stat("big"), kNotFound);
  EXPECT_EQ(peer_->GetStats().creating, 0u);
  EXPECT_EQ(peer_->GetStats().leases, 0u);
  // A rewrite of a key that cannot be made durable leaves the old object in place.
  EXPECT_CODE(client().Put("old", std::string(100 * kKiB, 'n')), kOutOfCapacity);
  EXPECT_EQ(AsString(client().Get("old")->data()), "oooooooooo");
}

TEST_F(TieredPeerTest, WriteThroughDeleteRemovesBothCopies) {
  Open(64 << 20, "lru2", /*write_through=*/true);
  PutObject("d", 100 * kKiB, 'd');
  ASSERT_OK(peer_->Delete("d"));
  EXPECT_CODE(peer_->hot().Stat("d"), kNotFound);
  EXPECT_CODE(peer_->cold().Stat("d"), kNotFound);
  Open(64 << 20, "lru2", true);
  EXPECT_CODE(client().Get("d"), kNotFound);
}

// An exclusive create sees the keys of both tiers: a key demoted to disk exists.
TEST_F(TieredPeerTest, AnExclusiveCreateSeesKeysInEitherTier) {
  PutObject("x", 100 * kKiB, 'x');
  ASSERT_OK(peer_->Demote(true).status());
  ASSERT_EQ(TierOf("x"), "disk");
  CreateOptions exclusive;
  exclusive.exclusive = true;
  EXPECT_CODE(client().Put("x", "new", exclusive), kAlreadyExists);
  EXPECT_EQ(AsString(client().Get("x")->data()), std::string(100 * kKiB, 'x'));
  // Bound in the other tier while the exclusive object was being written: its seal loses.
  auto writer = client().Create("y", 10, exclusive);
  ASSERT_OK(writer.status());
  PutObject("y", 100 * kKiB, 'y');
  ASSERT_OK(peer_->Demote(true).status());
  ASSERT_EQ(TierOf("y"), "disk");
  EXPECT_CODE(writer->Seal(), kAlreadyExists);
  EXPECT_EQ(AsString(client().Get("y")->data()), std::string(100 * kKiB, 'y'));
  EXPECT_EQ(peer_->GetStats().creating, 0u);
}

}  // namespace
}  // namespace packice
