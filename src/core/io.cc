#include "core/io.h"

#include <unistd.h>

namespace packice {

uint64_t PageSize() {
  static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return page;
}

uint64_t RoundUpToPage(uint64_t n) {
  const uint64_t page = PageSize();
  return n == 0 ? page : (n + page - 1) / page * page;
}

}  // namespace packice
