// KvSession: the KV calls of one Unix-socket connection (docs/protocol.md, "KV").
//
// A KV call may wait on its namespace's log (an fdatasync with fsync "always"), so it does not
// run on the connection's io thread: the connection's calls queue here in arrival order and
// run, one connection's one after another, on a shared pool of threads; their responses go
// back through the connection's strand. Waiting writers of different connections share one
// log append and fdatasync (the bucket's writer queue). A read — or a write that does not wait
// (KvStore::WritesWait: fsync "interval" or "never") — with nothing queued before it runs at
// once on the strand, its answer queued with the others of the same read from the socket.
// Such puts to one namespace, one after another in the same read (a pipeline's), are held
// until the read's requests are handled (EndOfInput) or another call comes, and then run as
// one KvStore::PutMany: one log append, one lock of the bucket, for all of them.
//
// A watch answers with frames of events carrying its request's id: the first (empty) says it
// started, the last has end_code set. Events are pulled from the KvWatcher only while the
// connection's unsent output is under its cap; a client that does not read fills the
// watcher's bounded buffer and gets the end "too slow, resume from revision R".
//
// Bounds: at most kMaxQueuedCalls calls (or kMaxQueuedBytes of them) wait per connection —
// backlogged() tells the connection to stop reading — and kMaxWatches watches.
//
// Thread safety: every method runs on the connection's strand.
#ifndef PACKICE_TRANSPORT_UDS_KV_SESSION_H_
#define PACKICE_TRANSPORT_UDS_KV_SESSION_H_

#include <absl/container/flat_hash_map.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "packice/kv.h"
#include "transport/uds/wire.pb.h"

namespace packice {

// What a KvSession needs of its connection; each runs on the strand.
struct KvSessionHost {
  boost::asio::any_io_executor strand;
  std::function<void(std::string frames)> send;   // queues response frames and flushes
  std::function<void(std::string frames)> queue;  // queues them only (Handle's caller flushes)
  std::function<size_t()> pending_output;         // unsent bytes
  size_t max_pending_output = 16u << 20;
  std::function<void()> unblocked;  // backlogged() became false: read requests again
};

class KvSession : public std::enable_shared_from_this<KvSession> {
 public:
  static constexpr size_t kMaxQueuedCalls = 1024;
  static constexpr size_t kMaxQueuedBytes = 16u << 20;
  static constexpr size_t kMaxWatches = 1024;

  // `kv` null: every call answers kUnimplemented "this node serves no KV".
  KvSession(std::shared_ptr<KvStore> kv, boost::asio::thread_pool* pool, KvSessionHost host);
  ~KvSession();

  // Takes request `id`'s KV call (`bytes`: its frame's size, for the queue's bound).
  void Handle(uint64_t id, wire::KvRequest req, size_t bytes);
  // The requests read from the socket so far are handled: runs the puts held back (above).
  void EndOfInput();
  // Too much is queued: the connection stops reading until `unblocked`.
  bool backlogged() const;
  // The connection's output drained under its cap: watches paused by it go on.
  void OutputDrained();
  // The connection closed: cancels its watches; queued calls still run, their answers dropped.
  void Close();

 private:
  struct Call {
    uint64_t id;
    wire::KvRequest req;
    size_t bytes;
  };
  struct Done {  // a call's answer, or a watch that started
    uint64_t id;
    std::string frame;
    std::unique_ptr<KvWatcher> watcher;
  };

  // Queues the answer (Handle's caller flushes once for all it handled); `body` (may be null)
  // is moved into it.
  void Respond(uint64_t id, const Status& s, wire::KvResponse* body);
  void RunHeldPuts();                     // runs held_puts_ on the strand, answers them
  void RunQueued();                       // hands the queue to the pool
  void Finished(std::vector<Done> done);  // back on the strand
  void StartWatch(uint64_t id, std::unique_ptr<KvWatcher> watcher);
  void CancelWatch(uint64_t id, uint64_t watch_id);
  void Pump(uint64_t id);  // sends a watch's buffered events

  // Runs one call on a pool thread (watches start there: a start in the past reads the log).
  static Done Run(KvStore& kv, Call& call);

  std::shared_ptr<KvStore> kv_;
  boost::asio::thread_pool* pool_;
  KvSessionHost host_;
  std::deque<Call> queue_;
  std::vector<Call> held_puts_;  // quick puts to one namespace, run at EndOfInput
  size_t held_bytes_ = 0;
  size_t queued_bytes_ = 0;
  bool running_ = false;  // a batch is on the pool
  bool was_backlogged_ = false;
  bool closed_ = false;
  absl::flat_hash_map<uint64_t, std::unique_ptr<KvWatcher>> watches_;
  std::vector<uint64_t> paused_;  // watches waiting for the output to drain
};

}  // namespace packice

#endif  // PACKICE_TRANSPORT_UDS_KV_SESSION_H_
