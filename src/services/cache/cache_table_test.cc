#include "services/cache/cache_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "testing.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;

CacheValue Value(std::string s) { return std::make_shared<const std::string>(std::move(s)); }

// Keys of one byte and values of three: every entry is charged 4 bytes.
void Put(CacheTable& t, const std::string& key) {
  t.Insert(key, Value("v:" + key), CacheTable::kNever);
}

std::vector<std::string> Present(CacheTable& t, const std::vector<std::string>& keys) {
  std::vector<std::string> present;
  for (const std::string& k : keys) {
    // Contains without a hit would need another method; a hit changes nothing asserted after.
    if (t.Lookup(k) != nullptr) present.push_back(k);
  }
  return present;
}

TEST(CacheTableTest, AHitIsSeenWhenTheEntryComesUpAsTheVictim) {
  CacheTable t(EvictionKind::kLru, 16, 1, std::make_shared<FakeClock>());  // 4 entries
  for (const char* k : {"a", "b", "c", "d"}) Put(t, k);
  ASSERT_NE(t.Lookup("a"), nullptr);  // marked, not moved
  ASSERT_NE(t.Lookup("c"), nullptr);
  // e: a comes up first, was hit, so it moves to the head unmarked; b goes. f: c comes up
  // (hit), moves; d goes. g: a, unmarked since, goes. As exact LRU would have it.
  Put(t, "e");
  Put(t, "f");
  Put(t, "g");
  EXPECT_EQ(t.Stats().evictions, 3u);
  EXPECT_EQ(t.Stats().entries, 4u);
  EXPECT_EQ(t.Stats().bytes, 16u);
  EXPECT_EQ(Present(t, {"a", "b", "c", "d", "e", "f", "g"}),
            (std::vector<std::string>{"c", "e", "f", "g"}));
}

TEST(CacheTableTest, WhenEveryEntryWasHitTheOldestGoesAfterALap) {
  CacheTable t(EvictionKind::kLru, 16, 1, std::make_shared<FakeClock>());
  for (const char* k : {"a", "b", "c", "d"}) Put(t, k);
  for (const char* k : {"a", "b", "c", "d"}) ASSERT_NE(t.Lookup(k), nullptr);
  // Every entry was hit: the insert unmarks all four in turn, then evicts a (a lap); e, the
  // newest, is not the victim of its own insert.
  Put(t, "e");
  EXPECT_EQ(Present(t, {"a", "b", "c", "d", "e"}), (std::vector<std::string>{"b", "c", "d", "e"}));
}

TEST(CacheTableTest, Lru2PromotesAHitEntryOnProbationWhenItComesUp) {
  // 10 entries of 4 bytes; the protected level may hold 8.
  CacheTable t(EvictionKind::kLru2, 40, 1, std::make_shared<FakeClock>());
  Put(t, "h");
  ASSERT_NE(t.Lookup("h"), nullptr);  // a second use, seen when h comes up
  // Two scans of keys used once each: h is promoted when it first comes up, and never a victim
  // after, while the scans evict one another.
  for (int round = 0; round < 2; ++round) {
    for (char c = 'A'; c < 'A' + 20; ++c) Put(t, std::string(1, c));
  }
  EXPECT_NE(t.Lookup("h"), nullptr);
  EXPECT_EQ(t.Stats().entries, 10u);
}

TEST(CacheTableTest, ReplacingAValueKeepsOneEntryAndItsNewCharge) {
  CacheTable t(EvictionKind::kLru2, 1 << 10, 1, std::make_shared<FakeClock>());
  t.Insert("k", Value("one"), CacheTable::kNever);
  t.Insert("k", Value("three"), CacheTable::kNever);
  EXPECT_EQ(*t.Lookup("k"), "three");
  EXPECT_EQ(t.Stats().entries, 1u);
  EXPECT_EQ(t.Stats().bytes, 6u);
  EXPECT_TRUE(t.Erase("k"));
  EXPECT_FALSE(t.Erase("k"));
  EXPECT_EQ(t.Stats().bytes, 0u);
}

TEST(CacheTableTest, AnExpiredEntryIsDroppedByTheLookupThatFindsIt) {
  auto clock = std::make_shared<FakeClock>();
  CacheTable t(EvictionKind::kLru, 1 << 10, 4, clock);
  t.Insert("k", Value("v"), clock->Now() + 10ms);
  EXPECT_NE(t.Lookup("k"), nullptr);
  clock->Advance(10ms);
  EXPECT_EQ(t.Lookup("k"), nullptr);
  EXPECT_EQ(t.Stats().entries, 0u);
  EXPECT_EQ(t.Stats().bytes, 0u);
}

TEST(CacheTableTest, AnEntryLargerThanAShardsShareIsNotKept) {
  CacheTable t(EvictionKind::kLru, 64, 4, std::make_shared<FakeClock>());  // 16 per shard
  EXPECT_EQ(t.max_charge(), 16u);
  t.Insert("big", Value(std::string(20, 'x')), CacheTable::kNever);
  EXPECT_EQ(t.Lookup("big"), nullptr);
  EXPECT_EQ(t.Stats().bytes, 0u);
  t.Insert("k", Value("small"), CacheTable::kNever);
  t.Insert("k", Value(std::string(20, 'x')), CacheTable::kNever);  // replaces, cannot stay
  EXPECT_EQ(t.Lookup("k"), nullptr);
  EXPECT_EQ(t.Stats().entries, 0u);
}

// Hits, inserts and erases from several threads: the table stays within its capacity and its
// counts agree with what it holds (run under TSan by the sanitizer build).
TEST(CacheTableTest, ConcurrentUseKeepsTheCapacityAndTheCounts) {
  CacheTable t(EvictionKind::kLru2, 4096, 8, std::make_shared<FakeClock>());
  std::atomic<uint64_t> hits{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 20000; ++i) {
        const std::string key = "k" + std::to_string((i * 7 + w) % 300);
        if (CacheValue v = t.Lookup(key)) {
          if (*v != "value-" + key) std::abort();
          hits.fetch_add(1, std::memory_order_relaxed);
        } else if (i % 13 == 0) {
          t.Erase(key);
        } else {
          t.Insert(key, Value("value-" + key), CacheTable::kNever);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  const EvictorStats s = t.Stats();
  EXPECT_LE(s.bytes, 4096u);
  EXPECT_GT(s.evictions, 0u);
  EXPECT_GT(hits.load(), 0u);
  uint64_t entries = 0, bytes = 0;
  for (int k = 0; k < 300; ++k) {
    const std::string key = "k" + std::to_string(k);
    if (CacheValue v = t.Lookup(key)) {
      ++entries;
      bytes += key.size() + v->size();
    }
  }
  EXPECT_EQ(entries, s.entries);
  EXPECT_EQ(bytes, s.bytes);
}

}  // namespace
}  // namespace packice
