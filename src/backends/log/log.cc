#include "backends/log/log.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>

#include "backends/log/log_format.h"
#include "backends/log/log_impl.h"

namespace packice {
namespace {

using log_format::kFrameHeaderBytes;
using log_format::kSegmentHeaderBytes;

// Waits on `cv` with `mu` held by a MutexLock of the caller (the lock is kept on return).
void Wait(std::condition_variable& cv, Mutex& mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  std::unique_lock<std::mutex> lock(mu.native(), std::adopt_lock);
  cv.wait(lock);
  lock.release();
}
// The same with a deadline: false once it has passed.
bool WaitUntil(std::condition_variable& cv, Mutex& mu,
               std::chrono::steady_clock::time_point deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  std::unique_lock<std::mutex> lock(mu.native(), std::adopt_lock);
  const bool in_time = cv.wait_until(lock, deadline) == std::cv_status::no_timeout;
  lock.release();
  return in_time;
}

}  // namespace

Status LogIoError(std::string_view what, const std::string& path, int err) {
  if (err == ENOSPC) return OutOfCapacity(std::string(what) + " " + path + ": no space left");
  return ErrnoError(std::string(what) + " " + path, err);
}

// A group commit's appends of at least this many bytes each are written from their own
// buffers rather than copied into one.
constexpr uint64_t kDirectWriteBytes = 256u << 10;

Status LogWriteAll(Env& env, int fd, std::span<const std::byte> bytes, uint64_t offset,
                   const std::string& path) {
  uint64_t done = 0;
  while (done < bytes.size()) {
    size_t n = 0;
    if (int err = env.Write(fd, bytes.subspan(done), offset + done, &n); err != 0) {
      return LogIoError("write", path, err);
    }
    if (n == 0) return Internal("write " + path + ": no progress");
    done += n;
  }
  return Status::Ok();
}

// What the leader did with a batch: how many of its writers are written (and synced as the
// policy asks), the segment it started, and the index entries to add.
struct Log::Impl::BatchOutcome {
  size_t written = 0;
  Status error;        // for the writers from `written` on
  bool fatal = false;  // bytes may have reached a file: the log is read-only from now on
  std::shared_ptr<LogSegment> new_segment;
  uint64_t sealed_seq = 0;              // with new_segment: the records before it were synced
  uint64_t sealed_end_offset = 0;       // with new_segment: where the full segment's records end
  bool synced = false;                  // the records written are durable
  std::shared_ptr<LogSegment> segment;  // the active segment after the write
  uint64_t end_offset = 0;              // and where its records end
  std::vector<std::pair<LogSegment*, LogIndexEntry>> index;
  uint64_t bytes = 0;
  uint64_t syncs = 0;
};

Log::Impl::Impl(LogOptions options, UniqueFd lock)
    : options_(std::move(options)), env_(*options_.env), lock_(std::move(lock)) {}

Log::Impl::~Impl() {
  std::vector<std::thread> committers;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    committers.swap(committers_);
    committer_cv_.notify_all();
  }
  for (std::thread& t : committers) t.join();  // each returns once the queue is empty
  flusher_.reset();
  if (options_.sync == SyncPolicy::kInterval) Sync().IgnoreError();
}

// --- appends --------------------------------------------------------------------------------

Status Log::Impl::Prepare(std::span<const LogEntry> entries, LogWriter* w) const {
  if (entries.empty()) return InvalidArgument("an Append of no records");
  uint64_t total = 0;
  for (const LogEntry& e : entries) {
    if (e.type == 0) return InvalidArgument("record type 0 is reserved");
    if (e.payload.size() > options_.max_record_bytes) {
      return InvalidArgument("a record of " + std::to_string(e.payload.size()) +
                             " bytes exceeds max_record_bytes (" +
                             std::to_string(options_.max_record_bytes) + ")");
    }
    total += kFrameHeaderBytes + e.payload.size();
  }
  if (total > options_.max_batch_bytes) {
    return InvalidArgument("an Append of " + std::to_string(total) +
                           " framed bytes exceeds max_batch_bytes (" +
                           std::to_string(options_.max_batch_bytes) + ")");
  }
  // Frames without sequence numbers, and the payloads' checksums, outside the lock: appenders
  // do this in parallel; the leader only finishes the headers.
  w->frames.resize(total);
  w->offsets.reserve(entries.size());
  w->payload_crcs.reserve(entries.size());
  w->types.reserve(entries.size());
  uint64_t at = 0;
  for (const LogEntry& e : entries) {
    w->offsets.push_back(at);
    w->types.push_back(e.type);
    w->payload_crcs.push_back(log_format::Crc32(0, e.payload));
    if (!e.payload.empty()) {
      std::memcpy(w->frames.data() + at + kFrameHeaderBytes, e.payload.data(), e.payload.size());
    }
    at += kFrameHeaderBytes + e.payload.size();
  }
  return Status::Ok();
}

Result<uint64_t> Log::Impl::Append(std::span<const LogEntry> entries) {
  LogWriter w;
  PACKICE_RETURN_IF_ERROR(Prepare(entries, &w));
  // The pipeline: one leader writes its batch while the leader before it waits for its
  // fdatasync, and batches are published (acknowledged) in the order they were written.
  std::vector<LogWriter*> batch;
  std::vector<LogWriter*> failed;
  Status error;
  {
    MutexLock lock(&mu_);
    if (!failed_.ok()) return failed_;
    writers_.push_back(&w);
    while (!w.done && (!LeaderSlotFree() || writers_.front() != &w)) Wait(w.cv, mu_);
    if (w.done) return w.result();
    if (!failed_.ok()) {  // a batch before ours failed
      writers_.pop_front();
      error = failed_;
      failed = FailAsyncHead();
      WakeLeader();
    } else {
      batch = TakeBatch();
      writing_ = true;
    }
  }
  if (!error.ok()) {
    Finish(failed);
    return error;
  }
  Lead(batch);
  return w.result();
}

void Log::Impl::AppendAsync(std::span<const LogEntry> entries, AppendDone done) {
  auto w = std::make_unique<LogWriter>();
  if (Status s = Prepare(entries, w.get()); !s.ok()) {
    done(s);
    return;
  }
  w->on_done = std::move(done);
  {
    MutexLock lock(&mu_);
    if (failed_.ok()) {
      if (committers_.empty()) {
        for (size_t i = 0; i < kMaxInFlight; ++i)
          committers_.emplace_back([this] { CommitLoop(); });
      }
      writers_.push_back(w.release());
      if (writers_.size() == 1) WakeLeader();
      return;
    }
    w->status = failed_;
  }
  w->on_done(w->status);
}

void Log::Impl::CommitLoop() {
  while (true) {
    std::vector<LogWriter*> batch;
    std::vector<LogWriter*> failed;
    {
      MutexLock lock(&mu_);
      while (!(stopping_ && writers_.empty()) &&
             (writers_.empty() || !writers_.front()->on_done || !LeaderSlotFree())) {
        Wait(committer_cv_, mu_);
      }
      if (writers_.empty()) return;  // stopping, and nothing is left to write
      if (!failed_.ok()) {
        failed = FailAsyncHead();
        WakeLeader();
      } else {
        batch = TakeBatch();
        writing_ = true;
      }
    }
    Finish(failed);
    if (!batch.empty()) Lead(batch);
  }
}

std::vector<LogWriter*> Log::Impl::FailAsyncHead() {
  std::vector<LogWriter*> out;
  while (!writers_.empty() && writers_.front()->on_done) {
    LogWriter* w = writers_.front();
    writers_.pop_front();
    w->status = failed_;
    w->done = true;
    out.push_back(w);
  }
  return out;
}

void Log::Impl::Finish(const std::vector<LogWriter*>& writers) {
  for (LogWriter* w : writers) {
    w->on_done(w->result());
    delete w;
  }
}

void Log::Impl::Lead(const std::vector<LogWriter*>& batch) {
  BatchOutcome out = WriteBatch(batch);
  const bool sync = options_.sync == SyncPolicy::kAlways && !out.fatal && out.written > 0;
  // The AppendAsync writers, to call back once published (the others may be gone by then).
  std::vector<LogWriter*> async;
  for (LogWriter* w : batch) {
    if (w->on_done) async.push_back(w);
  }
  InFlight ticket;
  {
    MutexLock lock(&mu_);
    writing_ = false;
    // Writers of the batch that were not written give their numbers back before the next
    // leader takes any; after a failed write no later batch writes.
    if (out.written < batch.size()) next_seq_ = batch[out.written]->first_seq;
    if (!sync && inflight_.empty() && async.empty()) {  // nothing to wait for: published at once
      Publish(batch, out);
      WakeLeader();
      return;
    }
    if (out.fatal) Fail(out.error, batch.front()->first_seq);
    // In the pipeline until published and called back: so the next batch's `done`s come after.
    inflight_.push_back(&ticket);
    WakeLeader();
  }
  if (sync) {
    if (int err = env_.SyncData(out.segment->fd.get()); err != 0) {
      out.error = ErrnoError("fdatasync " + out.segment->path, err);
      out.fatal = true;
    } else {
      ++out.syncs;
      out.synced = true;
    }
  }
  {
    MutexLock lock(&mu_);
    while (inflight_.front() != &ticket) Wait(ticket.cv, mu_);
    Publish(batch, out);
  }
  Finish(async);
  MutexLock lock(&mu_);
  inflight_.pop_front();
  if (!inflight_.empty()) inflight_.front()->cv.notify_one();
  WakeLeader();  // there is room in the pipeline again
}

std::vector<LogWriter*> Log::Impl::TakeBatch() {
  std::vector<LogWriter*> batch;
  uint64_t bytes = 0;
  while (!writers_.empty()) {
    LogWriter* w = writers_.front();
    if (!batch.empty() && bytes + w->frames.size() > options_.max_batch_bytes) break;
    bytes += w->frames.size();
    w->first_seq = next_seq_;
    next_seq_ += w->count();
    batch.push_back(w);
    writers_.pop_front();
  }
  return batch;
}

Log::Impl::BatchOutcome Log::Impl::WriteBatch(const std::vector<LogWriter*>& batch) {
  BatchOutcome out;
  std::vector<LogWriter*> run;  // writers for active_, not yet written
  auto write_run = [&]() -> Status {
    Status s = WriteRun(run, &out);
    run.clear();
    return s;
  };
  for (size_t i = 0; i < batch.size(); ++i) {
    LogWriter* w = batch[i];
    if (write_offset_ + w->frames.size() > options_.segment_bytes) {
      // Roll: the full segment is synced before the next one exists, so a crash can cut only
      // the last segment.
      if (Status s = write_run(); !s.ok()) {
        out.error = s;
        out.fatal = true;
        return out;
      }
      if (int err = env_.SyncData(active_->fd.get()); err != 0) {
        out.error = ErrnoError("fdatasync " + active_->path, err);
        out.fatal = true;
        return out;
      }
      ++out.syncs;
      Result<std::shared_ptr<LogSegment>> next = CreateSegment(w->first_seq);
      if (!next.ok()) {  // nothing of writers i.. written: they fail, the log stays writable
        out.written = i;
        out.error = next.status();
        out.synced = true;  // the roll's sync covered what was written before
        out.segment = active_;
        out.end_offset = write_offset_;
        return out;
      }
      // The full segment gives its unused preallocated tail back. Not synced: a crash before
      // the new size is durable leaves zeros there, which read as the end of the records.
      (void)env_.Truncate(active_->fd.get(), write_offset_);
      out.sealed_seq = w->first_seq;
      out.sealed_end_offset = write_offset_;
      out.new_segment = *next;
      active_ = *next;
      write_offset_ = kSegmentHeaderBytes;
    }
    run.push_back(w);
  }
  if (Status s = write_run(); !s.ok()) {
    out.error = s;
    out.fatal = true;
    return out;
  }
  out.written = batch.size();
  out.segment = active_;  // what the caller syncs (kAlways), with the lock released
  out.end_offset = write_offset_;
  return out;
}

Status Log::Impl::WriteRun(const std::vector<LogWriter*>& run, BatchOutcome* out) {
  if (run.empty()) return Status::Ok();
  uint64_t at = write_offset_;
  for (LogWriter* w : run) {
    for (size_t j = 0; j < w->count(); ++j) {
      std::byte* h = w->frames.data() + w->offsets[j];
      const uint64_t end = j + 1 < w->count() ? w->offsets[j + 1] : w->frames.size();
      const uint64_t length = end - w->offsets[j] - kFrameHeaderBytes;
      const uint8_t flags = j + 1 < w->count() ? log_format::kFlagMoreInAppend : 0;
      log_format::EncodeFrameHeader(h, w->payload_crcs[j], static_cast<uint32_t>(length),
                                    w->first_seq + j, w->types[j], flags);
      const uint64_t offset = at + w->offsets[j];
      if (active_->last_indexed == 0 ||
          offset - active_->last_indexed >= options_.index_interval_bytes) {
        out->index.push_back({active_.get(), LogIndexEntry{w->first_seq + j, offset}});
        active_->last_indexed = offset;
      }
    }
    at += w->frames.size();
  }
  // Small appends are gathered into one write; large ones (at least kDirectWriteBytes each,
  // on average) are written one after another from their own buffers, saving the copy.
  const uint64_t total = at - write_offset_;
  if (run.size() > 1 && total / run.size() < kDirectWriteBytes) {
    run_buf_.clear();
    for (LogWriter* w : run) run_buf_.insert(run_buf_.end(), w->frames.begin(), w->frames.end());
    PACKICE_RETURN_IF_ERROR(
        LogWriteAll(env_, active_->fd.get(), run_buf_, write_offset_, active_->path));
  } else {
    uint64_t offset = write_offset_;
    for (LogWriter* w : run) {
      PACKICE_RETURN_IF_ERROR(
          LogWriteAll(env_, active_->fd.get(), w->frames, offset, active_->path));
      offset += w->frames.size();
    }
  }
  write_offset_ += total;
  out->bytes += total;
  return Status::Ok();
}

void Log::Impl::Publish(const std::vector<LogWriter*>& batch, BatchOutcome& out) {
  // A batch after one that failed (written, or synced, or the log's Sync) is not acknowledged:
  // a later fdatasync may succeed where an earlier one lost data.
  if (!out.fatal && !failed_.ok() && batch.front()->first_seq >= failed_from_) {
    out.fatal = true;
    out.error = failed_;
  }
  if (out.fatal) {
    Fail(out.error, batch.front()->first_seq);
    out.written = 0;
  } else {
    if (out.new_segment) {
      LogSegment& full = *segments_.back();
      full.end_seq = out.sealed_seq;
      full.end_offset = out.sealed_end_offset;
      segments_.push_back(out.new_segment);
      durable_seq_ = std::max(durable_seq_, out.sealed_seq);
    }
    for (size_t i = 0; i < out.written; ++i) {
      LogWriter* w = batch[i];
      visible_seq_ = w->first_seq + w->count();
      counters_.records += w->count();
      ++counters_.appends;
    }
    // Only written writers have index entries (a failed one was never written).
    for (auto& [segment, entry] : out.index) segment->index.push_back(entry);
    LogSegment& active = *segments_.back();
    active.end_seq = visible_seq_;
    active.end_offset = out.end_offset;
    if (out.synced) durable_seq_ = std::max(durable_seq_, visible_seq_);
    ++counters_.batches;
    counters_.bytes_written += out.bytes;
    counters_.syncs += out.syncs;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    LogWriter* w = batch[i];
    if (i >= out.written) w->status = out.error;
    w->done = true;
    w->cv.notify_one();
  }
  readable_cv_.notify_all();
}

void Log::Impl::Fail(const Status& error, uint64_t from_seq) {
  failed_from_ = std::min(failed_from_, from_seq);
  if (!failed_.ok()) return;
  failed_ = Status(error.code(),
                   "the log is read-only after a failed write or sync (reopen it "
                   "to recover): " +
                       std::string(error.message()));
  readable_cv_.notify_all();
}

void Log::Impl::WakeLeader() {
  if (writers_.empty()) {
    if (stopping_) committer_cv_.notify_all();
  } else if (writers_.front()->on_done) {
    committer_cv_.notify_one();
  } else {
    writers_.front()->cv.notify_one();
  }
}

// --- syncs ----------------------------------------------------------------------------------

Status Log::Impl::Sync() {
  std::shared_ptr<LogSegment> segment;
  uint64_t upto = 0;
  {
    MutexLock lock(&mu_);
    if (!failed_.ok()) return failed_;
    upto = visible_seq_;
    if (durable_seq_ >= upto) return Status::Ok();
    // Records before `upto` are in this segment or in earlier ones, synced when they filled.
    segment = segments_.back();
  }
  const int err = env_.SyncData(segment->fd.get());
  MutexLock lock(&mu_);
  if (err != 0) {
    Fail(ErrnoError("fdatasync " + segment->path, err), upto);
    return failed_;
  }
  ++counters_.syncs;
  durable_seq_ = std::max(durable_seq_, upto);
  return Status::Ok();
}

Result<std::shared_ptr<LogSegment>> Log::Impl::CreateSegment(uint64_t first_seq) {
  auto segment = std::make_shared<LogSegment>();
  segment->first_seq = first_seq;
  segment->end_seq = first_seq;
  segment->end_offset = kSegmentHeaderBytes;
  segment->path = options_.dir + "/" + log_format::SegmentFileName(first_seq);
  const std::string& path = segment->path;
  if (int err = env_.Open(path, O_RDWR | O_CREAT | O_EXCL, 0600, &segment->fd); err != 0) {
    return LogIoError("create", path, err);
  }
  Status s = [&]() -> Status {
    if (int err = env_.Allocate(segment->fd.get(), options_.segment_bytes); err != 0) {
      if (err != EOPNOTSUPP) return LogIoError("preallocate", path, err);
      // A file system without fallocate: a sparse file reads as zeros all the same.
      if (int e = env_.Truncate(segment->fd.get(), options_.segment_bytes); e != 0) {
        return LogIoError("extend", path, e);
      }
    }
    const std::vector<std::byte> header = log_format::EncodeSegmentHeader(first_seq);
    PACKICE_RETURN_IF_ERROR(LogWriteAll(env_, segment->fd.get(), header, 0, path));
    if (int err = env_.SyncData(segment->fd.get()); err != 0) {
      return LogIoError("fdatasync", path, err);
    }
    return SyncDirStatus(env_, options_.dir);
  }();
  if (!s.ok()) {
    segment->fd.reset();
    (void)env_.Unlink(path);
    return s;
  }
  return segment;
}

// --- reads ----------------------------------------------------------------------------------

Result<LogReadResult> Log::Impl::Read(uint64_t from, size_t max_records, size_t max_bytes) const {
  auto buffer = std::make_shared<std::vector<std::byte>>();
  struct Found {
    uint64_t seq;
    uint8_t type;
    size_t offset;
    size_t length;
  };
  std::vector<Found> found;
  uint64_t seq = from;
  bool full = max_records == 0;
  while (!full) {
    std::shared_ptr<LogSegment> segment;
    LogIndexEntry start;
    uint64_t end_seq = 0;
    uint64_t end_offset = 0;
    {
      MutexLock lock(&mu_);
      const uint64_t first = segments_.front()->first_seq;
      if (seq < first) {
        return OutOfRange("record " + std::to_string(seq) + " is before the log's first (" +
                          std::to_string(first) + "): truncated");
      }
      if (seq > visible_seq_) {
        return OutOfRange("record " + std::to_string(seq) + " is past the log's end (" +
                          std::to_string(visible_seq_) + ")");
      }
      if (seq == visible_seq_) break;
      auto it = std::upper_bound(segments_.begin(), segments_.end(), seq,
                                 [](uint64_t s, const auto& g) { return s < g->first_seq; });
      segment = *std::prev(it);
      end_seq = std::min(segment->end_seq, visible_seq_);
      end_offset = segment->end_offset;
      auto entry = std::upper_bound(segment->index.begin(), segment->index.end(), seq,
                                    [](uint64_t s, const LogIndexEntry& e) { return s < e.seq; });
      start = entry == segment->index.begin()
                  ? LogIndexEntry{segment->first_seq, kSegmentHeaderBytes}
                  : *std::prev(entry);
    }
    // One allocation for what this segment can add (growing by doubling copied the buffer,
    // and page-faulted each new copy in: most of a recovery's time).
    if (buffer->empty()) {
      buffer->reserve(static_cast<size_t>(std::min<uint64_t>(
          max_bytes, end_offset > start.offset ? end_offset - start.offset : 0)));
    }
    log_format::FrameReader reader(env_, segment->fd.get(), start.offset, end_offset);
    for (uint64_t s = start.seq; s < end_seq; ++s) {
      const bool wanted = s >= seq;
      log_format::FrameReader::Frame frame;
      PACKICE_ASSIGN_OR_RETURN(log_format::FrameReader::Outcome outcome,
                               reader.Next(&frame, wanted));
      if (outcome != log_format::FrameReader::Outcome::kRecord || frame.seq != s) {
        return DataLoss(segment->path + ": record " + std::to_string(s) + " at offset " +
                        std::to_string(reader.offset()) + ": " +
                        (outcome == log_format::FrameReader::Outcome::kRecord
                             ? "sequence number " + std::to_string(frame.seq)
                             : std::string(reader.reason().empty() ? "the records end early"
                                                                   : reader.reason())));
      }
      if (!wanted) continue;
      if (!found.empty() && buffer->size() + frame.payload.size() > max_bytes) {
        full = true;
        break;
      }
      found.push_back({s, frame.type, buffer->size(), frame.payload.size()});
      buffer->insert(buffer->end(), frame.payload.begin(), frame.payload.end());
      seq = s + 1;
      if (found.size() >= max_records) {
        full = true;
        break;
      }
    }
    if (!full) seq = std::max(seq, end_seq);  // the rest is in the next segment
  }
  LogReadResult result;
  result.next_seq = seq;
  result.records.reserve(found.size());
  for (const Found& f : found) {
    result.records.push_back(
        LogRecord{f.seq, f.type, std::span<const std::byte>(buffer->data() + f.offset, f.length)});
  }
  result.buffer = std::move(buffer);
  return result;
}

Status Log::Impl::WaitFor(uint64_t seq, std::chrono::steady_clock::time_point deadline) const {
  MutexLock lock(&mu_);
  while (visible_seq_ <= seq) {
    if (!failed_.ok()) return failed_;
    if (!WaitUntil(readable_cv_, mu_, deadline) && visible_seq_ <= seq) {
      return Timeout("record " + std::to_string(seq) + " was not appended in time");
    }
  }
  return Status::Ok();
}

// --- truncation -----------------------------------------------------------------------------

Result<uint64_t> Log::Impl::TruncateBefore(uint64_t seq) {
  std::vector<std::shared_ptr<LogSegment>> doomed;
  uint64_t first = 0;
  {
    MutexLock lock(&mu_);
    while (segments_.size() > 1 && segments_[1]->first_seq <= seq) {
      doomed.push_back(segments_.front());
      segments_.erase(segments_.begin());
    }
    first = segments_.front()->first_seq;
  }
  if (doomed.empty()) return first;
  // Oldest first: after a crash in between, what is left still starts at a segment boundary.
  for (const std::shared_ptr<LogSegment>& s : doomed) {
    if (int err = env_.Unlink(s->path); err != 0) return ErrnoError("unlink " + s->path, err);
  }
  PACKICE_RETURN_IF_ERROR(SyncDirStatus(env_, options_.dir));
  return first;
}

Status Log::Impl::health() const {
  MutexLock lock(&mu_);
  return failed_;
}

LogStats Log::Impl::stats() const {
  MutexLock lock(&mu_);
  LogStats s = counters_;
  s.first_seq = segments_.front()->first_seq;
  s.next_seq = visible_seq_;
  s.durable_seq = durable_seq_;
  s.segments = segments_.size();
  return s;
}

std::vector<LogSegmentInfo> Log::Impl::segments() const {
  MutexLock lock(&mu_);
  std::vector<LogSegmentInfo> out;
  out.reserve(segments_.size());
  for (const auto& g : segments_) {
    out.push_back({g->first_seq, std::min(g->end_seq, visible_seq_), g->end_offset});
  }
  return out;
}

// --- Log ------------------------------------------------------------------------------------

Log::Log(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Log::~Log() = default;

Result<uint64_t> Log::Append(std::span<const LogEntry> entries) { return impl_->Append(entries); }
Result<uint64_t> Log::Append(std::span<const std::byte> payload, uint8_t type) {
  const LogEntry entry{type, payload};
  return impl_->Append(std::span(&entry, 1));
}
void Log::AppendAsync(std::span<const LogEntry> entries, AppendDone done) {
  impl_->AppendAsync(entries, std::move(done));
}
Status Log::Sync() { return impl_->Sync(); }
Result<LogReadResult> Log::Read(uint64_t from, size_t max_records, size_t max_bytes) const {
  return impl_->Read(from, max_records, max_bytes);
}
Status Log::WaitFor(uint64_t seq, std::chrono::steady_clock::time_point deadline) const {
  return impl_->WaitFor(seq, deadline);
}
Result<uint64_t> Log::TruncateBefore(uint64_t seq) { return impl_->TruncateBefore(seq); }
Status Log::WriteSnapshot(uint64_t seq, std::span<const std::byte> bytes) {
  return impl_->WriteSnapshot(seq, bytes);
}
Result<LogSnapshot> Log::ReadSnapshot() const { return impl_->ReadSnapshot(); }
Status Log::health() const { return impl_->health(); }
LogStats Log::stats() const { return impl_->stats(); }
std::vector<LogSegmentInfo> Log::segments() const { return impl_->segments(); }

}  // namespace packice
