// The on-disk format of a log segment (docs/log.md has the byte layout and the recovery rules),
// and FrameReader, which walks the record frames of one segment file through an Env.
//
//   segment  = header (32 bytes) frame* zero-fill
//   header   = magic u64 | version u32 | header_bytes u32 | first_seq u64 | reserved u32 | crc u32
//   frame    = crc u32 | length u32 | seq u64 | type u8 | flags u8 | reserved u16 | payload
//
// Integers are little-endian. A frame's crc is zlib's CRC-32 of its payload followed by bytes
// [4, 20) of its own header, so an appender checksums its payload before its sequence number is
// known and the group-commit leader only adds the 16 header bytes. Twenty zero bytes where a
// frame would start mark the end of the records (a segment is preallocated with zeros).
//
// Thread safety: the functions are pure; a FrameReader is used by one thread.
#ifndef PACKICE_BACKENDS_LOG_LOG_FORMAT_H_
#define PACKICE_BACKENDS_LOG_LOG_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "packice/status.h"

namespace packice::log_format {

inline constexpr uint64_t kSegmentMagic = 0x474F4C4543494B50ull;  // "PKICELOG"
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kSegmentHeaderBytes = 32;
inline constexpr size_t kFrameHeaderBytes = 20;
// The largest payload the format allows (a frame must fit in one segment of at most 4 GiB).
inline constexpr uint64_t kMaxSegmentBytes = 4ull << 30;

// Frame flag: the record is not the last of its Append. Recovery drops a trailing group of
// records whose last one carries it (an Append torn by a crash), so an Append is all or nothing.
inline constexpr uint8_t kFlagMoreInAppend = 0x01;
inline constexpr uint8_t kKnownFlags = kFlagMoreInAppend;

// CRC-32 (zlib; the polynomial of gzip and PNG), continuing from `crc` (0 to start).
uint32_t Crc32(uint32_t crc, std::span<const std::byte> bytes);

// The 32-byte header of a segment whose first record is `first_seq`.
std::vector<std::byte> EncodeSegmentHeader(uint64_t first_seq);
// The first_seq of a valid header; nullopt when `bytes` is not one (short, magic, version, crc).
std::optional<uint64_t> DecodeSegmentHeader(std::span<const std::byte> bytes);

// Writes a frame header for a payload whose Crc32 is `payload_crc` into `out` (20 bytes).
void EncodeFrameHeader(std::byte* out, uint32_t payload_crc, uint32_t length, uint64_t seq,
                       uint8_t type, uint8_t flags);

// "00000000000000000042.log" for 42, and back (nullopt for any other name).
std::string SegmentFileName(uint64_t first_seq);
std::optional<uint64_t> ParseSegmentFileName(std::string_view name);

bool AllZero(std::span<const std::byte> bytes);

// Reads the frames of a segment file from `offset` up to `limit` (exclusive; the file's size,
// or the end a reader may see), through a buffer of its own.
class FrameReader {
 public:
  enum class Outcome {
    kRecord,  // a whole frame with a good checksum; the reader moved past it
    kEnd,     // `limit`, or zeros where the next frame would start
    kBad,     // a partial frame, a bad header or a checksum mismatch at offset(); see reason()
  };
  struct Frame {
    uint64_t offset = 0;  // of its header
    uint64_t seq = 0;
    uint8_t type = 0;
    uint8_t flags = 0;
    uint64_t payload_bytes = 0;
    std::span<const std::byte> payload;  // valid until the next call; empty unless verified
    uint64_t frame_bytes() const { return kFrameHeaderBytes + payload_bytes; }
  };

  FrameReader(Env& env, int fd, uint64_t offset, uint64_t limit);

  // The frame at offset(). With `verify` false only the header is read and checked (to skip a
  // record), and frame->payload stays empty. Errors: kInternal (a read failed).
  Result<Outcome> Next(Frame* frame, bool verify = true);
  uint64_t offset() const { return offset_; }
  std::string_view reason() const { return reason_; }

 private:
  // The bytes [at, at + n) clipped to limit_, read into the buffer if they are not there.
  Result<std::span<const std::byte>> Window(uint64_t at, uint64_t n);

  Env& env_;
  const int fd_;
  uint64_t offset_;
  const uint64_t limit_;
  std::vector<std::byte> buf_;
  uint64_t buf_offset_ = 0;  // file offset of buf_[0]
  size_t buf_len_ = 0;       // valid bytes in buf_
  std::string reason_;
};

}  // namespace packice::log_format

#endif  // PACKICE_BACKENDS_LOG_LOG_FORMAT_H_
