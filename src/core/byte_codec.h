// Length-prefixed little-endian fields in byte strings: what the project's own record formats
// (the KV's log records and snapshots, the queue's records) are built from. A ByteReader's
// every read fails, without reading, once the buffer is too short: decoders of bytes from a
// disk or a peer check each field and never read past the end.
#ifndef PACKICE_CORE_BYTE_CODEC_H_
#define PACKICE_CORE_BYTE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/byte_order.h"

namespace packice {

inline void AppendU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }
inline void AppendU32(std::string* out, uint32_t v) {
  std::byte b[4];
  PutU32(b, v);
  out->append(reinterpret_cast<const char*>(b), 4);
}
inline void AppendU64(std::string* out, uint64_t v) {
  std::byte b[8];
  PutU64(b, v);
  out->append(reinterpret_cast<const char*>(b), 8);
}
// A u32 length, then the bytes. REQUIRES: s.size() < 2^32.
inline void AppendBytes(std::string* out, std::string_view s) {
  AppendU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> b) : b_(b) {}
  bool U8(uint8_t* v) {
    if (b_.size() < 1) return false;
    *v = static_cast<uint8_t>(b_[0]);
    b_ = b_.subspan(1);
    return true;
  }
  bool U32(uint32_t* v) {
    if (b_.size() < 4) return false;
    *v = GetU32(b_.data());
    b_ = b_.subspan(4);
    return true;
  }
  bool U64(uint64_t* v) {
    if (b_.size() < 8) return false;
    *v = GetU64(b_.data());
    b_ = b_.subspan(8);
    return true;
  }
  bool I64(int64_t* v) {
    uint64_t u = 0;
    if (!U64(&u)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  // A u32 length and that many bytes (checked against what is left before anything is
  // allocated).
  bool Bytes(std::string* s) {
    uint32_t n = 0;
    if (b_.size() < 4 || b_.size() - 4 < GetU32(b_.data())) return false;
    U32(&n);
    s->assign(reinterpret_cast<const char*>(b_.data()), n);
    b_ = b_.subspan(n);
    return true;
  }
  bool done() const { return b_.empty(); }
  size_t left() const { return b_.size(); }

 private:
  std::span<const std::byte> b_;
};

}  // namespace packice

#endif  // PACKICE_CORE_BYTE_CODEC_H_
