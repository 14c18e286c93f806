// QueueBackend: the storage a queue bucket composes (the seed's StorageBackend: put,
// get(offset, limit), flush). Records in, records out by offset; nothing about topics,
// partitions or consumers, which the bucket above it keeps.
//
// Offsets: the first record a backend ever stores has offset 0; each Append's records take the
// next offsets in order. Offsets are dense and never reused; TruncateBefore (retention)
// removes records from the front in the backend's units (a record for memory, a whole segment
// for the log), so start_offset may stay below the offset asked for.
//
// Every backend passes the contract suite (queue_backend_contract_test.cc); a new one is one
// file with its factory below, plus one line there.
//
// Thread safety: safe for concurrent use; Appends are ordered (one at a time, in the order
// they took the backend's lock), and a Read sees an Append wholly or not at all.
#ifndef PACKICE_BACKENDS_QUEUE_QUEUE_BACKEND_H_
#define PACKICE_BACKENDS_QUEUE_QUEUE_BACKEND_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backends/log/log.h"
#include "packice/peer.h"
#include "packice/queue.h"
#include "packice/status.h"

namespace packice {

struct QueueBackendStats {
  uint64_t start_offset = 0;  // the oldest record kept
  uint64_t end_offset = 0;    // the offset the next record gets; also the end of what is read
  uint64_t units = 0;         // what TruncateBefore removes whole: records, or segments
  uint64_t bytes = 0;         // kept: encoded records (memory) or segment files in use (log)
};

class QueueBackend {
 public:
  virtual ~QueueBackend() = default;

  // Appends `records`, all or none, and returns the offset of the first; a record whose
  // timestamp is 0 is stored with `now_unix_ms` (no copy of the records made to set it). Once
  // it returns they
  // are readable and, where the backend is durable, as durable as its sync policy says.
  // Errors: kInvalidArgument (no records; one larger than the backend's record limit; more
  // than it takes in one append), kOutOfCapacity (full: retention must free space first;
  // nothing appended), or the backend's I/O error (kInternal, and the log's read-only state).
  virtual Result<uint64_t> Append(std::span<const QueueRecord> records, int64_t now_unix_ms) = 0;
  // The same without waiting (Queue::AppendAsync): `records` are consumed before it returns;
  // `done` gets what Append would have returned, once, in the order of the calls, on this
  // thread or one of the backend's. The default runs Append.
  virtual void AppendAsync(std::span<const QueueRecord> records, int64_t now_unix_ms,
                           QueueAppendDone done) {
    done(Append(records, now_unix_ms));
  }

  // Up to `limit` records from `offset`, in order, and no more than `max_bytes` of encoded
  // records — but at least one when `offset` holds one, however large. `offset` ==
  // end_offset gives none. Errors: kOutOfRange (`offset` before start_offset, removed by
  // retention; or past end_offset), kDataLoss (a stored record does not decode).
  virtual Result<std::vector<StoredRecord>> Read(uint64_t offset, size_t limit,
                                                 size_t max_bytes) const = 0;

  // Returns once `offset` is readable (offset < end_offset). Errors: kTimeout (`deadline`
  // passed first), the backend's failure.
  virtual Status WaitFor(uint64_t offset, std::chrono::steady_clock::time_point deadline) const = 0;

  // Makes every record appended so far durable (a memory backend has nothing to do).
  virtual Status Flush() = 0;

  // Removes whole units of records all before `offset` (never the one being appended to) and
  // returns the new start_offset (<= offset).
  virtual Result<uint64_t> TruncateBefore(uint64_t offset) = 0;

  // Retention: removes whole units from the front, oldest first, while the backend keeps
  // more than `max_bytes` (0: no bound) or the unit's newest record is older than
  // `now_unix_ms - max_age` (0: no bound); never the unit being appended to (the log's active
  // segment), so a bucket may stay above its bound by up to one segment. Returns the new
  // start_offset.
  virtual Result<uint64_t> Retain(uint64_t max_bytes, std::chrono::milliseconds max_age,
                                  int64_t now_unix_ms) = 0;

  virtual QueueBackendStats stats() const = 0;
};

// --- the backends ---------------------------------------------------------------------------

struct MemoryQueueBackendOptions {
  uint64_t max_bytes = 64ull << 20;        // encoded records kept; past it Append is full
  uint64_t max_record_bytes = 4ull << 20;  // one encoded record
  uint64_t max_append_bytes = 8ull << 20;  // one Append's records
};
// Records in memory, for tests and for queues that need no durability; no dependencies.
std::unique_ptr<QueueBackend> NewMemoryQueueBackend(MemoryQueueBackendOptions options = {});

// Records in the segmented log (src/backends/log/): one log record per queue record, the
// offset its sequence number. CRC framing, group commit, the sync policy, torn-tail recovery
// and the file-system seam are the log's; retention removes whole segments. Opening recovers
// what is in `log.dir`. Errors: those of Log::Open.
Result<std::unique_ptr<QueueBackend>> OpenLogQueueBackend(LogOptions log);

struct TieredQueueBackendOptions {
  LogOptions log;  // the log of new records; its dir also holds the MANIFEST of the objects
  // Where sealed runs of records go, as objects `key_prefix` + the first offset (20 digits).
  // The backend owns the keys under the prefix (it deletes those its manifest does not name).
  std::shared_ptr<Peer> store;
  std::string key_prefix;
  // Encoded record bytes sealed into one object (it holds whole records, so a little more).
  uint64_t object_bytes = 64ull << 20;
  // Whether the store keeps an object across a crash; the log keeps the records of an object
  // until it does. Empty: when the object is on the disk tier (ObjectInfo::tier == "disk").
  std::function<bool(const ObjectInfo&)> durable;
  // How often the background pass seals, checks durability and trims the log (it also runs as
  // soon as an object's worth is appended). 0: never (tests of the log part alone).
  std::chrono::milliseconds interval{1000};
};
// The log backend for new records; once object_bytes of records follow the last object, a
// background pass seals them as one object into `store` (records framed with CRC-32s and an
// offset index: docs/queue.md, "The tiered backend"), names it in the manifest, and — once
// the store holds it durably — truncates the log before it. Reads take records from the
// objects (a read lease and a view of the bytes: a mapping for a file, no read call) and from
// the log; an object gone from the store is read from the log while it still has the records,
// and is kDataLoss after. Retention removes whole objects, then the log's segments. Opening
// recovers the log, checks the manifest against the store (an object lost while the log
// still has its records is sealed again) and deletes orphans under the prefix. Errors: those
// of OpenLogQueueBackend, kDataLoss (a MANIFEST that does not parse), the store's.
Result<std::unique_ptr<QueueBackend>> OpenTieredQueueBackend(TieredQueueBackendOptions options);

}  // namespace packice

#endif  // PACKICE_BACKENDS_QUEUE_QUEUE_BACKEND_H_
