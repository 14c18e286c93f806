// Log: a segmented write-ahead log, the durable part of the KV (its WAL: records, snapshot,
// truncation, recovery after kill -9) and of the queue (records appended and read by dense
// offset, retention by whole segments, readers that resume from an offset and wait for more).
//
//   DIR/LOCK                         held (flock) by the one process using DIR
//   DIR/<first seq, 20 digits>.log   segments, each preallocated to segment_bytes
//   DIR/SNAPSHOT                     the latest WriteSnapshot, if any
//
// Records are numbered densely: the i-th record appended to a log has sequence number
// first_seq + i, forever (truncation removes numbers from the front, never renumbers). A record
// is a type byte (1..255, the caller's) and a payload of at most max_record_bytes. Each is
// framed with its length, sequence number and a CRC-32 (docs/log.md has the byte layout).
//
// Appends are group-committed: concurrent Append calls queue up, and one of them (the leader)
// writes the whole queue and, under SyncPolicy::kAlways, fdatasyncs it while the next leader
// writes the next batch; batches are acknowledged in order. Readers never wait for a write or a
// sync: they read what was acknowledged.
//
// Guarantees:
//  - A record is readable (Read, WaitFor) exactly when its Append has returned it: no reader
//    sees a record that was not acknowledged, or half of an Append.
//  - kAlways: an acknowledged record survives a crash of the process or of the machine.
//    kInterval: a record is durable at most sync_interval after it was acknowledged (or at
//    Sync). kNever: the kernel decides (a process crash loses nothing; a machine crash may lose
//    an acknowledged suffix). Under every policy a crash loses only a suffix: never a record
//    in the middle, and never part of one Append.
//  - A failed write or sync acknowledges nothing of its batch and makes the log read-only
//    (health() returns the error; Append and Sync fail with it; Read still serves what was
//    acknowledged) until it is reopened, whose recovery drops what the failure left behind.
//    A record whose Append failed may or may not be present after the reopen.
//    One exception: when a new segment cannot be created (ENOSPC, kOutOfCapacity) nothing was
//    written, the Append fails and the log stays writable (retention may free space).
//
// Recovery on Open scans every segment. In the last one, a torn tail — a partial or bad frame
// after which no good frame follows — and a trailing cut Append are dropped and the file is
// cut back to the last good record. A bad frame with good frames after it, any bad frame in an
// earlier segment, or segments that do not follow one another refuse to open with kDataLoss.
//
// Thread safety: a Log is safe for concurrent use by any number of threads. The destructor
// must not run while other calls are in progress.
#ifndef PACKICE_BACKENDS_LOG_LOG_H_
#define PACKICE_BACKENDS_LOG_LOG_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/env.h"
#include "packice/status.h"

namespace packice {

enum class SyncPolicy {
  kAlways,    // Append returns once its records are on the disk (fdatasync, group-committed)
  kInterval,  // a background thread syncs every sync_interval; Append returns once written
  kNever,     // no sync but at segment rolls (so that no gap can form); Sync() still syncs
};

struct LogOptions {
  std::string dir;
  std::shared_ptr<Env> env;  // every file operation; nullptr = Env::Default()
  SyncPolicy sync = SyncPolicy::kAlways;
  std::chrono::milliseconds sync_interval{10};  // kInterval only
  // Size of a segment file, preallocated (Env::Allocate) when the segment is created. An
  // Append goes into one segment: a new one is started when the current one cannot hold it.
  uint64_t segment_bytes = 64ull << 20;
  // The largest payload of one record; a larger one is kInvalidArgument.
  uint64_t max_record_bytes = 4ull << 20;
  // The most framed bytes (payloads + 20 per record) one Append may carry, and the most one
  // group commit writes at once (a single Append up to this size always fits).
  // REQUIRES: max_record_bytes + 20 <= max_batch_bytes <= segment_bytes - 32.
  uint64_t max_batch_bytes = 8ull << 20;
  // The sparse index keeps one entry per this many bytes of records: a Read from a sequence
  // number reads at most about this much before its first record.
  uint64_t index_interval_bytes = 4096;
  // The sequence number of the first record of a new (empty) log. Ignored by an existing one.
  uint64_t first_seq = 0;
  // Recovery: also drop a bad frame in the last segment that has good frames after it (and
  // them), instead of refusing with kDataLoss. For an operator who prefers losing the tail
  // to not starting.
  bool drop_corrupt_tail = false;
  // The largest snapshot WriteSnapshot accepts and ReadSnapshot loads.
  uint64_t max_snapshot_bytes = 1ull << 30;
};

// A record to append: `type` is the caller's (1..255), `payload` is copied before Append
// returns.
struct LogEntry {
  uint8_t type = 1;
  std::span<const std::byte> payload;
};

// A record read back; `payload` points into the LogReadResult's buffer.
struct LogRecord {
  uint64_t seq = 0;
  uint8_t type = 0;
  std::span<const std::byte> payload;
};

struct LogReadResult {
  std::vector<LogRecord> records;  // consecutive sequence numbers from the `from` of the Read
  uint64_t next_seq = 0;           // where the next Read continues
  // Owns the payloads; copies of the result share it.
  std::shared_ptr<const std::vector<std::byte>> buffer;
};

// A snapshot of the caller's state as of sequence number `seq` (records before it applied).
struct LogSnapshot {
  uint64_t seq = 0;
  std::string bytes;
};

struct LogStats {
  uint64_t first_seq = 0;    // the oldest record still in the log
  uint64_t next_seq = 0;     // the number the next record gets; also the end of what is readable
  uint64_t durable_seq = 0;  // every record before it is on the disk
  uint64_t segments = 0;
  uint64_t appends = 0;        // Append calls acknowledged
  uint64_t records = 0;        // records acknowledged
  uint64_t batches = 0;        // group commits (writes) done
  uint64_t syncs = 0;          // fdatasyncs of segments
  uint64_t bytes_written = 0;  // framed bytes
};

// A segment as the log's users see it: its records [first_seq, end_seq), end_offset bytes of
// file in use (header included).
struct LogSegmentInfo {
  uint64_t first_seq = 0;
  uint64_t end_seq = 0;
  uint64_t bytes = 0;
};

class Log {
 public:
  // Opens the log in `options.dir` (made if missing; locked for this process) and recovers it
  // (see above). Errors: kInvalidArgument (options), kAlreadyExists (another process holds the
  // directory), kDataLoss (corruption that recovery does not repair; the message names the
  // file, offset and what is wrong), kOutOfCapacity (no space to create the first segment),
  // kInternal (I/O).
  static Result<std::unique_ptr<Log>> Open(LogOptions options);
  // Stops the background flusher; under kInterval syncs what was written first.
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Appends `entries` as consecutive records and returns the sequence number of the first. It
  // returns once the records are readable and, under kAlways, durable. Errors:
  // kInvalidArgument (no entries, type 0, a payload over max_record_bytes, or more than
  // max_batch_bytes in all), kOutOfCapacity (no space for a new segment; nothing written),
  // the error that made the log read-only (see health()).
  Result<uint64_t> Append(std::span<const LogEntry> entries);
  Result<uint64_t> Append(std::span<const std::byte> payload, uint8_t type = 1);

  // Appends like Append without waiting for the write or the sync: `entries` are copied
  // before it returns, and `done` is called exactly once with what Append would have returned.
  // A caller keeps several appends in flight this way — more bytes for each group commit and
  // its fdatasync than one synchronous appender gives. Appends are ordered as the calls were
  // made (with those of Append), and `done`s are called in that order: on the calling thread
  // before AppendAsync returns when the append is refused at once (the arguments, a read-only
  // log), else on the thread that publishes the batch (one of the log's two committer threads,
  // started by the first AppendAsync, or a synchronous appender that led it). `done` must not
  // wait on this log (Append, Sync, WaitFor): the next batch is published after it returns;
  // nor destroy it (drop the last reference to what owns it). The caller bounds what it keeps
  // in flight. The destructor waits for every `done`.
  using AppendDone = std::function<void(Result<uint64_t>)>;
  void AppendAsync(std::span<const LogEntry> entries, AppendDone done);

  // Makes every record acknowledged so far durable. Errors: those of health(); a failed
  // fdatasync (kInternal) makes the log read-only.
  Status Sync();

  // Up to `max_records` records from `from`, and no more than `max_bytes` of payload — but at
  // least one record when `from` is readable, however large. `from` == next_seq gives none.
  // Errors: kOutOfRange (`from` before the first record still kept, or after next_seq),
  // kDataLoss (a record fails its checksum), kInternal (I/O).
  Result<LogReadResult> Read(uint64_t from, size_t max_records, size_t max_bytes) const;

  // Waits until record `seq` is readable (seq < next_seq). Errors: kTimeout (`deadline`
  // passed), the error that made the log read-only.
  Status WaitFor(uint64_t seq, std::chrono::steady_clock::time_point deadline) const;

  // Removes the oldest segments whose records are all before `seq` — whole segments only, and
  // never the one being appended to — and returns the new first_seq (<= seq). Readers in the
  // middle of a removed segment finish their Read. Errors: kInternal (unlink or directory sync;
  // the removal so far stands).
  Result<uint64_t> TruncateBefore(uint64_t seq);

  // Replaces DIR/SNAPSHOT with `bytes` as of sequence number `seq`, atomically (temp file,
  // fdatasync, rename, directory fsync). It does not truncate: call TruncateBefore(seq) after
  // it. Errors: kInvalidArgument (over max_snapshot_bytes), kOutOfCapacity (ENOSPC), kInternal.
  Status WriteSnapshot(uint64_t seq, std::span<const std::byte> bytes);
  // The latest snapshot. Errors: kNotFound (none), kDataLoss (it fails its checksum),
  // kInternal.
  Result<LogSnapshot> ReadSnapshot() const;

  // OK, or the write or sync error that made the log read-only.
  Status health() const;
  LogStats stats() const;
  // The segments, oldest first; the last is the one being appended to.
  std::vector<LogSegmentInfo> segments() const;
  uint64_t first_seq() const { return stats().first_seq; }
  uint64_t next_seq() const { return stats().next_seq; }

  class Impl;

 private:
  explicit Log(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace packice

#endif  // PACKICE_BACKENDS_LOG_LOG_H_
