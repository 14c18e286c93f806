// CreateEvicting: a create that makes room in a bounded peer by evicting what an eviction
// index says was used least (ClusterPeer's copies, the CAS tiers).
#ifndef PACKICE_PEERS_EVICTING_CREATE_H_
#define PACKICE_PEERS_EVICTING_CREATE_H_

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "core/eviction.h"
#include "packice/local_peer.h"

namespace packice {

// Acquire(req) on `peer` (a create); while it is kOutOfCapacity, entries of `index` whose
// charges add up to the request's size are deleted from `peer` and passed to `evicted`, and
// the create is tried again, `rounds` times at most. Nothing is evicted for an object larger
// than the peer's whole capacity. Errors: those of Acquire (kOutOfCapacity when evicting did
// not make room).
inline Result<Grant> CreateEvicting(LocalPeer& peer, Evictor& index, const AcquireRequest& req,
                                    int rounds,
                                    const std::function<void(const std::string&)>& evicted) {
  for (int round = 0;; ++round) {
    Result<Grant> g = peer.Acquire(req);
    if (g.ok() || g.status().code() != StatusCode::kOutOfCapacity || round == rounds) return g;
    if (round == 0 && req.size > peer.GetStats().capacity_bytes) return g;
    std::vector<EvictedEntry> victims = index.EvictBytes(std::max<uint64_t>(req.size, 1));
    if (victims.empty()) return g;
    for (const EvictedEntry& v : victims) {
      peer.Delete(v.key).IgnoreError();
      evicted(v.key);
    }
  }
}

}  // namespace packice

#endif  // PACKICE_PEERS_EVICTING_CREATE_H_
