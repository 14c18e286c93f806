#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cluster/ring.h"
#include "core/metrics.h"
#include "packice/cache.h"
#include "services/cache/group_metrics.h"
#include "services/cache/ring_peers.h"
#include "testing.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;

// A getter that counts its calls: "v:<key>", kNotFound for keys starting with "missing".
struct CountingGetter {
  std::atomic<int> calls{0};
  CacheGetter Fn() {
    return [this](std::string_view key) -> Result<std::string> {
      ++calls;
      if (key.starts_with("missing")) return NotFound("no row '" + std::string(key) + "'");
      return "v:" + std::string(key);
    };
  }
};

// A gate loaders wait on until the test opens it.
class Gate {
 public:
  void Open() { open_.set_value(); }
  void Wait() { opened_.wait(); }

 private:
  std::promise<void> open_;
  std::shared_future<void> opened_ = open_.get_future().share();
};

#define ASSERT_VALUE(group, key, expected)          \
  do {                                              \
    Result<CacheValue> r_ = (group).Get(key);       \
    ASSERT_TRUE(r_.ok()) << r_.status().ToString(); \
    EXPECT_EQ(**r_, expected);                      \
  } while (0)

class GroupPolicyTest : public ::testing::TestWithParam<CachePolicy> {};

INSTANTIATE_TEST_SUITE_P(Policies, GroupPolicyTest,
                         ::testing::Values(CachePolicy::kLru, CachePolicy::kLru2),
                         [](const auto& info) {
                           return info.param == CachePolicy::kLru ? "lru" : "lru2";
                         });

TEST_P(GroupPolicyTest, MissLoadsThenHitsShareTheBytes) {
  CountingGetter getter;
  Group g("users", 1 << 20, getter.Fn(), {.policy = GetParam()});
  Result<CacheValue> first = g.Get("42");
  ASSERT_OK(first.status());
  EXPECT_EQ(**first, "v:42");
  Result<CacheValue> second = g.Get("42");
  ASSERT_OK(second.status());
  EXPECT_EQ(first->get(), second->get());  // the same bytes, not a copy
  EXPECT_EQ(getter.calls.load(), 1);
}

TEST_P(GroupPolicyTest, EvictsTheLeastRecentlyUsedWhenFull) {
  CountingGetter getter;
  // One shard, room for three entries of 2 + 4 bytes ("kN" -> "v:kN").
  Group g("g", 18, getter.Fn(), {.policy = GetParam(), .shards = 1});
  ASSERT_VALUE(g, "k1", "v:k1");
  ASSERT_VALUE(g, "k2", "v:k2");
  ASSERT_VALUE(g, "k3", "v:k3");
  ASSERT_VALUE(g, "k1", "v:k1");  // a hit: k1 is used again
  EXPECT_EQ(g.Stats().evictions, 0u);
  ASSERT_VALUE(g, "k4", "v:k4");  // evicts k2, the least recently used (on probation in LRU2)
  GroupStats s = g.Stats();
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.items, 3u);
  EXPECT_EQ(s.bytes, 18u);
  EXPECT_EQ(getter.calls.load(), 4);
  ASSERT_VALUE(g, "k1", "v:k1");
  EXPECT_EQ(getter.calls.load(), 4);
  ASSERT_VALUE(g, "k2", "v:k2");  // loaded again
  EXPECT_EQ(getter.calls.load(), 5);
}

TEST_P(GroupPolicyTest, BytesStayWithinCapacity) {
  CountingGetter getter;
  Group g("g", 4096, getter.Fn(), {.policy = GetParam(), .shards = 4});
  for (int i = 0; i < 2000; ++i) {
    ASSERT_OK(g.Get("key-" + std::to_string(i)).status());
    ASSERT_LE(g.Stats().bytes, 4096u);
  }
  EXPECT_GT(g.Stats().evictions, 0u);
}

TEST(GroupTest, Lru2KeepsTheHotSetThroughAScan) {
  for (CachePolicy policy : {CachePolicy::kLru, CachePolicy::kLru2}) {
    CountingGetter getter;
    Group g("g", 60, getter.Fn(), {.policy = policy, .shards = 1});  // 10 entries of 6 bytes
    for (int round = 0; round < 2; ++round) {
      ASSERT_VALUE(g, "h1", "v:h1");
      ASSERT_VALUE(g, "h2", "v:h2");
    }
    for (int i = 0; i < 20; ++i) ASSERT_OK(g.Get("s" + std::to_string(i % 10) + "x").status());
    const int before = getter.calls.load();
    ASSERT_VALUE(g, "h1", "v:h1");
    ASSERT_VALUE(g, "h2", "v:h2");
    if (policy == CachePolicy::kLru2) {
      EXPECT_EQ(getter.calls.load(), before) << "LRU2 lost the hot keys to a scan";
    } else {
      EXPECT_EQ(getter.calls.load(), before + 2) << "LRU should have lost them";
    }
  }
}

TEST(GroupTest, EntriesExpireAfterTheirTtl) {
  auto clock = std::make_shared<FakeClock>();
  CountingGetter getter;
  Group g("g", 1 << 20, getter.Fn(), {.default_ttl = 100ms, .clock = clock});
  ASSERT_VALUE(g, "a", "v:a");
  clock->Advance(99ms);
  ASSERT_VALUE(g, "a", "v:a");
  EXPECT_EQ(getter.calls.load(), 1);
  clock->Advance(1ms);
  ASSERT_VALUE(g, "a", "v:a");  // expired: a miss
  EXPECT_EQ(getter.calls.load(), 2);
  EXPECT_EQ(g.Stats().misses, 2u);

  ASSERT_OK(g.Set("b", "set", 10ms));
  ASSERT_OK(g.Set("c", "forever", 0ms));  // 0: no TTL, whatever the default
  clock->Advance(10ms);
  ASSERT_VALUE(g, "b", "v:b");
  clock->Advance(1h);
  ASSERT_VALUE(g, "c", "forever");
}

TEST(GroupTest, SetAndDelete) {
  CountingGetter getter;
  Group g("g", 1 << 20, getter.Fn());
  ASSERT_OK(g.Set("k", "mine"));
  ASSERT_VALUE(g, "k", "mine");
  EXPECT_EQ(getter.calls.load(), 0);
  ASSERT_OK(g.Delete("k"));
  ASSERT_OK(g.Delete("k"));  // absent: still OK
  ASSERT_VALUE(g, "k", "v:k");
  EXPECT_EQ(getter.calls.load(), 1);
}

TEST(GroupTest, GetCachedAnswersOnlyFromMemoryAndCountsOnlyHits) {
  CountingGetter getter;
  Group g("g", 1 << 20, getter.Fn());
  CacheSource source = CacheSource::kMiss;
  EXPECT_EQ(g.GetCached("k", &source), nullptr);  // not cached: nothing loaded, nothing counted
  EXPECT_EQ(g.GetCached("", &source), nullptr);   // an invalid key: Get reports it
  EXPECT_EQ(getter.calls.load(), 0);
  EXPECT_EQ(g.Stats().gets, 0u);
  ASSERT_VALUE(g, "k", "v:k");
  CacheValue v = g.GetCached("k", &source);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(*v, "v:k");
  EXPECT_EQ(source, CacheSource::kHit);
  GroupStats s = g.Stats();
  EXPECT_EQ(s.gets, 2u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);

  // The peer side: counted as a peer's request only when it answers.
  const PeerRequest request{.group = "g", .key = "other", .hops = 1, .ring_epoch = 0};
  EXPECT_EQ(g.ServePeerCached(request), nullptr);
  EXPECT_EQ(g.Stats().peer_requests, 0u);
  ASSERT_OK(g.ServePeer(request).status());
  ASSERT_NE(g.ServePeerCached(request), nullptr);
  EXPECT_EQ(g.Stats().peer_requests, 2u);
  EXPECT_EQ(getter.calls.load(), 2);
}

TEST(GroupTest, ConcurrentMissesOfOneKeyCallTheGetterOnce) {
  std::atomic<int> calls{0};
  Gate gate;
  Group g("g", 1 << 20, [&](std::string_view key) -> Result<std::string> {
    ++calls;
    gate.Wait();
    return std::string("v");
  });
  constexpr int kCallers = 200;
  std::latch started(kCallers);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&] {
      started.count_down();
      Result<CacheValue> r = g.Get("hot");
      ok += r.ok() && **r == "v";
    });
  }
  started.wait();
  std::this_thread::sleep_for(20ms);
  gate.Open();
  for (auto& t : threads) t.join();
  // Exactly one whatever the timing: a caller that comes after the load finds the value in the
  // cache, which the load filled before its waiters woke.
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(ok.load(), kCallers);
  GroupStats s = g.Stats();
  EXPECT_EQ(s.gets, uint64_t{kCallers});
  EXPECT_EQ(s.hits + s.misses, uint64_t{kCallers});
  EXPECT_EQ(s.loads, 1u);
}

TEST(GroupTest, GetterErrorsReachTheCallerAndAreNotCached) {
  CountingGetter getter;
  Group g("g", 1 << 20, getter.Fn());
  EXPECT_CODE(g.Get("missing-1"), kNotFound);
  EXPECT_CODE(g.Get("missing-1"), kNotFound);
  EXPECT_EQ(getter.calls.load(), 2);  // not cached: loaded again
  GroupStats s = g.Stats();
  EXPECT_EQ(s.loads, 2u);
  EXPECT_EQ(s.load_errors, 2u);
  EXPECT_EQ(s.items, 0u);

  // Concurrent waiters of a failing load all see the error.
  Gate gate;
  Group slow("slow", 1 << 20, [&](std::string_view) -> Result<std::string> {
    gate.Wait();
    return Unavailable("database down");
  });
  std::vector<std::future<Result<CacheValue>>> waiters;
  for (int i = 0; i < 8; ++i) {
    waiters.push_back(std::async(std::launch::async, [&] { return slow.Get("k"); }));
  }
  std::this_thread::sleep_for(20ms);
  gate.Open();
  for (auto& w : waiters) EXPECT_CODE(w.get(), kUnavailable);
  EXPECT_EQ(slow.Stats().items, 0u);
}

TEST(GroupTest, SlowLoadTimesOutAndStillFillsTheCache) {
  std::atomic<int> calls{0};
  Gate gate;
  Group g("g", 1 << 20,
          [&](std::string_view) -> Result<std::string> {
            ++calls;
            gate.Wait();
            return std::string("late");
          },
          {.load_timeout = 30ms});
  EXPECT_CODE(g.Get("k"), kTimeout);
  EXPECT_CODE(g.Get("k"), kTimeout);  // joins the running load, does not start another
  EXPECT_EQ(g.Stats().load_timeouts, 2u);
  gate.Open();
  // The abandoned load ends and caches its value.
  for (int i = 0; i < 1000 && g.Stats().items == 0; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_VALUE(g, "k", "late");
  EXPECT_EQ(calls.load(), 1);
}

TEST(GroupTest, GetterMayGetOtherKeysOfItsGroup) {
  std::shared_ptr<Group> g;
  g = std::make_shared<Group>("g", 1 << 20, [&](std::string_view key) -> Result<std::string> {
    if (key == "self") return g->Get("self").status();  // waits for itself: refused
    if (!key.starts_with("outer")) return "inner:" + std::string(key);
    PACKICE_ASSIGN_OR_RETURN(CacheValue inner, g->Get("in-" + std::string(key)));
    return "outer(" + *inner + ")";
  });
  ASSERT_VALUE(*g, "outer1", "outer(inner:in-outer1)");
  ASSERT_VALUE(*g, "in-outer1", "inner:in-outer1");  // cached by the nested Get
  EXPECT_CODE(g->Get("self"), kInvalidArgument);
}

TEST(GroupTest, BadKeysAndOversizeValuesAreRejected) {
  Group g("g", 1 << 20,
          [](std::string_view key) -> Result<std::string> {
            return std::string(key == "big" ? 2000 : 10, 'x');
          },
          {.max_value_bytes = 1000, .max_key_bytes = 8});
  EXPECT_CODE(g.Get(""), kInvalidArgument);
  EXPECT_CODE(g.Get("123456789"), kInvalidArgument);
  EXPECT_CODE(g.Set("k", std::string(1001, 'x')), kInvalidArgument);
  ASSERT_OK(g.Set("k", std::string(1000, 'x')));
  EXPECT_CODE(g.Get("big"), kInvalidArgument);  // the getter's value is too large
  GroupStats s = g.Stats();
  EXPECT_EQ(s.load_errors, 1u);
  EXPECT_EQ(s.items, 1u);  // only "k"
  EXPECT_EQ(s.gets, 1u);   // bad keys are not counted

  // A value larger than one shard's share cannot be held either.
  Group tiny("tiny", 64, [](std::string_view) { return Result<std::string>("v"); }, {.shards = 4});
  EXPECT_CODE(tiny.Set("k", std::string(16, 'x')), kInvalidArgument);
  ASSERT_OK(tiny.Set("k", std::string(15, 'x')));
}

TEST(GroupTest, TooManyLoadsIsUnavailable) {
  Gate gate;
  Group g("g", 1 << 20,
          [&](std::string_view) -> Result<std::string> {
            gate.Wait();
            return std::string("v");
          },
          {.load_timeout = 10ms, .max_loads = 2});
  EXPECT_CODE(g.Get("a"), kTimeout);
  EXPECT_CODE(g.Get("b"), kTimeout);
  EXPECT_CODE(g.Get("c"), kUnavailable);  // the hanging getter holds two threads, no more
  gate.Open();
}

// ---- peers ------------------------------------------------------------------------------------

// Groups named "users" on nodes `ids`, wired by rings through InProcessLoaders.
struct Cluster {
  explicit Cluster(std::vector<std::string> ids, GroupOptions options = {}) {
    for (const std::string& id : ids) {
      getters[id] = std::make_unique<CountingGetter>();
      groups[id] = std::make_shared<Group>("users", 1 << 20, getters[id]->Fn(), options);
      peers[id] = std::make_shared<RingPeers>(id);
      groups[id]->SetPeers(peers[id]);
    }
    for (const std::string& id : ids) Wire(id, ids);
  }
  // Gives node `id` the ring of `members` (its view of the membership).
  void Wire(const std::string& id, const std::vector<std::string>& members) {
    RingPeers::Loaders loaders;
    for (const std::string& other : members) {
      if (other != id) loaders[other] = std::make_shared<InProcessLoader>(groups[other]);
    }
    peers[id]->Update(Ring(members), std::move(loaders));
  }
  int Loads() const {
    int n = 0;
    for (const auto& [id, g] : getters) n += g->calls.load();
    return n;
  }

  std::map<std::string, std::unique_ptr<CountingGetter>> getters;
  std::map<std::string, std::shared_ptr<Group>> groups;
  std::map<std::string, std::shared_ptr<RingPeers>> peers;
};

TEST(GroupPeersTest, MissesGoToTheOwnerAndLoadOnceInTheCluster) {
  Cluster c({"a", "b", "c"});
  const Ring ring({"a", "b", "c"});
  constexpr int kKeys = 300;
  int owned_by_a = 0;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "u" + std::to_string(i);
    ASSERT_VALUE(*c.groups["a"], key, "v:" + key);
    owned_by_a += *ring.Owner(key) == "a";
  }
  EXPECT_EQ(c.Loads(), kKeys);
  for (const auto& [id, getter] : c.getters) EXPECT_GT(getter->calls.load(), 0) << id;
  GroupStats a = c.groups["a"]->Stats();
  EXPECT_EQ(a.peer_fetches, uint64_t(kKeys - owned_by_a));
  EXPECT_EQ(a.items, uint64_t(owned_by_a));  // fetched values are not kept by a non-owner
  EXPECT_EQ(a.loads, uint64_t(owned_by_a));

  // Reading the same keys from another node loads nothing: each owner has it cached.
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "u" + std::to_string(i);
    ASSERT_VALUE(*c.groups["b"], key, "v:" + key);
  }
  EXPECT_EQ(c.Loads(), kKeys);
  EXPECT_EQ(c.groups["b"]->Stats().ring_disagreements, 0u);
}

TEST(GroupPeersTest, SetAndDeleteGoToTheOwner) {
  Cluster c({"a", "b"});
  const Ring ring({"a", "b"});
  std::string key;  // a key b owns
  for (int i = 0; key.empty(); ++i) {
    if (*ring.Owner("k" + std::to_string(i)) == "b") key = "k" + std::to_string(i);
  }
  ASSERT_OK(c.groups["a"]->Set(key, "written on a"));
  EXPECT_EQ(c.groups["a"]->Stats().items, 0u);
  EXPECT_EQ(c.groups["b"]->Stats().items, 1u);
  ASSERT_VALUE(*c.groups["b"], key, "written on a");
  ASSERT_OK(c.groups["a"]->Delete(key));
  EXPECT_EQ(c.groups["b"]->Stats().items, 0u);
}

TEST(GroupPeersTest, ForwardedRequestsAreNeverForwardedAgain) {
  // Rings that disagree: a thinks b owns every key, b thinks a does.
  Cluster c({"a", "b"});
  c.Wire("a", {"b"});
  c.Wire("b", {"a"});

  ASSERT_VALUE(*c.groups["a"], "k", "v:k");
  EXPECT_EQ(c.getters["a"]->calls.load(), 0);
  EXPECT_EQ(c.getters["b"]->calls.load(), 1);  // b served it locally, did not send it back
  EXPECT_EQ(c.groups["b"]->Stats().peer_requests, 1u);
  EXPECT_EQ(c.groups["b"]->Stats().ring_disagreements, 1u);
  EXPECT_EQ(c.groups["a"]->Stats().peer_requests, 0u);

  // Both sides at once, many keys: no wait cycle between the two nodes' loads.
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (const char* node : {"a", "b"}) {
    threads.emplace_back([&, node] {
      for (int i = 0; i < 200; ++i) {
        const std::string key = "x" + std::to_string(i);
        Result<CacheValue> r = c.groups[node]->Get(key);
        ok += r.ok() && **r == "v:" + key;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 400);
  EXPECT_EQ(c.groups["a"]->Stats().load_timeouts + c.groups["b"]->Stats().load_timeouts, 0u);
}

// A RemoteLoader that records what it was sent and passes it on.
class RecordingLoader final : public RemoteLoader {
 public:
  explicit RecordingLoader(std::shared_ptr<RemoteLoader> next) : next_(std::move(next)) {}
  Result<CacheValue> Fetch(const PeerRequest& request) override {
    hops = request.hops;
    epoch = request.ring_epoch;
    return next_->Fetch(request);
  }
  Status Store(const PeerRequest& r, std::string_view v, std::optional<Duration> ttl) override {
    return next_->Store(r, v, ttl);
  }
  Status Remove(const PeerRequest& r) override { return next_->Remove(r); }
  std::atomic<uint32_t> hops{0};
  std::atomic<uint64_t> epoch{0};

 private:
  std::shared_ptr<RemoteLoader> next_;
};

TEST(GroupPeersTest, PickCarriesHopsAndRingEpoch) {
  Cluster c({"a", "b"});
  auto recorder =
      std::make_shared<RecordingLoader>(std::make_shared<InProcessLoader>(c.groups["b"]));
  const Ring ring({"a", "b"});
  c.peers["a"]->Update(ring, {{"b", recorder}});
  std::string key;
  for (int i = 0; key.empty(); ++i) {
    if (*ring.Owner("k" + std::to_string(i)) == "b") key = "k" + std::to_string(i);
  }
  ASSERT_VALUE(*c.groups["a"], key, "v:" + key);
  EXPECT_EQ(recorder->hops.load(), 1u);
  EXPECT_EQ(recorder->epoch.load(), ring.fingerprint());
}

TEST(GroupPeersTest, HotRemoteKeysAreMirroredAndDeleteDropsTheMirror) {
  auto clock = std::make_shared<FakeClock>();
  Cluster c({"a", "b"},
            {.clock = clock, .mirror_ttl = 500ms, .mirror_min_rate = 5, .rate_window = 1000ms});
  const Ring ring({"a", "b"});
  std::string key;  // owned by b, read on a
  for (int i = 0; key.empty(); ++i) {
    if (*ring.Owner("k" + std::to_string(i)) == "b") key = "k" + std::to_string(i);
  }
  Group& a = *c.groups["a"];
  // Reads 1..4: below 5 per second, fetched each time and not kept. Read 5 reaches the rate:
  // fetched and mirrored. Reads 6..10 are mirror hits.
  for (int i = 0; i < 10; ++i) ASSERT_VALUE(a, key, "v:" + key);
  GroupStats s = a.Stats();
  EXPECT_EQ(s.peer_fetches, 5u);
  EXPECT_EQ(s.mirror_hits, 5u);
  EXPECT_EQ(s.mirror_items, 1u);
  EXPECT_EQ(s.items, 0u);
  EXPECT_EQ(c.getters["b"]->calls.load(), 1);  // b cached it on the first fetch

  ASSERT_OK(a.Delete(key));  // drops the mirror, and b's copy
  EXPECT_EQ(a.Stats().mirror_items, 0u);
  ASSERT_VALUE(a, key, "v:" + key);
  EXPECT_EQ(a.Stats().peer_fetches, 6u);
  EXPECT_EQ(c.getters["b"]->calls.load(), 2);

  // The mirror's short TTL: still hot, so mirrored again, and gone once it passes.
  EXPECT_EQ(a.Stats().mirror_items, 1u);
  clock->Advance(500ms);
  ASSERT_VALUE(a, key, "v:" + key);
  EXPECT_EQ(a.Stats().peer_fetches, 7u);

  // A key that cools down (no reads for two windows) is not mirrored again at once.
  clock->Advance(3000ms);
  ASSERT_VALUE(a, key, "v:" + key);
  ASSERT_VALUE(a, key, "v:" + key);
  EXPECT_EQ(a.Stats().peer_fetches, 9u);
}

TEST(GroupPeersTest, UnreachableOwnerFallsBackToTheLocalGetterUncached) {
  Cluster c({"a", "b"});
  const Ring ring({"a", "b"});
  std::string key;
  for (int i = 0; key.empty(); ++i) {
    if (*ring.Owner("k" + std::to_string(i)) == "b") key = "k" + std::to_string(i);
  }
  c.groups.erase("b");  // the node is gone; a's loader for it says kUnavailable
  ASSERT_VALUE(*c.groups["a"], key, "v:" + key);
  GroupStats s = c.groups["a"]->Stats();
  EXPECT_EQ(s.peer_fetch_errors, 1u);
  EXPECT_EQ(s.loads, 1u);
  EXPECT_EQ(s.items, 0u);
}

// ---- stats and metrics ------------------------------------------------------------------------

TEST(GroupStatsTest, CountsAreExactAndRenderAsPrometheusFamilies) {
  CountingGetter getter;
  auto g = std::make_shared<Group>("users", 1000, getter.Fn());
  ASSERT_VALUE(*g, "a", "v:a");               // miss, load
  ASSERT_VALUE(*g, "a", "v:a");               // hit
  ASSERT_VALUE(*g, "a", "v:a");               // hit
  EXPECT_CODE(g->Get("missing"), kNotFound);  // miss, load error
  ASSERT_OK(g->Set("b", "12345"));
  GroupStats s = g->Stats();
  EXPECT_EQ(s.gets, 4u);
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.mirror_hits, 0u);
  EXPECT_EQ(s.loads, 2u);
  EXPECT_EQ(s.load_errors, 1u);
  EXPECT_EQ(s.load_timeouts, 0u);
  EXPECT_EQ(s.peer_fetches, 0u);
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_EQ(s.items, 2u);
  EXPECT_EQ(s.bytes, (1u + 3u) + (1u + 5u));
  EXPECT_EQ(s.capacity_bytes, 1000u);
  ASSERT_FALSE(s.load_latency_counts.empty());
  EXPECT_EQ(s.load_latency_counts.back(), 2u);
  EXPECT_EQ(s.load_latency_counts.size(), s.load_latency_bounds.size() + 1);

  MetricsRegistry registry;
  RegisterGroupMetrics(registry, g);
  auto other = std::make_shared<Group>("sessions", 1000, getter.Fn());
  RegisterGroupMetrics(registry, other);
  const std::string text = registry.Render();
  EXPECT_NE(text.find("# TYPE packice_group_hits_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("packice_group_hits_total{group=\"users\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("packice_group_hits_total{group=\"sessions\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("packice_group_items{group=\"users\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("packice_group_load_seconds_count{group=\"users\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("packice_group_load_seconds_bucket{group=\"users\",le=\"+Inf\"} 2\n"),
            std::string::npos);
  // Each family once, with both groups' series.
  EXPECT_EQ(text.find("# TYPE packice_group_hits_total"),
            text.rfind("# TYPE packice_group_hits_total"));
  other.reset();  // a destroyed group's series go
  EXPECT_EQ(registry.Render().find("group=\"sessions\""), std::string::npos);
}

}  // namespace
}  // namespace packice
