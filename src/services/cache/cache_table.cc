#include "services/cache/cache_table.h"

#include <algorithm>
#include <bit>
#include <utility>

namespace packice {
namespace {

uint32_t ShardCount(uint32_t shards) {
  return std::bit_ceil(std::clamp<uint32_t>(shards, 1, 1u << 16));
}

}  // namespace

CacheTable::CacheTable(EvictionKind kind, uint64_t capacity_bytes, uint32_t shards,
                       std::shared_ptr<Clock> clock)
    : clock_(std::move(clock)),
      capacity_bytes_(capacity_bytes),
      max_charge_(std::max<uint64_t>(1, capacity_bytes / ShardCount(shards))) {
  const uint32_t n = ShardCount(shards);
  static_assert(sizeof(size_t) == 8);
  mask_ = n - 1;
  shift_ = n == 1 ? 0 : 64 - std::countr_zero(n);
  const EvictionOptions options{.capacity_bytes = max_charge_, .shards = 1};
  for (uint32_t i = 0; i < n; ++i) {
    shards_.push_back(std::make_unique<Shard>(kind, options));
  }
}

CacheValue CacheTable::Lookup(std::string_view key) {
  CacheValue expired;  // released after the lock
  Shard& s = ShardFor(key);
  AdaptiveMutexLock lock(&s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return nullptr;
  Entry& e = it->second;
  // The clock is read only for entries that expire: most hits never pay for it.
  if (e.expires != kNever && clock_->Now() >= e.expires) {
    expired = std::move(e.value);
    s.map.erase(it);
    std::visit([&](auto& p) { p.Erase(key); }, s.policy);
    return nullptr;
  }
  if (!e.referenced) e.referenced = true;  // written once per lap: the entry's line stays shared
  return e.value;
}

void CacheTable::Shrink(Shard& s, uint64_t room, std::string_view keep,
                        std::vector<CacheValue>* garbage) {
  std::visit(
      [&](auto& p) {
        // Each turn evicts an entry, unmarks one, or spares `keep` (once), and nothing marks
        // one meanwhile (the lock is held): the loop ends.
        bool kept = keep.empty();
        while (p.bytes() + room > max_charge_) {
          const std::optional<std::string_view> next = p.NextVictim();
          if (!next) return;  // never: nothing here is pinned
          auto it = s.map.find(*next);
          if (it != s.map.end() && (it->second.referenced || (!kept && *next == keep))) {
            if (*next == keep) kept = true;
            it->second.referenced = false;
            p.Touch(*next);
            continue;
          }
          const std::optional<EvictedEntry> victim = p.PopVictim();  // `next` dangles now
          ++s.evictions;
          s.evicted_bytes += victim->charge;
          if (it == s.map.end()) continue;
          garbage->push_back(std::move(it->second.value));
          s.map.erase(it);
        }
      },
      s.policy);
}

void CacheTable::Insert(std::string_view key, CacheValue value, Clock::TimePoint expires) {
  const uint64_t charge = key.size() + value->size();
  std::vector<CacheValue> garbage;  // released after the lock
  Shard& s = ShardFor(key);
  AdaptiveMutexLock lock(&s.mu);
  if (auto it = s.map.find(key); it != s.map.end()) {
    garbage.push_back(std::move(it->second.value));
    if (charge > max_charge_) {  // cannot stay: the old value must not either
      s.map.erase(it);
      std::visit([&](auto& p) { p.Erase(key); }, s.policy);
      return;
    }
    it->second = Entry{std::move(value), expires};
    // A use (LRU2: a present key is promoted); the entry is spared once if it comes up.
    std::visit([&](auto& p) { p.Insert(key, charge); }, s.policy);
    Shrink(s, 0, key, &garbage);
    return;
  }
  if (charge > max_charge_) return;  // more than the shard may hold: nothing is evicted for it
  // Room first, then the entry: a new entry is never the victim of its own insert (were it
  // added first, entries hit since they came up would move ahead of it, and it would go).
  Shrink(s, charge, {}, &garbage);
  s.map.try_emplace(key, Entry{std::move(value), expires});
  std::visit([&](auto& p) { p.Insert(key, charge); }, s.policy);
}

bool CacheTable::Erase(std::string_view key) {
  CacheValue old;  // released after the lock
  Shard& s = ShardFor(key);
  AdaptiveMutexLock lock(&s.mu);
  std::visit([&](auto& p) { p.Erase(key); }, s.policy);
  auto it = s.map.find(key);
  if (it == s.map.end()) return false;
  old = std::move(it->second.value);
  s.map.erase(it);
  return true;
}

EvictorStats CacheTable::Stats() const {
  EvictorStats total;
  for (const auto& s : shards_) {
    AdaptiveMutexLock lock(&s->mu);
    std::visit(
        [&](const auto& p) {
          total.bytes += p.bytes();
          total.entries += p.entries();
        },
        s->policy);
    total.evictions += s->evictions;
    total.evicted_bytes += s->evicted_bytes;
  }
  total.capacity_bytes = capacity_bytes_;
  total.capacity_entries = kUnlimited;
  return total;
}

}  // namespace packice
