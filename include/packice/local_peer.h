// LocalPeer: a Peer whose objects live in one store on this machine (memory, disk). What it
// adds to Peer: statistics and hooks for tests.
#ifndef PACKICE_LOCAL_PEER_H_
#define PACKICE_LOCAL_PEER_H_

#include <cstdint>

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
  };

  virtual Stats GetStats() = 0;
  // Drops expired leases and objects now. The background thread calls it periodically.
  virtual void ReapExpired() = 0;
  // Blocks until the store's background work on freed objects is done (tests; idempotent).
  virtual void DrainCleaner() = 0;
};

}  // namespace packice

#endif  // PACKICE_LOCAL_PEER_H_
