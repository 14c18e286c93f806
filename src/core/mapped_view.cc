#include "core/mapped_view.h"

#include <sys/mman.h>

#include <cerrno>

#include "core/huge_pages.h"

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
                                          bool writable, bool populate, bool huge) {
  if (size > map_size || map_size == 0) return InvalidArgument("object larger than its mapping");
  PACKICE_ASSIGN_OR_RETURN(void* p, MapShared(fd, offset, map_size, writable, huge, populate));
  return std::shared_ptr<BlobView>(
      std::make_shared<MappedView>(static_cast<std::byte*>(p), map_size, size));
}

}  // namespace packice
