// Checks every peer applies to what clients hand it, and generated object ids.
#ifndef PACKICE_CORE_VALIDATE_H_
#define PACKICE_CORE_VALIDATE_H_

#include <string>
#include <string_view>

#include "packice/status.h"
#include "packice/types.h"

namespace packice {

// A key is 1..kMaxKeyBytes bytes with no NUL and no ASCII control characters.
Status ValidateKey(std::string_view key);
// A character of the names that become file and directory names or path segments (KV
// namespace segments, queue topics and groups): A-Z a-z 0-9 . _ -
inline bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates, or code points past
// U+10FFFF).
bool IsUtf8(std::string_view s);

// At most kMaxMetaEntries entries and kMaxMetaBytes in all; names non-empty, no NUL.
Status ValidateMeta(const Meta& meta);

// Longest object TTL a create may ask for (about 100 years). Deadlines are steady-clock
// nanoseconds: a TTL near the range of int64 milliseconds would overflow them.
inline constexpr Duration kMaxObjectTtl = std::chrono::hours(24 * 365 * 100);

// What every peer checks of a create before it allocates anything: the key (generated when
// empty), the metadata and the object TTL (`default_ttl` when the request names none).
struct CheckedCreate {
  std::string key;
  Duration ttl{0};
};
Result<CheckedCreate> CheckCreate(const AcquireRequest& req, Duration default_ttl);

// The lease TTL of a request: its own or `default_ttl`, positive, at most `max_ttl`.
Result<Duration> CheckLeaseTtl(const AcquireRequest& req, Duration default_ttl, Duration max_ttl);

// A fresh random id: 32 lower-case hex digits. Thread-safe.
std::string GenerateObjectId();

}  // namespace packice

#endif  // PACKICE_CORE_VALIDATE_H_
