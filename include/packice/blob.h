// Blob (node side: owns an object's bytes) and BlobView (the bytes as one user sees them).
#ifndef PACKICE_BLOB_H_
#define PACKICE_BLOB_H_

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "packice/status.h"
#include "packice/types.h"

namespace packice {

// A file descriptor that closes itself.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Access to an object's bytes: a mapping, a private copy, or memory the node owns.
// Thread safety: bytes() may be called from any thread; writing is the create-lease holder's.
class BlobView {
 public:
  virtual ~BlobView() = default;
  // The bytes (for a writer: the allocated size).
  virtual std::span<std::byte> bytes() = 0;
  // True when the bytes are a private copy that a seal must carry to the node.
  virtual bool carried_on_seal() const { return false; }
};

// How a process other than the node reaches a blob's bytes.
struct BlobExport {
  enum class Kind {
    kInline,  // not mappable: the bytes travel in messages
    kFd,      // map `map_size` bytes of `fd` from `offset`
  };
  Kind kind = Kind::kInline;
  // kFd: a descriptor for the receiver to send and close. For kRead it is opened read-only, so
  // a mapping of it can never be made writable.
  UniqueFd fd;
  uint64_t offset = 0;    // kFd: where the bytes start in the file (a page multiple)
  uint64_t map_size = 0;  // kFd: the object's size rounded up to a page (a 2 MiB one for hugetlb)
  // kFd: the bytes are in 2 MiB pages: a mapping placed on a 2 MiB boundary uses them, and
  // faulting it in at once is cheap (a few entries instead of thousands).
  bool huge_pages = false;
};

// Node side of an object's bytes: owns them, and says how they can be reached.
// Thread safety: all methods may be called concurrently.
class Blob {
 public:
  virtual ~Blob() = default;
  // "memory", "heap", "file", ...
  virtual std::string_view kind() const = 0;
  // Allocated bytes.
  virtual uint64_t size() const = 0;
  // Copies into / out of the blob. REQUIRES: offset + length <= size().
  virtual Status Write(uint64_t offset, std::span<const std::byte> data) = 0;
  virtual Status Read(uint64_t offset, std::span<std::byte> out) = 0;
  // The bytes in this process (the in-process transport), writable for kCreate. The view keeps
  // what it needs alive.
  virtual Result<std::shared_ptr<BlobView>> OpenView(LeaseMode mode) = 0;
  // How another process reaches the bytes under a lease of `mode`.
  virtual Result<BlobExport> Export(LeaseMode mode) = 0;
  // A lease on this blob ended without its holder letting go (it expired, or its connection
  // closed): the holder may still map the bytes, so the memory must never be handed to another
  // object.
  virtual void Retire() {}
};

}  // namespace packice

#endif  // PACKICE_BLOB_H_
