// Log::Impl: the state behind a Log (backends/log/log.h), shared by log.cc (appends, reads,
// syncs, truncation), log_open.cc (recovery) and log_snapshot.cc. Not API.
//
// Locking. mu_ guards the list of segments, what is readable, the queue of appenders and the
// counters; it is held only for bookkeeping, never across I/O. The appender at the head of
// writers_ becomes the leader once no other leader is writing (writing_): it takes a batch,
// alone writes it, and alone touches the "leader-only" members below, without mu_. Then, with
// writing_ cleared so that the next leader writes meanwhile, it syncs (kAlways) and waits for
// its turn in inflight_ to publish: batches are acknowledged in the order they were written.
// Readers take mu_ only to find where to read.
#ifndef PACKICE_BACKENDS_LOG_LOG_IMPL_H_
#define PACKICE_BACKENDS_LOG_LOG_IMPL_H_

#include <condition_variable>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backends/log/log.h"
#include "backends/log/segment_scan.h"
#include "core/mutex.h"
#include "core/periodic_thread.h"

namespace packice {

// An errno as a Status naming `what` and `path`: ENOSPC is kOutOfCapacity, others kInternal.
Status LogIoError(std::string_view what, const std::string& path, int err);
// Writes all of `bytes` at `offset`, retrying short writes. Errors: as LogIoError.
Status LogWriteAll(Env& env, int fd, std::span<const std::byte> bytes, uint64_t offset,
                   const std::string& path);

// One segment file. The descriptor never changes while the Segment lives (readers holding a
// shared_ptr keep reading a segment that TruncateBefore removed).
struct LogSegment {
  uint64_t first_seq = 0;
  std::string path;
  UniqueFd fd;
  // Guarded by Log::Impl::mu_ (the leader extends them when it publishes a batch):
  uint64_t end_seq = 0;     // after the last readable record
  uint64_t end_offset = 0;  // the byte after it
  std::vector<LogIndexEntry> index;
  // Leader-only: the offset of the newest index entry.
  uint64_t last_indexed = 0;
};

// One Append call waiting in the queue. Its frames are encoded (all but the sequence numbers
// and checksums) before it queues.
struct LogWriter {
  std::vector<std::byte> frames;
  std::vector<uint32_t> payload_crcs;  // per record
  std::vector<uint64_t> offsets;       // per record, in `frames`
  std::vector<uint8_t> types;
  uint64_t first_seq = 0;  // assigned by the leader
  Status status;
  bool done = false;
  std::condition_variable cv;
  // An AppendAsync's: called once published, instead of waking a waiting thread; the log owns
  // such a writer (it is deleted after `on_done`).
  Log::AppendDone on_done;
  size_t count() const { return offsets.size(); }
  Result<uint64_t> result() const {
    if (!status.ok()) return status;
    return first_seq;
  }
};

// A written batch waiting to be published, in inflight_.
struct InFlight {
  std::condition_variable cv;  // notified when it is the oldest
};

class Log::Impl {
 public:
  Impl(LogOptions options, UniqueFd lock);
  ~Impl();

  // log.cc
  Result<uint64_t> Append(std::span<const LogEntry> entries);
  void AppendAsync(std::span<const LogEntry> entries, AppendDone done);
  Status Sync();
  Result<LogReadResult> Read(uint64_t from, size_t max_records, size_t max_bytes) const;
  Status WaitFor(uint64_t seq, std::chrono::steady_clock::time_point deadline) const;
  Result<uint64_t> TruncateBefore(uint64_t seq);
  Status health() const;
  LogStats stats() const;
  std::vector<LogSegmentInfo> segments() const;
  // Makes, preallocates and syncs (with its directory) a new segment for `first_seq`.
  // Errors: kOutOfCapacity (ENOSPC), kInternal; nothing is left behind on an error.
  Result<std::shared_ptr<LogSegment>> CreateSegment(uint64_t first_seq);

  // log_open.cc
  Status Recover();
  void StartFlusher();

  // log_snapshot.cc
  Status WriteSnapshot(uint64_t seq, std::span<const std::byte> bytes);
  Result<LogSnapshot> ReadSnapshot() const;

 private:
  struct BatchOutcome;

  // Batches written and not yet published (syncing, or waiting for an earlier one): one syncs
  // while the next is written; more would only split the waiting appenders into smaller
  // batches, each with a sync of its own. Also the number of committer threads.
  static constexpr size_t kMaxInFlight = 2;

  // Checks `entries` and encodes their frames into `w` (outside the lock).
  Status Prepare(std::span<const LogEntry> entries, LogWriter* w) const;
  // Whether the writer at the head of the queue may take a batch now.
  bool LeaderSlotFree() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !writing_ && inflight_.size() < kMaxInFlight;
  }
  // Writes `batch` (taken by TakeBatch, with writing_ set), syncs it under kAlways and
  // publishes it in its turn; then calls its AppendAsync writers' `on_done`, in order, and
  // deletes them. Called without mu_.
  void Lead(const std::vector<LogWriter*>& batch) ABSL_LOCKS_EXCLUDED(mu_);
  // Fails the AppendAsync writers at the head of the queue with failed_ (the log is
  // read-only); returns them, to be called back without mu_.
  std::vector<LogWriter*> FailAsyncHead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Calls back and deletes finished AppendAsync writers.
  static void Finish(const std::vector<LogWriter*>& writers);
  // A committer thread: leads batches whose head is an AppendAsync writer.
  void CommitLoop() ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<LogWriter*> TakeBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  BatchOutcome WriteBatch(const std::vector<LogWriter*>& batch);
  Status WriteRun(const std::vector<LogWriter*>& run, BatchOutcome* out);
  void Publish(const std::vector<LogWriter*>& batch, BatchOutcome& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes the log read-only with `error`; batches from `from_seq` on are not acknowledged.
  void Fail(const Status& error, uint64_t from_seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the appender now at the head of the queue, if any.
  void WakeLeader() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Status RecoverSegment(uint64_t first_seq, const std::string& name, bool last,
                        std::shared_ptr<LogSegment>* out);

  const LogOptions options_;
  Env& env_;
  const UniqueFd lock_;  // DIR/LOCK, held while the log is open

  mutable Mutex mu_;
  std::vector<std::shared_ptr<LogSegment>> segments_ ABSL_GUARDED_BY(mu_);  // oldest first
  std::deque<LogWriter*> writers_ ABSL_GUARDED_BY(mu_);  // appenders not yet in a batch
  bool writing_ ABSL_GUARDED_BY(mu_) = false;            // a leader is writing its batch
  std::deque<InFlight*> inflight_ ABSL_GUARDED_BY(mu_);  // written, not yet published
  uint64_t failed_from_ ABSL_GUARDED_BY(mu_) = ~0ull;    // with failed_: the first not acknowledged
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;           // the next to assign
  uint64_t visible_seq_ ABSL_GUARDED_BY(mu_) = 0;        // records before it are acknowledged
  uint64_t durable_seq_ ABSL_GUARDED_BY(mu_) = 0;
  Status failed_ ABSL_GUARDED_BY(mu_);
  LogStats counters_ ABSL_GUARDED_BY(mu_);
  mutable std::condition_variable readable_cv_;  // visible_seq_ grew, or failed_ was set

  // Leader-only (see the top of this file).
  std::shared_ptr<LogSegment> active_;
  uint64_t write_offset_ = 0;  // where the next frame goes in active_
  std::vector<std::byte> run_buf_;

  // AppendAsync's committers: started by the first, stopped (once the queue is empty) by the
  // destructor. Woken by WakeLeader when an async writer is at the head.
  std::condition_variable committer_cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> committers_ ABSL_GUARDED_BY(mu_);

  std::unique_ptr<PeriodicThread> flusher_;  // kInterval; started last, stopped first
};

}  // namespace packice

#endif  // PACKICE_BACKENDS_LOG_LOG_IMPL_H_
