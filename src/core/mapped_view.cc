#include "core/mapped_view.h"

#include <sys/mman.h>

#include <cerrno>

namespace packice {
namespace {

class MappedView final : public BlobView {
 public:
  MappedView(std::byte* map, uint64_t map_size, uint64_t size)
      : map_(map), map_size_(map_size), size_(size) {}
  ~MappedView() override { munmap(map_, map_size_); }
  std::span<std::byte> bytes() override { return {map_, size_}; }

 private:
  std::byte* map_;
  uint64_t map_size_;
  uint64_t size_;
};

}  // namespace

Result<std::shared_ptr<BlobView>> MapView(int fd, uint64_t offset, uint64_t map_size, uint64_t size,
                                          bool writable, bool populate) {
  if (size > map_size || map_size == 0) return InvalidArgument("object larger than its mapping");
  const int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  const int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
  void* p = mmap(nullptr, map_size, prot, flags, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) return ErrnoError("mmap object", errno);
  return std::shared_ptr<BlobView>(
      std::make_shared<MappedView>(static_cast<std::byte*>(p), map_size, size));
}

}  // namespace packice
