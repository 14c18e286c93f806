// Parsing of human-written sizes and durations (flags, and later the config file).
#ifndef PACKICE_CORE_PARSE_H_
#define PACKICE_CORE_PARSE_H_

#include <cstdint>
#include <string_view>

#include "packice/status.h"
#include "packice/types.h"

namespace packice {

// "1048576", "64K", "256M", "2G", "1T" (binary multiples; an optional trailing "B" or "iB").
Result<uint64_t> ParseBytes(std::string_view text);

// "500ms", "30s", "5m", "2h", "1d"; a bare number is seconds. "0" is zero.
Result<Duration> ParseDuration(std::string_view text);

}  // namespace packice

#endif  // PACKICE_CORE_PARSE_H_
