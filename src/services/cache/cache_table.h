// CacheTable: the storage of one Group cache (the main cache or the mirror): values with
// expiry times in lock-sharded hash maps, and an eviction policy of the eviction engine
// (core/eviction.h: LRU or LRU2) per shard deciding what leaves when the capacity in bytes is
// reached.
//
// Each shard is one lock over a map (the values) and a policy with the shard's share of the
// capacity (keys and charges: key + value bytes), so an insert evicts keys of its own shard
// under the lock it already holds. The evicted values are released after the lock (the last
// reference may free megabytes).
//
// A hit writes nothing but the lock: it marks its entry referenced, and the policy learns of
// the use when the entry comes up as the victim. A referenced victim is used then (moved to the
// head of its level, or promoted out of probation by LRU2) and unmarked, and the next victim is
// looked at. This is the referenced bit of Linux's page lists and of CLOCK: the order is the
// policy's among entries not used since they last came up, and a hit costs no list splice,
// whose writes to neighbouring entries and the list head made every hit move cache lines
// between cores. An entry used since it last came up is never the victim.
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
#include <variant>
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
  // for room. The charge is key.size() + value->size(); an entry charged more than
  // max_charge() is not stored (and the value it replaces is dropped).
  void Insert(std::string_view key, CacheValue value, Clock::TimePoint expires);
  // Drops `key`; false if absent.
  bool Erase(std::string_view key);

  // The largest charge one entry may have: a shard's share of the capacity.
  uint64_t max_charge() const { return max_charge_; }
  EvictorStats Stats() const;

 private:
  struct Entry {
    CacheValue value;
    Clock::TimePoint expires;
    bool referenced = false;  // hit since the policy last saw it
  };
  using Policy = std::variant<LruPolicy, Lru2Policy>;
  struct alignas(64) Shard {
    Shard(EvictionKind kind, const EvictionOptions& options) {
      if (kind == EvictionKind::kLru) {
        policy.emplace<LruPolicy>(options);
      } else {
        policy.emplace<Lru2Policy>(options);
      }
    }
    mutable AdaptiveMutex mu;
    absl::flat_hash_map<std::string, Entry, singleflight_internal::KeyHash,
                        singleflight_internal::KeyEq>
        map ABSL_GUARDED_BY(mu);
    Policy policy ABSL_GUARDED_BY(mu);  // the same keys as map
    uint64_t evictions ABSL_GUARDED_BY(mu) = 0;
    uint64_t evicted_bytes ABSL_GUARDED_BY(mu) = 0;
  };

  // The top bits of the hash pick the shard: the map uses the low ones (absl keeps 7 of them
  // in its control bytes), and keys of one shard must not agree on those.
  Shard& ShardFor(std::string_view key) const {
    return *shards_[(std::hash<std::string_view>{}(key) >> shift_) & mask_];
  }
  // Evicts entries of `s` until `room` more bytes fit in its share, sparing `keep` (if not
  // empty) once when it comes up; the evicted values go to `garbage`.
  void Shrink(Shard& s, uint64_t room, std::string_view keep, std::vector<CacheValue>* garbage)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);

  const std::shared_ptr<Clock> clock_;
  const uint64_t capacity_bytes_;
  const uint64_t max_charge_;
  uint64_t mask_;
  int shift_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace packice

#endif  // PACKICE_SERVICES_CACHE_CACHE_TABLE_H_
