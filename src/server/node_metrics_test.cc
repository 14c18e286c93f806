#include "server/node_metrics.h"

#include <gtest/gtest.h>

#include <string>

#include "packice/file_peer.h"
#include "packice/memory_peer.h"
#include "packice/sharedfs_peer.h"
#include "packice/tiered_peer.h"
#include "testing.h"

namespace packice {
namespace {

constexpr uint64_t kKiB = 1024;

Result<ObjectInfo> Put(Peer& peer, const std::string& key, uint64_t size) {
  auto g = peer.Acquire(AcquireRequest{key, LeaseMode::kCreate, size});
  if (!g.ok()) return g.status();
  return peer.Seal(g->lease, std::nullopt);
}

Result<Grant> Read(Peer& peer, const std::string& key) {
  return peer.Acquire(AcquireRequest{key, LeaseMode::kRead});
}

bool HasLine(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(NodeMetricsTest, OneMemoryTier) {
  MemoryPeerOptions o;
  o.capacity_bytes = 1 << 20;
  o.small_object_bytes = 4 * kKiB;
  o.background_threads = false;
  std::shared_ptr<MemoryPeer> peer = MemoryPeer::Create(o);
  ASSERT_OK(Put(*peer, "a", 100).status());
  ASSERT_OK(Put(*peer, "b", 50).status());
  auto held = Read(*peer, "a");  // a hit; its lease stays
  ASSERT_OK(held.status());
  auto again = Read(*peer, "b");  // a hit
  ASSERT_OK(again.status());
  ASSERT_OK(peer->Release(again->lease));
  EXPECT_CODE(Read(*peer, "missing"), kNotFound);  // a miss

  MetricsRegistry registry;
  RegisterPeerMetrics(registry, peer);
  EXPECT_EQ(registry.Render(),
            "# HELP packice_objects Sealed objects held, by tier.\n"
            "# TYPE packice_objects gauge\n"
            "packice_objects{tier=\"memory\"} 2\n"
            "# HELP packice_bytes Bytes charged to objects, by tier.\n"
            "# TYPE packice_bytes gauge\n"
            "packice_bytes{tier=\"memory\"} 150\n"
            "# HELP packice_capacity_bytes Bytes the tier may hold.\n"
            "# TYPE packice_capacity_bytes gauge\n"
            "packice_capacity_bytes{tier=\"memory\"} 1048576\n"
            "# HELP packice_leases Live leases.\n"
            "# TYPE packice_leases gauge\n"
            "packice_leases 1\n"
            "# HELP packice_hits_total Reads that found the object, by the tier that served it.\n"
            "# TYPE packice_hits_total counter\n"
            "packice_hits_total{tier=\"memory\"} 2\n"
            "# HELP packice_misses_total Reads that found no object in any tier.\n"
            "# TYPE packice_misses_total counter\n"
            "packice_misses_total 1\n"
            "# HELP packice_evictions_total Objects pushed out of a tier to make room, by tier.\n"
            "# TYPE packice_evictions_total counter\n"
            "packice_evictions_total{tier=\"memory\"} 0\n");
  ASSERT_OK(peer->Release(held->lease));
}

TEST(NodeMetricsTest, TieredPeerReportsMemoryAndDiskAndCountsEachReadOnce) {
  testing::TempDir dir;
  MemoryPeerOptions hot;
  hot.capacity_bytes = 1 << 20;
  hot.small_object_bytes = 4 * kKiB;
  hot.background_threads = false;
  FilePeerOptions cold;
  cold.dir = dir.path() + "/cold";
  cold.capacity_bytes = 64 << 20;
  cold.sync = false;
  cold.background_threads = false;
  auto file = FilePeer::Open(cold);
  ASSERT_OK(file.status());
  TieredPeerOptions options;
  options.background_threads = false;
  options.promote_after_hits = 0;
  auto made = TieredPeer::Create(MemoryPeer::Create(hot), *file, options);
  ASSERT_OK(made.status());
  std::shared_ptr<TieredPeer> peer = *made;

  ASSERT_OK(Put(*peer, "old", 100 * kKiB).status());
  ASSERT_OK(peer->Demote(/*force=*/true).status());  // "old" leaves memory: one eviction
  ASSERT_OK(Put(*peer, "new", 10).status());
  for (const char* key : {"old", "new", "new"}) {  // one cold hit, two hot hits
    auto r = Read(*peer, key);
    ASSERT_OK(r.status());
    ASSERT_OK(peer->Release(r->lease));
  }
  EXPECT_CODE(Read(*peer, "missing"), kNotFound);  // a miss in both tiers: one miss

  MetricsRegistry registry;
  RegisterPeerMetrics(registry, peer);
  const std::string text = registry.Render();
  for (const char* line : {
           "packice_objects{tier=\"memory\"} 1",
           "packice_objects{tier=\"disk\"} 1",
           "packice_bytes{tier=\"memory\"} 10",
           "packice_capacity_bytes{tier=\"memory\"} 1048576",
           "packice_capacity_bytes{tier=\"disk\"} 67108864",
           "packice_leases 0",
           "packice_hits_total{tier=\"memory\"} 2",
           "packice_hits_total{tier=\"disk\"} 1",
           "packice_misses_total 1",
           "packice_evictions_total{tier=\"memory\"} 1",
           "packice_evictions_total{tier=\"disk\"} 0",
       }) {
    EXPECT_TRUE(HasLine(text, line)) << line << " not in\n" << text;
  }
  EXPECT_EQ(text.find("# TYPE packice_objects gauge\n"), text.rfind("# TYPE packice_objects"))
      << "one header per family";

  // The tiered peer's own Stats agree: each read once.
  const LocalPeer::Stats s = peer->GetStats();
  EXPECT_EQ(s.hits, 3u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.evictions, 1u);
}

TEST(NodeMetricsTest, SharedFSPeerIsOneTier) {
  testing::TempDir dir;
  SharedFSPeerOptions o;
  o.dir = dir.path() + "/shared";
  o.sync = false;
  o.background_threads = false;
  auto peer = SharedFSPeer::Open(o);
  ASSERT_OK(peer.status());
  ASSERT_OK(Put(**peer, "a", 100).status());
  auto r = Read(**peer, "a");
  ASSERT_OK(r.status());
  ASSERT_OK((*peer)->Release(r->lease));
  EXPECT_CODE(Read(**peer, "b"), kNotFound);
  EXPECT_CODE(Read(**peer, ""), kInvalidArgument);  // refused: neither
  const LocalPeer::Stats s = (*peer)->GetStats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.evictions, 0u);

  MetricsRegistry registry;
  RegisterPeerMetrics(registry, *peer);
  const std::string text = registry.Render();
  for (const char* line : {"packice_hits_total{tier=\"sharedfs\"} 1", "packice_misses_total 1",
                           "packice_evictions_total{tier=\"sharedfs\"} 0", "packice_leases 0"}) {
    EXPECT_TRUE(HasLine(text, line)) << line << " not in\n" << text;
  }
}

TEST(NodeMetricsTest, NothingOnceThePeerIsGone) {
  MetricsRegistry registry;
  {
    MemoryPeerOptions o;
    o.background_threads = false;
    RegisterPeerMetrics(registry, MemoryPeer::Create(o));
  }
  EXPECT_EQ(registry.Render(), "");
}

}  // namespace
}  // namespace packice
