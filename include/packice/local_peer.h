// LocalPeer: a Peer whose objects live in one store on this machine (memory, disk). What it
// adds to Peer: statistics and hooks for tests.
#ifndef PACKICE_LOCAL_PEER_H_
#define PACKICE_LOCAL_PEER_H_

#include <cstdint>
#include <string_view>

#include "packice/peer.h"

namespace packice {

class LocalPeer : public Peer {
 public:
  struct Stats {
    uint64_t objects = 0;       // sealed and bound
    uint64_t creating = 0;      // objects being written
    uint64_t leases = 0;        // live leases
    uint64_t used_bytes = 0;    // charged to live objects (bound, pending or leased)
    uint64_t pooled_bytes = 0;  // freed memory kept for reuse
    uint64_t capacity_bytes = 0;
    // Counts since the peer started (they never go down):
    // - hits / misses: read acquires of a valid key that found a sealed, unexpired object /
    //   found none (absent, expired, or still being written). Refused requests (bad key, unknown
    //   session) count as neither.
    // - evictions: objects the peer removed to make room for others. A memory or disk peer
    //   never does (a create that does not fit fails with out_of_capacity; giving up pooled
    //   memory removes no object), nor does a sharedfs peer (its collector removes only
    //   expired and abandoned objects), so theirs stays 0. A TieredPeer's are its demotions
    //   (memory -> disk) plus its tiers' own.
    // A TieredPeer counts each client read once: a hit in the tier that served it, or one miss
    // when neither had the key. Its inner peers' own counters also see the tiered peer's probes
    // and moves (a hot miss before every cold hit, demotion and promotion reads), so per-tier
    // figures come from TieredPeer::GetTierStats, not from hot() and cold().
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
  };

  virtual Stats GetStats() = 0;
  // Where this peer keeps objects, as ObjectInfo::tier names it: "memory", "disk",
  // "sharedfs"; "tiered" for a TieredPeer (its objects are in the tiers of hot() and cold()).
  // Every peer here overrides it; "local" is for others (test fakes).
  virtual std::string_view tier_name() const { return "local"; }
  // Drops expired leases and objects now. The background thread calls it periodically.
  virtual void ReapExpired() = 0;
  // Blocks until the store's background work on freed objects is done (tests; idempotent).
  virtual void DrainCleaner() = 0;
};

}  // namespace packice

#endif  // PACKICE_LOCAL_PEER_H_
