// FilePeer: objects as files under a data directory, surviving restarts and kill -9.
#ifndef PACKICE_FILE_PEER_H_
#define PACKICE_FILE_PEER_H_

#include <memory>
#include <string>

#include "packice/local_peer.h"

namespace packice {

class Clock;
class Env;
class VersionSequence;

struct FilePeerOptions {
  // The data directory; created if missing. One process at a time may use it.
  std::string dir;
  // Bytes of objects (with their headers, in whole pages) the directory may hold.
  uint64_t capacity_bytes = 16ull << 30;
  // fdatasync and fsync the directory before a seal returns: a sealed object survives a crash
  // of the process or the machine. Off only for scratch data.
  bool sync = true;
  Duration default_lease_ttl = std::chrono::seconds(30);
  Duration default_object_ttl{0};
  Duration max_lease_ttl = std::chrono::hours(1);
  bool background_threads = true;
  std::shared_ptr<Clock> clock;
  // Where object versions come from; nullptr = a durable sequence of the directory's own
  // (DIR/VERSION), so versions never repeat across restarts. TieredPeer's tiers share one.
  std::shared_ptr<VersionSequence> versions;
  // The file-system seam (src/core/env.h) all file I/O goes through; nullptr = the real file
  // system. Tests put a FaultInjectionEnv here.
  std::shared_ptr<Env> env;
};

class FilePeer : public LocalPeer {
 public:
  // Opens the directory and recovers every sealed object in it; unsealed leftovers of a crash
  // are deleted, corrupt files moved to DIR/corrupt. Errors: kAlreadyExists (the directory is
  // in use), kInvalidArgument, kInternal.
  static Result<std::shared_ptr<FilePeer>> Open(FilePeerOptions options);
};

}  // namespace packice

#endif  // PACKICE_FILE_PEER_H_
