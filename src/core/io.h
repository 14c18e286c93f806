// Page sizes, shared by the backends and transports.
#ifndef PACKICE_CORE_IO_H_
#define PACKICE_CORE_IO_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "packice/status.h"

namespace packice {

uint64_t PageSize();
// `n` rounded up to a whole page; 0 becomes one page. REQUIRES: n <= UINT64_MAX - PageSize().
uint64_t RoundUpToPage(uint64_t n);

// The whole of a small file the user named (a configuration, a token, a PEM certificate): at
// most 1 MiB, as a larger one is a mistake (a device, a data file). Errors: kInvalidArgument
// naming the path and the reason.
Result<std::string> ReadSmallFile(const std::string& path);

// Reading and writing files: core/env.h (ReadFully, WriteFully through an Env).

}  // namespace packice

#endif  // PACKICE_CORE_IO_H_
