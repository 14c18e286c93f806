// ScanSegment: what recovery learns from one segment file — its records, where they end, a sparse
// offset index, and how the records stop (zeros, EOF, or something bad) — without changing the
// file. Log::Open decides from it (docs/log.md, "Recovery").
//
// Thread safety: a pure function of the file.
#ifndef PACKICE_BACKENDS_LOG_SEGMENT_SCAN_H_
#define PACKICE_BACKENDS_LOG_SEGMENT_SCAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/env.h"
#include "packice/status.h"

namespace packice {

// A sparse index entry: record `seq` starts at byte `offset` of its segment.
struct LogIndexEntry {
  uint64_t seq = 0;
  uint64_t offset = 0;
};

struct SegmentScan {
  uint64_t file_size = 0;
  // The header is valid and names the expected first sequence number.
  bool header_ok = false;
  // No header, and nothing but zeros in the whole file: a segment whose creation a crash cut.
  bool blank = false;
  uint64_t records = 0;              // good records kept, from the segment's first sequence number
  uint64_t end_offset = 0;           // the byte after the last kept record
  std::vector<LogIndexEntry> index;  // the first record, then one per `index_interval` bytes

  // How the records stop. `stopped_bad`: at a partial frame, a bad header or checksum, or a
  // sequence number out of order, at `bad_offset` (what: `bad_reason`). Otherwise zeros or EOF.
  bool stopped_bad = false;
  uint64_t bad_offset = 0;
  std::string bad_reason;
  // With stopped_bad: a good frame with a later sequence number starts somewhere after
  // bad_offset, or the bad frame itself is a good frame out of order. Then the bad frame is
  // damage in the middle, not a torn tail.
  bool good_after_bad = false;
  // Records dropped from the end because their Append was cut (kFlagMoreInAppend on the last).
  uint64_t dropped_partial_append = 0;
};

// Scans the segment open as `fd` whose name says it starts at `first_seq`. Errors: kInternal
// (I/O); everything about the content is reported in the SegmentScan.
Result<SegmentScan> ScanSegment(Env& env, int fd, uint64_t first_seq, uint64_t index_interval);

// Whether a good frame with a sequence number of at least `min_seq` starts at any byte offset in
// (after, file_size). Errors: kInternal (I/O).
Result<bool> GoodFrameAfter(Env& env, int fd, uint64_t after, uint64_t file_size, uint64_t min_seq);

}  // namespace packice

#endif  // PACKICE_BACKENDS_LOG_SEGMENT_SCAN_H_
