#include "services/cache/cache_table.h"

#include <algorithm>
#include <bit>
#include <utility>

namespace packice {

CacheTable::CacheTable(EvictionKind kind, uint64_t capacity_bytes, uint32_t shards,
                       std::shared_ptr<Clock> clock)
    : clock_(std::move(clock)),
      capacity_bytes_(capacity_bytes),
      max_charge_(std::max<uint64_t>(
          1, capacity_bytes / std::bit_ceil(std::clamp<uint32_t>(shards, 1, 1u << 16)))) {
  const uint32_t n = std::bit_ceil(std::clamp<uint32_t>(shards, 1, 1u << 16));
  mask_ = n - 1;
  for (uint32_t i = 0; i < n; ++i) {
    auto shard = std::make_unique<Shard>();
    shard->evictor = NewEvictor(kind, EvictionOptions{.capacity_bytes = max_charge_, .shards = 1});
    shards_.push_back(std::move(shard));
  }
}

CacheValue CacheTable::Lookup(std::string_view key) {
  CacheValue expired;  // released after the lock
  Shard& s = ShardFor(key);
  MutexLock lock(&s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return nullptr;
  // The clock is read only for entries that expire: most hits never pay for it.
  if (it->second.expires != kNever && clock_->Now() >= it->second.expires) {
    expired = std::move(it->second.value);
    s.map.erase(it);
    s.evictor->Erase(key);
    return nullptr;
  }
  s.evictor->Touch(key);
  return it->second.value;
}

void CacheTable::Insert(std::string_view key, CacheValue value, Clock::TimePoint expires) {
  const uint64_t charge = key.size() + value->size();
  std::vector<CacheValue> garbage;  // released after the lock
  Shard& s = ShardFor(key);
  MutexLock lock(&s.mu);
  s.map.insert_or_assign(std::string(key), Entry{std::move(value), expires});
  // The evicted keys are this shard's (its evictor holds only them), the new one among them
  // when it alone is over the share.
  EvictionResult result = s.evictor->Insert(key, charge);
  garbage.reserve(result.evicted.size());
  for (const EvictedEntry& e : result.evicted) {
    auto it = s.map.find(e.key);
    if (it == s.map.end()) continue;
    garbage.push_back(std::move(it->second.value));
    s.map.erase(it);
  }
}

bool CacheTable::Erase(std::string_view key) {
  CacheValue old;  // released after the lock
  Shard& s = ShardFor(key);
  MutexLock lock(&s.mu);
  s.evictor->Erase(key);
  auto it = s.map.find(key);
  if (it == s.map.end()) return false;
  old = std::move(it->second.value);
  s.map.erase(it);
  return true;
}

EvictorStats CacheTable::Stats() const {
  EvictorStats total;
  for (const auto& s : shards_) {
    const EvictorStats one = s->evictor->GetStats();
    total.bytes += one.bytes;
    total.entries += one.entries;
    total.evictions += one.evictions;
    total.evicted_bytes += one.evicted_bytes;
  }
  total.capacity_bytes = capacity_bytes_;
  total.capacity_entries = kUnlimited;
  return total;
}

}  // namespace packice
