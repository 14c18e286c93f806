// ExportTopic / ImportTopic (include/packice/queue.h): a topic as one file (docs/queue.md,
// "Export format"). Little-endian:
//
//   "PKQEXP02"                         magic, 8 bytes ("PKQEXP01": no schemas, still read)
//   u32 buckets, u8 fsync | storage << 4, u64 fsync_interval_ms, u64 segment_bytes,
//   u64 retention_bytes, u64 retention_age_ms     the topic's options
//   u32 versions, then each: u32 length, QueueSchemaJson     its schema versions, oldest first
//   entries: u32 bucket, u32 length, u32 crc, record   (the record codec's bytes; crc: zlib's
//                                                       CRC-32 of them)
//   u32 0xffffffff, u64 records        the end, and how many entries came before it
//
// Records are exported as a read gives them (under the newest schema version); an import
// appends them and then sets the versions, so that records from before the schema come back.
// An export is written to PATH.tmp and renamed once complete, so a file at PATH is whole.
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "backends/queue/record_codec.h"
#include "core/byte_codec.h"
#include "core/byte_order.h"
#include "packice/queue.h"

namespace packice {
namespace {

constexpr char kMagic[8] = {'P', 'K', 'Q', 'E', 'X', 'P', '0', '2'};
constexpr char kMagicV1[8] = {'P', 'K', 'Q', 'E', 'X', 'P', '0', '1'};
constexpr uint32_t kMaxSchemaVersions = 1000;
constexpr uint32_t kMaxSchemaBytes = 1u << 20;
constexpr uint32_t kEnd = 0xffffffffu;
constexpr uint32_t kMaxEntryBytes = 5u << 20;  // a record is at most 4 MiB encoded
constexpr size_t kImportBatchRecords = 1024;
constexpr size_t kImportBatchBytes = 4u << 20;

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

Status IoError(const std::string& what, const std::string& path) {
  return Internal(what + " " + path + ": " + std::strerror(errno));
}

uint32_t CrcOf(std::string_view bytes) {
  return static_cast<uint32_t>(
      crc32_z(0, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

std::span<const std::byte> AsBytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// Reads exactly `n` bytes; false at a short read (a torn file).
bool ReadExact(FILE* f, std::string* out, size_t n) {
  out->resize(n);
  return std::fread(out->data(), 1, n, f) == n;
}

}  // namespace

Status ExportTopic(Queue& queue, std::string_view topic, const std::string& path) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<TopicInfo> topics, queue.ListTopics());
  const TopicInfo* info = nullptr;
  for (const TopicInfo& t : topics) {
    if (t.name == topic) info = &t;
  }
  if (info == nullptr) return NotFound("no topic " + std::string(topic));
  PACKICE_ASSIGN_OR_RETURN(std::vector<BucketInfo> buckets, queue.Buckets(topic));

  const std::string tmp = path + ".tmp";
  File f(std::fopen(tmp.c_str(), "wb"));
  if (f == nullptr) return IoError("cannot create", tmp);
  std::string out(kMagic, sizeof kMagic);
  const TopicOptions& o = info->options;
  AppendU32(&out, o.buckets);
  AppendU8(&out,
           static_cast<uint8_t>(static_cast<int>(o.fsync) | static_cast<int>(o.storage) << 4));
  AppendU64(&out, o.fsync_interval.count());
  AppendU64(&out, o.segment_bytes);
  AppendU64(&out, o.retention_bytes);
  AppendU64(&out, o.retention_age.count());
  PACKICE_ASSIGN_OR_RETURN(std::vector<QueueSchema> schemas, queue.Schemas(topic));
  AppendU32(&out, static_cast<uint32_t>(schemas.size()));
  for (const QueueSchema& schema : schemas) {
    const std::string json = QueueSchemaJson(schema);
    AppendU32(&out, static_cast<uint32_t>(json.size()));
    out += json;
  }
  uint64_t count = 0;
  std::string encoded;
  for (const BucketInfo& b : buckets) {
    QueuePosition at{b.bucket, b.start_offset};
    while (at.offset < b.end_offset) {
      const QueuePosition from[] = {at};
      PACKICE_ASSIGN_OR_RETURN(
          std::vector<BucketRecords> got,
          queue.Read(topic, from, kImportBatchRecords, std::chrono::milliseconds(0)));
      if (got.empty() || got[0].records.empty()) break;  // retention raced the export
      for (const StoredRecord& r : got[0].records) {
        encoded.clear();
        EncodeRecord(r.record, &encoded);
        AppendU32(&out, b.bucket);
        AppendU32(&out, static_cast<uint32_t>(encoded.size()));
        AppendU32(&out, CrcOf(encoded));
        out += encoded;
        ++count;
        at.offset = r.offset + 1;
      }
      if (std::fwrite(out.data(), 1, out.size(), f.get()) != out.size()) {
        return IoError("cannot write", tmp);
      }
      out.clear();
    }
  }
  AppendU32(&out, kEnd);
  AppendU64(&out, count);
  if (std::fwrite(out.data(), 1, out.size(), f.get()) != out.size() || std::fflush(f.get()) != 0) {
    return IoError("cannot write", tmp);
  }
  f.reset();
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Internal("cannot rename " + tmp + " to " + path + ": " + ec.message());
  return Status::Ok();
}

Status ImportTopic(Queue& queue, std::string_view topic, const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (f == nullptr) {
    if (errno == ENOENT) return NotFound("no file " + path);
    return IoError("cannot open", path);
  }
  const Status torn = DataLoss(path + " is not a whole queue export");
  std::string buf;
  constexpr size_t kHeaderBytes = sizeof kMagic + 4 + 1 + 8 * 4;
  if (!ReadExact(f.get(), &buf, kHeaderBytes) ||
      (std::memcmp(buf.data(), kMagic, 8) != 0 && std::memcmp(buf.data(), kMagicV1, 8) != 0)) {
    return DataLoss(path + " is not a queue export (no PKQEXP02 or PKQEXP01 header)");
  }
  const bool has_schemas = std::memcmp(buf.data(), kMagic, 8) == 0;
  ByteReader header(AsBytes(buf).subspan(sizeof kMagic));
  TopicOptions o;
  uint8_t fsync = 0;
  uint64_t interval = 0, age = 0;
  header.U32(&o.buckets);
  header.U8(&fsync);
  header.U64(&interval);
  header.U64(&o.segment_bytes);
  header.U64(&o.retention_bytes);
  header.U64(&age);
  const uint8_t storage = fsync >> 4;
  fsync &= 0x0f;
  if (fsync > static_cast<uint8_t>(QueueFsync::kNever) ||
      storage > static_cast<uint8_t>(QueueStorage::kTiered)) {
    return torn;
  }
  o.fsync = static_cast<QueueFsync>(fsync);
  o.storage = static_cast<QueueStorage>(storage);
  o.fsync_interval = std::chrono::milliseconds(interval);
  o.retention_age = std::chrono::milliseconds(age);
  std::vector<QueueSchema> schemas;
  if (has_schemas) {
    if (!ReadExact(f.get(), &buf, 4)) return torn;
    const uint32_t versions = GetU32(reinterpret_cast<const std::byte*>(buf.data()));
    if (versions > kMaxSchemaVersions) return DataLoss(path + ": too many schema versions");
    for (uint32_t v = 0; v < versions; ++v) {
      if (!ReadExact(f.get(), &buf, 4)) return torn;
      const uint32_t length = GetU32(reinterpret_cast<const std::byte*>(buf.data()));
      if (length > kMaxSchemaBytes || !ReadExact(f.get(), &buf, length)) return torn;
      Result<QueueSchema> schema = ParseQueueSchema(buf);
      if (!schema.ok())
        return DataLoss(path + ": schema version " + std::to_string(v + 1) + ": " +
                        std::string(schema.status().message()));
      schemas.push_back(*std::move(schema));
    }
  }
  PACKICE_RETURN_IF_ERROR(queue.CreateTopic(topic, o));

  // Imports everything or nothing: on an error the new topic goes again.
  auto fail = [&](Status s) {
    (void)queue.DeleteTopic(topic);
    return s;
  };
  std::vector<std::vector<QueueRecord>> pending(o.buckets);
  std::vector<size_t> pending_bytes(o.buckets, 0);
  auto flush = [&](uint32_t b) -> Status {
    if (pending[b].empty()) return Status::Ok();
    Status s = queue.Append(topic, b, pending[b]).status();
    pending[b].clear();
    pending_bytes[b] = 0;
    return s;
  };
  uint64_t count = 0;
  while (true) {
    if (!ReadExact(f.get(), &buf, 4)) return fail(torn);
    const uint32_t bucket = GetU32(reinterpret_cast<const std::byte*>(buf.data()));
    if (bucket == kEnd) {
      if (!ReadExact(f.get(), &buf, 8)) return fail(torn);
      if (GetU64(reinterpret_cast<const std::byte*>(buf.data())) != count) {
        return fail(DataLoss(path + ": the end counts other records than the file holds"));
      }
      break;
    }
    if (!ReadExact(f.get(), &buf, 8)) return fail(torn);
    const uint32_t length = GetU32(reinterpret_cast<const std::byte*>(buf.data()));
    const uint32_t crc = GetU32(reinterpret_cast<const std::byte*>(buf.data()) + 4);
    if (bucket >= o.buckets || length > kMaxEntryBytes) {
      return fail(DataLoss(path + ": entry " + std::to_string(count) + " is malformed"));
    }
    if (!ReadExact(f.get(), &buf, length)) return fail(torn);
    if (CrcOf(buf) != crc) {
      return fail(DataLoss(path + ": entry " + std::to_string(count) + " fails its checksum"));
    }
    Result<QueueRecord> r = DecodeRecord(AsBytes(buf));
    if (!r.ok()) return fail(r.status());
    pending[bucket].push_back(*std::move(r));
    pending_bytes[bucket] += length;
    ++count;
    if (pending[bucket].size() >= kImportBatchRecords ||
        pending_bytes[bucket] >= kImportBatchBytes) {
      if (Status s = flush(bucket); !s.ok()) return fail(s);
    }
  }
  for (uint32_t b = 0; b < o.buckets; ++b) {
    if (Status s = flush(b); !s.ok()) return fail(s);
  }
  for (const QueueSchema& schema : schemas) {
    if (Result<uint32_t> v = queue.SetSchema(topic, schema); !v.ok()) return fail(v.status());
  }
  return Status::Ok();
}

}  // namespace packice
