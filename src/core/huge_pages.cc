#include "core/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace packice {
namespace {

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

std::string ReadSysfs(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t ReadNumber(const std::string& path) {
  std::ifstream in(path);
  uint64_t n = 0;
  in >> n;
  return in ? n : 0;
}

// An address range of `size` bytes starting on a 2 MiB boundary, reserved (PROT_NONE) for a
// MAP_FIXED mapping; nullptr on failure.
void* ReserveAligned(uint64_t size) {
  void* p = mmap(nullptr, size + kHugePageBytes, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (start + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  if (aligned > start) munmap(p, aligned - start);
  const uintptr_t end = start + size + kHugePageBytes;
  if (end > aligned + size) munmap(reinterpret_cast<void*>(aligned + size), end - aligned - size);
  return reinterpret_cast<void*>(aligned);
}

}  // namespace

std::string SelectedWord(const std::string& text) {
  const size_t open = text.find('[');
  const size_t close = text.find(']', open);
  if (open == std::string::npos || close == std::string::npos) return "";
  return text.substr(open + 1, close - open - 1);
}

HugePageSupport ProbeHugePages() {
  HugePageSupport s;
  constexpr const char* kShmem = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";
  s.shmem_enabled = SelectedWord(ReadSysfs(kShmem));
  // Since Linux 6.8 each page size has its own setting; "inherit" follows the global one.
  const std::string per_size =
      SelectedWord(ReadSysfs("/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/shmem_enabled"));
  std::string effective = per_size.empty() || per_size == "inherit" ? s.shmem_enabled : per_size;
  s.shmem_thp = effective == "always" || effective == "within_size" || effective == "advise" ||
                effective == "force";
  s.hugetlb_free = ReadNumber("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
  if (!s.shmem_thp && s.hugetlb_free == 0) {
    s.how_to_enable = std::string("echo advise > ") + kShmem + " (as root)";
  }
  return s;
}

Result<void*> MapShared(int fd, uint64_t offset, uint64_t map_size, bool writable, bool huge,
                        bool populate) {
  const int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  huge = huge && map_size >= kHugePageBytes && offset % kHugePageBytes == 0;
  void* where = huge ? ReserveAligned(map_size) : nullptr;
  // 4 KiB pages fault in at mmap (MAP_POPULATE); huge ones only after MADV_HUGEPAGE, below.
  const int flags =
      MAP_SHARED | (where != nullptr ? MAP_FIXED : 0) | (populate && !huge ? MAP_POPULATE : 0);
  void* p = mmap(where, map_size, prot, flags, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    const int err = errno;
    if (where != nullptr) munmap(where, map_size);
    return ErrnoError("mmap object", err);
  }
  if (huge) {
    madvise(p, map_size, MADV_HUGEPAGE);  // a hint: the kernel may say no
    // One call faults in every page (Linux 5.14+; before, they fault in as they are touched).
    if (populate) madvise(p, map_size, writable ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
  }
  return p;
}

void PrefaultForRead(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(bytes.data()) & ~(page - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(bytes.data()) + bytes.size();
  (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ);
}

}  // namespace packice
