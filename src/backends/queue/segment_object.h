// The bytes of a tiered queue bucket (docs/queue.md, "The tiered backend"): a sealed run of
// records as one object of the store, and the bucket's MANIFEST of them. Both come back from
// outside the process (an object store any client may write to, a file on disk), so decoding
// checks every length and checksum before it trusts one (fuzz/fuzz_queue_segment.cc).
//
// The segment object:
//   header  magic "PKQSEG01" | first offset u64 | count u64 | index position u64 |
//           crc u32 (of the 32 bytes before it) | reserved u32            (40 bytes)
//   frames  per record: crc u32 (of the record) | length u32 | the record (record_codec.h)
//   index   count × u64: each frame's position in the object
// Little-endian; nothing follows the index.
#ifndef PACKICE_BACKENDS_QUEUE_SEGMENT_OBJECT_H_
#define PACKICE_BACKENDS_QUEUE_SEGMENT_OBJECT_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "packice/queue.h"
#include "packice/status.h"

namespace packice {

inline constexpr char kSegmentObjectMagic[8] = {'P', 'K', 'Q', 'S', 'E', 'G', '0', '1'};
inline constexpr size_t kSegmentObjectHeaderBytes = 40;
inline constexpr size_t kSegmentFrameBytes = 8;

// A run of records being sealed: their frames and positions, built record by record.
struct SealedRun {
  uint64_t first = 0;
  uint64_t count = 0;
  std::string frames;              // framed records
  std::vector<uint64_t> position;  // of each frame, in the object
  int64_t newest_unix_ms = 0;
  uint64_t object_bytes() const { return kSegmentObjectHeaderBytes + frames.size() + 8 * count; }
};

// Frames `r` (its encoding, record_codec.h) onto the run.
void AddToRun(SealedRun* run, const QueueRecord& r);
// The object of `run`. REQUIRES: out.size() == run.object_bytes().
void WriteSegmentObject(const SealedRun& run, std::span<std::byte> out);

// Records from `offset` of the object `bytes` (which should hold [first, end)), appended to
// `out` within `limit` and `*budget` bytes of records (at least one when `out` is empty; the
// budget shrinks by what is read). Returns the offset after the last one read. Errors:
// kDataLoss naming `key` (not a segment object, another run than [first, end), a length out
// of bounds, a checksum mismatch, a record that does not decode; `offset` outside the run).
Result<uint64_t> ReadSegmentObject(std::span<const std::byte> bytes, const std::string& key,
                                   uint64_t first, uint64_t end, uint64_t offset, size_t limit,
                                   size_t* budget, std::vector<StoredRecord>* out);

// The MANIFEST: "packice-queue-tiers 1", "sealed_end N", a line "object <first> <end> <bytes>
// <newest ms> <durable 0|1> <lost 0|1>" per object (in order, each starting where the one
// before ends, none past sealed_end), and "end".
struct TierEntry {
  uint64_t first = 0, end = 0, bytes = 0;
  int64_t newest_unix_ms = 0;
  bool durable = false;
  bool lost = false;  // gone from the store while the log no longer had its records
};

struct TierManifest {
  uint64_t sealed_end = 0;
  std::vector<TierEntry> entries;
};

std::string SerializeTierManifest(const TierManifest& m);
// Errors: kDataLoss naming `path` and the line (a cut file has no "end").
Result<TierManifest> ParseTierManifest(const std::string& text, const std::string& path);

}  // namespace packice

#endif  // PACKICE_BACKENDS_QUEUE_SEGMENT_OBJECT_H_
