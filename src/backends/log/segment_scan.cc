#include "backends/log/segment_scan.h"

#include <algorithm>

#include "backends/log/log_format.h"
#include "core/byte_order.h"

namespace packice {
namespace {

using log_format::FrameReader;
using log_format::kFrameHeaderBytes;
using log_format::kSegmentHeaderBytes;

constexpr size_t kResyncChunk = 1 << 20;

// Whether `h` (20 bytes at `offset`) could be the header of a frame of this segment.
bool PlausibleHeader(const std::byte* h, uint64_t offset, uint64_t file_size, uint64_t min_seq) {
  const uint8_t type = static_cast<uint8_t>(h[16]);
  const uint8_t flags = static_cast<uint8_t>(h[17]);
  if (type == 0 || (flags & ~log_format::kKnownFlags) != 0 || h[18] != std::byte{0} ||
      h[19] != std::byte{0}) {
    return false;
  }
  const uint64_t seq = GetU64(h + 8);
  // A segment of file_size bytes holds fewer than file_size / 20 records.
  if (seq < min_seq || seq - min_seq > file_size / kFrameHeaderBytes) return false;
  return GetU32(h + 4) <= file_size - offset - kFrameHeaderBytes;
}

// Whether bytes [from, file_size) of the file are all zero. Errors: kInternal (I/O).
Result<bool> ZerosFrom(Env& env, int fd, uint64_t from, uint64_t file_size) {
  std::vector<std::byte> buf(kResyncChunk);
  for (uint64_t pos = from; pos < file_size;) {
    size_t got = 0;
    auto out =
        std::span(buf).first(static_cast<size_t>(std::min<uint64_t>(buf.size(), file_size - pos)));
    if (int err = env.Read(fd, out, pos, &got); err != 0) {
      return ErrnoError("read log segment", err);
    }
    if (got == 0) break;
    if (!log_format::AllZero(std::span(buf).first(got))) return false;
    pos += got;
  }
  return true;
}

// Reads the header; fills header_ok / blank.
Status ScanHeader(Env& env, int fd, uint64_t first_seq, SegmentScan* scan) {
  std::vector<std::byte> h(kSegmentHeaderBytes);
  size_t got = 0;
  if (int err = env.Read(fd, h, 0, &got); err != 0) return ErrnoError("read log segment", err);
  h.resize(got);
  scan->header_ok = log_format::DecodeSegmentHeader(h) == first_seq;
  if (scan->header_ok || !log_format::AllZero(h)) return Status::Ok();
  // Blank only if zeros throughout.
  PACKICE_ASSIGN_OR_RETURN(bool zeros, ZerosFrom(env, fd, 0, scan->file_size));
  const bool nonzero = !zeros;
  scan->blank = !nonzero;
  return Status::Ok();
}

}  // namespace

Result<bool> GoodFrameAfter(Env& env, int fd, uint64_t after, uint64_t file_size,
                            uint64_t min_seq) {
  std::vector<std::byte> buf(kResyncChunk + kFrameHeaderBytes);
  for (uint64_t pos = after + 1; pos + kFrameHeaderBytes <= file_size; pos += kResyncChunk) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), file_size - pos));
    size_t len = 0;
    while (len < want) {
      size_t got = 0;
      auto out = std::span(buf).subspan(len, want - len);
      if (int err = env.Read(fd, out, pos + len, &got); err != 0) {
        return ErrnoError("read log segment", err);
      }
      if (got == 0) break;
      len += got;
    }
    if (log_format::AllZero(std::span(buf).first(len))) continue;  // preallocated zeros
    for (size_t i = 0; i < kResyncChunk && i + kFrameHeaderBytes <= len; ++i) {
      if (!PlausibleHeader(buf.data() + i, pos + i, file_size, min_seq)) continue;
      FrameReader reader(env, fd, pos + i, file_size);
      FrameReader::Frame frame;
      PACKICE_ASSIGN_OR_RETURN(FrameReader::Outcome outcome, reader.Next(&frame));
      if (outcome == FrameReader::Outcome::kRecord) return true;
    }
  }
  return false;
}

Result<SegmentScan> ScanSegment(Env& env, int fd, uint64_t first_seq, uint64_t index_interval) {
  SegmentScan scan;
  struct stat st {};
  if (int err = env.Fstat(fd, &st); err != 0) return ErrnoError("stat log segment", err);
  scan.file_size = static_cast<uint64_t>(st.st_size);
  PACKICE_RETURN_IF_ERROR(ScanHeader(env, fd, first_seq, &scan));
  if (!scan.header_ok) return scan;

  FrameReader reader(env, fd, kSegmentHeaderBytes, scan.file_size);
  scan.end_offset = kSegmentHeaderBytes;
  // Where the current Append began: what to drop if it turns out cut.
  uint64_t group_offset = scan.end_offset;
  uint64_t group_records = 0;
  size_t group_index = 0;
  bool in_group = false;
  uint64_t last_indexed = 0;
  while (true) {
    FrameReader::Frame frame;
    PACKICE_ASSIGN_OR_RETURN(FrameReader::Outcome outcome, reader.Next(&frame));
    const uint64_t expected = first_seq + scan.records;
    if (outcome == FrameReader::Outcome::kEnd) {
      // Zeros where the next frame would start must be zeros to the end of the file: else a
      // hole (a page an unsynced write never got to disk, or damage) with data after it.
      const uint64_t at = reader.offset();
      PACKICE_ASSIGN_OR_RETURN(bool zeros, ZerosFrom(env, fd, at, scan.file_size));
      if (!zeros) {
        scan.stopped_bad = true;
        scan.bad_offset = at;
        scan.bad_reason = "zeros where a frame should start, and data after them";
        PACKICE_ASSIGN_OR_RETURN(scan.good_after_bad,
                                 GoodFrameAfter(env, fd, at, scan.file_size, expected));
      }
      break;
    }
    if (outcome == FrameReader::Outcome::kRecord && frame.seq != expected) {
      scan.stopped_bad = true;
      scan.good_after_bad = true;  // a whole, checksummed frame in the wrong place: damage
      scan.bad_offset = frame.offset;
      scan.bad_reason = "sequence number " + std::to_string(frame.seq) + " where " +
                        std::to_string(expected) + " was expected";
      break;
    }
    if (outcome == FrameReader::Outcome::kBad) {
      scan.stopped_bad = true;
      scan.bad_offset = reader.offset();
      scan.bad_reason = std::string(reader.reason());
      PACKICE_ASSIGN_OR_RETURN(scan.good_after_bad,
                               GoodFrameAfter(env, fd, scan.bad_offset, scan.file_size, expected));
      break;
    }
    if (!in_group) {
      group_offset = frame.offset;
      group_records = scan.records;
      group_index = scan.index.size();
    }
    in_group = (frame.flags & log_format::kFlagMoreInAppend) != 0;
    if (scan.index.empty() || frame.offset - last_indexed >= index_interval) {
      scan.index.push_back({frame.seq, frame.offset});
      last_indexed = frame.offset;
    }
    ++scan.records;
    scan.end_offset = reader.offset();
  }
  if (in_group) {  // the last Append was cut: none of it was acknowledged
    scan.dropped_partial_append = scan.records - group_records;
    scan.records = group_records;
    scan.end_offset = group_offset;
    scan.index.resize(group_index);
  }
  return scan;
}

}  // namespace packice
