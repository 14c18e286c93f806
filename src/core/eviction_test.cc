#include "core/eviction.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace packice {

void PrintTo(const EvictedEntry& e, std::ostream* os) { *os << e.key << ":" << e.charge; }

namespace {

// Inserts prefix0 .. prefix<n-1>, dropping what they evict: tests hold no data to free.
template <typename E>
void InsertKeys(E& evictor, const std::string& prefix, int n, uint64_t charge) {
  for (int i = 0; i < n; ++i) {
    const EvictionResult dropped = evictor.Insert(prefix + std::to_string(i), charge);
  }
}

std::vector<std::string> Keys(const std::vector<EvictedEntry>& entries) {
  std::vector<std::string> keys;
  for (const EvictedEntry& e : entries) keys.push_back(e.key);
  return keys;
}

// Pops every victim the policy offers, in order.
template <typename P>
std::vector<std::string> DrainVictims(P& policy) {
  std::vector<std::string> keys;
  while (std::optional<EvictedEntry> v = policy.PopVictim()) keys.push_back(v->key);
  return keys;
}

using Strings = std::vector<std::string>;

// ---- Every policy ---------------------------------------------------------------------------

template <typename P>
class EvictionPolicyTest : public ::testing::Test {};
using Policies = ::testing::Types<LruPolicy, Lru2Policy>;
TYPED_TEST_SUITE(EvictionPolicyTest, Policies);

TYPED_TEST(EvictionPolicyTest, InsertTouchErase) {
  TypeParam p;
  EXPECT_EQ(p.entries(), 0u);
  p.Insert("a", 10);
  p.Insert("b", 20);
  EXPECT_EQ(p.entries(), 2u);
  EXPECT_EQ(p.bytes(), 30u);
  EXPECT_TRUE(p.Contains("a"));
  EXPECT_TRUE(p.Touch("a"));
  EXPECT_FALSE(p.Touch("x"));
  EXPECT_FALSE(p.Contains("x"));
  EXPECT_TRUE(p.Erase("a"));
  EXPECT_FALSE(p.Erase("a"));
  EXPECT_FALSE(p.Contains("a"));
  EXPECT_EQ(p.entries(), 1u);
  EXPECT_EQ(p.bytes(), 20u);
}

TYPED_TEST(EvictionPolicyTest, PopVictimOnEmptyIsNullopt) {
  TypeParam p;
  EXPECT_FALSE(p.PopVictim().has_value());
}

TYPED_TEST(EvictionPolicyTest, VictimsInLeastRecentlyUsedOrder) {
  TypeParam p;
  for (const char* k : {"a", "b", "c"}) p.Insert(k, 1);
  EXPECT_EQ(DrainVictims(p), (Strings{"a", "b", "c"}));
  EXPECT_EQ(p.entries(), 0u);
  EXPECT_EQ(p.bytes(), 0u);
}

TYPED_TEST(EvictionPolicyTest, UsedEntryIsEvictedLast) {
  TypeParam p;
  for (const char* k : {"a", "b", "c"}) p.Insert(k, 1);
  EXPECT_TRUE(p.Touch("a"));
  EXPECT_EQ(DrainVictims(p), (Strings{"b", "c", "a"}));
}

TYPED_TEST(EvictionPolicyTest, NextVictimNamesWhatPopVictimRemoves) {
  TypeParam p;
  EXPECT_FALSE(p.NextVictim().has_value());
  for (const char* k : {"a", "b", "c"}) p.Insert(k, 1);
  EXPECT_TRUE(p.Pin("a"));
  EXPECT_EQ(p.NextVictim(), "b");
  EXPECT_EQ(p.entries(), 3u);  // named, not removed
  EXPECT_TRUE(p.Touch("b"));
  EXPECT_EQ(p.NextVictim(), "c");
  EXPECT_EQ(p.PopVictim(), (EvictedEntry{"c", 1}));
  EXPECT_EQ(p.NextVictim(), "b");
  EXPECT_EQ(p.PopVictim(), (EvictedEntry{"b", 1}));
  EXPECT_FALSE(p.NextVictim().has_value());  // only the pinned one is left
}

TYPED_TEST(EvictionPolicyTest, InsertOfPresentKeyUpdatesCharge) {
  TypeParam p;
  p.Insert("a", 10);
  p.Insert("a", 25);
  EXPECT_EQ(p.entries(), 1u);
  EXPECT_EQ(p.bytes(), 25u);
  EXPECT_EQ(p.PopVictim(), (EvictedEntry{"a", 25}));
}

TYPED_TEST(EvictionPolicyTest, PinnedEntriesAreNeverVictims) {
  TypeParam p;
  p.Insert("a", 1);
  p.Insert("b", 2);
  EXPECT_TRUE(p.Pin("a"));
  EXPECT_EQ(p.PopVictim(), (EvictedEntry{"b", 2}));
  EXPECT_FALSE(p.PopVictim().has_value());  // everything left is pinned
  EXPECT_EQ(p.entries(), 1u);
  EXPECT_EQ(p.bytes(), 1u);
  EXPECT_TRUE(p.Unpin("a"));
  EXPECT_EQ(p.PopVictim(), (EvictedEntry{"a", 1}));
}

TYPED_TEST(EvictionPolicyTest, PinsAreCounted) {
  TypeParam p;
  p.Insert("a", 1);
  EXPECT_TRUE(p.Pin("a"));
  EXPECT_TRUE(p.Pin("a"));
  EXPECT_TRUE(p.Unpin("a"));
  EXPECT_FALSE(p.PopVictim().has_value());  // one pin left
  EXPECT_TRUE(p.Unpin("a"));
  EXPECT_FALSE(p.Unpin("a"));  // not pinned
  EXPECT_FALSE(p.Pin("x"));
  EXPECT_FALSE(p.Unpin("x"));
  EXPECT_EQ(p.PopVictim(), (EvictedEntry{"a", 1}));
}

TYPED_TEST(EvictionPolicyTest, UnpinnedEntryIsMostRecentlyUsed) {
  TypeParam p;
  for (const char* k : {"a", "b", "c"}) p.Insert(k, 1);
  EXPECT_TRUE(p.Pin("a"));
  EXPECT_TRUE(p.Unpin("a"));
  EXPECT_EQ(DrainVictims(p), (Strings{"b", "c", "a"}));
}

TYPED_TEST(EvictionPolicyTest, EraseAndRechargePinnedEntries) {
  TypeParam p;
  p.Insert("a", 5);
  p.Insert("b", 7);
  EXPECT_TRUE(p.Pin("a"));
  EXPECT_TRUE(p.Pin("b"));
  p.Insert("b", 9);  // a pinned entry may change size
  EXPECT_EQ(p.bytes(), 14u);
  EXPECT_TRUE(p.Erase("a"));  // Erase ignores pins
  EXPECT_FALSE(p.Unpin("a"));
  EXPECT_EQ(p.bytes(), 9u);
  EXPECT_TRUE(p.Unpin("b"));
  EXPECT_EQ(p.PopVictim(), (EvictedEntry{"b", 9}));
  EXPECT_EQ(p.bytes(), 0u);
}

// Random operations on the policy and on a map; counts, pins and victims must agree.
TYPED_TEST(EvictionPolicyTest, MatchesAModelUnderRandomOperations) {
  TypeParam p(EvictionOptions{.capacity_bytes = 500, .capacity_entries = 20});
  struct Want {
    uint64_t charge = 0;
    uint32_t pins = 0;
  };
  std::map<std::string, Want> model;
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const std::string key = "k" + std::to_string(rng() % 40);
    auto it = model.find(key);
    const bool present = it != model.end();
    switch (rng() % 7) {
      case 0:
      case 1: {
        const uint64_t charge = rng() % 100;
        p.Insert(key, charge);
        model[key].charge = charge;
        break;
      }
      case 2:
        ASSERT_EQ(p.Touch(key), present);
        ASSERT_EQ(p.Contains(key), present);
        break;
      case 3:
        ASSERT_EQ(p.Erase(key), present);
        if (present) model.erase(it);
        break;
      case 4:
        ASSERT_EQ(p.Pin(key), present);
        if (present) ++it->second.pins;
        break;
      case 5: {
        const bool pinned = present && it->second.pins > 0;
        ASSERT_EQ(p.Unpin(key), pinned);
        if (pinned) --it->second.pins;
        break;
      }
      case 6: {
        const bool any_unpinned = std::any_of(model.begin(), model.end(),
                                              [](const auto& kv) { return kv.second.pins == 0; });
        std::optional<EvictedEntry> victim = p.PopVictim();
        ASSERT_EQ(victim.has_value(), any_unpinned);
        if (!victim) break;
        auto v = model.find(victim->key);
        ASSERT_NE(v, model.end());
        EXPECT_EQ(v->second.pins, 0u);
        EXPECT_EQ(victim->charge, v->second.charge);
        model.erase(v);
        break;
      }
    }
    uint64_t bytes = 0;
    for (const auto& [k, want] : model) bytes += want.charge;
    ASSERT_EQ(p.entries(), model.size());
    ASSERT_EQ(p.bytes(), bytes);
  }
}

// ---- LRU2 -----------------------------------------------------------------------------------

TEST(Lru2PolicyTest, SecondUsePromotesToProtected) {
  Lru2Policy p;
  p.Insert("a", 1);
  p.Insert("b", 1);
  EXPECT_TRUE(p.Touch("a"));  // a: protected
  p.Insert("c", 1);           // newer than a, but on probation
  EXPECT_EQ(DrainVictims(p), (Strings{"b", "c", "a"}));

  LruPolicy lru;  // by contrast, plain LRU goes by recency alone
  for (const char* k : {"a", "b"}) lru.Insert(k, 1);
  EXPECT_TRUE(lru.Touch("a"));
  lru.Insert("c", 1);
  EXPECT_EQ(DrainVictims(lru), (Strings{"b", "a", "c"}));
}

TEST(Lru2PolicyTest, ProtectedOverflowDemotesToProbationHead) {
  // Protected holds 80% of 10 entries: 8.
  Lru2Policy p(EvictionOptions{.capacity_entries = 10, .protected_percent = 80});
  p.Insert("x", 1);
  for (int i = 0; i < 9; ++i) p.Insert("k" + std::to_string(i), 1);
  for (int i = 0; i < 9; ++i) EXPECT_TRUE(p.Touch("k" + std::to_string(i)));
  // k0, the least recently used protected entry, went back to probation, ahead of x.
  Strings want = {"x", "k0"};
  for (int i = 1; i < 9; ++i) want.push_back("k" + std::to_string(i));
  EXPECT_EQ(DrainVictims(p), want);
}

TEST(Lru2PolicyTest, ProtectedLevelIsBoundedInBytes) {
  // Protected holds 80 of 100 bytes: promoting b pushes a back to probation.
  Lru2Policy p(EvictionOptions{.capacity_bytes = 100, .protected_percent = 80});
  p.Insert("a", 50);
  p.Insert("b", 50);
  p.Insert("c", 1);
  EXPECT_TRUE(p.Touch("a"));
  EXPECT_TRUE(p.Touch("b"));
  EXPECT_EQ(DrainVictims(p), (Strings{"c", "a", "b"}));
}

TEST(Lru2PolicyTest, PinnedEntryUsedTwiceIsProtectedOnUnpin) {
  Lru2Policy p;
  p.Insert("a", 1);
  p.Insert("b", 1);
  EXPECT_TRUE(p.Pin("a"));
  EXPECT_TRUE(p.Touch("a"));
  EXPECT_TRUE(p.Unpin("a"));
  p.Insert("c", 1);
  EXPECT_EQ(DrainVictims(p), (Strings{"b", "c", "a"}));
}

// Hot keys (used twice) survive a scan of keys used once, in a full evictor.
template <typename E>
std::set<std::string> HotKeysLeftAfterScan(E& evictor) {
  for (int i = 0; i < 5; ++i) {
    const std::string key = "hot" + std::to_string(i);
    EXPECT_TRUE(evictor.Insert(key, 1).evicted.empty());
    EXPECT_TRUE(evictor.Touch(key));
  }
  InsertKeys(evictor, "scan", 1000, 1);
  std::set<std::string> left;
  for (int i = 0; i < 5; ++i) {
    const std::string key = "hot" + std::to_string(i);
    if (evictor.Contains(key)) left.insert(key);
  }
  return left;
}

TEST(Lru2PolicyTest, ScanDoesNotFlushKeysHitTwice) {
  const EvictionOptions options{.capacity_entries = 10, .shards = 1};
  ShardedEvictor<Lru2Policy> lru2(options);
  EXPECT_EQ(HotKeysLeftAfterScan(lru2).size(), 5u);
  ShardedEvictor<LruPolicy> lru(options);  // which is why LRU2 exists
  EXPECT_EQ(HotKeysLeftAfterScan(lru).size(), 0u);
}

TEST(EvictionKindTest, NamesAndNewEvictor) {
  for (EvictionKind kind : {EvictionKind::kLru, EvictionKind::kLru2}) {
    EXPECT_EQ(EvictionKindFromName(EvictionKindName(kind)), kind);
  }
  EXPECT_FALSE(EvictionKindFromName("fifo").has_value());
  const EvictionOptions options{.capacity_entries = 10, .shards = 1};
  std::unique_ptr<Evictor> lru2 = NewEvictor(EvictionKind::kLru2, options);
  std::unique_ptr<Evictor> lru = NewEvictor(EvictionKind::kLru, options);
  EXPECT_EQ(HotKeysLeftAfterScan(*lru2).size(), 5u);
  EXPECT_EQ(HotKeysLeftAfterScan(*lru).size(), 0u);
}

// ---- ShardedEvictor over every policy -------------------------------------------------------

template <typename E>
class ShardedEvictorTest : public ::testing::Test {};
using Evictors = ::testing::Types<ShardedEvictor<LruPolicy>, ShardedEvictor<Lru2Policy>>;
TYPED_TEST_SUITE(ShardedEvictorTest, Evictors);

TYPED_TEST(ShardedEvictorTest, EntryCapacity) {
  TypeParam e(EvictionOptions{.capacity_entries = 3, .shards = 1});
  for (const char* k : {"a", "b", "c"}) EXPECT_TRUE(e.Insert(k, 1).evicted.empty());
  EvictionResult r = e.Insert("d", 1);
  EXPECT_EQ(Keys(r.evicted), (Strings{"a"}));
  EXPECT_FALSE(r.over_capacity);
  const EvictorStats stats = e.GetStats();
  EXPECT_EQ(stats.entries, 3u);
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_EQ(stats.evicted_bytes, 1u);
  EXPECT_EQ(stats.capacity_entries, 3u);
}

TYPED_TEST(ShardedEvictorTest, ByteCapacity) {
  TypeParam e(EvictionOptions{.capacity_bytes = 100, .shards = 1});
  EXPECT_TRUE(e.Insert("a", 40).evicted.empty());
  EXPECT_TRUE(e.Insert("b", 40).evicted.empty());
  EXPECT_EQ(Keys(e.Insert("c", 40).evicted), (Strings{"a"}));
  EXPECT_EQ(Keys(e.Insert("d", 90).evicted), (Strings{"b", "c"}));
  EXPECT_EQ(e.GetStats().bytes, 90u);
  EXPECT_EQ(e.GetStats().evicted_bytes, 120u);
}

TYPED_TEST(ShardedEvictorTest, GrowingChargeEvictsOthers) {
  TypeParam e(EvictionOptions{.capacity_bytes = 100, .shards = 1});
  EXPECT_TRUE(e.Insert("a", 40).evicted.empty());
  EXPECT_TRUE(e.Insert("b", 40).evicted.empty());
  EXPECT_EQ(Keys(e.Insert("a", 90).evicted), (Strings{"b"}));
  EXPECT_TRUE(e.Contains("a"));
  EXPECT_EQ(e.GetStats().bytes, 90u);
}

TYPED_TEST(ShardedEvictorTest, EntryLargerThanTheShardEvictsItself) {
  TypeParam e(EvictionOptions{.capacity_bytes = 100, .shards = 1});
  EXPECT_TRUE(e.Insert("a", 10).evicted.empty());
  EvictionResult r = e.Insert("big", 200);
  EXPECT_EQ(Keys(r.evicted), (Strings{"a", "big"}));
  EXPECT_FALSE(r.over_capacity);
  EXPECT_EQ(e.GetStats().entries, 0u);
}

TYPED_TEST(ShardedEvictorTest, PinnedEntriesSurvivePressure) {
  TypeParam e(EvictionOptions{.capacity_entries = 4, .shards = 1});
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(e.InsertPinned("p" + std::to_string(i), 1).evicted.empty());
  }
  for (int i = 0; i < 100; ++i) {
    const std::string key = "k" + std::to_string(i);
    EvictionResult r = e.Insert(key, 1);
    EXPECT_EQ(Keys(r.evicted), (Strings{key}));  // the only unpinned entry
    EXPECT_FALSE(r.over_capacity);
  }
  EvictionResult r = e.InsertPinned("p4", 1);
  EXPECT_TRUE(r.evicted.empty());
  EXPECT_TRUE(r.over_capacity);
  EXPECT_EQ(e.GetStats().entries, 5u);
  EXPECT_TRUE(e.EvictBytes(kUnlimited).empty());
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(e.Contains("p" + std::to_string(i)));

  EXPECT_TRUE(e.Unpin("p0"));
  EXPECT_EQ(Keys(e.Insert("x", 1).evicted), (Strings{"p0", "x"}));
  EXPECT_EQ(e.GetStats().entries, 4u);
}

TYPED_TEST(ShardedEvictorTest, PinAndUnpin) {
  TypeParam e(EvictionOptions{.capacity_entries = 2, .shards = 1});
  EXPECT_TRUE(e.Insert("a", 1).evicted.empty());
  EXPECT_TRUE(e.Pin("a"));
  EXPECT_FALSE(e.Pin("x"));
  EXPECT_TRUE(e.Insert("b", 1).evicted.empty());
  EXPECT_EQ(Keys(e.Insert("c", 1).evicted), (Strings{"b"}));
  EXPECT_TRUE(e.Unpin("a"));
  EXPECT_FALSE(e.Unpin("a"));
  EXPECT_TRUE(e.Erase("c"));
  EXPECT_FALSE(e.Erase("c"));
  EXPECT_FALSE(e.Touch("c"));
  EXPECT_TRUE(e.Touch("a"));
  EXPECT_EQ(e.GetStats().entries, 1u);
}

TYPED_TEST(ShardedEvictorTest, CapacityIsSplitAcrossShards) {
  TypeParam e(EvictionOptions{.capacity_bytes = 8000, .capacity_entries = 80, .shards = 3});
  InsertKeys(e, "k", 2000, 50);
  const EvictorStats stats = e.GetStats();  // 4 shards of 20 entries and 2000 bytes
  EXPECT_LE(stats.entries, 80u);
  EXPECT_GE(stats.entries, 40u);
  EXPECT_LE(stats.bytes, 8000u);
  EXPECT_EQ(stats.entries + stats.evictions, 2000u);
  EXPECT_EQ(stats.capacity_bytes, 8000u);
}

TYPED_TEST(ShardedEvictorTest, EvictBytes) {
  TypeParam e(EvictionOptions{.shards = 4});
  InsertKeys(e, "k", 100, 10);
  EXPECT_TRUE(e.Pin("k7"));
  EXPECT_TRUE(e.EvictBytes(0).empty());
  EXPECT_EQ(e.EvictBytes(35).size(), 4u);  // stops once 35 bytes are freed
  EXPECT_EQ(e.GetStats().bytes, 960u);
  EXPECT_EQ(e.EvictBytes(kUnlimited).size(), 95u);  // all but the pinned one
  EXPECT_EQ(e.GetStats().entries, 1u);
  EXPECT_TRUE(e.Contains("k7"));
  EXPECT_EQ(e.GetStats().evictions, 99u);
}

// Threads insert, touch, erase, pin and unpin keys of their own (evicting each other's); pins
// keep entries alive, and the counts add up at the end.
TYPED_TEST(ShardedEvictorTest, ConcurrentUseKeepsCountsRight) {
  TypeParam e(EvictionOptions{.capacity_bytes = 64 * 25, .capacity_entries = 64, .shards = 4});
  constexpr int kThreads = 4;
  constexpr int kOps = 20000;
  constexpr int kKeys = 200;
  // A key's charge is its number mod 50, so any entry can be checked.
  auto charge_of = [](const std::string& key) {
    return std::stoull(key.substr(key.find('-') + 1)) % 50;
  };
  std::atomic<uint64_t> evicted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<int> pins(kKeys, 0);
      auto key_of = [t](int k) { return std::to_string(t) + "-" + std::to_string(k); };
      for (int i = 0; i < kOps; ++i) {
        const int k = static_cast<int>(rng() % kKeys);
        const std::string key = key_of(k);
        switch (rng() % 6) {
          case 0:
          case 1: {
            EvictionResult r = e.Insert(key, charge_of(key));
            for (const EvictedEntry& v : r.evicted) EXPECT_EQ(v.charge, charge_of(v.key));
            evicted += r.evicted.size();
            break;
          }
          case 2:
            e.Touch(key);
            break;
          case 3:
            if (pins[k] == 0) e.Erase(key);
            break;
          case 4:
            if (e.Pin(key)) ++pins[k];
            break;
          case 5:
            if (pins[k] > 0) {
              EXPECT_TRUE(e.Unpin(key)) << key << " was evicted while pinned";
              --pins[k];
            }
            break;
        }
      }
      for (int k = 0; k < kKeys; ++k) {
        for (; pins[k] > 0; --pins[k]) EXPECT_TRUE(e.Unpin(key_of(k)));
      }
    });
  }
  for (std::thread& t : threads) t.join();

  const EvictorStats stats = e.GetStats();
  EXPECT_EQ(stats.evictions, evicted.load());
  const std::vector<EvictedEntry> rest = e.EvictBytes(kUnlimited);
  EXPECT_EQ(rest.size(), stats.entries);
  uint64_t bytes = 0;
  std::set<std::string> keys;
  for (const EvictedEntry& v : rest) {
    EXPECT_EQ(v.charge, charge_of(v.key));
    EXPECT_TRUE(keys.insert(v.key).second) << v.key << " held twice";
    bytes += v.charge;
  }
  EXPECT_EQ(bytes, stats.bytes);
  EXPECT_EQ(e.GetStats().entries, 0u);
  EXPECT_EQ(e.GetStats().bytes, 0u);
}

}  // namespace
}  // namespace packice
