// Helpers shared by the bucket's files (bucket.cc: reads, recovery, snapshots;
// bucket_write.cc: the write path). Not API.
#ifndef PACKICE_SERVICES_KV_BUCKET_INTERNAL_H_
#define PACKICE_SERVICES_KV_BUCKET_INTERNAL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "packice/kv.h"
#include "services/kv/kv_codec.h"

namespace packice::kv::internal {

inline constexpr uint64_t kRecordOverheadPerOp = 64;

inline KeyValue ToKeyValue(std::string_view key, const Entry& e, bool with_value = true) {
  KeyValue kv;
  kv.key = std::string(key);
  if (with_value) kv.value = e.value;
  kv.create_revision = e.create_revision;
  kv.mod_revision = e.mod_revision;
  kv.version = e.version;
  kv.expires_unix_ms = e.expires_unix_ms;
  return kv;
}

// The same, the value moved out of `e`.
inline KeyValue ToKeyValue(std::string_view key, Entry&& e) {
  KeyValue kv = ToKeyValue(key, e, false);
  kv.value = std::move(e.value);
  return kv;
}

inline bool Expired(const Entry& e, int64_t now_ms) {
  return e.expires_unix_ms != 0 && e.expires_unix_ms <= now_ms;
}

inline std::string Quote(std::string_view key) {
  constexpr size_t kShown = 64;
  std::string s(key.substr(0, kShown));
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return "'" + s + (key.size() > kShown ? "...'" : "'");
}

// The largest record a bucket writes: a full batch plus one op at the size limits.
inline uint64_t MaxRecordBytes(const KvOptions& kv) {
  return kv.max_batch_bytes + kv.max_key_bytes + kv.max_value_bytes +
         (kv.max_batch_ops + 1) * kRecordOverheadPerOp + 64;
}

}  // namespace packice::kv::internal

#endif  // PACKICE_SERVICES_KV_BUCKET_INTERNAL_H_
