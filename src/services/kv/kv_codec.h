// The KV's byte formats: a log record (the mutations of one revision) and a snapshot (every
// key of a bucket as of a revision). docs/kv.md ("Files") has the layouts.
//
//   record   = u32 count, then count x mutation
//   mutation = u8 op (1 put, 2 delete), bytes key, and for a put: bytes value,
//              i64 create_revision, i64 version, i64 expires_unix_ms
//   snapshot = u32 magic "PKVS", u32 format (1), i64 revision, u64 count,
//              then count x (bytes key, bytes value, i64 create_revision, i64 mod_revision,
//              i64 version, i64 expires_unix_ms)
//   bytes    = u32 length, then the bytes; integers little-endian
//
// A record carries the outcome of its writes (the create revision and version a put gave the
// key), not the request, so replay is deterministic: it never re-reads the clock or checks a
// condition. The mod revision of a record's keys is its revision (log sequence number + 1).
//
// Thread safety: functions of values.
#ifndef PACKICE_SERVICES_KV_KV_CODEC_H_
#define PACKICE_SERVICES_KV_KV_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "packice/status.h"

namespace packice::kv {

// A key's value and metadata as an engine stores it.
struct Entry {
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t expires_unix_ms = 0;  // 0 = none
};

// One change of a record.
struct Mutation {
  bool put = true;  // false: delete
  std::string key;
  Entry entry;  // put only; entry.mod_revision is the record's revision, not encoded
};

// Log record types (the log's type byte).
inline constexpr uint8_t kRecordWrite = 1;   // puts, deletes and batches
inline constexpr uint8_t kRecordExpire = 2;  // deletes of expired keys by the reaper

std::string EncodeMutations(std::span<const Mutation> mutations);
// Errors: kDataLoss (a malformed record: the log's checksum passed, so this is a bug or a
// record of another format).
Result<std::vector<Mutation>> DecodeMutations(std::span<const std::byte> bytes);

// Appends a snapshot's entries one by one.
class SnapshotWriter {
 public:
  explicit SnapshotWriter(int64_t revision);
  // Room for entries of these many key and value bytes in all (one allocation, not a
  // doubling series of copies of a buffer the size of the namespace).
  void Reserve(uint64_t entries, uint64_t key_value_bytes);
  void Add(std::string_view key, const Entry& entry);
  // The snapshot's bytes (count filled in); the writer is spent.
  std::string Finish();

 private:
  std::string out_;
  uint64_t count_ = 0;
};

// Calls `fn` for each entry of a snapshot and sets `*revision`. Errors: kDataLoss.
Status DecodeSnapshot(std::span<const std::byte> bytes, int64_t* revision,
                      const std::function<void(std::string key, Entry entry)>& fn);

}  // namespace packice::kv

#endif  // PACKICE_SERVICES_KV_KV_CODEC_H_
