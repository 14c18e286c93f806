// Bucket: one namespace's keys — a store engine, the shared log (backends/log) as its
// write-ahead log, its watchers and its revision counter (docs/kv.md).
//
// A write: check its conditions against the engine under the write lock of the keys' shards,
// append one log record (revision = log sequence number + 1, dense), and only once the log
// acknowledged it (durable under KvFsync::kAlways) apply it to the engine and publish its
// events. Readers take a shard's reader lock only while they copy out of the engine; it is
// held by a writer only while it applies a record in memory, never across an append or an
// fsync, so a read never waits for the disk.
//
// Shards: a kLinear bucket has one. Its writers queue in arrival order; the one at the front
// checks, logs (one Log::Append for the whole queue: one fdatasync), applies and acknowledges
// the queue in order, so revision order = acknowledgement order = arrival order. A kNoLinear bucket
// has kNoLinearShards by key hash: writes to different shards append concurrently (one group
// commit), a batch locks its shards in index order.
//
// Recovery (Open): the log's snapshot, then every record after it, the last history_events of
// them kept as watch history. A torn log tail is dropped by the log; a corrupt middle is
// kDataLoss.
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_SERVICES_KV_BUCKET_H_
#define PACKICE_SERVICES_KV_BUCKET_H_

#include <absl/container/btree_set.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backends/log/log.h"
#include "core/mutex.h"
#include "packice/clock.h"
#include "packice/kv.h"
#include "services/kv/engine.h"
#include "services/kv/watch_hub.h"

namespace packice::kv {

inline constexpr size_t kNoLinearShards = 16;

class Bucket {
 public:
  // Opens (and recovers) the bucket in `dir`. REQUIRES: kv.env and kv.clock are set.
  // Errors: those of Log::Open, kDataLoss (a snapshot or record that does not decode, a log
  // that does not reach its snapshot).
  static Result<std::unique_ptr<Bucket>> Open(const std::string& dir,
                                              const NamespaceOptions& options, const KvOptions& kv);
  ~Bucket();
  Bucket(const Bucket&) = delete;
  Bucket& operator=(const Bucket&) = delete;

  // The operations of KvStore (packice/kv.h), on this bucket.
  Result<KeyValue> Get(std::string_view key) const;
  Result<PutResult> Put(std::string_view key, std::string_view value, const PutOptions& o);
  // KvStore::PutMany: in a Linear bucket the puts join the writer queue together (one log
  // append and fdatasync for all of them, and for whatever else was queued).
  std::vector<Result<PutResult>> PutMany(std::span<const KvPutItem> puts);
  Result<DeleteResult> Delete(std::string_view key, const DeleteOptions& o);
  Result<ScanResult> Scan(const ScanOptions& o) const;
  Result<BatchResult> Commit(std::span<const BatchOp> ops);
  Result<std::unique_ptr<KvWatcher>> Watch(const WatchOptions& o);

  // Deletes keys whose TTL passed (one record, a delete event each, `expired` set) and
  // returns how many; at most 1000 per call.
  Result<size_t> ReapExpired();
  // Writes a snapshot of the engine as of now and truncates the log before it.
  Status Snapshot();

  // The latest acknowledged revision.
  int64_t revision() const;
  uint64_t keys() const;
  const NamespaceOptions& options() const { return options_; }
  // Whether the next write may wait: fsync "always" (its group's fdatasync), or a snapshot
  // (which the write that crosses snapshot_after_bytes takes) is near.
  bool NextWriteMayWait() const {
    return options_.fsync == KvFsync::kAlways || snapshot_due_ ||
           bytes_since_snapshot_ + kv_.max_batch_bytes + kv_.max_value_bytes >=
               kv_.snapshot_after_bytes;
  }
  // Ends every watcher with `reason`, and later watches fail with it.
  void EndWatchers(const Status& reason);
  // The bucket's files are removed when it is destroyed (its namespace was deleted).
  void RemoveFilesOnClose() { remove_on_close_ = true; }

 private:
  struct Shard {
    std::mutex write_mu;                // held by a writer from its checks to its publish
    mutable std::shared_mutex read_mu;  // exclusive only while a record is applied
    std::unique_ptr<Engine> engine;     // read: read_mu shared or write_mu; written: both
  };
  // One change of a write, before its checks.
  struct Op {
    BatchOp::Kind kind = BatchOp::Kind::kPut;
    std::string_view key;
    std::string_view value;
    std::optional<Duration> ttl;
    std::optional<int64_t> if_mod_revision;
    bool ignore_missing = false;
    bool expired_only = false;  // the reaper's delete: only if present and expired
    bool want_prev = false;     // the outcome's prev holds the value this op replaced
  };
  struct Outcome {
    int64_t revision = 0;
    std::vector<std::optional<KeyValue>> prev;  // per op
    size_t applied = 0;                         // mutations written
  };

  // The checked outcome of a write, before its revision is known.
  struct Prepared {
    std::vector<Mutation> muts;
    std::vector<std::optional<KeyValue>> prev;  // per op
  };
  // A Linear writer waiting in the queue.
  struct PendingWrite {
    std::span<const Op> ops;
    uint8_t type = 0;
    std::optional<Result<Outcome>> result;  // set by the leader that ran it
    std::condition_variable cv;
  };

  Bucket(std::string dir, const NamespaceOptions& options, const KvOptions& kv);
  Status Recover();
  Result<Outcome> Write(std::span<const Op> ops, uint8_t type);
  Result<Outcome> WriteLinear(std::span<const Op> ops, uint8_t type);
  // Queues `writes` one after another and returns once each has its result.
  void WriteLinearMany(std::span<PendingWrite* const> writes);
  // A put's checks (key, value size, TTL, revision) and its Op.
  Result<Op> PutOp(std::string_view key, std::string_view value, const PutOptions& o) const;
  static Result<PutResult> ToPutResult(Result<Outcome> out, bool prev_kv);
  // Runs a prefix of `group` (returns its length), a result per writer in `results`.
  size_t RunGroup(const std::vector<PendingWrite*>& group, std::vector<Result<Outcome>>* results);
  // Checks `ops` against `find` (a key's entry, or null) and builds the mutations.
  Result<Prepared> Prepare(std::span<const Op> ops, int64_t now,
                           const std::function<const Entry*(std::string_view)>& find) const;
  // Applies a logged record (under the read locks of `shards`) and publishes its events.
  void Publish(std::vector<Mutation>& muts, int64_t revision, uint8_t type,
               const std::vector<size_t>& shards);
  Status CheckKey(std::string_view key) const;
  size_t ShardOf(std::string_view key) const;
  // Applies a record's mutations to the engine (shards' read locks held by the caller or
  // none needed), moving their entries into it, and returns its events. A put's create
  // revision 0 or `revision` says it creates the key.
  std::vector<KvEvent> Apply(std::vector<Mutation>& mutations, int64_t revision);
  void MaybeSnapshot();
  // WatchHub::OlderHistory: revisions [from, to) read back from the log.
  Status ReadHistory(int64_t from, int64_t to,
                     const std::function<bool(int64_t, const std::vector<KvEvent>&)>& fn) const;

  const std::string dir_;
  const NamespaceOptions options_;
  const KvOptions kv_;
  std::unique_ptr<Log> log_;
  uint64_t log_batch_bytes_ = 0;  // the log's max_batch_bytes
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<WatchHub> hub_;

  mutable Mutex expiry_mu_;
  absl::btree_set<std::pair<int64_t, std::string>> expiry_ ABSL_GUARDED_BY(expiry_mu_);

  std::mutex queue_mu_;              // Linear: the writers' queue
  std::deque<PendingWrite*> queue_;  // guarded by queue_mu_; front = the leader
  std::mutex snapshot_mu_;           // one snapshot at a time; taken before any write_mu
  std::atomic<uint64_t> bytes_since_snapshot_{0};
  std::atomic<bool> snapshot_due_{false};
  std::atomic<bool> remove_on_close_{false};
};

// The first key after every key that starts with `prefix`, or nullopt (no bound: the prefix
// is empty or all 0xff).
std::optional<std::string> PrefixEnd(std::string_view prefix);

}  // namespace packice::kv

#endif  // PACKICE_SERVICES_KV_BUCKET_H_
