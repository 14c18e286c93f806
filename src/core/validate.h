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

// At most kMaxMetaEntries entries and kMaxMetaBytes in all; names non-empty, no NUL.
Status ValidateMeta(const Meta& meta);

// A fresh random id: 32 lower-case hex digits. Thread-safe.
std::string GenerateObjectId();

}  // namespace packice

#endif  // PACKICE_CORE_VALIDATE_H_
