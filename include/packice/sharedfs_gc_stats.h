// SharedFSGcStats: what one garbage collection of a shared directory did (SharedFSPeer and the
// sharedfs store below it both report it).
#ifndef PACKICE_SHAREDFS_GC_STATS_H_
#define PACKICE_SHAREDFS_GC_STATS_H_

#include <cstdint>

namespace packice {

// What one garbage collection did.
struct SharedFSGcStats {
  uint64_t objects = 0;       // live sealed objects seen
  uint64_t object_bytes = 0;  // their file sizes
  uint64_t creating = 0;      // objects being written by live writers
  uint64_t expired = 0;       // sealed objects past their TTL, unbound
  uint64_t abandoned = 0;     // CREATING objects of dead writers, removed
  uint64_t unlinked = 0;      // unbound files deleted (nobody read them any more)
  uint64_t in_use = 0;        // unbound files kept because a process still reads them
  uint64_t corrupt = 0;       // files that failed their checks (left in place, logged)
};

}  // namespace packice

#endif  // PACKICE_SHAREDFS_GC_STATS_H_
