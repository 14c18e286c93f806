#include "core/io.h"

#include <unistd.h>

#include <cerrno>

namespace packice {

uint64_t PageSize() {
  static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return page;
}

uint64_t RoundUpToPage(uint64_t n) {
  const uint64_t page = PageSize();
  return n == 0 ? page : (n + page - 1) / page * page;
}

Status PreadFully(int fd, std::span<std::byte> out, uint64_t offset) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("pread", errno);
    if (n == 0) return Internal("unexpected end of file");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status PwriteFully(int fd, std::span<const std::byte> data, uint64_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("pwrite", errno);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace packice
