#include "core/validate.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>

namespace packice {

Status ValidateKey(std::string_view key) {
  if (key.empty()) return InvalidArgument("empty key");
  if (key.size() > kMaxKeyBytes) {
    return InvalidArgument("key of " + std::to_string(key.size()) + " bytes exceeds " +
                           std::to_string(kMaxKeyBytes));
  }
  for (unsigned char c : key) {
    if (c < 0x20 || c == 0x7f) return InvalidArgument("key contains a control character");
  }
  return Status::Ok();
}

Status ValidateMeta(const Meta& meta) {
  if (meta.size() > kMaxMetaEntries) {
    return InvalidArgument("more than " + std::to_string(kMaxMetaEntries) + " metadata entries");
  }
  size_t total = 0;
  for (const auto& [k, v] : meta) {
    if (k.empty()) return InvalidArgument("empty metadata name");
    if (k.find('\0') != std::string::npos || v.find('\0') != std::string::npos) {
      return InvalidArgument("metadata contains a NUL byte");
    }
    total += k.size() + v.size();
  }
  if (total > kMaxMetaBytes) {
    return InvalidArgument("metadata exceeds " + std::to_string(kMaxMetaBytes) + " bytes");
  }
  return Status::Ok();
}

Result<CheckedCreate> CheckCreate(const AcquireRequest& req, Duration default_ttl) {
  CheckedCreate c{req.key.empty() ? GenerateObjectId() : req.key,
                  req.create.ttl.value_or(default_ttl)};
  PACKICE_RETURN_IF_ERROR(ValidateKey(c.key));
  PACKICE_RETURN_IF_ERROR(ValidateMeta(req.create.meta));
  if (c.ttl.count() < 0) return InvalidArgument("negative object TTL");
  if (c.ttl > kMaxObjectTtl) {
    return InvalidArgument("object TTL of " + std::to_string(c.ttl.count()) + " ms exceeds " +
                           std::to_string(kMaxObjectTtl.count()));
  }
  return c;
}

Result<Duration> CheckLeaseTtl(const AcquireRequest& req, Duration default_ttl, Duration max_ttl) {
  const Duration ttl = req.lease_ttl.value_or(default_ttl);
  if (ttl.count() <= 0) return InvalidArgument("lease TTL must be positive");
  return std::min(ttl, max_ttl);
}

std::string GenerateObjectId() {
  // A per-process random prefix plus a counter: unique, cheap, and unguessable enough for ids
  // that are not secrets.
  static const uint64_t prefix = [] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }();
  static std::atomic<uint64_t> counter{[] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }()};
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(prefix),
                static_cast<unsigned long long>(counter.fetch_add(1, std::memory_order_relaxed)));
  return buf;
}

bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3f);
    }
    // Overlong forms, surrogates, beyond U+10FFFF.
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace packice
