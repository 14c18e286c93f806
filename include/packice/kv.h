// Piccadilly KV: namespaced keys and values with revisions, compare-and-swap, scans, atomic
// batches, TTLs and watches, durable through a write-ahead log (docs/kv.md).
//
// A namespace is a path such as "/team/project/ds1". Every path may be a namespace (both
// "/a" and "/a/b" at once); namespaces are found by a hash table, path -> bucket, never by
// walking a tree. A bucket holds one namespace: a store engine, its write-ahead log, its
// watchers and a revision counter. Every write to a bucket (put, delete, batch, or the expiry
// of a key) gets the bucket's next revision, 1, 2, 3, ...; a key carries the revision that
// created it, the revision that last changed it and its version (1 on create, +1 per put).
//
// Errors shared by every call: kInvalidArgument (a malformed namespace path, an empty or
// oversize key, an oversize value or batch), kNotFound (no such namespace; for Get, no such
// key), kInternal or the error that made the namespace's log read-only (a failed write or
// fsync: nothing more is acknowledged until the store is reopened).
//
// Thread safety: a KvStore is safe for concurrent use by any number of threads; a KvWatcher
// is for one consumer thread at a time (Cancel and the notify callback excepted).
#ifndef PACKICE_KV_H_
#define PACKICE_KV_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "packice/status.h"
#include "packice/types.h"

namespace packice {

class Clock;
class Env;

// How a namespace keeps its keys.
enum class KvEngine : uint8_t {
  // absl::flat_hash_map: point operations. Scans work but read the whole namespace per page
  // (a filtered, sorted copy): fine for small namespaces, wrong for big ones.
  kSwissTable = 1,
  // absl::btree_map: ordered, for range and prefix scans.
  kMemTable = 2,
};

enum class KvWriteMode : uint8_t {
  // Writes are applied and acknowledged in arrival order: revision order is acknowledgement
  // order. Queued writers share one log append and fdatasync (a writer queue, as leveldb's).
  kLinear = 1,
  // Writes to different keys run concurrently (sharded locks, group-committed to the log);
  // each key's writes are ordered, writes to different keys in no promised order.
  kNoLinear = 2,
};

enum class KvFsync : uint8_t {
  kAlways = 1,    // a write is acknowledged once it is on the disk (fdatasync, group commit)
  kInterval = 2,  // on the disk at most fsync_interval after its acknowledgement
  kNever = 3,     // the kernel decides; a process crash loses nothing, a machine crash may
};

struct NamespaceOptions {
  KvEngine engine = KvEngine::kSwissTable;
  KvWriteMode write_mode = KvWriteMode::kLinear;
  KvFsync fsync = KvFsync::kAlways;
  Duration fsync_interval{10};  // kInterval only; 1 ms .. 60 s
  Duration default_ttl{0};      // TTL of keys put without one; 0 = none
};

struct NamespaceInfo {
  std::string path;
  NamespaceOptions options;
  int64_t revision = 0;  // the bucket's latest revision
  uint64_t keys = 0;     // live keys, expired ones not yet reaped included
};

struct KvOptions {
  // The store's directory (made if missing; one process at a time): the namespace table and
  // one directory per bucket (docs/kv.md, "Files").
  std::string dir;
  std::shared_ptr<Env> env;      // every file operation; null = the real file system
  std::shared_ptr<Clock> clock;  // TTLs (wall-clock milliseconds); null = Clock::System()
  uint64_t max_key_bytes = 4096;
  uint64_t max_value_bytes = 1ull << 20;
  uint64_t max_batch_ops = 1024;
  uint64_t max_batch_bytes = 4ull << 20;  // keys + values of one batch
  uint64_t max_scan_limit = 10000;        // the largest page a Scan returns
  // A Scan page also ends once it holds this many bytes of keys and values (the key that
  // crosses it included), with ScanResult::next set: a page never grows past one value more.
  // (2 MiB: a page plus that value stays under gRPC's 4 MiB message limit.)
  uint64_t max_scan_bytes = 2ull << 20;
  // The log of each bucket: segment size (preallocated) and when to snapshot the engine and
  // truncate the log (after this many bytes were logged since the last snapshot).
  uint64_t segment_bytes = 16ull << 20;
  uint64_t snapshot_after_bytes = 64ull << 20;
  // Watch: events kept in memory per bucket for watchers that start in the past (after a
  // restart, the last ones replayed from the log; older ones are read back from the log while
  // it has them), and the bounds of one watcher's buffer (events: the default of
  // WatchOptions::buffer_events; bytes of keys and values).
  uint64_t history_events = 10000;
  uint64_t history_bytes = 64ull << 20;
  uint64_t watcher_buffer_events = 1024;
  uint64_t watcher_buffer_bytes = 16ull << 20;
  // How often expired keys are deleted (with a delete event); 0 = only ReapExpired().
  Duration reap_interval{1000};
};

// A key's value and metadata.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;          // 1 on create, +1 per put
  int64_t expires_unix_ms = 0;  // 0 = no TTL
};

struct PutOptions {
  std::optional<Duration> ttl;  // nullopt = the namespace's default_ttl; 0 = none
  // Compare-and-swap: write only if the key's mod revision is this. 0 = only if the key is
  // absent (or expired). A mismatch fails: kAlreadyExists (expected absent, present),
  // kNotFound (expected a revision, absent), kWrongState (another revision).
  std::optional<int64_t> if_mod_revision;
  bool prev_kv = false;  // return the value this put replaced
};

struct PutResult {
  int64_t revision = 0;
  std::optional<KeyValue> prev;  // with prev_kv, when the key existed
};

struct DeleteOptions {
  std::optional<int64_t> if_mod_revision;  // as PutOptions's (0 is refused: kInvalidArgument)
  bool prev_kv = false;
};

struct DeleteResult {
  int64_t revision = 0;
  std::optional<KeyValue> prev;  // with prev_kv
};

// Keys in [start, end) bytewise, or those starting with `prefix` (then start and end must be
// empty), after the key `after` (a continuation: ScanResult::next), at most `limit`.
struct ScanOptions {
  std::string prefix;
  std::string start;
  std::string end;        // "" = no end
  std::string after;      // "" = from the start
  uint64_t limit = 1000;  // 1 .. max_scan_limit
  bool keys_only = false;
};

struct ScanResult {
  std::vector<KeyValue> kvs;  // in key order
  // Non-empty when more keys may follow: pass it as ScanOptions::after for the next page.
  std::string next;
  int64_t revision = 0;  // the bucket's revision when the page was read
};

// One put of PutMany / MultiPut.
struct KvPutItem {
  std::string key;
  std::string value;
  PutOptions options;
};

// One operation of an atomic batch. Every condition is checked first; if one fails the batch
// fails with its error and nothing is written. Otherwise every operation is applied under one
// revision. A key may appear once per batch.
struct BatchOp {
  enum class Kind : uint8_t { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;                       // kPut
  std::optional<Duration> ttl;             // kPut, as PutOptions::ttl
  std::optional<int64_t> if_mod_revision;  // as PutOptions's; for kDelete not 0
  // kDelete of an absent key: false = the batch fails with kNotFound; true = a no-op.
  bool ignore_missing = false;
};

struct BatchResult {
  int64_t revision = 0;
};

struct KvEvent {
  enum class Type : uint8_t { kPut = 1, kDelete = 2 };
  Type type = Type::kPut;
  // kPut: the new value and metadata. kDelete: the key, mod_revision = the deleting revision.
  KeyValue kv;
  std::optional<KeyValue> prev;  // with WatchOptions::prev_kv, when the key existed
  bool expired = false;          // kDelete by the TTL reaper
};

struct WatchOptions {
  std::string key;  // one key, or with `prefix` every key starting with it ("" = all)
  bool prefix = false;
  // The first revision to deliver; 0 = only what happens from now on. A revision older than
  // the kept history is refused: kOutOfRange "compacted, oldest is R" (history beyond the
  // in-memory window is read back from the log, but not with prev_kv). One beyond the next
  // revision is kInvalidArgument.
  int64_t start_revision = 0;
  bool prev_kv = false;
  uint64_t buffer_events = 0;  // 0 = KvOptions::watcher_buffer_events
};

// A watch: events of matching keys, in revision order, each revision whole. Pull-based: the
// consumer calls Next; a push surface (a socket, SSE, a gRPC stream) sets a notify callback
// and pulls when woken.
class KvWatcher {
 public:
  virtual ~KvWatcher() = default;  // cancels

  // Waits until events are buffered or `deadline`, and returns up to `max_events` (never
  // part of a revision unless one revision alone has more). After the events buffered when
  // the watch ended, returns its end: kOutOfCapacity "watcher too slow, resume from
  // revision R" (the buffer overflowed; R = resume_revision()), kNotFound (the namespace was
  // deleted), kAborted (Cancel). kTimeout: nothing by the deadline, the watch goes on.
  virtual Result<std::vector<KvEvent>> Next(std::chrono::steady_clock::time_point deadline,
                                            size_t max_events = 256) = 0;
  // `notify` runs whenever events arrive or the watch ends, on the thread that published
  // them, while the bucket publishes: it must not block or call into the KvStore (calling
  // this watcher's Next or Cancel is fine). Replaces the previous one.
  virtual void SetNotify(std::function<void()> notify) = 0;
  // Ends the watch; Next returns kAborted after the events already buffered.
  virtual void Cancel() = 0;
  // The first revision this watcher has not delivered: where to resume after an end.
  virtual int64_t resume_revision() const = 0;
};

// The KV service. In-process: OpenKvStore; on a node: ConnectKv.
class KvStore {
 public:
  virtual ~KvStore() = default;

  // Creates a namespace (durable before it returns). Errors: kInvalidArgument (path or
  // options), kAlreadyExists.
  virtual Status CreateNamespace(std::string_view path, const NamespaceOptions& options) = 0;
  // Deletes a namespace and every key in it; its watchers end with kNotFound.
  virtual Status DeleteNamespace(std::string_view path) = 0;
  // Namespaces whose path starts with `prefix` ("" = all), sorted by path.
  virtual Result<std::vector<NamespaceInfo>> ListNamespaces(std::string_view prefix) = 0;

  // The live value of `key`. Errors: kNotFound (absent or expired).
  virtual Result<KeyValue> Get(std::string_view ns, std::string_view key) = 0;
  virtual Result<PutResult> Put(std::string_view ns, std::string_view key, std::string_view value,
                                const PutOptions& options = {}) = 0;
  // Errors: kNotFound (absent or expired), the CAS errors of PutOptions.
  virtual Result<DeleteResult> Delete(std::string_view ns, std::string_view key,
                                      const DeleteOptions& options = {}) = 0;
  // A page of keys in key order. Not a snapshot across pages: a key written between two
  // pages is seen or not according to where it sorts.
  virtual Result<ScanResult> Scan(std::string_view ns, const ScanOptions& options) = 0;
  // Puts applied in order, each on its own (its own revision and result; not atomic: Commit
  // is), each seeing the ones before it (a compare-and-swap on a key an earlier item wrote).
  // A store may make them durable together (one log append and fdatasync for all). The
  // result has one entry per put; the outer error is the call's (no such namespace).
  virtual Result<std::vector<Result<PutResult>>> PutMany(std::string_view ns,
                                                         std::span<const KvPutItem> puts) {
    std::vector<Result<PutResult>> out;
    out.reserve(puts.size());
    for (const KvPutItem& p : puts) {
      Result<PutResult> r = Put(ns, p.key, p.value, p.options);
      if (!r.ok() && r.status().code() == StatusCode::kNotFound && out.empty() &&
          !p.options.if_mod_revision) {
        return r.status();  // no such namespace
      }
      out.push_back(std::move(r));
    }
    return out;
  }
  // An atomic batch (see BatchOp). Errors: kInvalidArgument (empty, a key twice, too many
  // ops or bytes), the failing condition's error.
  virtual Result<BatchResult> Commit(std::string_view ns, std::span<const BatchOp> ops) = 0;
  // Errors: kOutOfRange (compacted), kInvalidArgument (a future revision).
  virtual Result<std::unique_ptr<KvWatcher>> Watch(std::string_view ns,
                                                   const WatchOptions& options) = 0;

  // Whether a write to `ns` may wait before it is acknowledged — for the disk (fsync
  // "always") or another node. A transport runs writes that do not on its io thread instead of
  // handing them to a pool. A hint, never an error: true when unsure.
  virtual bool WritesWait(std::string_view ns) { return true; }
};

namespace internal {
// What a KvFuture waits on: a call in flight, answered by its transport.
template <typename T>
class KvAnswer {
 public:
  virtual ~KvAnswer() = default;
  // Waits until the answer is in, or `deadline` passed (false then; none: as long as it
  // takes). The waiting thread may receive the connection's answers itself.
  virtual bool WaitUntil(std::optional<std::chrono::steady_clock::time_point> deadline) = 0;
  // The answer. REQUIRES: WaitUntil returned true. Called once.
  virtual Result<T> Take() = 0;
};

template <typename T>
class KnownKvAnswer final : public KvAnswer<T> {
 public:
  explicit KnownKvAnswer(Result<T> r) : r_(std::move(r)) {}
  bool WaitUntil(std::optional<std::chrono::steady_clock::time_point>) override { return true; }
  Result<T> Take() override { return std::move(r_); }

 private:
  Result<T> r_;
};
}  // namespace internal

// The result of an asynchronous KV call (GetAsync, PutAsync): as std::future, without its
// thread hand-off — the thread that waits may read the answer off the connection itself, and
// answering a call wakes no one when no one waits. Move-only; get() once.
template <typename T>
class KvFuture {
 public:
  KvFuture() = default;
  explicit KvFuture(std::shared_ptr<internal::KvAnswer<T>> answer) : answer_(std::move(answer)) {}
  // A future already holding `r` (a call that failed before it was sent).
  static KvFuture Known(Result<T> r) {
    return KvFuture(std::make_shared<internal::KnownKvAnswer<T>>(std::move(r)));
  }

  bool valid() const { return answer_ != nullptr; }
  // Waits for the answer and returns it; the future is then !valid(). REQUIRES: valid().
  Result<T> get() {
    std::shared_ptr<internal::KvAnswer<T>> answer = std::move(answer_);
    answer->WaitUntil(std::nullopt);
    return answer->Take();
  }
  // True once the answer is in (get() then returns at once). REQUIRES: valid().
  bool wait_until(std::chrono::steady_clock::time_point deadline) {
    return answer_->WaitUntil(deadline);
  }
  template <typename Rep, typename Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(std::chrono::steady_clock::now() + timeout);
  }
  bool ready() { return wait_until(std::chrono::steady_clock::time_point::min()); }

 private:
  std::shared_ptr<internal::KvAnswer<T>> answer_;
};

// A node's KV (ConnectKv): every KvStore call, plus calls that do not wait for one answer
// before the next is sent (many in flight on one connection, answers matched by id) and
// batched calls. The node runs one client's calls in the order they were made, so a Get made
// after a PutAsync sees its write. Watches arrive pushed by the node; a watch whose reader
// falls behind ends "watcher too slow, resume from revision R" in the client as in the node.
//
// Transport errors: kUnavailable (no node, or the connection broke: calls in flight fail with
// it; the next call connects again).
class KvClient : public KvStore {
 public:
  // Queues the call and returns at once; the future holds its result. Calls made one after
  // another without waiting (a pipeline) go to the node together, in one write.
  virtual KvFuture<KeyValue> GetAsync(std::string_view ns, std::string_view key) = 0;
  virtual KvFuture<PutResult> PutAsync(std::string_view ns, std::string_view key,
                                       std::string_view value, const PutOptions& options = {}) = 0;
  // Up to 1024 keys in one message; one result per key, in order (kNotFound for an absent
  // key; kOutOfCapacity for keys past the reply's 2 MiB: get them again). The outer error is
  // the call's (no such namespace, too many keys, transport).
  virtual Result<std::vector<Result<KeyValue>>> MultiGet(std::string_view ns,
                                                         std::span<const std::string> keys) = 0;
  // Up to 1024 puts, applied in order, each on its own (not atomic: Commit is).
  virtual Result<std::vector<Result<PutResult>>> MultiPut(std::string_view ns,
                                                          std::span<const KvPutItem> puts) = 0;
};

struct KvClientOptions {
  // grpc:// and grpcs:// nodes: sent as "Authorization: Bearer <token>"; empty:
  // $PACKICE_TOKEN, else none. grpcs://: the CAs of the node's certificate ($PACKICE_CA_FILE,
  // else the system's).
  std::string token;
  std::string ca_file;
  // A watch's events buffered in the client before it ends "too slow".
  size_t watch_buffer_events = 4096;
  size_t watch_buffer_bytes = 16u << 20;
};

// A client of the KV of the node at `url`: uds:///path/to/socket (or a bare absolute path),
// grpc://host:port or grpcs://host:port. Errors: kInvalidArgument (URL), kUnavailable (no node
// there).
Result<std::unique_ptr<KvClient>> ConnectKv(std::string_view url, KvClientOptions options = {});

// Opens (or creates) the store in options.dir and recovers every namespace: snapshot, then
// the log after it; a torn log tail is dropped. Errors: kInvalidArgument (options),
// kAlreadyExists (another process holds a bucket), kDataLoss (a log or the namespace table is
// corrupt: refused, nothing changed), kInternal.
Result<std::unique_ptr<KvStore>> OpenKvStore(KvOptions options);

// The error of a call on a namespace that does not exist: kNotFound "no namespace <path>" (a key
// that does not exist is kNotFound too, with another message).
inline bool IsNoSuchNamespace(const Status& s) {
  return s.code() == StatusCode::kNotFound && s.message().starts_with("no namespace ");
}

// Checks a namespace path: "/" then segments of [A-Za-z0-9._-] (not "." or ".."), joined by
// single '/', no trailing '/', at most 256 bytes and 32 segments. Errors: kInvalidArgument
// saying what is wrong.
Status ValidateNamespacePath(std::string_view path);

}  // namespace packice

#endif  // PACKICE_KV_H_
