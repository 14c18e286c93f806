// DIR/SNAPSHOT: the caller's state as of a sequence number (docs/log.md, "Snapshot").
//
//   magic u64 "PKICESNP" | version u32 | reserved u32 | seq u64 | length u64 | crc u32 |
//   reserved u32 | bytes
//
// crc is the CRC-32 of bytes [0, 32) followed by the snapshot's bytes.
#include <fcntl.h>

#include "backends/log/log_format.h"
#include "backends/log/log_impl.h"
#include "core/byte_order.h"

namespace packice {
namespace {

constexpr uint64_t kSnapshotMagic = 0x504E534543494B50ull;  // "PKICESNP"
constexpr size_t kSnapshotHeaderBytes = 40;

std::vector<std::byte> EncodeSnapshotHeader(uint64_t seq, std::span<const std::byte> bytes) {
  std::vector<std::byte> h(kSnapshotHeaderBytes, std::byte{0});
  PutU64(h.data(), kSnapshotMagic);
  PutU32(h.data() + 8, log_format::kFormatVersion);
  PutU64(h.data() + 16, seq);
  PutU64(h.data() + 24, bytes.size());
  PutU32(h.data() + 32, log_format::Crc32(log_format::Crc32(0, std::span(h).first(32)), bytes));
  return h;
}

}  // namespace

Status Log::Impl::WriteSnapshot(uint64_t seq, std::span<const std::byte> bytes) {
  if (bytes.size() > options_.max_snapshot_bytes) {
    return InvalidArgument("a snapshot of " + std::to_string(bytes.size()) +
                           " bytes exceeds max_snapshot_bytes (" +
                           std::to_string(options_.max_snapshot_bytes) + ")");
  }
  const std::string tmp = options_.dir + "/SNAPSHOT.tmp";
  const std::string path = options_.dir + "/SNAPSHOT";
  (void)env_.Unlink(tmp);
  UniqueFd fd;
  if (int err = env_.Open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600, &fd); err != 0) {
    return LogIoError("create", tmp, err);
  }
  Status s = [&]() -> Status {
    const std::vector<std::byte> header = EncodeSnapshotHeader(seq, bytes);
    PACKICE_RETURN_IF_ERROR(LogWriteAll(env_, fd.get(), header, 0, tmp));
    PACKICE_RETURN_IF_ERROR(LogWriteAll(env_, fd.get(), bytes, header.size(), tmp));
    if (int err = env_.SyncData(fd.get()); err != 0) return LogIoError("fdatasync", tmp, err);
    if (int err = env_.Rename(tmp, path); err != 0) return LogIoError("rename", tmp, err);
    return SyncDirStatus(env_, options_.dir);
  }();
  if (!s.ok()) {
    fd.reset();
    (void)env_.Unlink(tmp);
  }
  return s;
}

Result<LogSnapshot> Log::Impl::ReadSnapshot() const {
  const std::string path = options_.dir + "/SNAPSHOT";
  UniqueFd fd;
  if (int err = env_.Open(path, O_RDONLY, 0, &fd); err != 0) {
    if (err == ENOENT) return NotFound("no snapshot in " + options_.dir);
    return ErrnoError("open " + path, err);
  }
  struct stat st {};
  if (int err = env_.Fstat(fd.get(), &st); err != 0) return ErrnoError("stat " + path, err);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  std::vector<std::byte> h(kSnapshotHeaderBytes);
  if (size < h.size()) return DataLoss("snapshot " + path + ": shorter than its header");
  PACKICE_RETURN_IF_ERROR(ReadFully(env_, fd.get(), h, 0, "read " + path));
  const uint64_t length = GetU64(h.data() + 24);
  if (GetU64(h.data()) != kSnapshotMagic || GetU32(h.data() + 8) != log_format::kFormatVersion ||
      length != size - h.size()) {
    return DataLoss("snapshot " + path + ": not a snapshot file, or cut");
  }
  if (length > options_.max_snapshot_bytes) {
    return InvalidArgument("snapshot " + path + " of " + std::to_string(length) +
                           " bytes exceeds max_snapshot_bytes");
  }
  LogSnapshot snapshot;
  snapshot.seq = GetU64(h.data() + 16);
  snapshot.bytes.resize(length);
  auto bytes = std::as_writable_bytes(std::span(snapshot.bytes));
  PACKICE_RETURN_IF_ERROR(ReadFully(env_, fd.get(), bytes, h.size(), "read " + path));
  if (log_format::Crc32(log_format::Crc32(0, std::span(h).first(32)), bytes) !=
      GetU32(h.data() + 32)) {
    return DataLoss("snapshot " + path + ": checksum mismatch");
  }
  return snapshot;
}

}  // namespace packice
