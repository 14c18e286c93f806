// MemoryStore: the memory backend. Allocates blobs against a byte capacity:
//  - small objects on the heap (HeapBlob; they travel inline over sockets);
//  - larger ones in their own shared-memory segment (a memfd; ShmBlob) that clients in other
//    processes map. Each segment is its own file, so a client holding one descriptor can reach
//    that object and no other.
//
// Speed: a fresh segment's pages are zeroed by the kernel on first touch (about 2 GB/s here),
// while pages already faulted in write at memcpy speed. Freed segments are therefore kept in a
// pool: a cleaner thread zeroes them off the hot path (so no client sees an earlier object's
// bytes) and a later allocation of a similar size reuses them, already faulted in. Pooled bytes
// count against the capacity and are given back whenever a new allocation needs the room.
//
// Page tables cost more than the copy for large objects in 4 KiB pages (a 64 MiB object is
// 16,384 entries to set up in each process that maps it), so segments of 2 MiB or more use
// 2 MiB pages where the kernel allows (MemoryStoreOptions::huge_pages).
//
// Thread safety: safe for concurrent use. Blobs may outlive the store.
#ifndef PACKICE_BACKENDS_MEMORY_MEMORY_STORE_H_
#define PACKICE_BACKENDS_MEMORY_MEMORY_STORE_H_

#include <cstdint>
#include <memory>

#include "backends/blob_store.h"
#include "core/huge_pages.h"
#include "packice/blob.h"
#include "packice/status.h"

namespace packice {

struct MemoryStoreOptions {
  uint64_t capacity_bytes = 1ull << 30;
  uint64_t small_object_bytes = 64 * 1024;  // <= this: heap blob
  uint64_t pool_bytes = 1ull << 30;         // most freed segment bytes kept for reuse
  bool cleaner_thread = true;               // false: zero freed segments inline
  // Segments of 2 MiB or more in 2 MiB pages where the kernel allows it (core/huge_pages.h):
  // reserved hugetlb pages while there are free ones, else shmem's transparent huge pages.
  HugePageMode huge_pages = HugePageMode::kAuto;
};

// A blob whose bytes are mapped in this process.
class MemoryBlob : public Blob, public std::enable_shared_from_this<MemoryBlob> {
 public:
  // The bytes as mapped in the node; size() of them.
  virtual std::span<std::byte> bytes() = 0;
  uint64_t size() const override { return size_; }
  Status Write(uint64_t offset, std::span<const std::byte> data) override;
  Status Read(uint64_t offset, std::span<std::byte> out) override;
  Result<std::shared_ptr<BlobView>> OpenView(LeaseMode mode) override;

 protected:
  explicit MemoryBlob(uint64_t size) : size_(size) {}

 private:
  const uint64_t size_;
};

class MemoryStore final : public BlobStore {
 public:
  struct Stats {
    uint64_t used_bytes = 0;    // charged to live blobs
    uint64_t pooled_bytes = 0;  // freed segments kept (clean or waiting to be zeroed)
    uint64_t capacity_bytes = 0;
    uint64_t segments_created = 0;
    uint64_t segments_reused = 0;
  };

  explicit MemoryStore(MemoryStoreOptions options);
  ~MemoryStore() override;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // A zero-filled blob of `size` bytes. Errors: kOutOfCapacity, kInternal (system call failed).
  Result<std::shared_ptr<MemoryBlob>> Allocate(uint64_t size);

  Stats GetMemoryStats() const;
  // Blocks until every freed segment has been zeroed and pooled.
  void DrainCleaner();

  // BlobStore:
  std::string_view tier() const override { return "memory"; }
  uint64_t capacity_bytes() const override;
  // Small objects are charged their size, segments whole pages.
  uint64_t ChargeFor(uint64_t size) const override;
  Result<std::shared_ptr<Blob>> Allocate(const ObjectInfo& info) override;
  StoreStats GetStats() const override;
  void Quiesce() override { DrainCleaner(); }

  class State;  // shared with blobs, which return their memory to it

 private:
  std::shared_ptr<State> state_;
};

}  // namespace packice

#endif  // PACKICE_BACKENDS_MEMORY_MEMORY_STORE_H_
