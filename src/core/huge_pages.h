// 2 MiB pages for shared memory: what the kernel allows, and mappings that use them.
//
// A 64 MiB object in 4 KiB pages costs 16,384 page-table entries in every process that maps it,
// and setting them up costs more than copying the bytes (docs/benchmarks.md). With 2 MiB pages
// it is 32 entries. Two kernel mechanisms give shared memory 2 MiB pages:
//  - transparent huge pages for shmem (/sys/kernel/mm/transparent_hugepage/shmem_enabled
//    `always`, `within_size` or `advise`; `advise` needs MADV_HUGEPAGE on each mapping), which
//    memfds use with no reservation; Debian's default is `never`;
//  - hugetlbfs pages reserved ahead (vm.nr_hugepages), which memfd_create(MFD_HUGETLB) takes.
// A mapping is eligible only where its address and file offset are 2 MiB-aligned, so mappings
// of large objects are placed on 2 MiB boundaries.
#ifndef PACKICE_CORE_HUGE_PAGES_H_
#define PACKICE_CORE_HUGE_PAGES_H_

#include <cstdint>
#include <span>
#include <string>

#include "packice/status.h"

namespace packice {

inline constexpr uint64_t kHugePageBytes = 2ull << 20;

enum class HugePageMode {
  kAuto,  // use 2 MiB pages where the kernel allows it
  kOff,   // 4 KiB pages only
};

// What this kernel offers shared memory.
struct HugePageSupport {
  std::string shmem_enabled;  // the selected word of shmem_enabled ("never", "advise", ...)
  bool shmem_thp = false;     // memfds can get transparent huge pages (with MADV_HUGEPAGE)
  uint64_t hugetlb_free = 0;  // free reserved 2 MiB pages (MFD_HUGETLB)
  // What to run to enable them, when neither is available; empty otherwise.
  std::string how_to_enable;
};
HugePageSupport ProbeHugePages();

// Parses a shmem_enabled file's text ("always within_size [advise] never deny force") into
// the selected word; "" when none is marked.
std::string SelectedWord(const std::string& text);

// Maps `map_size` bytes of `fd` from `offset`, placed on a 2 MiB boundary and advised for huge
// pages when `huge` (and `map_size` is at least one huge page), then faulted in with one call
// when `populate` (MADV_POPULATE_WRITE or _READ; a kernel without them faults lazily).
// Errors: kInternal (mmap failed).
Result<void*> MapShared(int fd, uint64_t offset, uint64_t map_size, bool writable, bool huge,
                        bool populate);

// Faults in the pages of the mapping under `bytes` for reading with one call
// (MADV_POPULATE_READ), for a reader that will touch them all: one page fault each costs more
// than the call. Best effort: nothing happens where the kernel lacks it.
void PrefaultForRead(std::span<const std::byte> bytes);

}  // namespace packice

#endif  // PACKICE_CORE_HUGE_PAGES_H_
