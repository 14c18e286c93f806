// GroupRegistry: groups by name, their configs, peers applied to every group, metrics.
#include "services/cache/group_registry.h"

#include <gtest/gtest.h>

#include "core/metrics.h"
#include "services/cache/ring_peers.h"
#include "testing.h"

namespace packice {
namespace {

GroupConfig Config(std::string name) { return GroupConfig{.name = std::move(name)}; }

TEST(GroupRegistryTest, AddFindList) {
  auto metrics = std::make_shared<MetricsRegistry>();
  GroupRegistry r(metrics);
  ASSERT_OK(r.Add(Config("users")));
  ASSERT_OK(r.Add(Config("a.b-c_9")));
  EXPECT_EQ(r.size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Group> g, r.Find("users"));
  EXPECT_EQ(g->name(), "users");
  std::vector<GroupRegistry::Entry> all = r.List();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].config.name, "a.b-c_9");  // by name
  EXPECT_EQ(all[1].config.capacity_bytes, kDefaultGroupCapacityBytes);

  EXPECT_CODE(r.Find("nope"), kNotFound);
  EXPECT_NE(r.Find("nope").status().message().find("groups: a.b-c_9, users"),
            std::string_view::npos)
      << r.Find("nope").status().ToString();
  EXPECT_CODE(r.Find(""), kInvalidArgument);
  EXPECT_CODE(r.Find("a/b"), kInvalidArgument);
  EXPECT_CODE(r.Find(std::string(65, 'a')), kInvalidArgument);
  EXPECT_CODE(r.Add(Config("users")), kAlreadyExists);
  EXPECT_NE(metrics->Render().find("packice_group_hits_total{group=\"users\"} 0"),
            std::string::npos)
      << metrics->Render();
}

TEST(GroupRegistryTest, GroupWithoutOriginTakesSetValues) {
  GroupRegistry r;
  ASSERT_OK(r.Add(Config("kv")));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Group> g, r.Find("kv"));
  EXPECT_CODE(g->Get("k"), kNotFound);
  ASSERT_OK(g->Set("k", "v"));
  ASSERT_OK_AND_ASSIGN(CacheValue v, g->Get("k"));
  EXPECT_EQ(*v, "v");
}

TEST(GroupRegistryTest, SmallGroupsStillTakeTheirMaxValue) {
  GroupRegistry r;
  GroupConfig c = Config("small");
  c.capacity_bytes = 2 << 20;  // 16 shards would hold 128 KiB each
  ASSERT_OK(r.Add(c));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Group> g, r.Find("small"));
  EXPECT_OK(g->Set("k", std::string(1 << 20, 'x')));
  EXPECT_CODE(g->Set("k", std::string((1 << 20) + 1, 'x')), kInvalidArgument);
}

TEST(GroupRegistryTest, BadConfigsAreRefused) {
  GroupRegistry r;
  GroupConfig c = Config("g");
  c.origin = "ftp://x/{key}";
  EXPECT_CODE(r.Add(c), kInvalidArgument);
  c.origin = "http://x/users";  // no {key}
  EXPECT_CODE(r.Add(c), kInvalidArgument);
  c.origin = "http://x/{key}";
  c.max_value_bytes = kMaxGroupValueBytes + 1;
  EXPECT_CODE(r.Add(c), kInvalidArgument);
  c.max_value_bytes = 1024;
  c.capacity_bytes = 0;
  EXPECT_CODE(r.Add(c), kInvalidArgument);
  EXPECT_EQ(r.size(), 0u);
}

// A GroupPeers that says another node owns every key, reached in process.
class EverythingElsewhere final : public GroupPeers {
 public:
  explicit EverythingElsewhere(std::shared_ptr<RemoteLoader> loader) : loader_(std::move(loader)) {}
  std::optional<PeerPick> PickOwner(std::string_view) override {
    return PeerPick{loader_, "other", 7};
  }
  uint64_t ring_epoch() const override { return 7; }

 private:
  std::shared_ptr<RemoteLoader> loader_;
};

TEST(GroupRegistryTest, SetPeersReachesEveryGroupAndLaterOnes) {
  auto owner = std::make_shared<Group>(
      "g1", 1 << 20,
      [](std::string_view k) -> Result<std::string> { return "owner:" + std::string(k); });
  auto peers = std::make_shared<EverythingElsewhere>(std::make_shared<InProcessLoader>(owner));
  GroupRegistry r;
  ASSERT_OK(r.Add(Config("g1")));
  r.SetPeers(peers);
  ASSERT_OK(r.Add(Config("g2")));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Group> g1, r.Find("g1"));
  ASSERT_OK_AND_ASSIGN(CacheValue v, g1->Get("k"));
  EXPECT_EQ(*v, "owner:k");
  EXPECT_EQ(g1->Stats().peer_fetches, 1u);
  // g2, added after SetPeers, asks the owner too (whose process has no g2: its answer).
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Group> g2, r.Find("g2"));
  EXPECT_CODE(g2->Get("k"), kNotFound);
  EXPECT_EQ(g2->Stats().peer_fetches, 1u);
  r.SetPeers(nullptr);
  EXPECT_CODE(g1->Get("k2"), kNotFound);  // local again: no origin
  EXPECT_EQ(g1->Stats().peer_fetches, 1u);
}

}  // namespace
}  // namespace packice
