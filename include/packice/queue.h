// Persisting: a durable queue of records in topics (docs/queue.md; issue 13).
//
// A record is a value of bytes with string headers, an optional key (a writer partitions by
// its hash) and a timestamp. A topic is split into buckets; within a bucket every record has
// an offset, 0, 1, 2, ..., dense and never reused: the i-th record appended has offset
// start + i, forever (retention removes records from the front, never renumbers). Order is
// kept within a bucket, not across buckets.
//
// Queue: topics, and records appended to and read from their buckets, and the positions of
// consumer groups (committed durably). QueueWriter and QueueReader are the application's view
// of one topic: a writer partitions records over the buckets, a reader of a group reads every
// bucket from the group's committed positions, waits for more, and commits.
//
// Errors shared by every call: kInvalidArgument (a malformed topic or group name, a bucket
// out of range, a bad option), kNotFound (no such topic), kInternal or a bucket's log error.
//
// Thread safety: a Queue is safe for concurrent use; a QueueWriter too; a QueueReader is for
// one thread at a time.
#ifndef PACKICE_QUEUE_H_
#define PACKICE_QUEUE_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "packice/peer.h"
#include "packice/status.h"

namespace packice {

class Clock;
class Env;

struct QueueRecord {
  std::optional<std::string> key;
  std::vector<std::pair<std::string, std::string>> headers;  // in order; names may repeat
  std::string value;
  int64_t timestamp_unix_ms = 0;  // the writer's; 0 = set on append

  bool operator==(const QueueRecord&) const = default;
};

// A record as read back, with its offset in its bucket.
struct StoredRecord {
  uint64_t offset = 0;
  QueueRecord record;

  bool operator==(const StoredRecord&) const = default;
};

enum class QueueFsync {
  kAlways,    // an append returns once its records are on the disk (group-committed fdatasync)
  kInterval,  // synced every fsync_interval; an append returns once written
  kNever,     // the kernel decides; a crash of the process loses nothing acknowledged
};

// "always", "interval", "never"; ParseQueueFsync errors: kInvalidArgument.
std::string_view QueueFsyncName(QueueFsync f);
Result<QueueFsync> ParseQueueFsync(std::string_view name);

// Where a topic's buckets keep their records (docs/queue.md, "Backends").
enum class QueueStorage {
  kLog,     // the bucket's segmented log
  kTiered,  // the log for new records; full runs of them sealed as objects into the node's
            // object store, where they move between memory and disk under its tier policy
};

// "log", "tiered"; ParseQueueStorage errors: kInvalidArgument.
std::string_view QueueStorageName(QueueStorage s);
Result<QueueStorage> ParseQueueStorage(std::string_view name);

struct TopicOptions {
  uint32_t buckets = 1;  // 1 .. 1024, fixed at creation
  QueueFsync fsync = QueueFsync::kAlways;
  std::chrono::milliseconds fsync_interval{100};  // kInterval: 1 ms .. 60 s
  uint64_t segment_bytes = 64ull << 20;           // of a bucket's log: 1 MiB .. 1 GiB
  // Retention, per bucket: whole segments go, oldest first, while a bucket keeps more than
  // retention_bytes or a segment's newest record is older than retention_age (0: no bound).
  uint64_t retention_bytes = 0;
  std::chrono::milliseconds retention_age{0};
  // kTiered needs a queue opened with an object store (QueueOptions::object_store).
  QueueStorage storage = QueueStorage::kLog;

  bool operator==(const TopicOptions&) const = default;
};

struct TopicInfo {
  std::string name;
  TopicOptions options;
};

struct BucketInfo {
  uint32_t bucket = 0;
  uint64_t start_offset = 0;  // the oldest record kept
  uint64_t end_offset = 0;    // the offset of the next record appended
  uint64_t bytes = 0;         // kept, as stored
  // Since the queue was opened: records and their encoded bytes appended and read, and the
  // appends' time (with fsync "always" their fdatasync's).
  uint64_t records_in = 0;
  uint64_t bytes_in = 0;
  uint64_t records_out = 0;
  uint64_t bytes_out = 0;
  uint64_t appends = 0;
  uint64_t append_micros = 0;
};

// A consumer group's committed position in one bucket.
struct GroupPosition {
  std::string group;
  uint32_t bucket = 0;
  uint64_t offset = 0;
  bool operator==(const GroupPosition&) const = default;
};

// Held while a Subscribe's notify should run; dropping it stops them.
using QueueSubscription = std::shared_ptr<void>;

// Where a reader is: the next offset to read in a bucket.
struct QueuePosition {
  uint32_t bucket = 0;
  uint64_t offset = 0;
};

struct BucketRecords {
  uint32_t bucket = 0;
  std::vector<StoredRecord> records;  // consecutive offsets
};

struct AppendResult {
  uint32_t bucket = 0;
  uint64_t offset = 0;
};

// A topic's schema (docs/queue.md, "Schemas"): the fields of its records, each a JSON object
// in UTF-8. Versions count from 1; a new one keeps every field of the one before with its
// type (a required field may become optional) and may add optional fields. Appends are
// checked against the newest version (all or none) and stamped with it (the header
// "schema-version", and "content-type: application/json"); a read gives a record written
// under an older version under the newest one: the fields it lacks, with their defaults.
enum class SchemaType { kBool, kInt, kFloat, kString, kArray, kObject, kAny };

struct SchemaField {
  std::string name;  // 1..128 bytes of UTF-8, unique in the schema
  SchemaType type = SchemaType::kAny;
  bool required = false;
  // An optional field's value where a record lacks it, as JSON text; empty: null.
  std::string default_json;
  bool operator==(const SchemaField&) const = default;
};

struct QueueSchema {
  uint32_t version = 0;  // set by the queue
  std::vector<SchemaField> fields;
  bool operator==(const QueueSchema&) const = default;
};

inline constexpr std::string_view kSchemaVersionHeader = "schema-version";

// {"fields": [{"name": "user", "type": "int", "required": true},
//             {"name": "tag", "type": "string", "default": "none"}], "version": N}
// ("version" is optional and ignored when setting one; types: bool int float string array
// object any). ParseQueueSchema errors: kInvalidArgument, naming what is wrong.
Result<QueueSchema> ParseQueueSchema(std::string_view json);
std::string QueueSchemaJson(const QueueSchema& schema);
std::string_view SchemaTypeName(SchemaType type);

// What an asynchronous append gives back: the offset of its first record, or its error.
using QueueAppendDone = std::function<void(Result<uint64_t>)>;

class Queue {
 public:
  virtual ~Queue() = default;

  // Topic names are 1..128 of A-Z a-z 0-9 . _ - (not "." or ".."); "NAME@B" (B a bucket
  // number) names bucket B of a cluster's topic NAME on its owner. Errors: kAlreadyExists.
  virtual Status CreateTopic(std::string_view topic, const TopicOptions& options) = 0;
  // Removes the topic, its records and its groups' positions. Readers waiting on it get
  // kNotFound.
  virtual Status DeleteTopic(std::string_view topic) = 0;
  virtual Result<std::vector<TopicInfo>> ListTopics() = 0;
  virtual Result<std::vector<BucketInfo>> Buckets(std::string_view topic) = 0;

  // Appends `records` to `bucket`, all or none, in order; returns the first one's offset. A
  // record's timestamp 0 is set to now. Errors: kInvalidArgument (no records, a record over
  // 4 MiB encoded, more than 8 MiB in one append: nothing appended).
  virtual Result<uint64_t> Append(std::string_view topic, uint32_t bucket,
                                  std::span<const QueueRecord> records) = 0;
  // Appends like Append without waiting for the disk: `records` are consumed before it
  // returns, and `done` is called exactly once with what Append would have returned — on this
  // thread, or on the queue's once the append is durable. One caller's appends to a bucket
  // keep the order of its calls, and so do their `done`s. A writer keeps several appends in
  // flight this way (QueueWriter::PutBatchAsync); it bounds how many. `done` must not block,
  // call the queue, nor drop the last reference to it. The default runs Append.
  virtual void AppendAsync(std::string_view topic, uint32_t bucket,
                           std::span<const QueueRecord> records, QueueAppendDone done) {
    done(Append(topic, bucket, records));
  }

  // Up to `limit` records in all, from the positions in `from` (bucket by bucket, in that
  // order), and about `max_bytes`. With none there, waits up to `wait` for an append to any
  // of them; still none: an empty result. A position past its bucket's end is
  // kOutOfRange; one before its start (removed by retention) too, naming the oldest.
  virtual Result<std::vector<BucketRecords>> Read(std::string_view topic,
                                                  std::span<const QueuePosition> from, size_t limit,
                                                  std::chrono::milliseconds wait,
                                                  size_t max_bytes = 4u << 20) = 0;

  // A consumer group's position in a bucket: the next offset it will read, committed
  // durably (it survives kill -9 once Commit returned). Group names as topic names.
  // Errors: kOutOfRange (past the bucket's end).
  virtual Status Commit(std::string_view topic, std::string_view group, uint32_t bucket,
                        uint64_t offset) = 0;
  // Applies every topic's retention now (the queue also does every retention_interval).
  virtual Status EnforceRetention() = 0;

  // The committed position; nullopt when the group never committed in this bucket.
  virtual Result<std::optional<uint64_t>> Committed(std::string_view topic, std::string_view group,
                                                    uint32_t bucket) = 0;
  // Every group's committed positions in the topic, by group then bucket.
  virtual Result<std::vector<GroupPosition>> Groups(std::string_view topic) = 0;
  // Runs `notify` after every append to `topic` and at its deletion, while the returned
  // handle is held (a server parks a waiting read on it instead of a thread). `notify` runs
  // under the topic's lock on the appending thread: it must not block nor call the queue;
  // once the handle is dropped it is not running and never runs again.
  virtual Result<QueueSubscription> Subscribe(std::string_view topic,
                                              std::function<void()> notify) = 0;

  // Makes `schema` the topic's newest version and returns its number; the same fields as the
  // newest already is: that version, nothing changes. Durable once it returned. Errors:
  // kInvalidArgument (a bad schema, or one that is not an evolution of the newest: the
  // message says which field).
  virtual Result<uint32_t> SetSchema(std::string_view topic, const QueueSchema& schema) = 0;
  // Every version, oldest first; empty: the topic has no schema.
  virtual Result<std::vector<QueueSchema>> Schemas(std::string_view topic) = 0;

  // Whether an append to `topic` may wait before it returns — for the disk (fsync "always")
  // or another node. A transport runs appends that do not on its io thread instead of handing
  // them to a pool. A hint, never an error: true when unsure.
  virtual bool AppendsWait(std::string_view topic) { return true; }
};

// The queue of the node at `url`: uds:///path/to/socket or a bare absolute path, or its gRPC
// port, grpc://host:port or grpcs://host:port (HTTP carries it too, for other languages:
// docs/queue.md). Over the socket, calls from several threads use several connections (up to
// `max_connections` idle ones are kept); over gRPC they share one. A Read's wait is capped at
// 30 s by the node. Errors: kInvalidArgument (URL), kUnavailable (no node there),
// kPermissionDenied (a gRPC token refused); each call's, and kUnimplemented (the node serves
// no queue).
struct QueueClientOptions {
  // uds://: idle connections kept for the next calls.
  size_t max_connections = 8;
  // grpc:// and grpcs:// nodes: sent as "Authorization: Bearer <token>"; empty:
  // $PACKICE_TOKEN, else none. grpcs://: the CAs of the node's certificate ($PACKICE_CA_FILE,
  // else the system's).
  std::string token;
  std::string ca_file;
};
Result<std::shared_ptr<Queue>> ConnectQueue(std::string_view url, QueueClientOptions options = {});

// A topic's records to a file and back (the seed's backup and restore): ExportTopic writes
// the topic's options and every bucket's kept records (docs/queue.md, "Export format");
// ImportTopic creates `topic` (kAlreadyExists if it exists) with the file's options and
// appends the records to the same buckets in order — offsets start at 0 again. Errors:
// kDataLoss (a file that is not an export, or torn), the queue's errors, kInternal (I/O).
Status ExportTopic(Queue& queue, std::string_view topic, const std::string& path);
Status ImportTopic(Queue& queue, std::string_view topic, const std::string& path);

struct QueueOptions {
  // Where topics live (made if missing). Empty: in memory, nothing durable (tests).
  std::string dir;
  std::shared_ptr<Env> env;      // nullptr = Env::Default()
  std::shared_ptr<Clock> clock;  // nullptr = Clock::System() (record timestamps, retention)
  // How often retention runs by itself; 0: only when EnforceRetention is called.
  std::chrono::milliseconds retention_interval{10000};
  // Where tiered topics seal their records (the node's own store, not a cluster's), as
  // objects "queue/<topic id>/<bucket>/<first offset>"; the queue owns the keys under
  // "queue/". nullptr: no tiered topics (creating one is kInvalidArgument).
  std::shared_ptr<Peer> object_store;
  // Whether the store keeps an object across a crash (a bucket's log keeps the records of an
  // object until it does). Empty: when the object is on the disk tier.
  std::function<bool(const ObjectInfo&)> object_durable;
  // Encoded record bytes in one sealed object; 0: the topic's segment_bytes.
  uint64_t object_bytes = 0;
};

// Opens the queue in `options.dir` and recovers its topics. Errors: kDataLoss (a topic table
// or a bucket that does not recover), kAlreadyExists (another process holds a bucket),
// kInternal.
Result<std::shared_ptr<Queue>> OpenQueue(QueueOptions options);

// Appends to one topic: a record with a key goes to bucket hash(key) % buckets (xxHash64, so
// that one key's records stay in order in one bucket), one without to the buckets in turn.
class QueueWriter {
 public:
  // Errors: kNotFound (no topic). `turn`: the round-robin counter of keyless records, for
  // writers that take turns together (a server's, one writer per request); null: its own.
  static Result<QueueWriter> Open(std::shared_ptr<Queue> queue, std::string topic,
                                  std::shared_ptr<std::atomic<uint64_t>> turn = nullptr);
  Result<AppendResult> Put(QueueRecord record);
  // Records with the same bucket go in one append, in order; across buckets not atomic: on an
  // error, the records of the buckets before it were appended.
  Result<std::vector<AppendResult>> PutBatch(std::span<const QueueRecord> records);
  // PutBatch without waiting for the disk (Queue::AppendAsync): the records are consumed
  // before it returns, and `done` gets what PutBatch would have, once every bucket's append
  // has finished — on this thread or the queue's. The buckets' appends are all made: on an
  // error (the first bucket's that failed) the others may have been appended. A writer's
  // batches keep their order within a bucket. The caller bounds how many it keeps in flight;
  // `done` must not block nor call the queue.
  using PutBatchDone = std::function<void(Result<std::vector<AppendResult>>)>;
  void PutBatchAsync(std::span<const QueueRecord> records, PutBatchDone done);
  uint32_t buckets() const { return buckets_; }

 private:
  QueueWriter(std::shared_ptr<Queue> queue, std::string topic, uint32_t buckets,
              std::shared_ptr<std::atomic<uint64_t>> turn)
      : queue_(std::move(queue)),
        topic_(std::move(topic)),
        buckets_(buckets),
        next_(turn ? std::move(turn) : std::make_shared<std::atomic<uint64_t>>(0)) {}
  uint32_t BucketFor(const QueueRecord& r);
  // The records' indexes by bucket, in order.
  std::map<uint32_t, std::vector<size_t>> ByBucket(std::span<const QueueRecord> records);

  std::shared_ptr<Queue> queue_;
  std::string topic_;
  uint32_t buckets_;
  std::shared_ptr<std::atomic<uint64_t>> next_;
};

// Reads one topic for a consumer group: from the group's committed positions (or each
// bucket's start when it never committed), every bucket in turn.
class QueueReader {
 public:
  static Result<QueueReader> Open(std::shared_ptr<Queue> queue, std::string topic,
                                  std::string group);
  // The next records (up to `limit`), waiting up to `wait` when there are none; advances the
  // reader's positions (not the group's: Commit does).
  Result<std::vector<BucketRecords>> Get(size_t limit, std::chrono::milliseconds wait);
  // Commits every bucket's position (what Get returned is consumed).
  Status Commit();
  const std::vector<QueuePosition>& positions() const { return positions_; }

 private:
  QueueReader(std::shared_ptr<Queue> queue, std::string topic, std::string group,
              std::vector<QueuePosition> positions)
      : queue_(std::move(queue)),
        topic_(std::move(topic)),
        group_(std::move(group)),
        positions_(std::move(positions)) {}

  std::shared_ptr<Queue> queue_;
  std::string topic_;
  std::string group_;
  std::vector<QueuePosition> positions_;
  size_t first_ = 0;  // the bucket Get starts at, in turn, so that none starves
};

}  // namespace packice

#endif  // PACKICE_QUEUE_H_
