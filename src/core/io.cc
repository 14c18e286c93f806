#include "core/io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace packice {

uint64_t PageSize() {
  static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return page;
}

uint64_t RoundUpToPage(uint64_t n) {
  const uint64_t page = PageSize();
  return n == 0 ? page : (n + page - 1) / page * page;
}

Result<std::string> ReadSmallFile(const std::string& path) {
  constexpr size_t kMaxFileBytes = 1 << 20;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return InvalidArgument("cannot read '" + path + "': " + std::strerror(errno));
  std::string data;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return InvalidArgument("cannot read '" + path + "': " + std::strerror(err));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxFileBytes) {
      ::close(fd);
      return InvalidArgument("'" + path + "' is larger than 1 MiB");
    }
  }
  ::close(fd);
  return data;
}

}  // namespace packice
