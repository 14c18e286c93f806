#include "services/kv/engine.h"

#include <absl/container/btree_map.h>
#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace packice::kv {
namespace {

// Put and Erase of either map: the key's string is made only for a new key, and what was
// there is moved out.
template <typename Map>
std::optional<Entry> Replace(Map& map, std::string_view key, Entry entry) {
  auto it = map.find(key);
  if (it == map.end()) {
    map.emplace(std::string(key), std::move(entry));
    return std::nullopt;
  }
  std::optional<Entry> old(std::move(it->second));
  it->second = std::move(entry);
  return old;
}

template <typename Map>
std::optional<Entry> Remove(Map& map, std::string_view key) {
  auto it = map.find(key);
  if (it == map.end()) return std::nullopt;
  std::optional<Entry> old(std::move(it->second));
  map.erase(it);
  return old;
}

class SwissTableEngine final : public Engine {
 public:
  const Entry* Find(std::string_view key) const override {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  std::optional<Entry> Put(std::string_view key, Entry entry) override {
    return Replace(map_, key, std::move(entry));
  }
  std::optional<Entry> Erase(std::string_view key) override { return Remove(map_, key); }
  // The sorted copy of the keys in range (pointers into the table).
  void Scan(const KeyRange& range,
            const std::function<bool(const std::string&, const Entry&)>& fn) const override {
    std::vector<const std::pair<const std::string, Entry>*> in;
    for (const auto& kv : map_) {
      if (range.Contains(kv.first)) in.push_back(&kv);
    }
    std::sort(in.begin(), in.end(), [](auto* a, auto* b) { return a->first < b->first; });
    for (auto* kv : in) {
      if (!fn(kv->first, kv->second)) return;
    }
  }
  void ForEach(const std::function<void(const std::string&, const Entry&)>& fn) const override {
    for (const auto& [k, e] : map_) fn(k, e);
  }
  size_t size() const override { return map_.size(); }

 private:
  absl::flat_hash_map<std::string, Entry, KeyHash, KeyEq> map_;
};

class MemTableEngine final : public Engine {
 public:
  const Entry* Find(std::string_view key) const override {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  std::optional<Entry> Put(std::string_view key, Entry entry) override {
    return Replace(map_, key, std::move(entry));
  }
  std::optional<Entry> Erase(std::string_view key) override { return Remove(map_, key); }
  void Scan(const KeyRange& range,
            const std::function<bool(const std::string&, const Entry&)>& fn) const override {
    auto it = range.lo_inclusive ? map_.lower_bound(range.lo) : map_.upper_bound(range.lo);
    for (; it != map_.end(); ++it) {
      if (range.has_hi && it->first >= range.hi) return;
      if (!fn(it->first, it->second)) return;
    }
  }
  void ForEach(const std::function<void(const std::string&, const Entry&)>& fn) const override {
    for (const auto& [k, e] : map_) fn(k, e);
  }
  size_t size() const override { return map_.size(); }

 private:
  absl::btree_map<std::string, Entry, std::less<>> map_;
};

}  // namespace

std::unique_ptr<Engine> MakeEngine(KvEngine kind) {
  if (kind == KvEngine::kMemTable) return std::make_unique<MemTableEngine>();
  return std::make_unique<SwissTableEngine>();
}

}  // namespace packice::kv
