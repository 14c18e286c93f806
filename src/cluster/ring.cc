#include "cluster/ring.h"

#include <xxhash.h>

#include <algorithm>
#include <utility>

namespace packice {
namespace {

// The fingerprint hashes each id with its length in front, so ("ab", "c") and ("a", "bc")
// differ, and the vnode count last.
uint64_t Fingerprint(const std::vector<std::string>& nodes, uint32_t vnodes) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  for (const std::string& id : nodes) {
    const uint64_t len = id.size();
    XXH3_64bits_update(state, &len, sizeof(len));
    XXH3_64bits_update(state, id.data(), id.size());
  }
  XXH3_64bits_update(state, &vnodes, sizeof(vnodes));
  const uint64_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return h;
}

}  // namespace

uint64_t Ring::KeyHash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

Ring::Ring(std::vector<std::string> node_ids, uint32_t vnodes)
    : nodes_(std::move(node_ids)), vnodes_(std::max<uint32_t>(vnodes, 1)) {
  std::sort(nodes_.begin(), nodes_.end());
  nodes_.erase(std::unique(nodes_.begin(), nodes_.end()), nodes_.end());
  points_.reserve(nodes_.size() * vnodes_);
  for (uint32_t n = 0; n < nodes_.size(); ++n) {
    // Seeding by the vnode number (rather than hashing "id#i") needs no string building and
    // gives independent points per vnode.
    for (uint32_t v = 0; v < vnodes_; ++v) {
      points_.push_back({XXH3_64bits_withSeed(nodes_[n].data(), nodes_[n].size(), v), n});
    }
  }
  // Node indexes follow the sorted ids, so the tie-break of equal hashes is by id: the same on
  // every node.
  std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.node < b.node;
  });
  fingerprint_ = Fingerprint(nodes_, vnodes_);
}

size_t Ring::Successor(uint64_t hash) const {
  auto it = std::lower_bound(points_.begin(), points_.end(), hash,
                             [](const Point& p, uint64_t h) { return p.hash < h; });
  return it == points_.end() ? 0 : static_cast<size_t>(it - points_.begin());
}

std::optional<std::string_view> Ring::Owner(std::string_view key) const {
  if (points_.empty()) return std::nullopt;
  return nodes_[points_[Successor(KeyHash(key))].node];
}

std::vector<std::string_view> Ring::OwnersN(std::string_view key, size_t n) const {
  std::vector<std::string_view> out;
  n = std::min(n, nodes_.size());
  if (n == 0) return out;
  out.reserve(n);
  // Walks clockwise from the owner's point, skipping nodes already taken. `seen` is per node;
  // the walk ends after n distinct nodes or one full turn.
  std::vector<bool> seen(nodes_.size());
  const size_t start = Successor(KeyHash(key));
  for (size_t i = 0; i < points_.size() && out.size() < n; ++i) {
    const uint32_t node = points_[(start + i) % points_.size()].node;
    if (seen[node]) continue;
    seen[node] = true;
    out.push_back(nodes_[node]);
  }
  return out;
}

}  // namespace packice
