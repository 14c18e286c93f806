// MemoryPeer: objects in shared memory that clients in other processes map directly.
#ifndef PACKICE_MEMORY_PEER_H_
#define PACKICE_MEMORY_PEER_H_

#include <cstdint>
#include <memory>

#include "packice/local_peer.h"

namespace packice {

class Clock;
class VersionSequence;

struct MemoryPeerOptions {
  // Bytes of object content the peer may hold, counted in whole pages per shared-memory object.
  // Creates beyond it fail with kOutOfCapacity.
  uint64_t capacity_bytes = 1ull << 30;
  // Objects of at most this many bytes live on the heap and travel inline over sockets (a copy
  // is cheaper than a mapping for them); larger ones get their own shared-memory segment.
  uint64_t small_object_bytes = 64 * 1024;
  // Lease TTL when a request names none.
  Duration default_lease_ttl = std::chrono::seconds(30);
  // Object TTL when a create names none; 0 = objects live until deleted.
  Duration default_object_ttl{0};
  // Largest lease TTL a client may ask for.
  Duration max_lease_ttl = std::chrono::hours(1);
  // Freed segments kept (zeroed, faulted in) for reuse, in bytes. They count against
  // capacity_bytes but are given up whenever a create needs the room.
  uint64_t pool_bytes = 1ull << 30;
  // Segments of 2 MiB or more in 2 MiB pages where the kernel allows it (shmem transparent huge
  // pages, or reserved hugetlb pages); false: 4 KiB pages only. Mapping a large object costs a
  // few page-table entries instead of thousands (docs/benchmarks.md).
  bool huge_pages = true;
  // Run a background thread that zeroes freed segments and reaps expired leases and objects.
  // Tests that drive time by hand turn it off and call ReapExpired().
  bool background_threads = true;
  // Time source; nullptr = the system's steady clock.
  std::shared_ptr<Clock> clock;
  // Where object versions come from; nullptr = the peer's own sequence in memory (versions
  // restart at 1). TieredPeer's tiers share one (packice/version_sequence.h).
  std::shared_ptr<VersionSequence> versions;
};

class MemoryPeer : public LocalPeer {
 public:
  // REQUIRES: options.capacity_bytes > 0.
  static std::shared_ptr<MemoryPeer> Create(MemoryPeerOptions options);
};

}  // namespace packice

#endif  // PACKICE_MEMORY_PEER_H_
