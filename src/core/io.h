// Small POSIX I/O helpers shared by the backends and transports.
#ifndef PACKICE_CORE_IO_H_
#define PACKICE_CORE_IO_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "packice/status.h"

namespace packice {

uint64_t PageSize();
// `n` rounded up to a whole page; 0 becomes one page. REQUIRES: n <= UINT64_MAX - PageSize().
uint64_t RoundUpToPage(uint64_t n);

// pread/pwrite until done; EINTR is retried. kInternal on errors, and on a short read (EOF).
Status PreadFully(int fd, std::span<std::byte> out, uint64_t offset);
Status PwriteFully(int fd, std::span<const std::byte> data, uint64_t offset);

}  // namespace packice

#endif  // PACKICE_CORE_IO_H_
