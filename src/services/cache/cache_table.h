// CacheTable: the storage of one Group cache (the main cache or the mirror): values with
// expiry times in lock-sharded hash maps, and the eviction engine (core/eviction.h) deciding
// what leaves when the capacity in bytes is reached.
//
// Each shard is one lock over a map (the values) and an evictor of its own with the shard's
// share of the capacity (keys and charges: key + value bytes), so a hit takes one lock, and an
// insert evicts keys of its own shard under the lock it already holds. The evicted values are
// released after the lock (the last reference may free megabytes).
//
// Thread safety: every method is safe for concurrent use.
#ifndef PACKICE_SERVICES_CACHE_CACHE_TABLE_H_
#define PACKICE_SERVICES_CACHE_CACHE_TABLE_H_

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/eviction.h"
#include "core/mutex.h"
#include "core/singleflight.h"  // KeyHash, KeyEq
#include "packice/cache.h"
#include "packice/clock.h"

namespace packice {

class CacheTable {
 public:
  static constexpr Clock::TimePoint kNever = Clock::TimePoint::max();

  CacheTable(EvictionKind kind, uint64_t capacity_bytes, uint32_t shards,
             std::shared_ptr<Clock> clock);
  CacheTable(const CacheTable&) = delete;
  CacheTable& operator=(const CacheTable&) = delete;

  // The value of `key`, or null if absent or expired (an expired entry is dropped). A hit
  // counts as a use for the policy.
  CacheValue Lookup(std::string_view key);
  // Stores `value` until `expires` (kNever: no expiry), replacing any value, evicting entries
  // for room. The charge is key.size() + value->size().
  void Insert(std::string_view key, CacheValue value, Clock::TimePoint expires);
  // Drops `key`; false if absent.
  bool Erase(std::string_view key);

  // The largest charge one entry may have: an evictor shard's share of the capacity.
  uint64_t max_charge() const { return max_charge_; }
  EvictorStats Stats() const;

 private:
  struct Entry {
    CacheValue value;
    Clock::TimePoint expires;
  };
  struct alignas(64) Shard {
    mutable Mutex mu;
    absl::flat_hash_map<std::string, Entry, singleflight_internal::KeyHash,
                        singleflight_internal::KeyEq>
        map ABSL_GUARDED_BY(mu);
    // One evictor shard (its own lock is never contended: it is taken under mu).
    std::unique_ptr<Evictor> evictor;
  };

  Shard& ShardFor(std::string_view key) const {
    return *shards_[std::hash<std::string_view>{}(key)&mask_];
  }

  const std::shared_ptr<Clock> clock_;
  const uint64_t capacity_bytes_;
  const uint64_t max_charge_;
  uint64_t mask_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace packice

#endif  // PACKICE_SERVICES_CACHE_CACHE_TABLE_H_
