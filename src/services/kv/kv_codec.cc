#include "services/kv/kv_codec.h"

#include <cstring>

#include "core/byte_codec.h"

namespace packice::kv {
namespace {

constexpr uint32_t kSnapshotMagic = 0x53564B50;  // "PKVS"
constexpr uint32_t kSnapshotFormat = 1;
constexpr uint8_t kOpPut = 1;
constexpr uint8_t kOpDelete = 2;

using Reader = ByteReader;

}  // namespace

std::string EncodeMutations(std::span<const Mutation> mutations) {
  size_t bytes = 4;  // one allocation, not a series of growing copies of a value
  for (const Mutation& m : mutations) {
    bytes += 5 + m.key.size() + (m.put ? 4 + m.entry.value.size() + 24 : 0);
  }
  std::string out;
  out.reserve(bytes);
  AppendU32(&out, static_cast<uint32_t>(mutations.size()));
  for (const Mutation& m : mutations) {
    out.push_back(static_cast<char>(m.put ? kOpPut : kOpDelete));
    AppendBytes(&out, m.key);
    if (!m.put) continue;
    AppendBytes(&out, m.entry.value);
    AppendU64(&out, static_cast<uint64_t>(m.entry.create_revision));
    AppendU64(&out, static_cast<uint64_t>(m.entry.version));
    AppendU64(&out, static_cast<uint64_t>(m.entry.expires_unix_ms));
  }
  return out;
}

Result<std::vector<Mutation>> DecodeMutations(std::span<const std::byte> bytes) {
  Reader r(bytes);
  uint32_t count = 0;
  if (!r.U32(&count) || count > r.left()) return DataLoss("kv record: bad mutation count");
  std::vector<Mutation> out(count);
  for (Mutation& m : out) {
    uint8_t op = 0;
    if (!r.U8(&op) || (op != kOpPut && op != kOpDelete) || !r.Bytes(&m.key)) {
      return DataLoss("kv record: bad mutation");
    }
    m.put = op == kOpPut;
    if (m.put && !(r.Bytes(&m.entry.value) && r.I64(&m.entry.create_revision) &&
                   r.I64(&m.entry.version) && r.I64(&m.entry.expires_unix_ms))) {
      return DataLoss("kv record: bad put");
    }
  }
  if (!r.done()) return DataLoss("kv record: trailing bytes");
  return out;
}

SnapshotWriter::SnapshotWriter(int64_t revision) {
  AppendU32(&out_, kSnapshotMagic);
  AppendU32(&out_, kSnapshotFormat);
  AppendU64(&out_, static_cast<uint64_t>(revision));
  AppendU64(&out_, 0);  // count, filled in by Finish
}

void SnapshotWriter::Reserve(uint64_t entries, uint64_t key_value_bytes) {
  out_.reserve(out_.size() + key_value_bytes + entries * (4 + 4 + 4 * 8));
}

void SnapshotWriter::Add(std::string_view key, const Entry& e) {
  AppendBytes(&out_, key);
  AppendBytes(&out_, e.value);
  AppendU64(&out_, static_cast<uint64_t>(e.create_revision));
  AppendU64(&out_, static_cast<uint64_t>(e.mod_revision));
  AppendU64(&out_, static_cast<uint64_t>(e.version));
  AppendU64(&out_, static_cast<uint64_t>(e.expires_unix_ms));
  ++count_;
}

std::string SnapshotWriter::Finish() {
  PutU64(reinterpret_cast<std::byte*>(out_.data()) + 16, count_);
  return std::move(out_);
}

Status DecodeSnapshot(std::span<const std::byte> bytes, int64_t* revision,
                      const std::function<void(std::string key, Entry entry)>& fn) {
  Reader r(bytes);
  uint32_t magic = 0, format = 0;
  uint64_t count = 0;
  if (!r.U32(&magic) || magic != kSnapshotMagic || !r.U32(&format) || format != kSnapshotFormat ||
      !r.I64(revision) || !r.U64(&count)) {
    return DataLoss("kv snapshot: bad header");
  }
  for (uint64_t i = 0; i < count; ++i) {
    std::string key;
    Entry e;
    if (!(r.Bytes(&key) && r.Bytes(&e.value) && r.I64(&e.create_revision) &&
          r.I64(&e.mod_revision) && r.I64(&e.version) && r.I64(&e.expires_unix_ms))) {
      return DataLoss("kv snapshot: entry " + std::to_string(i) + " of " + std::to_string(count) +
                      " is cut or malformed");
    }
    fn(std::move(key), std::move(e));
  }
  if (!r.done()) return DataLoss("kv snapshot: trailing bytes");
  return Status::Ok();
}

}  // namespace packice::kv
