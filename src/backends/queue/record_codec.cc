#include "backends/queue/record_codec.h"

#include "core/byte_codec.h"

namespace packice {
namespace {

constexpr uint8_t kFlagKey = 1;
// Each header costs at least its two lengths: a count above what the bytes left can hold is
// corrupt (and never sizes an allocation).
constexpr size_t kHeaderMinBytes = 8;

}  // namespace

size_t EncodedRecordBytes(const QueueRecord& r) {
  size_t n = 1 + 1 + 8 + 4 + 4 + r.value.size();
  if (r.key) n += 4 + r.key->size();
  for (const auto& [name, value] : r.headers) n += 8 + name.size() + value.size();
  return n;
}

void EncodeRecord(const QueueRecord& r, std::string* out, int64_t unset_timestamp) {
  out->reserve(out->size() + EncodedRecordBytes(r));
  AppendU8(out, kQueueRecordFormat);
  AppendU8(out, r.key ? kFlagKey : 0);
  AppendU64(
      out, static_cast<uint64_t>(r.timestamp_unix_ms != 0 ? r.timestamp_unix_ms : unset_timestamp));
  if (r.key) AppendBytes(out, *r.key);
  AppendU32(out, static_cast<uint32_t>(r.headers.size()));
  for (const auto& [name, value] : r.headers) {
    AppendBytes(out, name);
    AppendBytes(out, value);
  }
  AppendBytes(out, r.value);
}

Result<QueueRecord> DecodeRecord(std::span<const std::byte> bytes) {
  ByteReader in(bytes);
  uint8_t format = 0, flags = 0;
  QueueRecord r;
  if (!in.U8(&format) || !in.U8(&flags) || !in.I64(&r.timestamp_unix_ms)) {
    return DataLoss("queue record: shorter than its header (" + std::to_string(bytes.size()) +
                    " bytes)");
  }
  if (format != kQueueRecordFormat) {
    return DataLoss("queue record: unknown format " + std::to_string(format));
  }
  if ((flags & ~kFlagKey) != 0) {
    return DataLoss("queue record: unknown flags " + std::to_string(flags));
  }
  if ((flags & kFlagKey) != 0) {
    r.key.emplace();
    if (!in.Bytes(&*r.key)) return DataLoss("queue record: the key is cut");
  }
  uint32_t headers = 0;
  if (!in.U32(&headers)) return DataLoss("queue record: the header count is cut");
  if (headers > in.left() / kHeaderMinBytes) {
    return DataLoss("queue record: " + std::to_string(headers) + " headers in " +
                    std::to_string(in.left()) + " bytes");
  }
  r.headers.resize(headers);
  for (auto& [name, value] : r.headers) {
    if (!in.Bytes(&name) || !in.Bytes(&value)) return DataLoss("queue record: a header is cut");
  }
  if (!in.Bytes(&r.value)) return DataLoss("queue record: the value is cut");
  if (!in.done()) {
    return DataLoss("queue record: " + std::to_string(in.left()) + " bytes after the value");
  }
  return r;
}

}  // namespace packice
