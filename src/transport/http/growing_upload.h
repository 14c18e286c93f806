// GrowingUpload: an object of unknown final size (an HTTP chunked upload) written through the
// Peer interface alone, so it works on every peer and store unchanged.
//
// Objects are created with a size (Peer::Acquire(kCreate, size)) and sealed with a size no
// larger (Seal(lease, size) truncates). A growing object therefore starts with a modest
// allocation and, when a write would pass its end, moves to one twice as large (capped at
// `limit`): a new create lease, the bytes so far copied into it, the old lease released (which
// discards the old allocation). The bytes copied over a whole upload are fewer than its final
// size (amortized doubling), and at most 1.5x the final allocation is held at any moment.
//
// Why not grow in place: memory segments are sealed against growth (F_SEAL_GROW: clients map
// them, and the pool reuses them by size), sharedfs fallocates the whole allocation, and every
// store charges capacity at allocation. Allocating `limit` up front would charge a 1 KiB upload
// max_body (or the whole capacity) for its whole duration, so a few concurrent uploads would
// fill the node. Growing in place would need a new operation on every peer, store and remote
// transport.
//
// A store that allows one writer per key (sharedfs) refuses the larger allocation while the
// smaller is live; the bytes then wait in an unsealed object under a generated id while the key
// is re-acquired (a second copy, for such stores only).
//
// Exclusive creates (If-None-Match: *): the first allocation is exclusive, so a bound or
// pending key refuses the upload before any body is read. Later allocations cannot be (the
// key is pending: our own), so Seal() checks once more that the key is still free; the window
// left is between that check and the seal.
//
// Thread safety: none; one request owns it. The destructor releases the live lease, which
// discards the unsealed object: an aborted upload leaves nothing behind.
#ifndef PACKICE_TRANSPORT_HTTP_GROWING_UPLOAD_H_
#define PACKICE_TRANSPORT_HTTP_GROWING_UPLOAD_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "packice/peer.h"
#include "packice/status.h"

namespace packice {

class GrowingUpload {
 public:
  // The first allocation: what a body of unknown length gets before it has sent anything.
  static constexpr uint64_t kFirstAllocation = 4ull << 20;

  // Acquires the first allocation, min(limit, kFirstAllocation) bytes, for `req` (req.size is
  // ignored). `limit` is the largest size the object may reach. Errors: those of Acquire.
  static Result<std::unique_ptr<GrowingUpload>> Start(Peer& peer, AcquireRequest req,
                                                      uint64_t limit);
  ~GrowingUpload();
  GrowingUpload(const GrowingUpload&) = delete;
  GrowingUpload& operator=(const GrowingUpload&) = delete;

  // Whether `n` more bytes fit the current allocation (Append will not grow).
  bool Fits(uint64_t n) const { return written_ + n <= grant_.blob->size(); }
  // Whether Append of `n` bytes does something that may wait on a disk: growing, or writing
  // into a blob the node does not map.
  bool MayBlock(uint64_t n) const;
  // Appends `data`, growing the allocation first when it does not fit.
  // Errors: kInvalidArgument (written() + data.size() > limit), those of Acquire
  // (kOutOfCapacity), and of the blob's Read and Write. After an error the upload is unusable.
  Status Append(std::span<const std::byte> data);
  // Seals the object with written() bytes. The lease ends however it ends (see
  // SealEndedLease); an exclusive upload whose key was bound meanwhile gets kAlreadyExists.
  Result<ObjectInfo> Seal();

  uint64_t written() const { return written_; }
  uint64_t limit() const { return limit_; }
  const Grant& grant() const { return grant_; }
  // Allocations made so far (1 + the number of times the upload grew).
  int allocations() const { return allocations_; }

 private:
  GrowingUpload(Peer& peer, AcquireRequest req, uint64_t limit, Grant first);
  Status Grow(uint64_t needed);
  Status GrowThroughScratch(const AcquireRequest& next);
  // The new allocation becomes the upload's; the old one is released.
  void Replace(Grant bigger);
  // Copies the written_ bytes so far from `src` to `dst`.
  Status Copy(Blob& src, Blob& dst);

  Peer& peer_;
  AcquireRequest req_;
  const uint64_t limit_;
  const bool exclusive_;
  Grant grant_;  // grant_.lease == 0 once sealed
  uint64_t written_ = 0;
  int allocations_ = 1;
  std::vector<std::byte> bounce_;  // copies between blobs the node does not map
};

}  // namespace packice

#endif  // PACKICE_TRANSPORT_HTTP_GROWING_UPLOAD_H_
