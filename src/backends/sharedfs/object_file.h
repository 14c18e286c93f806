// The object file of the shared-filesystem backend (docs/sharedfs.md): a 32-byte preamble, a
// checksummed protobuf header and the content at a page-aligned offset. The header lives with
// the data, so every process that opens the file sees the same state, size, TTL and metadata.
//
// Files are named by a 128-bit hash of the key (XXH3), so every process finds an object from
// its key alone, and no key ever becomes a path.
#ifndef PACKICE_BACKENDS_SHAREDFS_OBJECT_FILE_H_
#define PACKICE_BACKENDS_SHAREDFS_OBJECT_FILE_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/env.h"
#include "packice/status.h"
#include "packice/types.h"

namespace packice {

inline constexpr size_t kSharedPreambleBytes = 32;
inline constexpr uint32_t kSharedMaxHeaderBytes = 1u << 20;

// What an object file's header says.
struct SharedObjectHeader {
  ObjectInfo info;     // state as written: kCreating or kSealed; tier is left empty
  std::string writer;  // "hostname:pid" of the creating process
  uint64_t data_offset = 0;
};

// Where the content of an object like `info` created by `writer` starts: a page multiple past
// the largest header its seal can write (a seal changes only the state, size and expiry).
uint64_t SharedDataOffsetFor(const ObjectInfo& info, std::string_view writer);

// The preamble and header for `header`. Errors: kInternal (the header does not fit before
// header.data_offset).
Result<std::string> EncodeSharedObjectHeader(const SharedObjectHeader& header);

// Parses and checks a preamble and header (magic, lengths, checksum, content offset, values).
// `bytes` starts at offset 0 of the file and may be longer than the header. Errors:
// kProtocolError (not a shared object file, truncated, or corrupt).
Result<SharedObjectHeader> DecodeSharedObjectHeader(std::span<const std::byte> bytes);

// Reads (through `env`) and decodes the header of the open object file `fd`, and checks that
// the file holds the content the header promises. Errors: kProtocolError (corrupt), kInternal
// (I/O).
Result<SharedObjectHeader> ReadSharedObjectHeader(Env& env, int fd);

// Where the objects of a key live, relative to the data directory.
struct SharedObjectName {
  std::string shard;    // "objects/xx": xx = the first byte of the hash, two hex digits
  std::string stem;     // 32 hex digits of XXH3-128 of the key
  uint32_t stripe = 0;  // the key's lock stripe: the low 16 bits of the hash
  std::string sealed() const { return shard + "/" + stem + ".pks"; }
  std::string creating() const { return shard + "/" + stem + ".pkc"; }
};
SharedObjectName SharedNameForKey(std::string_view key);
// The lock stripe of a file whose stem (name without suffix) is `stem`; false if the stem is
// not 32 hex digits.
bool SharedStripeForStem(std::string_view stem, uint32_t* stripe);
inline constexpr uint32_t kSharedLockStripes = 1u << 16;

}  // namespace packice

#endif  // PACKICE_BACKENDS_SHAREDFS_OBJECT_FILE_H_
