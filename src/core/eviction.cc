#include "core/eviction.h"

#include <iterator>
#include <utility>

namespace packice {
namespace {

// `percent` of `value`, without overflow. REQUIRES: percent <= 100.
uint64_t PercentOf(uint64_t value, uint64_t percent) {
  return value / 100 * percent + value % 100 * percent / 100;
}

}  // namespace

template <int kLevels>
SegmentedLru<kLevels>::SegmentedLru(const EvictionOptions& options) {
  const uint64_t percent = std::min<uint32_t>(options.protected_percent, 100);
  for (int i = 1; i < kLevels; ++i) {
    levels_[i].max_bytes = PercentOf(options.capacity_bytes, percent);
    levels_[i].max_entries = PercentOf(options.capacity_entries, percent);
  }
}

template <int kLevels>
void SegmentedLru<kLevels>::Insert(std::string_view key, uint64_t charge) {
  auto it = index_.find(key);
  if (it == index_.end()) {
    Level& first = levels_[0];
    first.lru.push_front(Node{std::string(key), charge});
    first.bytes += charge;
    bytes_ += charge;
    index_.emplace(first.lru.front().key, first.lru.begin());
    return;
  }
  NodeRef node = it->second;
  bytes_ = bytes_ - node->charge + charge;
  if (node->pins == 0) {
    Level& level = levels_[node->level];
    level.bytes = level.bytes - node->charge + charge;
  }
  node->charge = charge;
  Use(node);
}

template <int kLevels>
bool SegmentedLru<kLevels>::Touch(std::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  Use(it->second);
  return true;
}

template <int kLevels>
bool SegmentedLru<kLevels>::Erase(std::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  NodeRef node = it->second;
  index_.erase(it);
  bytes_ -= node->charge;
  if (node->pins == 0) levels_[node->level].bytes -= node->charge;
  ListOf(*node).erase(node);
  return true;
}

template <int kLevels>
bool SegmentedLru<kLevels>::Pin(std::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  NodeRef node = it->second;
  if (node->pins == 0) {
    levels_[node->level].bytes -= node->charge;
    pinned_.splice(pinned_.begin(), levels_[node->level].lru, node);
  }
  ++node->pins;
  return true;
}

template <int kLevels>
bool SegmentedLru<kLevels>::Unpin(std::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end() || it->second->pins == 0) return false;
  NodeRef node = it->second;
  if (--node->pins == 0) {
    Level& level = levels_[node->level];
    level.lru.splice(level.lru.begin(), pinned_, node);
    level.bytes += node->charge;
    Rebalance();
  }
  return true;
}

template <int kLevels>
std::optional<EvictedEntry> SegmentedLru<kLevels>::PopVictim() {
  for (Level& level : levels_) {
    if (level.lru.empty()) continue;
    Node& victim = level.lru.back();
    index_.erase(victim.key);
    level.bytes -= victim.charge;
    bytes_ -= victim.charge;
    EvictedEntry entry{std::move(victim.key), victim.charge};
    level.lru.pop_back();
    return entry;
  }
  return std::nullopt;
}

template <int kLevels>
std::optional<std::string_view> SegmentedLru<kLevels>::NextVictim() const {
  for (const Level& level : levels_) {
    if (!level.lru.empty()) return std::string_view(level.lru.back().key);
  }
  return std::nullopt;
}

template <int kLevels>
void SegmentedLru<kLevels>::Use(NodeRef node) {
  const int up = std::min(node->level + 1, kLevels - 1);
  if (node->pins > 0) {
    node->level = up;  // joins it when unpinned
    return;
  }
  MoveTo(node, up);
  Rebalance();
}

template <int kLevels>
void SegmentedLru<kLevels>::MoveTo(NodeRef node, int level) {
  Level& from = levels_[node->level];
  Level& to = levels_[level];
  from.bytes -= node->charge;
  to.lru.splice(to.lru.begin(), from.lru, node);
  to.bytes += node->charge;
  node->level = level;
}

template <int kLevels>
void SegmentedLru<kLevels>::Rebalance() {
  for (int i = kLevels - 1; i > 0; --i) {
    Level& level = levels_[i];
    while (!level.lru.empty() &&
           (level.bytes > level.max_bytes || level.lru.size() > level.max_entries)) {
      MoveTo(std::prev(level.lru.end()), i - 1);
    }
  }
}

template class SegmentedLru<1>;
template class SegmentedLru<2>;
static_assert(EvictionPolicy<LruPolicy>);
static_assert(EvictionPolicy<Lru2Policy>);

std::string_view EvictionKindName(EvictionKind kind) {
  switch (kind) {
    case EvictionKind::kLru:
      return "lru";
    case EvictionKind::kLru2:
      return "lru2";
  }
  return "unknown";
}

std::optional<EvictionKind> EvictionKindFromName(std::string_view name) {
  for (EvictionKind kind : {EvictionKind::kLru, EvictionKind::kLru2}) {
    if (EvictionKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

std::unique_ptr<Evictor> NewEvictor(EvictionKind kind, const EvictionOptions& options) {
  switch (kind) {
    case EvictionKind::kLru:
      return std::make_unique<ShardedEvictor<LruPolicy>>(options);
    case EvictionKind::kLru2:
      return std::make_unique<ShardedEvictor<Lru2Policy>>(options);
  }
  return nullptr;
}

}  // namespace packice
