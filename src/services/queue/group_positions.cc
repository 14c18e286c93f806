#include "services/queue/group_positions.h"

#include "core/byte_codec.h"

namespace packice::queue {
namespace {

constexpr uint8_t kCommitRecord = 1;

void AppendEntry(std::string* out, const std::string& group, uint32_t bucket, uint64_t offset) {
  AppendBytes(out, group);
  AppendU32(out, bucket);
  AppendU64(out, offset);
}

bool ReadEntry(ByteReader& in, std::string* group, uint32_t* bucket, uint64_t* offset) {
  return in.Bytes(group) && in.U32(bucket) && in.U64(offset);
}

}  // namespace

Result<std::unique_ptr<GroupPositions>> GroupPositions::Open(LogOptions options) {
  options.sync = SyncPolicy::kAlways;
  auto g = std::make_unique<GroupPositions>();
  PACKICE_ASSIGN_OR_RETURN(g->log_, Log::Open(std::move(options)));
  PACKICE_RETURN_IF_ERROR(g->Recover());
  return g;
}

Status GroupPositions::Recover() {
  uint64_t from = log_->first_seq();
  auto snap = log_->ReadSnapshot();
  if (snap.ok()) {
    ByteReader in(std::as_bytes(std::span(snap->bytes)));
    uint64_t count = 0;
    if (!in.U64(&count)) return DataLoss("queue group positions: snapshot header cut");
    for (uint64_t i = 0; i < count; ++i) {
      std::string group;
      uint32_t bucket = 0;
      uint64_t offset = 0;
      if (!ReadEntry(in, &group, &bucket, &offset)) {
        return DataLoss("queue group positions: snapshot entry " + std::to_string(i) + " cut");
      }
      positions_[{std::move(group), bucket}] = offset;
    }
    from = std::max(from, snap->seq);
  } else if (snap.status().code() != StatusCode::kNotFound) {
    return snap.status();
  }
  while (from < log_->next_seq()) {
    PACKICE_ASSIGN_OR_RETURN(LogReadResult r, log_->Read(from, 4096, 4u << 20));
    for (const LogRecord& rec : r.records) {
      ByteReader in(rec.payload);
      std::string group;
      uint32_t bucket = 0;
      uint64_t offset = 0;
      if (rec.type != kCommitRecord || !ReadEntry(in, &group, &bucket, &offset) || !in.done()) {
        return DataLoss("queue group positions: record " + std::to_string(rec.seq) +
                        " is not a commit");
      }
      positions_[{std::move(group), bucket}] = offset;
      ++since_snapshot_;
    }
    from = r.next_seq;
  }
  return Status::Ok();
}

Status GroupPositions::Commit(const std::string& group, uint32_t bucket, uint64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  if (log_ != nullptr) {
    std::string payload;
    AppendEntry(&payload, group, bucket, offset);
    PACKICE_RETURN_IF_ERROR(
        log_->Append(std::as_bytes(std::span(payload)), kCommitRecord).status());
  }
  positions_[{group, bucket}] = offset;
  if (log_ != nullptr && ++since_snapshot_ >= kSnapshotEvery) {
    std::string bytes;
    AppendU64(&bytes, positions_.size());
    for (const auto& [key, at] : positions_) AppendEntry(&bytes, key.first, key.second, at);
    const uint64_t seq = log_->next_seq();
    // A failure keeps the log as it was: the commits stay in it, the next one tries again.
    if (log_->WriteSnapshot(seq, std::as_bytes(std::span(bytes))).ok() &&
        log_->TruncateBefore(seq).ok()) {
      since_snapshot_ = 0;
    }
  }
  return Status::Ok();
}

std::optional<uint64_t> GroupPositions::Get(const std::string& group, uint32_t bucket) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = positions_.find({group, bucket});
  if (it == positions_.end()) return std::nullopt;
  return it->second;
}

std::map<std::pair<std::string, uint32_t>, uint64_t> GroupPositions::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  return positions_;
}

}  // namespace packice::queue
