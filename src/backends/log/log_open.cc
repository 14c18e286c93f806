// Log::Open: option checks, the directory, and recovery (docs/log.md, "Recovery").
#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "backends/file/file_blob.h"  // OpenStoreDir
#include "backends/log/log.h"
#include "backends/log/log_format.h"
#include "backends/log/log_impl.h"

namespace packice {
namespace {

using log_format::kFrameHeaderBytes;
using log_format::kSegmentHeaderBytes;

Status CheckOptions(const LogOptions& o) {
  if (o.dir.empty()) return InvalidArgument("a log needs a directory");
  if (o.segment_bytes < 4096 || o.segment_bytes > log_format::kMaxSegmentBytes) {
    return InvalidArgument("segment_bytes must be between 4 KiB and 4 GiB");
  }
  if (o.max_batch_bytes > o.segment_bytes - kSegmentHeaderBytes) {
    return InvalidArgument("max_batch_bytes must leave room for a segment header");
  }
  if (o.max_record_bytes + kFrameHeaderBytes > o.max_batch_bytes) {
    return InvalidArgument("max_record_bytes + 20 must not exceed max_batch_bytes");
  }
  if (o.index_interval_bytes == 0) return InvalidArgument("index_interval_bytes must be positive");
  if (o.sync == SyncPolicy::kInterval && o.sync_interval.count() <= 0) {
    return InvalidArgument("sync_interval must be positive");
  }
  return Status::Ok();
}

Status Corrupt(const std::string& path, const std::string& what) {
  return DataLoss("log segment " + path + ": " + what);
}

}  // namespace

Result<std::unique_ptr<Log>> Log::Open(LogOptions options) {
  PACKICE_RETURN_IF_ERROR(CheckOptions(options));
  if (!options.env) options.env = Env::Default();
  PACKICE_ASSIGN_OR_RETURN(UniqueFd lock, OpenStoreDir(*options.env, options.dir, {}, true));
  auto impl = std::make_unique<Impl>(std::move(options), std::move(lock));
  PACKICE_RETURN_IF_ERROR(impl->Recover());
  impl->StartFlusher();
  return std::unique_ptr<Log>(new Log(std::move(impl)));
}

void Log::Impl::StartFlusher() {
  if (options_.sync != SyncPolicy::kInterval) return;
  flusher_ =
      std::make_unique<PeriodicThread>(options_.sync_interval, [this] { Sync().IgnoreError(); });
}

Status Log::Impl::Recover() {
  std::vector<std::pair<uint64_t, std::string>> names;
  for (const std::string& name : NamesWithSuffix(env_, options_.dir, ".log")) {
    if (auto seq = log_format::ParseSegmentFileName(name)) names.emplace_back(*seq, name);
  }
  std::sort(names.begin(), names.end());
  std::vector<std::shared_ptr<LogSegment>> segments;
  if (names.empty()) {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<LogSegment> first, CreateSegment(options_.first_seq));
    segments.push_back(std::move(first));
  }
  for (size_t i = 0; i < names.size(); ++i) {
    std::shared_ptr<LogSegment> segment;
    const bool last = i + 1 == names.size();
    PACKICE_RETURN_IF_ERROR(RecoverSegment(names[i].first, names[i].second, last, &segment));
    if (!last && segment->end_seq != names[i + 1].first) {
      return Corrupt(segment->path, "holds records [" + std::to_string(segment->first_seq) + ", " +
                                        std::to_string(segment->end_seq) +
                                        ") but the next segment starts at " +
                                        std::to_string(names[i + 1].first));
    }
    segments.push_back(std::move(segment));
  }
  (void)env_.Unlink(options_.dir + "/SNAPSHOT.tmp");  // a WriteSnapshot a crash cut
  MutexLock lock(&mu_);
  segments_ = std::move(segments);
  active_ = segments_.back();
  write_offset_ = active_->end_offset;
  next_seq_ = visible_seq_ = durable_seq_ = active_->end_seq;
  return Status::Ok();
}

Status Log::Impl::RecoverSegment(uint64_t first_seq, const std::string& name, bool last,
                                 std::shared_ptr<LogSegment>* out) {
  auto segment = std::make_shared<LogSegment>();
  segment->first_seq = first_seq;
  segment->path = options_.dir + "/" + name;
  const std::string& path = segment->path;
  if (int err = env_.Open(path, last ? O_RDWR : O_RDONLY, 0, &segment->fd); err != 0) {
    return ErrnoError("open " + path, err);
  }
  PACKICE_ASSIGN_OR_RETURN(SegmentScan scan, ScanSegment(env_, segment->fd.get(), first_seq,
                                                         options_.index_interval_bytes));
  const bool blank = !scan.header_ok && scan.blank && last;
  if (!scan.header_ok && !blank) return Corrupt(path, "no valid segment header");
  if (scan.stopped_bad && (!last || (scan.good_after_bad && !options_.drop_corrupt_tail))) {
    return Corrupt(path, scan.bad_reason + " at offset " + std::to_string(scan.bad_offset) +
                             (last ? ", with good records after it" : " in a full segment"));
  }
  if (!last && scan.dropped_partial_append > 0) {
    return Corrupt(path, "a full segment ends in the middle of an Append");
  }
  if (blank) scan.end_offset = kSegmentHeaderBytes;
  segment->end_seq = first_seq + scan.records;
  segment->end_offset = scan.end_offset;
  segment->index = std::move(scan.index);
  segment->last_indexed = segment->index.empty() ? 0 : segment->index.back().offset;
  if (last) {
    const bool cut = blank || scan.stopped_bad || scan.dropped_partial_append > 0;
    if (cut) {
      spdlog::warn("log {}: dropping {} bytes after record {} ({}{})", path,
                   scan.file_size - scan.end_offset, segment->end_seq,
                   blank ? "a segment whose creation was cut"
                         : (scan.stopped_bad ? scan.bad_reason : "a cut Append"),
                   scan.dropped_partial_append > 0 ? ", a cut Append" : "");
      // Cut back to the last good record, then zeros again up to the segment's size.
      if (int err = env_.Truncate(segment->fd.get(), scan.end_offset); err != 0) {
        return ErrnoError("truncate " + path, err);
      }
      if (blank) {
        const std::vector<std::byte> header = log_format::EncodeSegmentHeader(first_seq);
        PACKICE_RETURN_IF_ERROR(WriteFully(env_, segment->fd.get(), header, 0, "write " + path));
      }
    }
    if (cut || scan.file_size < options_.segment_bytes) {
      if (int err = env_.Allocate(segment->fd.get(), options_.segment_bytes);
          err != 0 && err != EOPNOTSUPP) {
        if (err == ENOSPC) return OutOfCapacity("preallocate " + path + ": no space left");
        return ErrnoError("preallocate " + path, err);
      }
      if (int err = env_.SyncData(segment->fd.get()); err != 0) {
        return ErrnoError("fdatasync " + path, err);
      }
    }
  }
  *out = std::move(segment);
  return Status::Ok();
}

}  // namespace packice
