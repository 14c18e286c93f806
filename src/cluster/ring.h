// Ring: the consistent-hash ring that maps a key to the node that owns it.
//
// Each node is placed on a 64-bit circle at `vnodes` points (its virtual nodes); a key belongs
// to the node of the first point at or after the key's hash, wrapping around. Virtual nodes
// spread each node's share over many small arcs, so shares are even and a join or a leave moves
// only about 1/N of the keys (those of the arcs that change hands).
//
// The ring depends only on the set of node ids and the vnode count: ids are sorted and
// de-duplicated first, points are XXH3 hashes seeded by the vnode number, and ties between
// equal points are broken by node id. Every node that knows the same membership builds the
// same ring, whatever order it learnt the ids in, and agrees on fingerprint(), which two nodes
// compare to tell whether they disagree.
//
//   Ring ring({"node-a", "node-b", "node-c"});
//   std::optional<std::string_view> owner = ring.Owner("users/42");  // nullopt: empty ring
//
// A Ring is immutable: a membership change builds a new one. Thread safety: const methods may
// be called from any number of threads at once.
#ifndef PACKICE_CLUSTER_RING_H_
#define PACKICE_CLUSTER_RING_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace packice {

class Ring {
 public:
  static constexpr uint32_t kDefaultVnodes = 160;

  // A ring of `node_ids` (in any order; duplicates count once) with `vnodes` points per node
  // (0 is taken as 1). An empty list makes an empty ring, whose lookups return nothing.
  explicit Ring(std::vector<std::string> node_ids = {}, uint32_t vnodes = kDefaultVnodes);

  // The owner of `key`, or nullopt if the ring is empty. The view points into this ring and
  // is valid as long as it lives.
  std::optional<std::string_view> Owner(std::string_view key) const;

  // Up to `n` distinct nodes for `key`: the owner first, then the next distinct nodes
  // clockwise (the replicas of a later replication scheme). Fewer when the ring has fewer
  // than `n` nodes; empty for an empty ring. Views as for Owner.
  std::vector<std::string_view> OwnersN(std::string_view key, size_t n) const;

  // The node ids, sorted and distinct.
  const std::vector<std::string>& nodes() const { return nodes_; }
  bool empty() const { return nodes_.empty(); }
  uint32_t vnodes() const { return vnodes_; }

  // A hash of the membership (the sorted ids and the vnode count): equal on two nodes exactly
  // when (up to hash collisions) they build the same ring. Used as the ring's epoch in peer
  // requests. An empty ring has a fingerprint too.
  uint64_t fingerprint() const { return fingerprint_; }

  // The hash a key is placed by (XXH3-64, unseeded).
  static uint64_t KeyHash(std::string_view key);

 private:
  struct Point {
    uint64_t hash;
    uint32_t node;  // index into nodes_
  };

  // Index into points_ of the first point at or after `hash`, wrapping to 0.
  // REQUIRES: !points_.empty().
  size_t Successor(uint64_t hash) const;

  std::vector<std::string> nodes_;
  uint32_t vnodes_;
  std::vector<Point> points_;  // sorted by (hash, node)
  uint64_t fingerprint_;
};

}  // namespace packice

#endif  // PACKICE_CLUSTER_RING_H_
