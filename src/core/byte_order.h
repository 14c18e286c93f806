// Little-endian fixed-width integers in byte buffers, for on-disk preambles.
#ifndef PACKICE_CORE_BYTE_ORDER_H_
#define PACKICE_CORE_BYTE_ORDER_H_

#include <cstddef>
#include <cstdint>

namespace packice {

inline void PutU32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline void PutU64(std::byte* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline uint32_t GetU32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint64_t GetU64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace packice

#endif  // PACKICE_CORE_BYTE_ORDER_H_
