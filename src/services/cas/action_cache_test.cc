// ActionCache over a real MemoryPeer: a round trip, a replacement, absence, the size limit.
#include "services/cas/action_cache.h"

#include <gtest/gtest.h>

#include "packice/memory_peer.h"
#include "testing.h"

namespace packice {
namespace {

Digest ActionDigest(const std::string& s) {
  return Digest::Of(DigestAlgorithm::kSha256, std::as_bytes(std::span(s.data(), s.size())));
}

std::shared_ptr<LocalPeer> Peer() {
  return MemoryPeer::Create({.capacity_bytes = 64 << 20, .background_threads = false});
}

TEST(ActionCacheTest, StoresReplacesAndFinds) {
  ActionCache cache(Peer());
  const Digest a = ActionDigest("action a");
  EXPECT_CODE(cache.Get(a), kNotFound);
  ASSERT_OK(cache.Put(a, "result one"));
  ASSERT_OK_AND_ASSIGN(std::string got, cache.Get(a));
  EXPECT_EQ(got, "result one");
  ASSERT_OK(cache.Put(a, "result two, longer"));
  ASSERT_OK_AND_ASSIGN(got, cache.Get(a));
  EXPECT_EQ(got, "result two, longer");
  ASSERT_OK(cache.Put(ActionDigest("empty"), ""));
  ASSERT_OK_AND_ASSIGN(got, cache.Get(ActionDigest("empty")));
  EXPECT_EQ(got, "");
  EXPECT_EQ(ActionCache::KeyOf(a), "ac/sha256:" + a.hex() + "/" + std::to_string(a.size));
}

TEST(ActionCacheTest, RefusesEntriesOverTheLimit) {
  ActionCache cache(Peer(), {.max_entry_bytes = 100});
  EXPECT_CODE(cache.Put(ActionDigest("a"), std::string(101, 'x')), kInvalidArgument);
  EXPECT_OK(cache.Put(ActionDigest("a"), std::string(100, 'x')));
}

}  // namespace
}  // namespace packice
