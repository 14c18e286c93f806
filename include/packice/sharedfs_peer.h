// SharedFSPeer: objects in a directory that several packiced processes share — on one machine,
// or on many through NFS or a cluster filesystem (docs/sharedfs.md).
//
// The directory is the only truth: an object is a file named by a hash of its key, with its
// header (state, size, TTL, metadata, writer) inside, so every process sees the same objects.
// A peer keeps in memory only its own leases and sessions. One writer per key at a time across
// all processes (an exclusive file create picks it); cross-process locks are the filesystem's
// own (fcntl open-file-description locks); a garbage collector that any process may run removes
// expired objects and objects whose writer died.
//
// Thread safety: safe for concurrent use, and for concurrent use of the same directory by other
// processes and other SharedFSPeer instances.
#ifndef PACKICE_SHAREDFS_PEER_H_
#define PACKICE_SHAREDFS_PEER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "packice/local_peer.h"
#include "packice/sharedfs_gc_stats.h"

namespace packice {

class Clock;
class Env;

struct SharedFSPeerOptions {
  // The shared directory; created (with its layout) if missing. Every process must see the same
  // files under it, with working fcntl locks.
  std::string dir;
  // Largest object a create may ask for; larger ones fail with kOutOfCapacity. The space itself
  // is the filesystem's: a create reserves it (fallocate) and fails with kOutOfCapacity when the
  // filesystem is full.
  uint64_t max_object_bytes = 16ull << 30;
  // fdatasync the object and fsync its directory before a seal returns. Off only for scratch
  // data.
  bool sync = true;
  Duration default_lease_ttl = std::chrono::seconds(30);
  Duration default_object_ttl{0};
  Duration max_lease_ttl = std::chrono::hours(1);
  // An object still CREATING whose writer holds no lock on it and whose file has not changed for
  // this long was abandoned by a dead writer: the garbage collector removes it, and a create of
  // its key may take the key over. It must exceed the clock skew between the machines that share
  // the directory (file times are set by the filesystem, compared with `clock`).
  Duration abandoned_after = std::chrono::seconds(30);
  // How often the background thread collects garbage in the whole directory (a scan of every
  // object file: see docs/sharedfs.md for the cost).
  Duration gc_interval = std::chrono::seconds(60);
  // Run a thread that expires leases every 100 ms and collects garbage every gc_interval. Tests
  // that drive time by hand turn it off and call ReapExpired() / CollectGarbage().
  bool background_threads = true;
  // Time source for leases, object expiry and file ages; nullptr = the system clock.
  std::shared_ptr<Clock> clock;
  // Who this process is in object headers and error messages; empty = "hostname:pid".
  std::string writer_id;
  // The file-system seam (src/core/env.h) all file I/O goes through; nullptr = the real file
  // system. Tests put a FaultInjectionEnv here.
  std::shared_ptr<Env> env;
};

class SharedFSPeer : public LocalPeer {
 public:
  // Opens (creating if needed) the shared directory. Errors: kInvalidArgument (no directory, or
  // not a directory), kInternal (I/O, or the filesystem has no fcntl locks).
  static Result<std::shared_ptr<SharedFSPeer>> Open(SharedFSPeerOptions options);

  // Scans the whole directory now: unbinds expired objects, removes the objects of dead writers
  // (lock free and unchanged for options.abandoned_after) and deletes unbound files nobody
  // reads. Safe while other processes use the directory. Errors: kInternal (the directory
  // cannot be read).
  virtual Result<SharedFSGcStats> CollectGarbage() = 0;
};

}  // namespace packice

#endif  // PACKICE_SHAREDFS_PEER_H_
