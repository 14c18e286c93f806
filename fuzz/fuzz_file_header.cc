// libFuzzer target: the preamble and header of an object file, as start-up recovery reads them
// from a data directory it cannot trust (a torn write, a bad disk, a stray file). Any crash,
// sanitizer report or unbounded allocation is a bug, and so is a header that decodes to values
// the rest of the store cannot use (docs/file_format.md).
//
//   fuzz_file_header -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/file_header
//
// Each input is decoded twice: as it is, and with its checksum made to match, so that mutations
// reach the protobuf header and the checks on its values instead of stopping at the checksum.
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "backends/file/file_store.h"
#include "core/io.h"

namespace {

constexpr size_t kPreambleBytes = 32;

uint32_t GetU32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Decodes `bytes`; traps on a decoded header that breaks the format's invariants.
void DecodeAndCheck(std::span<const std::byte> bytes) {
  auto decoded = packice::DecodeObjectFileHeader(bytes);
  if (!decoded.ok()) return;
  const uint64_t header_len = GetU32(bytes.data() + 8);
  const uint64_t offset = decoded->data_offset;
  const packice::ObjectInfo& info = decoded->info;
  if (offset < kPreambleBytes + header_len || offset % packice::PageSize() != 0 ||
      info.size > UINT64_MAX - offset || info.ttl.count() < 0 ||
      info.state != packice::ObjectState::kSealed) {
    __builtin_trap();
  }
  // The decoder reads nothing past the header: the preamble and header alone decode the same.
  auto again = packice::DecodeObjectFileHeader(bytes.first(kPreambleBytes + header_len));
  if (!again.ok() || again->data_offset != offset || again->info.key != info.key ||
      again->info.version != info.version || again->info.size != info.size ||
      again->info.meta != info.meta) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  DecodeAndCheck(bytes);
  if (size < kPreambleBytes) return 0;
  const uint64_t header_len = GetU32(bytes.data() + 8);
  if (header_len > size - kPreambleBytes) return 0;
  std::vector<std::byte> fixed(bytes.begin(), bytes.end());
  const uint64_t checksum = XXH64(fixed.data() + kPreambleBytes, header_len, 0);
  for (int i = 0; i < 8; ++i) fixed[24 + i] = static_cast<std::byte>(checksum >> (8 * i));
  DecodeAndCheck(fixed);
  return 0;
}
