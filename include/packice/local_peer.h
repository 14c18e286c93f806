// LocalPeer: a Peer whose objects live in one store on this machine (memory, disk). What it
// adds to Peer: statistics and hooks for tests.
#ifndef PACKICE_LOCAL_PEER_H_
#define PACKICE_LOCAL_PEER_H_

#include <cstdint>
#include <functional>
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

  // What Persist did.
  struct PersistReport {
    uint64_t objects = 0;  // written to durable storage now
    uint64_t bytes = 0;    // their sizes
    uint64_t durable = 0;  // already durable: nothing to write
    uint64_t failed = 0;   // could not be read or written (they stay in memory only)
    uint64_t left = 0;     // not written: durable storage is full, or Persist was cancelled
    bool full = false;     // durable storage had no room for the rest
    bool cancelled = false;
  };
  // Before a clean stop: writes every sealed object that lives only in memory to this peer's
  // durable storage (within its capacity), so that a restart serves it again. `cancelled` is
  // asked between objects (and between chunks of a large one); `progress`, when set, is called
  // about once a second. A peer with nothing volatile, or nothing durable, does nothing.
  // REQUIRES: no other calls on the peer meanwhile (the node stopped serving).
  virtual PersistReport Persist(const std::function<bool()>& cancelled,
                                const std::function<void(const PersistReport&)>& progress) {
    return {};
  }
};

}  // namespace packice

#endif  // PACKICE_LOCAL_PEER_H_
