// libFuzzer target: the bytes a tiered queue bucket reads back (src/backends/queue/
// segment_object.h) — a sealed segment object, which any client of the object store may
// have rewritten, and the bucket's MANIFEST. Any crash, sanitizer report or unbounded
// allocation is a bug; so is a manifest that parses but does not serialize back to one that
// parses the same, and records read from an object that do not read back the same from the
// object sealed from them.
//
// The first byte picks the decoder: even, the manifest; odd, a segment object (the run it is
// read as comes from its own header, the offset from the second byte).
//
//   fuzz_queue_segment -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/queue_segment
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "backends/queue/segment_object.h"
#include "core/byte_order.h"

namespace {

void Manifest(std::span<const std::byte> bytes) {
  const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  auto m = packice::ParseTierManifest(text, "MANIFEST");
  if (!m.ok()) return;
  auto again = packice::ParseTierManifest(packice::SerializeTierManifest(*m), "MANIFEST");
  if (!again.ok() || again->sealed_end != m->sealed_end ||
      again->entries.size() != m->entries.size()) {
    std::abort();
  }
}

void Object(std::span<const std::byte> bytes, uint8_t pick) {
  if (bytes.size() < packice::kSegmentObjectHeaderBytes) {
    size_t budget = 1 << 20;
    std::vector<packice::StoredRecord> out;
    (void)packice::ReadSegmentObject(bytes, "k", 0, 1, 0, 100, &budget, &out);
    return;
  }
  const uint64_t first = packice::GetU64(bytes.data() + 8);
  const uint64_t count = std::min<uint64_t>(packice::GetU64(bytes.data() + 16), 1u << 20);
  if (first > UINT64_MAX - count) return;
  const uint64_t end = first + count;
  const uint64_t offset = first + (count == 0 ? 0 : pick % count);
  size_t budget = (pick & 1) ? 64 : (16u << 20);
  std::vector<packice::StoredRecord> out;
  auto next = packice::ReadSegmentObject(bytes, "k", first, end, offset, 1000, &budget, &out);
  if (!next.ok() || out.empty()) return;
  // What was read, sealed again, reads back the same.
  packice::SealedRun run;
  run.first = out.front().offset;
  for (const packice::StoredRecord& r : out) packice::AddToRun(&run, r.record);
  std::vector<std::byte> object(run.object_bytes());
  packice::WriteSegmentObject(run, object);
  size_t all = SIZE_MAX;
  std::vector<packice::StoredRecord> again;
  auto back = packice::ReadSegmentObject(object, "k", run.first, run.first + run.count, run.first,
                                         SIZE_MAX, &all, &again);
  if (!back.ok() || again != out) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto bytes = std::as_bytes(std::span(reinterpret_cast<const char*>(data), size));
  if (data[0] % 2 == 0) {
    Manifest(bytes.subspan(1));
  } else {
    Object(bytes.subspan(1), size > 1 ? data[1] : 0);
  }
  return 0;
}
