// Engine: where a bucket keeps its keys. Two behind one interface, chosen per namespace:
// SwissTable (absl::flat_hash_map; point operations, the default) and MemTable
// (absl::btree_map; ordered, for scans).
//
// Scans: MemTable seeks and walks in order. SwissTable has no order, so a scan filters the
// whole table to the range, sorts what is in it and walks that: O(n + m log m) per page for n
// keys and m in the range. It is correct for any size and cheap for small namespaces; a
// namespace that is scanned often should be a MemTable (docs/kv.md).
//
// Thread safety: none. The bucket locks (bucket.h): concurrent const calls are safe, a
// mutating call needs exclusive access.
#ifndef PACKICE_SERVICES_KV_ENGINE_H_
#define PACKICE_SERVICES_KV_ENGINE_H_

#include <absl/hash/hash.h>
#include <absl/strings/string_view.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "packice/kv.h"
#include "services/kv/kv_codec.h"

namespace packice::kv {

// Bounds of a scan: keys k with lo <= k (or lo < k when !lo_inclusive) and k < hi, no upper
// bound when !has_hi.
struct KeyRange {
  std::string lo;
  bool lo_inclusive = true;
  std::string hi;
  bool has_hi = false;
  bool Contains(std::string_view k) const {
    if (lo_inclusive ? k < lo : k <= lo) return false;
    return !has_hi || k < hi;
  }
};

// Hash and equality that look std::string keys up by std::string_view (absl's string hash
// takes absl::string_view, which Debian's build does not alias to std::string_view).
struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const {
    return absl::Hash<absl::string_view>{}(absl::string_view(s.data(), s.size()));
  }
};
struct KeyEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

class Engine {
 public:
  virtual ~Engine() = default;
  // The entry of `key`, or null. Valid until the next mutating call.
  virtual const Entry* Find(std::string_view key) const = 0;
  // Stores `entry` under `key`; returns the entry it replaced (nullopt: `key` was new), moved
  // out, not copied (a write's event keeps it as the previous value).
  virtual std::optional<Entry> Put(std::string_view key, Entry entry) = 0;
  // Removes `key`; returns its entry, moved out (nullopt: it was not there).
  virtual std::optional<Entry> Erase(std::string_view key) = 0;
  // Calls `fn` for the keys in `range` in key order until it returns false.
  virtual void Scan(const KeyRange& range,
                    const std::function<bool(const std::string&, const Entry&)>& fn) const = 0;
  // Every entry, in no particular order.
  virtual void ForEach(const std::function<void(const std::string&, const Entry&)>& fn) const = 0;
  virtual size_t size() const = 0;
};

std::unique_ptr<Engine> MakeEngine(KvEngine kind);

}  // namespace packice::kv

#endif  // PACKICE_SERVICES_KV_ENGINE_H_
