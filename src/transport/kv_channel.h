// KvChannel: the client side of a transport that carries KV calls (kv_wire.proto). The KV
// client (include/packice/kv.h, ConnectKv) talks to a node only through one; the Unix socket
// and gRPC provide one each.
//
// KvEventQueue: the client's end of a watch, written once for every transport — the transport
// pushes the frames it receives, the application pulls them as from any KvWatcher.
//
// Thread safety: both are safe for concurrent use.
#ifndef PACKICE_TRANSPORT_KV_CHANNEL_H_
#define PACKICE_TRANSPORT_KV_CHANNEL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "packice/kv.h"
#include "packice/status.h"
#include "transport/uds/kv_wire.pb.h"

namespace packice {

// The bounds of a watch's client buffer (KvEventQueue): KvClientOptions' watch_buffer_*.
struct KvWatchBounds {
  size_t events = 4096;
  size_t bytes = 16u << 20;
};

class KvChannel {
 public:
  virtual ~KvChannel() = default;

  using Done = std::function<void(Result<wire::KvResponse>)>;
  // Sends one call (not a watch) without waiting for earlier ones' answers: the node runs one
  // channel's calls in the order sent. `done` runs once, with the answer or the transport's
  // error (kUnavailable: the connection broke), on a thread of the transport: it must not
  // block.
  virtual void Send(wire::KvRequest req, Done done) = 0;
  // Sends one call and waits for its answer (by default through Start; a transport may have
  // the calling thread receive it itself).
  virtual Result<wire::KvResponse> Call(wire::KvRequest req);
  // Sends one call as Send does; its answer is waited for on the result (a KvFuture's). By
  // default through Send; a transport may have the waiting thread receive it itself.
  virtual std::shared_ptr<internal::KvAnswer<wire::KvResponse>> Start(wire::KvRequest req);
  // Starts the watch of `req` (its `watch` set) and returns once the node said it started.
  virtual Result<std::unique_ptr<KvWatcher>> Watch(wire::KvRequest req) = 0;
  // False once the channel is known broken: the client connects again.
  virtual bool healthy() const { return true; }
};

// A watch's events as they arrive. Bounded: past `max_events` or `max_bytes` buffered, the
// watch ends "watcher too slow, resume from revision R" and `cancel` runs (the transport
// tells the node to stop sending). R is the first revision not wholly buffered: a revision
// larger than one frame arrives in parts, and if a reader took the first part before the
// overflow, resuming at R delivers that part again.
class KvEventQueue final : public KvWatcher {
 public:
  KvEventQueue(int64_t start_revision, size_t max_events, size_t max_bytes,
               std::function<void()> cancel);
  ~KvEventQueue() override;

  // Transport side: one frame of events, or the watch's end. Returns false once ended.
  bool Deliver(const wire::KvWatchEvents& frame);
  void End(Status why, int64_t resume_revision = 0);

  Result<std::vector<KvEvent>> Next(std::chrono::steady_clock::time_point deadline,
                                    size_t max_events = 256) override;
  void SetNotify(std::function<void()> notify) override;
  void Cancel() override;
  int64_t resume_revision() const override;

 private:
  std::function<void()> EndLocked(Status why);

  const size_t max_events_;
  const size_t max_bytes_;
  std::function<void()> cancel_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<KvEvent> buffer_;
  size_t bytes_ = 0;
  int64_t resume_ = 0;
  bool ended_ = false;
  bool cancel_sent_ = false;
  Status end_;
  std::function<void()> notify_;
};

}  // namespace packice

#endif  // PACKICE_TRANSPORT_KV_CHANNEL_H_
