// A BlobView over an mmap of a descriptor: how clients (and in-process views of file blobs)
// reach bytes without copying them.
#ifndef PACKICE_CORE_MAPPED_VIEW_H_
#define PACKICE_CORE_MAPPED_VIEW_H_

#include <cstdint>
#include <memory>

#include "packice/blob.h"

namespace packice {

// Maps `map_size` bytes of `fd` from `offset` (a page multiple); the view shows the first
// `size` of them and unmaps when destroyed. `fd` may be closed afterwards. `populate` faults
// every page in at once (for writers, who touch them all). `huge`: the bytes are backed by 2 MiB
// pages, so the mapping is placed to use them (core/huge_pages.h). Errors: kInvalidArgument
// (size > map_size), kInternal (mmap failed).
Result<std::shared_ptr<BlobView>> MapView(int fd, uint64_t offset, uint64_t map_size, uint64_t size,
                                          bool writable, bool populate, bool huge = false);

}  // namespace packice

#endif  // PACKICE_CORE_MAPPED_VIEW_H_
