#include "cluster/ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace packice {
namespace {

constexpr int kKeys = 100'000;

std::vector<std::string> NodeIds(int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back("node-" + std::to_string(i));
  return ids;
}

std::string Key(int i) { return "key/" + std::to_string(i); }

// Fraction of kKeys whose owner differs between the two rings.
double MovedFraction(const Ring& a, const Ring& b) {
  int moved = 0;
  for (int i = 0; i < kKeys; ++i) moved += *a.Owner(Key(i)) != *b.Owner(Key(i));
  return static_cast<double>(moved) / kKeys;
}

TEST(RingTest, EmptyRingReturnsNothing) {
  Ring ring;
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.Owner("k"), std::nullopt);
  EXPECT_TRUE(ring.OwnersN("k", 3).empty());
  EXPECT_EQ(ring.fingerprint(), Ring().fingerprint());
}

TEST(RingTest, SameOwnersWhateverTheOrderOfIds) {
  std::vector<std::string> ids = NodeIds(7);
  const Ring sorted(ids);
  std::mt19937 rng(42);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(ids.begin(), ids.end(), rng);
    std::vector<std::string> with_dup = ids;
    with_dup.push_back(ids[0]);  // a duplicate counts once
    const Ring shuffled(with_dup);
    EXPECT_EQ(shuffled.fingerprint(), sorted.fingerprint());
    EXPECT_EQ(shuffled.nodes(), sorted.nodes());
    for (int i = 0; i < 10'000; ++i) ASSERT_EQ(*shuffled.Owner(Key(i)), *sorted.Owner(Key(i)));
  }
}

TEST(RingTest, FingerprintTellsMembershipsApart) {
  EXPECT_NE(Ring({"a", "b"}).fingerprint(), Ring({"a", "c"}).fingerprint());
  EXPECT_NE(Ring({"ab", "c"}).fingerprint(), Ring({"a", "bc"}).fingerprint());
  EXPECT_NE(Ring({"a", "b"}, 160).fingerprint(), Ring({"a", "b"}, 100).fingerprint());
  EXPECT_NE(Ring({"a"}).fingerprint(), Ring().fingerprint());
}

TEST(RingTest, OneNodeOwnsEverything) {
  const Ring ring({"only"});
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(*ring.Owner(Key(i)), "only");
  EXPECT_EQ(ring.OwnersN("k", 3), std::vector<std::string_view>{"only"});
}

TEST(RingTest, OwnersNAreDistinctAndStartWithTheOwner) {
  const Ring ring(NodeIds(5));
  for (int i = 0; i < 1000; ++i) {
    const std::vector<std::string_view> owners = ring.OwnersN(Key(i), 3);
    ASSERT_EQ(owners.size(), 3u);
    EXPECT_EQ(owners[0], *ring.Owner(Key(i)));
    EXPECT_EQ(std::set<std::string_view>(owners.begin(), owners.end()).size(), 3u);
  }
  EXPECT_EQ(ring.OwnersN("k", 10).size(), 5u);  // no more than there are nodes
  EXPECT_TRUE(ring.OwnersN("k", 0).empty());
}

TEST(RingTest, SharesAreBalanced) {
  for (int n = 3; n <= 10; ++n) {
    const Ring ring(NodeIds(n));
    std::map<std::string_view, int> counts;
    for (int i = 0; i < kKeys; ++i) ++counts[*ring.Owner(Key(i))];
    ASSERT_EQ(counts.size(), static_cast<size_t>(n));
    const double fair = static_cast<double>(kKeys) / n;
    for (const auto& [node, count] : counts) {
      EXPECT_GT(count, 0.75 * fair) << n << " nodes, " << node;
      EXPECT_LT(count, 1.25 * fair) << n << " nodes, " << node;
    }
  }
}

TEST(RingTest, JoinAndLeaveMoveAboutOneNth) {
  for (int n : {3, 5, 10}) {
    const Ring before(NodeIds(n));
    std::vector<std::string> joined = NodeIds(n);
    joined.push_back("node-new");
    const double join = MovedFraction(before, Ring(joined));
    EXPECT_LE(join, 1.3 / n) << "join to " << n;
    EXPECT_GT(join, 0.0);

    std::vector<std::string> left = NodeIds(n);
    left.erase(left.begin() + 1);
    const double leave = MovedFraction(before, Ring(left));
    EXPECT_LE(leave, 1.3 / n) << "leave from " << n;
    EXPECT_GT(leave, 0.0);
  }
}

TEST(RingTest, OnlyKeysOfTheLeavingNodeMove) {
  const Ring before(NodeIds(5));
  std::vector<std::string> left = NodeIds(5);
  left.erase(left.begin() + 2);
  const Ring after(left);
  for (int i = 0; i < 10'000; ++i) {
    if (*before.Owner(Key(i)) != "node-2") {
      EXPECT_EQ(*after.Owner(Key(i)), *before.Owner(Key(i)));
    }
  }
}

}  // namespace
}  // namespace packice
