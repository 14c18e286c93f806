// BlobStore: where a peer's objects physically live. Backends store; peers manage. A peer calls
// a store to allocate the bytes of a new object, to make a sealed object durable, and to forget
// an object nobody can reach any more; a durable store also says what survived a restart.
//
// Thread safety: every BlobStore is safe for concurrent use.
#ifndef PACKICE_BACKENDS_BLOB_STORE_H_
#define PACKICE_BACKENDS_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "packice/blob.h"
#include "packice/status.h"
#include "packice/types.h"

namespace packice {

struct StoreStats {
  uint64_t used_bytes = 0;    // charged to live blobs
  uint64_t pooled_bytes = 0;  // kept for reuse (counts against capacity)
  uint64_t capacity_bytes = 0;
};

// A sealed object a durable store found at start.
struct StoredObject {
  ObjectInfo info;
  std::shared_ptr<Blob> blob;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // The tier name reported in ObjectInfo::tier: "memory", "disk", ...
  virtual std::string_view tier() const = 0;
  virtual uint64_t capacity_bytes() const = 0;
  // Bytes an object of `size` is charged (rounding, headers).
  virtual uint64_t ChargeFor(uint64_t size) const = 0;

  // A zero-filled blob for the new CREATING object `info` (key, version, size, meta and TTL are
  // set). Errors: kOutOfCapacity, kInternal.
  virtual Result<std::shared_ptr<Blob>> Allocate(const ObjectInfo& info) = 0;

  // Makes the sealed object `info` durable before its key is bound; `info.size` may be below
  // the allocation (a truncating seal). On error the peer discards the object.
  virtual Status Commit(Blob& blob, const ObjectInfo& info) { return Status::Ok(); }

  // The object is unreachable (discarded unsealed, deleted, replaced or expired): a restart
  // must not find it, and its storage goes once the blob is freed. Holders of the blob keep
  // their bytes until then. Idempotent.
  virtual void Remove(Blob& blob) {}

  // Sealed objects that survived a restart, for a durable store; expired ones are removed.
  virtual Result<std::vector<StoredObject>> Recover() { return std::vector<StoredObject>(); }

  virtual StoreStats GetStats() const = 0;
  // Blocks until background work on freed blobs is done (tests).
  virtual void Quiesce() {}
};

}  // namespace packice

#endif  // PACKICE_BACKENDS_BLOB_STORE_H_
