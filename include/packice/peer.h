// Peer: the control plane. A Peer manages objects — who may do what, for how long, in which
// state — and hands out Leases and Blobs. It never copies object bytes itself; transports and
// clients reach the bytes through the Blob it returns.
//
// Every transport calls this interface, and peers compose (a tiered peer wraps two peers).
//
// Thread safety: every Peer implementation is safe for concurrent use from multiple threads
// without external synchronization.
#ifndef PACKICE_PEER_H_
#define PACKICE_PEER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "packice/blob.h"
#include "packice/status.h"
#include "packice/types.h"

namespace packice {

// What a successful Acquire hands out.
struct Grant {
  LeaseId lease = 0;
  Duration lease_ttl{0};
  ObjectInfo info;
  // The bytes. Valid while the lease is live; holding the pointer past Release keeps the blob
  // alive but not its content (memory may be recycled).
  std::shared_ptr<Blob> blob;
};

// Whether a Seal that returned `status` ended its lease: every outcome but a refused call does.
inline bool SealEndedLease(const Status& status) {
  return status.code() != StatusCode::kInvalidArgument &&
         status.code() != StatusCode::kPermissionDenied;
}

class Peer {
 public:
  virtual ~Peer() = default;

  // kCreate: allocates a CREATING object of req.size bytes, all zero. Errors: kInvalidArgument
  // (bad key, metadata over limits, size over the peer's maximum), kAlreadyExists (exclusive
  // create of a bound or pending key), kOutOfCapacity.
  // kRead: a read lease on the sealed object bound to req.key. Errors: kNotFound (unknown or
  // expired key; an object still CREATING is not visible under its key).
  virtual Result<Grant> Acquire(const AcquireRequest& req) = 0;

  // Seals the object of create lease `lease`: it becomes immutable and, atomically, the object
  // bound to its key (an earlier object under that key stays readable by its lease holders).
  // `size`, when given, truncates the content to that many bytes (<= allocated size).
  // The create lease ends. Errors: kLeaseExpired, kPermissionDenied (a read lease),
  // kInvalidArgument (size too large), kAlreadyExists (exclusive and another seal won), and a
  // durable store's write errors. After any error but kInvalidArgument and kPermissionDenied
  // the lease has ended and the object is discarded (SealEndedLease).
  virtual Result<ObjectInfo> Seal(LeaseId lease, std::optional<uint64_t> size) = 0;

  // Ends a lease. For a create lease this discards the unsealed object. Errors: kLeaseExpired.
  virtual Status Release(LeaseId lease) = 0;

  // Ends create lease `lease` and discards its unsealed object. Errors: kLeaseExpired,
  // kPermissionDenied (a read lease).
  virtual Status Discard(LeaseId lease) = 0;

  // Extends a live lease by its TTL. Errors: kLeaseExpired.
  virtual Status Renew(LeaseId lease) = 0;

  // Information about the sealed object bound to `key`. Errors: kNotFound.
  virtual Result<ObjectInfo> Stat(std::string_view key) = 0;

  // Sealed objects in key order.
  virtual Result<ListPage> List(const ListOptions& options) = 0;

  // Unbinds `key`. Readers holding leases keep the object until they release.
  // Errors: kNotFound.
  virtual Status Delete(std::string_view key) = 0;

  // Sessions group leases; closing one releases its read leases and discards its unsealed
  // objects. Closing an unknown session is a no-op.
  virtual SessionId OpenSession() = 0;
  virtual void CloseSession(SessionId session) = 0;
};

}  // namespace packice

#endif  // PACKICE_PEER_H_
