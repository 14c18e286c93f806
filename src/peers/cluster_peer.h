// ClusterPeer: N nodes as one store. Every key has an owner, the node the consistent-hash ring
// (cluster/ring.h) of the current membership names; the owner holds the object. ClusterPeer
// composes the node's local peer (the tiered peer in packiced) and reaches the other nodes
// through ClusterNode (gRPC in packiced: transport/grpc/cluster_node.h).
//
//  - A read of a key this node owns is the local peer's. A read of another node's key streams
//    the object from its owner into a copy in this node's shared memory (a MemoryPeer of its
//    own, bounded by copy_capacity_bytes, least recently used copies evicted first) and grants a
//    read lease on the copy: a client on this machine maps it with no copy, as it would an
//    object of its own node. Concurrent reads of one key fetch it once.
//  - Copies are short-lived: a copy stays bound for `copy_ttl` (so the readers that asked
//    together find it), a key read more often than `mirror_min_rate` per second on this node
//    is mirrored for `mirror_ttl` instead, and its reads are served here until then. The owner
//    tells every other node to drop its copies of a key it rebinds or deletes (Invalidate), so
//    the TTLs only bound memory and the staleness of a lost message, not correctness.
//  - A create of another node's key is written here (the bytes are mapped by the local client)
//    and streamed to the owner by Seal; the owner's seal is the one that counts (an exclusive
//    create loses there). Delete and Stat of another node's key are the owner's.
//  - List merges every node's own keys.
// Calls that arrive from another node are "forwarded" (the transports mark them): packiced
// serves them from the local peer, never from a ClusterPeer, so two nodes whose rings disagree
// cannot pass a key back and forth.
//
// Membership comes from SetMembers (packiced: the etcd membership's view). Without members a
// ClusterPeer is its local peer. The node itself is always on the ring.
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_PEERS_CLUSTER_PEER_H_
#define PACKICE_PEERS_CLUSTER_PEER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cluster/ring.h"
#include "packice/clock.h"
#include "packice/local_peer.h"
#include "packice/memory_peer.h"

namespace packice {

struct ClusterMember {
  std::string id;
  std::string grpc_address;  // host:port where the node's gRPC port answers other nodes
  friend bool operator==(const ClusterMember&, const ClusterMember&) = default;
};

// Another node, as a ClusterPeer calls it. Every call is forwarded: the node answers from its
// local peer.
class ClusterNode {
 public:
  virtual ~ClusterNode() = default;
  // Streams the object under `key` into the span `allocate` returns for its info (exactly
  // info.size bytes).
  virtual Result<ObjectInfo> FetchInto(
      std::string_view key,
      const std::function<Result<std::span<std::byte>>(const ObjectInfo&)>& allocate) = 0;
  virtual Result<ObjectInfo> Put(std::string_view key, std::span<const std::byte> data,
                                 const CreateOptions& options) = 0;
  virtual Result<ObjectInfo> Stat(std::string_view key) = 0;
  virtual Result<ListPage> List(const ListOptions& options) = 0;
  virtual Status Delete(std::string_view key) = 0;
  // Drops this node's copies of `keys` (their owner rebound or deleted them).
  virtual Status Invalidate(std::span<const std::string> keys) = 0;
};

// Opens (lazily: it may not connect yet) the ClusterNode of a member.
using ClusterConnector =
    std::function<Result<std::shared_ptr<ClusterNode>>(const ClusterMember& member)>;

struct ClusterPeerOptions {
  std::string self_id;
  uint32_t vnodes = Ring::kDefaultVnodes;
  // The shared memory that holds copies of other nodes' objects (its capacity_bytes bounds
  // them; an object larger than it cannot be read through this node).
  MemoryPeerOptions copies;
  Duration copy_ttl{1'000};
  Duration mirror_ttl{10'000};
  double mirror_min_rate = 20;  // reads per second of one key on this node
  Duration rate_window{1'000};
  // A fetch from an owner that takes longer fails its waiters with kTimeout.
  Duration fetch_timeout{60'000};
  // Keys waiting to be invalidated on the other nodes; past it they are dropped (counted), and
  // the copies they name live out their TTL.
  size_t max_pending_invalidations = 100'000;
  std::shared_ptr<Clock> clock;  // nullptr: the system clock
};

class ClusterPeer : public LocalPeer {
 public:
  struct ClusterStats {
    uint64_t members = 0;  // on the ring, this node included
    uint64_t ring_epoch = 0;
    uint64_t remote_reads = 0;  // reads of other nodes' keys
    uint64_t fetches = 0;       // objects streamed from owners
    uint64_t fetched_bytes = 0;
    uint64_t fetch_errors = 0;
    uint64_t mirror_hits = 0;  // remote reads served by a copy here
    uint64_t mirrored = 0;     // fetches kept as mirrors (hot keys)
    uint64_t copy_evictions = 0;
    uint64_t forwarded_writes = 0;  // creates sealed on, and deletes sent to, the owner
    uint64_t invalidations_sent = 0;
    uint64_t invalidations_dropped = 0;
    uint64_t invalidations_received = 0;
    uint64_t copy_bytes = 0;
    uint64_t copy_objects = 0;
    uint64_t mirrors = 0;  // live mirrors (hot keys' copies) in the copy index
  };

  // REQUIRES: options.self_id is not empty.
  static std::shared_ptr<ClusterPeer> Create(std::shared_ptr<LocalPeer> local,
                                             ClusterConnector connect, ClusterPeerOptions options);

  // The ring becomes `members` plus this node. Connections to members that stay are kept.
  virtual void SetMembers(const std::vector<ClusterMember>& members) = 0;
  // This node's id becomes `id` (packiced learns it once its gRPC port is bound).
  virtual void SetSelf(const std::string& id) = 0;
  // The id of the node that owns `key`.
  virtual std::string OwnerOf(std::string_view key) = 0;
  virtual uint64_t ring_epoch() = 0;
  // Drops the copies of `keys` (an owner's Invalidate).
  virtual void DropCopies(std::span<const std::string> keys) = 0;
  // Sends the pending invalidations now (tests; the background thread does it continuously).
  virtual void FlushInvalidations() = 0;
  virtual ClusterStats GetClusterStats() = 0;
  virtual LocalPeer& local() = 0;
};

// A ClusterNode that calls another node's local peer in this process (tests, and nodes that
// share a process).
std::shared_ptr<ClusterNode> NewInProcessClusterNode(std::shared_ptr<Peer> local,
                                                     std::weak_ptr<ClusterPeer> cluster);

}  // namespace packice

#endif  // PACKICE_PEERS_CLUSTER_PEER_H_
