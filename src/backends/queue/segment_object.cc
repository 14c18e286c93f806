#include "backends/queue/segment_object.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "backends/log/log_format.h"
#include "backends/queue/record_codec.h"
#include "core/byte_order.h"

namespace packice {

void AddToRun(SealedRun* run, const QueueRecord& r) {
  const size_t at = run->frames.size();
  run->position.push_back(kSegmentObjectHeaderBytes + at);
  run->frames.resize(at + kSegmentFrameBytes);
  EncodeRecord(r, &run->frames);
  const size_t length = run->frames.size() - at - kSegmentFrameBytes;
  auto* p = reinterpret_cast<std::byte*>(run->frames.data() + at);
  PutU32(p, log_format::Crc32(0, std::span(p + kSegmentFrameBytes, length)));
  PutU32(p + 4, static_cast<uint32_t>(length));
  ++run->count;
  run->newest_unix_ms = std::max(run->newest_unix_ms, r.timestamp_unix_ms);
}

void WriteSegmentObject(const SealedRun& run, std::span<std::byte> out) {
  std::byte* p = out.data();
  std::memcpy(p, kSegmentObjectMagic, 8);
  PutU64(p + 8, run.first);
  PutU64(p + 16, run.count);
  PutU64(p + 24, kSegmentObjectHeaderBytes + run.frames.size());
  PutU32(p + 32, log_format::Crc32(0, std::span(p, 32)));
  PutU32(p + 36, 0);
  std::memcpy(p + kSegmentObjectHeaderBytes, run.frames.data(), run.frames.size());
  std::byte* index = p + kSegmentObjectHeaderBytes + run.frames.size();
  for (uint64_t i = 0; i < run.count; ++i) PutU64(index + 8 * i, run.position[i]);
}

// Records from `offset` of the object `bytes` (which should hold [first, end)), appended to
// `out` within `limit` and `*budget` (at least one record when `out` is empty). Returns the
// offset after the last one read. Errors: kDataLoss naming `key`.
Result<uint64_t> ReadSegmentObject(std::span<const std::byte> bytes, const std::string& key,
                                   uint64_t first, uint64_t end, uint64_t offset, size_t limit,
                                   size_t* budget, std::vector<StoredRecord>* out) {
  auto bad = [&](const std::string& what) {
    return DataLoss("queue: segment object " + key + ": " + what);
  };
  if (end < first || offset < first || offset > end) {
    return bad("offset " + std::to_string(offset) + " is not in its records " +
               std::to_string(first) + ".." + std::to_string(end));
  }
  if (bytes.size() < kSegmentObjectHeaderBytes ||
      std::memcmp(bytes.data(), kSegmentObjectMagic, 8) != 0) {
    return bad("not a segment object");
  }
  const std::byte* h = bytes.data();
  if (GetU32(h + 32) != log_format::Crc32(0, bytes.first(32)))
    return bad("header checksum mismatch");
  const uint64_t count = GetU64(h + 16), index_at = GetU64(h + 24);
  if (GetU64(h + 8) != first || count != end - first) {
    return bad("holds records " + std::to_string(GetU64(h + 8)) + " +" + std::to_string(count) +
               ", not " + std::to_string(first) + ".." + std::to_string(end));
  }
  if (index_at < kSegmentObjectHeaderBytes || index_at > bytes.size() ||
      (bytes.size() - index_at) / 8 != count || (bytes.size() - index_at) % 8 != 0) {
    return bad("index out of bounds");
  }
  const std::byte* index = h + index_at;
  uint64_t o = offset;
  for (; o < end && out->size() < limit; ++o) {
    const uint64_t at = GetU64(index + 8 * (o - first));
    if (at < kSegmentObjectHeaderBytes || at > index_at - kSegmentFrameBytes)
      return bad("frame out of bounds");
    const uint32_t length = GetU32(h + at + 4);
    if (length > index_at - at - kSegmentFrameBytes) return bad("record out of bounds");
    if (!out->empty() && length > *budget) break;
    const std::span<const std::byte> record = bytes.subspan(at + kSegmentFrameBytes, length);
    if (GetU32(h + at) != log_format::Crc32(0, record)) {
      return bad("record " + std::to_string(o) + " checksum mismatch");
    }
    auto r = DecodeRecord(record);
    if (!r.ok())
      return bad("record " + std::to_string(o) + ": " + std::string(r.status().message()));
    out->push_back({o, *std::move(r)});
    *budget = length >= *budget ? 0 : *budget - length;
  }
  return o;
}

constexpr std::string_view kManifestHeader = "packice-queue-tiers 1";

std::string SerializeTierManifest(const TierManifest& m) {
  std::ostringstream s;
  s << kManifestHeader << "\nsealed_end " << m.sealed_end << "\n";
  for (const TierEntry& e : m.entries) {
    s << "object " << e.first << " " << e.end << " " << e.bytes << " " << e.newest_unix_ms << " "
      << (e.durable ? 1 : 0) << " " << (e.lost ? 1 : 0) << "\n";
  }
  s << "end\n";
  return s.str();
}

Result<TierManifest> ParseTierManifest(const std::string& text, const std::string& path) {
  auto bad = [&](const std::string& what) {
    return DataLoss("queue: " + path + " is not a tier manifest: " + what);
  };
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kManifestHeader) return bad("header");
  TierManifest m;
  std::string tag;
  if (!(in >> tag >> m.sealed_end) || tag != "sealed_end") return bad("sealed_end");
  uint64_t prev_end = 0;
  while (in >> tag && tag == "object") {
    TierEntry e;
    int durable = 0, lost = 0;
    if (!(in >> e.first >> e.end >> e.bytes >> e.newest_unix_ms >> durable >> lost) ||
        e.end <= e.first || (!m.entries.empty() && e.first != prev_end) || e.end > m.sealed_end) {
      return bad("object line " + std::to_string(m.entries.size() + 1));
    }
    e.durable = durable != 0;
    e.lost = lost != 0;
    prev_end = e.end;
    m.entries.push_back(e);
  }
  if (tag != "end") return bad("no end line (cut?)");
  return m;
}

}  // namespace packice
