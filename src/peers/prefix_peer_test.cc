// PrefixPeer beyond the Peer contract (peer_contract_test.cc runs it too): keys and their
// prefix, lease ids the two inner peers both hand out, sessions over both, lists that merge, and
// leases forgotten when their inner peer expired them. Also the CasObjectPeer under "cas/", as
// packiced composes them.
#include "peers/prefix_peer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "packice/memory_peer.h"
#include "services/cas/cas_object_peer.h"
#include "testing.h"

namespace packice {
namespace {

using std::chrono::seconds;
using testing::CreateRequest;
using testing::FakeClock;
using testing::ReadRequest;

std::span<const std::byte> Bytes(const std::string& s) { return std::as_bytes(std::span(s)); }

std::string Content(const Grant& g) {
  std::string out(g.info.size, '\0');
  if (!out.empty()) EXPECT_OK(g.blob->Read(0, std::as_writable_bytes(std::span(out))));
  return out;
}

class PrefixPeerTest : public ::testing::Test {
 protected:
  PrefixPeerTest() {
    MemoryPeerOptions o;
    o.capacity_bytes = 1 << 20;
    o.background_threads = false;
    o.clock = clock_;
    fallback_ = MemoryPeer::Create(o);
    routed_ = MemoryPeer::Create(o);
    peer_ = NewPrefixPeer(fallback_, routed_, PrefixPeerOptions{"cas/", clock_});
  }

  Result<ObjectInfo> Put(Peer& peer, const std::string& key, const std::string& value,
                         SessionId session = 0) {
    PACKICE_ASSIGN_OR_RETURN(Grant g, peer.Acquire(CreateRequest(key, value.size(), {}, session)));
    if (!value.empty()) PACKICE_RETURN_IF_ERROR(g.blob->Write(0, Bytes(value)));
    return peer.Seal(g.lease, std::nullopt);
  }

  std::vector<std::string> Keys(const ListOptions& o) {
    Result<ListPage> page = peer_->List(o);
    EXPECT_OK_R(page);
    std::vector<std::string> keys;
    if (page.ok()) {
      for (const ObjectInfo& i : page->objects) keys.push_back(i.key);
      if (page->truncated) keys.push_back("...");
    }
    return keys;
  }

  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  std::shared_ptr<LocalPeer> fallback_, routed_, peer_;
};

TEST_F(PrefixPeerTest, KeysUnderThePrefixGoStrippedToTheRoutedPeer) {
  ASSERT_OK_R(Put(*peer_, "cas/x", "routed"));
  ASSERT_OK_R(Put(*peer_, "plain", "fallback"));
  EXPECT_OK_R(routed_->Stat("x"));
  EXPECT_EQ(routed_->Stat("cas/x").status().code(), StatusCode::kNotFound);
  EXPECT_OK_R(fallback_->Stat("plain"));
  Result<ObjectInfo> info = peer_->Stat("cas/x");
  ASSERT_OK_R(info);
  EXPECT_EQ(info->key, "cas/x");  // the client's key, not the inner one
  Result<Grant> g = peer_->Acquire(ReadRequest("cas/x"));
  ASSERT_OK_R(g);
  EXPECT_EQ(g->info.key, "cas/x");
  EXPECT_EQ(Content(*g), "routed");
  EXPECT_OK(peer_->Release(g->lease));
  // "cas" and "cas0" are not under "cas/"; the prefix alone names nothing.
  ASSERT_OK_R(Put(*peer_, "cas", "f1"));
  EXPECT_OK_R(fallback_->Stat("cas"));
  EXPECT_EQ(peer_->Acquire(CreateRequest("cas/", 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(peer_->Stat("cas/").status().code(), StatusCode::kInvalidArgument);
  EXPECT_OK(peer_->Delete("cas/x"));
  EXPECT_EQ(routed_->Stat("x").status().code(), StatusCode::kNotFound);
}

TEST_F(PrefixPeerTest, SameInnerLeaseIdsStayApart) {
  // Both inner peers are fresh: their first leases have the same id.
  Result<Grant> a = peer_->Acquire(CreateRequest("plain", 3));
  Result<Grant> b = peer_->Acquire(CreateRequest("cas/blob", 4));
  ASSERT_OK_R(a);
  ASSERT_OK_R(b);
  EXPECT_NE(a->lease, b->lease);
  ASSERT_OK(a->blob->Write(0, Bytes("aaa")));
  ASSERT_OK(b->blob->Write(0, Bytes("bbbb")));
  // Discarding one leaves the other, whose inner id is the same, alive.
  EXPECT_OK(peer_->Discard(a->lease));
  Result<ObjectInfo> sealed = peer_->Seal(b->lease, std::nullopt);
  ASSERT_OK_R(sealed);
  EXPECT_EQ(sealed->key, "cas/blob");
  EXPECT_EQ(peer_->Stat("plain").status().code(), StatusCode::kNotFound);
  // Ended leases are gone here too, whichever peer held them.
  EXPECT_EQ(peer_->Release(a->lease).code(), StatusCode::kLeaseExpired);
  EXPECT_EQ(peer_->Seal(b->lease, std::nullopt).status().code(), StatusCode::kLeaseExpired);
  EXPECT_EQ(peer_->Renew(12345).code(), StatusCode::kLeaseExpired);
}

TEST_F(PrefixPeerTest, SessionsSpanBothPeers) {
  ASSERT_OK_R(Put(*peer_, "k", "v"));
  ASSERT_OK_R(Put(*peer_, "cas/k", "w"));
  const SessionId s = peer_->OpenSession();
  Result<Grant> r1 = peer_->Acquire(ReadRequest("k", s));
  Result<Grant> r2 = peer_->Acquire(ReadRequest("cas/k", s));
  Result<Grant> c = peer_->Acquire(CreateRequest("cas/pending", 5, {}, s));
  ASSERT_OK_R(r1);
  ASSERT_OK_R(r2);
  ASSERT_OK_R(c);
  EXPECT_EQ(fallback_->GetStats().leases, 1u);
  EXPECT_EQ(routed_->GetStats().leases, 2u);
  peer_->CloseSession(s);
  EXPECT_EQ(fallback_->GetStats().leases, 0u);
  EXPECT_EQ(routed_->GetStats().leases, 0u);
  EXPECT_EQ(routed_->GetStats().creating, 0u);  // the unsealed object went with its session
  EXPECT_EQ(peer_->Release(r1->lease).code(), StatusCode::kLeaseExpired);
  EXPECT_EQ(peer_->Seal(c->lease, std::nullopt).status().code(), StatusCode::kLeaseExpired);
  // A closed or unknown session is refused on either side.
  EXPECT_FALSE(peer_->Acquire(ReadRequest("k", s)).ok());
  EXPECT_FALSE(peer_->Acquire(ReadRequest("cas/k", 999)).ok());
  peer_->CloseSession(s);  // again: a no-op
}

TEST_F(PrefixPeerTest, ExpiredLeasesAreForgottenAfterTheirInnerOnes) {
  ASSERT_OK_R(Put(*peer_, "cas/k", "v"));
  Result<Grant> r = peer_->Acquire(ReadRequest("cas/k", 0, seconds(5)));
  ASSERT_OK_R(r);
  EXPECT_EQ(r->lease_ttl, seconds(5));
  clock_->Advance(seconds(4));
  EXPECT_OK(peer_->Renew(r->lease));  // renewed on both levels: 5 s from now
  clock_->Advance(seconds(4));
  peer_->ReapExpired();
  EXPECT_EQ(routed_->GetStats().leases, 1u);
  EXPECT_OK(peer_->Renew(r->lease));
  clock_->Advance(seconds(6));
  peer_->ReapExpired();
  EXPECT_EQ(routed_->GetStats().leases, 0u);
  EXPECT_EQ(peer_->Release(r->lease).code(), StatusCode::kLeaseExpired);
}

TEST_F(PrefixPeerTest, ListsRouteOrMerge) {
  for (const char* key : {"a", "cas/2", "cas/1", "cat", "ca", "cas", "z"}) {
    ASSERT_OK_R(Put(*peer_, key, "v"));
  }
  // A key under the prefix the fallback holds (from before the routing): unreachable, unlisted.
  ASSERT_OK_R(Put(*fallback_, "cas/old", "stale"));
  using V = std::vector<std::string>;
  EXPECT_EQ(Keys({}), (V{"a", "ca", "cas", "cas/1", "cas/2", "cat", "z"}));
  EXPECT_EQ(Keys({.prefix = "ca"}), (V{"ca", "cas", "cas/1", "cas/2", "cat"}));
  EXPECT_EQ(Keys({.prefix = "cas/"}), (V{"cas/1", "cas/2"}));
  EXPECT_EQ(Keys({.prefix = "cas/2"}), (V{"cas/2"}));
  EXPECT_EQ(Keys({.prefix = "cat"}), (V{"cat"}));
  // Pages through the merge, in key order.
  EXPECT_EQ(Keys({.limit = 3}), (V{"a", "ca", "cas", "..."}));
  EXPECT_EQ(Keys({.start_after = "cas", .limit = 2}), (V{"cas/1", "cas/2", "..."}));
  EXPECT_EQ(Keys({.start_after = "cas/2", .limit = 2}), (V{"cat", "z"}));
  EXPECT_EQ(Keys({.start_after = "cas/1", .limit = 1}), (V{"cas/2", "..."}));
  EXPECT_EQ(Keys({.start_after = "cat"}), (V{"z"}));
  EXPECT_EQ(Keys({.prefix = "cas/", .start_after = "cas/1"}), (V{"cas/2"}));
  EXPECT_EQ(Keys({.prefix = "cas/", .start_after = "b"}), (V{"cas/1", "cas/2"}));
  EXPECT_EQ(Keys({.prefix = "cas/", .start_after = "cat"}), V{});
  EXPECT_EQ(Keys({.prefix = "ca", .start_after = "cas/2", .limit = 1}), (V{"cat"}));
}

TEST_F(PrefixPeerTest, GeneratedIdsAreNeverUnderThePrefix) {
  // Generated ids are hex and share a per-process start: one of these prefixes is that start.
  for (const char* prefix :
       {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f", "o"}) {
    auto peer = NewPrefixPeer(fallback_, routed_, PrefixPeerOptions{prefix, clock_});
    for (int i = 0; i < 4; ++i) {
      Result<Grant> g = peer->Acquire(CreateRequest("", 1));
      ASSERT_OK_R(g);
      EXPECT_FALSE(g->info.key.starts_with(prefix)) << g->info.key;
      Result<ObjectInfo> info = peer->Seal(g->lease, std::nullopt);
      ASSERT_OK_R(info);
      EXPECT_OK_R(peer->Stat(info->key));
    }
  }
}

TEST_F(PrefixPeerTest, ConcurrentLeasesOnBothSides) {
  ASSERT_OK_R(Put(*peer_, "k", "fallback"));
  ASSERT_OK_R(Put(*peer_, "cas/k", "routed"));
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = t % 2 == 0 ? "k" : "cas/k";
      const std::string want = t % 2 == 0 ? "fallback" : "routed";
      const SessionId s = peer_->OpenSession();
      for (int i = 0; i < 200; ++i) {
        Result<Grant> g = peer_->Acquire(ReadRequest(key, i % 2 == 0 ? s : 0));
        if (!g.ok() || Content(*g) != want || !peer_->Release(g->lease).ok()) ++errors;
      }
      peer_->CloseSession(s);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(peer_->GetStats().leases, 0u);
}

// --- the node's composition: the CAS under "cas/" ------------------------------------------

class CasUnderPrefixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CasStoreOptions o;
    o.dir = dir_.path() + "/cas";
    o.memory_capacity_bytes = 4 << 20;
    o.background_threads = false;
    o.sync = false;
    Result<std::shared_ptr<CasStore>> store = CasStore::Open(o);
    ASSERT_OK_R(store);
    store_ = *store;
    MemoryPeerOptions m;
    m.capacity_bytes = 1 << 20;
    m.background_threads = false;
    peer_ = NewPrefixPeer(MemoryPeer::Create(m), NewCasObjectPeer(store_),
                          PrefixPeerOptions{std::string(kCasKeyPrefix), nullptr});
  }

  testing::TempDir dir_;
  std::shared_ptr<CasStore> store_;
  std::shared_ptr<LocalPeer> peer_;
};

TEST_F(CasUnderPrefixTest, CreatesAreVerifiedAndReadsSeeEveryTier) {
  const std::string blob = "content-addressed";
  const Digest d = Digest::Of(DigestAlgorithm::kBlake3, Bytes(blob));
  const std::string key = "cas/" + d.ToString();
  // Wrong bytes: kDigestMismatch, nothing stored.
  Result<Grant> bad = peer_->Acquire(CreateRequest(key, blob.size()));
  ASSERT_OK_R(bad);
  ASSERT_OK(bad->blob->Write(0, Bytes(std::string(blob.size(), 'x'))));
  EXPECT_EQ(peer_->Seal(bad->lease, std::nullopt).status().code(), StatusCode::kDigestMismatch);
  EXPECT_EQ(peer_->Stat(key).status().code(), StatusCode::kNotFound);
  // A create of another size, or with a TTL: refused.
  EXPECT_EQ(peer_->Acquire(CreateRequest(key, 3)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(peer_->Acquire(CreateRequest("cas/nope", 3)).status().code(),
            StatusCode::kInvalidArgument);
  // The right bytes: stored, in the store's books as a Store would be.
  Result<Grant> good = peer_->Acquire(CreateRequest(key, blob.size()));
  ASSERT_OK_R(good);
  ASSERT_OK(good->blob->Write(0, Bytes(blob)));
  Result<ObjectInfo> sealed = peer_->Seal(good->lease, std::nullopt);
  ASSERT_OK_R(sealed);
  EXPECT_EQ(sealed->key, key);
  EXPECT_EQ(store_->GetCasStats().stored, 1u);
  Result<CasBlob> fetched = store_->Fetch(d);
  ASSERT_OK_R(fetched);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(fetched->bytes.data()), blob.size()), blob);
  // A blob stored through the store reads through the peer; so does the empty blob.
  const Digest other = *store_->Put(Bytes(std::string("stored by Store")));
  Result<Grant> r = peer_->Acquire(ReadRequest("cas/" + other.ToString()));
  ASSERT_OK_R(r);
  EXPECT_EQ(Content(*r), "stored by Store");
  EXPECT_OK(peer_->Release(r->lease));
  Result<Grant> empty =
      peer_->Acquire(ReadRequest("cas/" + Digest::Empty(DigestAlgorithm::kSha256).ToString()));
  ASSERT_OK_R(empty);
  EXPECT_EQ(empty->info.size, 0u);
  EXPECT_OK(peer_->Release(empty->lease));
  EXPECT_EQ(peer_->Delete(key).code(), StatusCode::kPermissionDenied);
}

TEST_F(CasUnderPrefixTest, AReadFetchesFromTheRemoteTierIntoTheLocalOne) {
  CasStoreOptions o;
  o.dir = dir_.path() + "/near";
  o.background_threads = false;
  o.sync = false;
  o.remote = store_;  // the fixture's store is the remote tier here
  Result<std::shared_ptr<CasStore>> near = CasStore::Open(o);
  ASSERT_OK_R(near);
  std::shared_ptr<LocalPeer> cas = NewCasObjectPeer(*near);
  const Digest d = *store_->Put(Bytes(std::string("far away")));
  EXPECT_EQ((*near)->local_peer()->Stat(d.ToString()).status().code(), StatusCode::kNotFound);
  Result<ObjectInfo> stat = cas->Stat(d.ToString());  // any tier's
  ASSERT_OK_R(stat);
  EXPECT_EQ(stat->size, 8u);
  Result<Grant> r = cas->Acquire(ReadRequest(d.ToString()));
  ASSERT_OK_R(r);
  EXPECT_EQ(Content(*r), "far away");
  EXPECT_OK(cas->Release(r->lease));
  EXPECT_OK_R((*near)->local_peer()->Stat(d.ToString()));  // filled
  EXPECT_EQ((*near)->GetCasStats().remote_hits, 1u);
}

}  // namespace
}  // namespace packice
