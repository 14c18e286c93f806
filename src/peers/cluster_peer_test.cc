// ClusterPeer's own behaviour beyond the Peer contract (peer_contract_test runs it as
// "Cluster"): mirrors of hot keys, their TTL and their invalidation, on two nodes in this
// process (the real cluster logic, reached without the network; cluster_test runs packiced).

#include "peers/cluster_peer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "packice/memory_peer.h"
#include "testing.h"

namespace packice {
namespace {

constexpr uint64_t kCopyBytes = 8 << 20;

class ClusterPeerTest : public ::testing::Test {
 protected:
  ClusterPeerTest() {
    a_local_ = NewLocal();
    b_local_ = NewLocal();
    ClusterPeerOptions options;
    options.clock = clock_;
    options.copies.capacity_bytes = kCopyBytes;
    options.mirror_min_rate = 0;  // every remote read is hot: each fetch is kept as a mirror
    options.mirror_ttl = std::chrono::milliseconds(5'000);
    options.self_id = "a";
    a_ = ClusterPeer::Create(a_local_, Connector(b_local_, &b_), options);
    options.self_id = "b";
    b_ = ClusterPeer::Create(b_local_, Connector(a_local_, &a_), options);
    a_->SetMembers({{"b", "in-process"}});
    b_->SetMembers({{"a", "in-process"}});
  }

  std::shared_ptr<MemoryPeer> NewLocal() {
    MemoryPeerOptions o;
    o.capacity_bytes = 64 << 20;
    o.clock = clock_;
    return MemoryPeer::Create(o);
  }
  static ClusterConnector Connector(std::shared_ptr<LocalPeer> local,
                                    std::shared_ptr<ClusterPeer>* cluster) {
    return [local, cluster](const ClusterMember&) -> Result<std::shared_ptr<ClusterNode>> {
      return NewInProcessClusterNode(local, *cluster);
    };
  }

  // `n` keys that node b owns.
  std::vector<std::string> KeysOfB(int n) {
    std::vector<std::string> keys;
    for (int i = 0; static_cast<int>(keys.size()) < n; ++i) {
      std::string key = "key" + std::to_string(i);
      if (a_->OwnerOf(key) == "b") keys.push_back(std::move(key));
    }
    return keys;
  }

  // Puts `value` under `key` through `peer`, and waits until the other nodes dropped their
  // copies of it (a copy fetched while that invalidation is on its way is not kept as a mirror).
  static Status PutVia(ClusterPeer& peer, const std::string& key, const std::string& value) {
    PACKICE_ASSIGN_OR_RETURN(Grant g, peer.Acquire(testing::CreateRequest(key, value.size())));
    PACKICE_RETURN_IF_ERROR(g.blob->Write(0, std::as_bytes(std::span(value))));
    PACKICE_RETURN_IF_ERROR(peer.Seal(g.lease, std::nullopt).status());
    peer.FlushInvalidations();
    return Status::Ok();
  }
  // The content of `key` read through `peer` (its lease released).
  static Result<std::string> ReadVia(Peer& peer, const std::string& key) {
    PACKICE_ASSIGN_OR_RETURN(Grant g, peer.Acquire(testing::ReadRequest(key)));
    std::string out(g.info.size, '\0');
    Status read = g.blob->Read(0, std::as_writable_bytes(std::span(out)));
    PACKICE_RETURN_IF_ERROR(peer.Release(g.lease));
    PACKICE_RETURN_IF_ERROR(read);
    return out;
  }

  std::shared_ptr<testing::FakeClock> clock_ = std::make_shared<testing::FakeClock>();
  std::shared_ptr<MemoryPeer> a_local_, b_local_;
  std::shared_ptr<ClusterPeer> a_, b_;
};

TEST_F(ClusterPeerTest, HotReadsAreServedByAMirrorUntilItsTtl) {
  const std::string key = KeysOfB(1)[0];
  ASSERT_OK(PutVia(*a_, key, "v1"));  // staged on a, sealed on b
  EXPECT_OK_R(b_local_->Stat(key));
  EXPECT_CODE(a_local_->Stat(key), kNotFound);
  ASSERT_OK_AND_ASSIGN(std::string first, ReadVia(*a_, key));
  EXPECT_EQ(first, "v1");
  ASSERT_OK_AND_ASSIGN(std::string second, ReadVia(*a_, key));
  EXPECT_EQ(second, "v1");
  ClusterPeer::ClusterStats s = a_->GetClusterStats();
  EXPECT_EQ(s.fetches, 1u);
  EXPECT_EQ(s.mirror_hits, 1u);
  EXPECT_EQ(s.mirrors, 1u);
  clock_->Advance(std::chrono::milliseconds(5'001));
  ASSERT_OK_AND_ASSIGN(std::string third, ReadVia(*a_, key));
  EXPECT_EQ(third, "v1");
  EXPECT_EQ(a_->GetClusterStats().fetches, 2u) << "an expired mirror is fetched again";
}

// The copy index forgets mirrors that expired, whether they are read again or not: it would
// otherwise grow with every key ever mirrored and count dead bytes when it makes room.
TEST_F(ClusterPeerTest, ExpiredMirrorsLeaveTheIndex) {
  const std::vector<std::string> keys = KeysOfB(20);
  for (const std::string& key : keys) {
    ASSERT_OK(PutVia(*b_, key, std::string(1000, 'x')));
    ASSERT_OK_R(ReadVia(*a_, key));
  }
  EXPECT_EQ(a_->GetClusterStats().mirrors, keys.size());
  clock_->Advance(std::chrono::milliseconds(5'001));
  a_->ReapExpired();
  const ClusterPeer::ClusterStats s = a_->GetClusterStats();
  EXPECT_EQ(s.mirrors, 0u);
  EXPECT_EQ(s.copy_objects, 0u);
  EXPECT_EQ(s.copy_bytes, 0u);
}

TEST_F(ClusterPeerTest, ARebindOrDeleteOnTheOwnerDropsTheMirrors) {
  const std::string key = KeysOfB(1)[0];
  ASSERT_OK(PutVia(*b_, key, "old"));
  ASSERT_OK_AND_ASSIGN(std::string before, ReadVia(*a_, key));
  EXPECT_EQ(before, "old");
  ASSERT_EQ(a_->GetClusterStats().mirrors, 1u);
  ASSERT_OK(PutVia(*b_, key, "new"));
  b_->FlushInvalidations();
  EXPECT_EQ(a_->GetClusterStats().mirrors, 0u);
  ASSERT_OK_AND_ASSIGN(std::string after, ReadVia(*a_, key));
  EXPECT_EQ(after, "new");
  ASSERT_OK(b_->Delete(key));
  b_->FlushInvalidations();
  EXPECT_CODE(ReadVia(*a_, key), kNotFound);
  EXPECT_EQ(a_->GetClusterStats().mirrors, 0u);
}

TEST_F(ClusterPeerTest, MirrorsEvictedForRoomLeaveTheIndex) {
  const std::vector<std::string> keys = KeysOfB(12);
  const std::string big(1 << 20, 'y');  // 12 MiB of mirrors through 8 MiB of copy memory
  for (const std::string& key : keys) {
    ASSERT_OK(PutVia(*b_, key, big));
    ASSERT_OK_R(ReadVia(*a_, key));
  }
  const ClusterPeer::ClusterStats s = a_->GetClusterStats();
  EXPECT_GT(s.copy_evictions, 0u);
  EXPECT_EQ(s.mirrors, s.copy_objects);
  EXPECT_LE(s.copy_bytes, kCopyBytes);
}

}  // namespace
}  // namespace packice
