// Eviction: which entries a full cache gives up.
//
// A policy (LruPolicy, Lru2Policy) orders the entries of one cache and names the next victim. It
// is a plain object with O(1) operations and no locking; EvictionPolicy is the concept it models.
// ShardedEvictor<P> spreads keys over shards, each a mutex and a policy with its share of the
// capacity, so threads working on different keys rarely contend. It enforces the capacity (in
// bytes and in entries) and returns what it evicted; the caller frees those entries' data outside
// any evictor lock. Evictor is the same interface behind a virtual, for code that picks the
// policy at run time (NewEvictor).
//
// The evictor tracks keys and charges only; it owns no data. A pinned entry (one a live lease
// covers) is never chosen as a victim: a shard whose remaining entries are all pinned stays over
// its capacity, and Insert says so.
#ifndef PACKICE_CORE_EVICTION_H_
#define PACKICE_CORE_EVICTION_H_

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mutex.h"

namespace packice {

inline constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

struct EvictionOptions {
  uint64_t capacity_bytes = kUnlimited;    // sum of the charges the evictor may hold
  uint64_t capacity_entries = kUnlimited;  // number of entries it may hold
  // ShardedEvictor: number of shards, rounded up to a power of two. Each holds an equal share
  // of the capacity (at least 1 byte and 1 entry), so an entry charged more than a share is
  // evicted by its own Insert.
  uint32_t shards = 16;
  // Lru2Policy: the share of the capacity (in percent, at most 100) the protected level may
  // hold; the rest is left to new entries on probation.
  uint32_t protected_percent = 80;
};

// An entry that left the evictor to make room.
struct EvictedEntry {
  std::string key;
  uint64_t charge = 0;
  friend bool operator==(const EvictedEntry&, const EvictedEntry&) = default;
};

// What a policy provides. A policy is not thread-safe.
//  - Insert(key, charge): adds the key, or sets the charge of a present key; counts as a use.
//  - Touch(key): a hit; true (and counts as a use) if present.
//  - Erase(key): removes the key, pinned or not; false if absent.
//  - Pin(key) / Unpin(key): add / drop one pin; false if absent (Unpin: or not pinned).
//  - PopVictim(): removes and returns the policy's choice among the unpinned entries, or nullopt
//    if there is none.
//  - bytes() / entries(): sum of the charges / number of entries, pinned ones included.
// A policy never evicts on its own: the capacity in its options only shapes its choices (the size
// of LRU2's protected level); its owner enforces the capacity through PopVictim.
template <typename P>
concept EvictionPolicy = std::constructible_from<P, const EvictionOptions&> &&
    requires(P p, const P cp, std::string_view key, uint64_t charge) {
  { p.Insert(key, charge) } -> std::same_as<void>;
  { p.Touch(key) } -> std::same_as<bool>;
  { p.Erase(key) } -> std::same_as<bool>;
  { p.Pin(key) } -> std::same_as<bool>;
  { p.Unpin(key) } -> std::same_as<bool>;
  { cp.Contains(key) } -> std::same_as<bool>;
  { p.PopVictim() } -> std::same_as<std::optional<EvictedEntry>>;
  { cp.bytes() } -> std::same_as<uint64_t>;
  { cp.entries() } -> std::same_as<uint64_t>;
};

// Segmented LRU with kLevels levels, each an LRU list. A new entry enters level 0; each use moves
// it to the head of the next level up (or of the top level). Levels above 0 may hold at most
// `protected_percent` of the capacity: when one overflows, its least recently used entry moves
// down to the head of the level below. Victims come from the tail of the lowest non-empty level.
// Pinned entries wait on a list of their own and return to the head of their level when the
// last pin goes.
//
// kLevels == 1 is plain LRU. kLevels == 2 is LRU2: a key is on probation until its second use
// promotes it to the protected level, so a scan of keys used once evicts only other keys on
// probation and cannot flush the hot set.
//
// O(1) per operation. Not thread-safe.
template <int kLevels>
class SegmentedLru {
  static_assert(kLevels >= 1);

 public:
  explicit SegmentedLru(const EvictionOptions& options = {});
  SegmentedLru(const SegmentedLru&) = delete;
  SegmentedLru& operator=(const SegmentedLru&) = delete;

  void Insert(std::string_view key, uint64_t charge);
  bool Touch(std::string_view key);
  bool Erase(std::string_view key);
  bool Pin(std::string_view key);
  bool Unpin(std::string_view key);
  bool Contains(std::string_view key) const { return index_.contains(key); }
  std::optional<EvictedEntry> PopVictim();
  // The key PopVictim would remove now, without removing it; nullopt if none. The view stays
  // valid until that key leaves the policy.
  std::optional<std::string_view> NextVictim() const;
  uint64_t bytes() const { return bytes_; }
  uint64_t entries() const { return index_.size(); }

 private:
  struct Node {
    std::string key;
    uint64_t charge = 0;
    uint32_t pins = 0;
    int level = 0;  // the level it is on, or returns to when unpinned
  };
  using List = std::list<Node>;
  using NodeRef = typename List::iterator;
  struct Level {
    List lru;  // most recently used first
    uint64_t bytes = 0;
    uint64_t max_bytes = kUnlimited;
    uint64_t max_entries = kUnlimited;
  };

  void Use(NodeRef node);
  // Moves an unpinned `node` to the head of `level`.
  void MoveTo(NodeRef node, int level);
  // Moves entries down until no level is over its limits.
  void Rebalance();
  List& ListOf(const Node& node) { return node.pins > 0 ? pinned_ : levels_[node.level].lru; }

  Level levels_[kLevels];
  List pinned_;
  uint64_t bytes_ = 0;
  // Keys are views of the nodes' own strings: list nodes never move.
  absl::flat_hash_map<std::string_view, NodeRef> index_;
};

using LruPolicy = SegmentedLru<1>;
using Lru2Policy = SegmentedLru<2>;

enum class EvictionKind { kLru, kLru2 };

// "lru" / "lru2".
std::string_view EvictionKindName(EvictionKind kind);
// The kind named `name` ("lru", "lru2"), or nullopt.
std::optional<EvictionKind> EvictionKindFromName(std::string_view name);

struct EvictorStats {
  uint64_t bytes = 0;          // sum of the charges held
  uint64_t entries = 0;        // entries held
  uint64_t evictions = 0;      // entries evicted so far (by Insert and EvictBytes)
  uint64_t evicted_bytes = 0;  // their charges
  uint64_t capacity_bytes = 0;
  uint64_t capacity_entries = 0;
};

struct [[nodiscard]] EvictionResult {  // the caller frees what was evicted
  std::vector<EvictedEntry> evicted;   // may include the inserted key itself
  // True if the key's shard is still over its capacity because every entry left is pinned. The
  // shard shrinks at its next Insert or through EvictBytes once pins are dropped.
  bool over_capacity = false;
};

// A thread-safe evictor: the policy is picked at construction. Every method is safe for
// concurrent use from multiple threads without external synchronization.
class Evictor {
 public:
  virtual ~Evictor() = default;

  // Adds `key` charged `charge` bytes (or sets the charge of a present key; either is a use),
  // then evicts unpinned entries of its shard until the shard is within its capacity.
  virtual EvictionResult Insert(std::string_view key, uint64_t charge) = 0;
  // Insert and Pin as one step, so the new entry cannot be evicted before it is pinned.
  virtual EvictionResult InsertPinned(std::string_view key, uint64_t charge) = 0;
  // A hit: true (and the entry counts as used) if `key` is present.
  virtual bool Touch(std::string_view key) = 0;
  // Removes `key`, pinned or not. False if absent.
  virtual bool Erase(std::string_view key) = 0;
  // Adds one pin: the entry is not evicted until every pin is dropped. False if absent.
  virtual bool Pin(std::string_view key) = 0;
  // Drops one pin. False if `key` is absent or not pinned.
  virtual bool Unpin(std::string_view key) = 0;
  virtual bool Contains(std::string_view key) const = 0;
  // Evicts unpinned entries, taking one victim from each shard in turn, until their charges
  // add up to at least `bytes` or no unpinned entry is left.
  [[nodiscard]] virtual std::vector<EvictedEntry> EvictBytes(uint64_t bytes) = 0;
  virtual EvictorStats GetStats() const = 0;
};

// A ShardedEvictor of the given kind.
std::unique_ptr<Evictor> NewEvictor(EvictionKind kind, const EvictionOptions& options);

// Keys spread over shards by hash; each shard is a mutex and a policy P with an equal share of
// the capacity. Thread-safe.
template <EvictionPolicy P>
class ShardedEvictor final : public Evictor {
 public:
  explicit ShardedEvictor(const EvictionOptions& options);

  EvictionResult Insert(std::string_view key, uint64_t charge) override {
    return InsertImpl(key, charge, /*pin=*/false);
  }
  EvictionResult InsertPinned(std::string_view key, uint64_t charge) override {
    return InsertImpl(key, charge, /*pin=*/true);
  }
  bool Touch(std::string_view key) override;
  bool Erase(std::string_view key) override;
  bool Pin(std::string_view key) override;
  bool Unpin(std::string_view key) override;
  bool Contains(std::string_view key) const override;
  [[nodiscard]] std::vector<EvictedEntry> EvictBytes(uint64_t bytes) override;
  EvictorStats GetStats() const override;

 private:
  struct alignas(64) Shard {  // a cache line of its own: shards do not share one
    explicit Shard(const EvictionOptions& options) : policy(options) {}
    mutable Mutex mu;
    P policy ABSL_GUARDED_BY(mu);
    uint64_t evictions ABSL_GUARDED_BY(mu) = 0;
    uint64_t evicted_bytes ABSL_GUARDED_BY(mu) = 0;
  };

  EvictionResult InsertImpl(std::string_view key, uint64_t charge, bool pin);
  // Pops one victim of `shard` into `out`; false if it has none.
  static bool EvictOne(Shard& shard, std::vector<EvictedEntry>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  Shard& ShardFor(std::string_view key) const {
    // std::hash is unseeded, so a key lands in the same shard in every run; the shard's own
    // table hashes with absl::Hash, a different function.
    return *shards_[(static_cast<uint64_t>(std::hash<std::string_view>{}(key)) >> 32) & mask_];
  }

  const EvictionOptions options_;        // as given
  const EvictionOptions shard_options_;  // capacity of one shard
  const uint64_t mask_;                  // shards - 1
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<uint64_t> next_victim_shard_{0};  // where EvictBytes starts
};

// ---- ShardedEvictor implementation ----------------------------------------------------------

template <EvictionPolicy P>
ShardedEvictor<P>::ShardedEvictor(const EvictionOptions& options)
    : options_(options),
      shard_options_([&] {
        EvictionOptions o = options;
        o.shards = std::bit_ceil(std::clamp<uint32_t>(options.shards, 1, 1u << 16));
        o.capacity_bytes = std::max<uint64_t>(1, options.capacity_bytes / o.shards);
        o.capacity_entries = std::max<uint64_t>(1, options.capacity_entries / o.shards);
        return o;
      }()),
      mask_(shard_options_.shards - 1) {
  for (uint32_t i = 0; i < shard_options_.shards; ++i) {
    shards_.push_back(std::make_unique<Shard>(shard_options_));
  }
}

template <EvictionPolicy P>
EvictionResult ShardedEvictor<P>::InsertImpl(std::string_view key, uint64_t charge, bool pin) {
  EvictionResult result;
  Shard& s = ShardFor(key);
  MutexLock lock(&s.mu);
  s.policy.Insert(key, charge);
  if (pin) s.policy.Pin(key);
  while (s.policy.bytes() > shard_options_.capacity_bytes ||
         s.policy.entries() > shard_options_.capacity_entries) {
    if (!EvictOne(s, &result.evicted)) {
      result.over_capacity = true;
      break;
    }
  }
  return result;
}

template <EvictionPolicy P>
bool ShardedEvictor<P>::EvictOne(Shard& shard, std::vector<EvictedEntry>* out) {
  std::optional<EvictedEntry> victim = shard.policy.PopVictim();
  if (!victim) return false;
  ++shard.evictions;
  shard.evicted_bytes += victim->charge;
  out->push_back(std::move(*victim));
  return true;
}

template <EvictionPolicy P>
bool ShardedEvictor<P>::Touch(std::string_view key) {
  Shard& s = ShardFor(key);
  MutexLock lock(&s.mu);
  return s.policy.Touch(key);
}

template <EvictionPolicy P>
bool ShardedEvictor<P>::Erase(std::string_view key) {
  Shard& s = ShardFor(key);
  MutexLock lock(&s.mu);
  return s.policy.Erase(key);
}

template <EvictionPolicy P>
bool ShardedEvictor<P>::Pin(std::string_view key) {
  Shard& s = ShardFor(key);
  MutexLock lock(&s.mu);
  return s.policy.Pin(key);
}

template <EvictionPolicy P>
bool ShardedEvictor<P>::Unpin(std::string_view key) {
  Shard& s = ShardFor(key);
  MutexLock lock(&s.mu);
  return s.policy.Unpin(key);
}

template <EvictionPolicy P>
bool ShardedEvictor<P>::Contains(std::string_view key) const {
  Shard& s = ShardFor(key);
  MutexLock lock(&s.mu);
  return s.policy.Contains(key);
}

template <EvictionPolicy P>
std::vector<EvictedEntry> ShardedEvictor<P>::EvictBytes(uint64_t bytes) {
  std::vector<EvictedEntry> out;
  uint64_t freed = 0;
  size_t idle = 0;  // shards visited in a row that had no victim
  uint64_t i = next_victim_shard_.fetch_add(1, std::memory_order_relaxed);
  while (freed < bytes && idle < shards_.size()) {
    Shard& s = *shards_[i++ & mask_];
    MutexLock lock(&s.mu);
    if (EvictOne(s, &out)) {
      freed += out.back().charge;
      idle = 0;
    } else {
      ++idle;
    }
  }
  return out;
}

template <EvictionPolicy P>
EvictorStats ShardedEvictor<P>::GetStats() const {
  EvictorStats stats;
  for (const auto& s : shards_) {
    MutexLock lock(&s->mu);
    stats.bytes += s->policy.bytes();
    stats.entries += s->policy.entries();
    stats.evictions += s->evictions;
    stats.evicted_bytes += s->evicted_bytes;
  }
  stats.capacity_bytes = options_.capacity_bytes;
  stats.capacity_entries = options_.capacity_entries;
  return stats;
}

}  // namespace packice

#endif  // PACKICE_CORE_EVICTION_H_
