#include "services/cache/cache_table.h"

#include <algorithm>
#include <bit>
#include <utility>

namespace packice {

CacheTable::CacheTable(EvictionKind kind, uint64_t capacity_bytes, uint32_t shards,
                       std::shared_ptr<Clock> clock)
    : clock_(std::move(clock)),
      evictor_(
          NewEvictor(kind, EvictionOptions{.capacity_bytes = capacity_bytes, .shards = shards})),
      // As ShardedEvictor computes a shard's share.
      max_charge_(std::max<uint64_t>(
          1, capacity_bytes / std::bit_ceil(std::clamp<uint32_t>(shards, 1, 1u << 16)))) {
  const uint32_t n = std::bit_ceil(std::clamp<uint32_t>(shards, 1, 1u << 16));
  mask_ = n - 1;
  for (uint32_t i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>());
}

CacheValue CacheTable::Lookup(std::string_view key) {
  CacheValue value;
  {
    Shard& s = ShardFor(key);
    MutexLock lock(&s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end()) return nullptr;
    // The clock is read only for entries that expire: most hits never pay for it.
    if (it->second.expires != kNever && clock_->Now() >= it->second.expires) {
      s.map.erase(it);
      evictor_->Erase(key);
      return nullptr;
    }
    value = it->second.value;
  }
  evictor_->Touch(key);  // outside the map lock: the policy's order need not be exact
  return value;
}

void CacheTable::Insert(std::string_view key, CacheValue value, Clock::TimePoint expires) {
  const uint64_t charge = key.size() + value->size();
  EvictionResult result;
  {
    Shard& s = ShardFor(key);
    MutexLock lock(&s.mu);
    s.map.insert_or_assign(std::string(key), Entry{std::move(value), expires});
    result = evictor_->Insert(key, charge);
  }
  DropEvicted(result.evicted);
}

bool CacheTable::Erase(std::string_view key) {
  Shard& s = ShardFor(key);
  MutexLock lock(&s.mu);
  evictor_->Erase(key);
  return s.map.erase(key) > 0;
}

void CacheTable::DropEvicted(const std::vector<EvictedEntry>& evicted) {
  // The values are released outside the locks: the last reference may free megabytes.
  std::vector<CacheValue> garbage;
  garbage.reserve(evicted.size());
  for (const EvictedEntry& e : evicted) {
    Shard& s = ShardFor(e.key);
    MutexLock lock(&s.mu);
    if (evictor_->Contains(e.key)) continue;  // inserted again since: a newer value
    auto it = s.map.find(e.key);
    if (it == s.map.end()) continue;
    garbage.push_back(std::move(it->second.value));
    s.map.erase(it);
  }
}

}  // namespace packice
