// The gRPC transport's KvChannel; see grpc_kv_channel.h.
#include "transport/grpc/grpc_kv_channel.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "core/mutex.h"
#include "transport/grpc/grpc_common.h"
#include "transport/grpc/kv_service.grpc.pb.h"

namespace packice {
namespace {

void AddToken(::grpc::ClientContext* ctx, const GrpcChannelOptions& options) {
  if (!options.bearer_token.empty()) {
    ctx->AddMetadata(rpc::kAuthorizationKey, "Bearer " + options.bearer_token);
  }
}

// One Call and what gRPC needs alive until its callback.
struct UnaryCall {
  ::grpc::ClientContext ctx;
  wire::KvRequest req;
  wire::KvResponse resp;
  KvChannel::Done done;
};

// A channel's calls, one in flight and the rest in order. Shared with the callbacks of the calls
// in flight, so that it outlives the channel until they are done.
class CallQueue final : public std::enable_shared_from_this<CallQueue> {
 public:
  CallQueue(std::shared_ptr<::grpc::Channel> channel, GrpcChannelOptions options)
      : stub_(rpc::Kv::NewStub(std::move(channel))), options_(std::move(options)) {}

  void Send(wire::KvRequest req, KvChannel::Done done) {
    auto call = std::make_unique<UnaryCall>();
    call->req = std::move(req);
    call->done = std::move(done);
    bool start = false;
    {
      MutexLock lock(&mu_);
      if (!closed_ && busy_) {
        queue_.push_back(std::move(call));
        return;
      }
      if (!closed_) {
        busy_ = true;
        in_flight_ = call.get();
        start = true;
      }
    }
    if (!start) {
      call->done(Aborted("the KV channel was closed"));
      return;
    }
    Start(std::move(call));
  }

  // Cancels the call in flight and fails the queued ones with kAborted.
  void Close() {
    std::deque<std::unique_ptr<UnaryCall>> queued;
    {
      MutexLock lock(&mu_);
      closed_ = true;
      queued.swap(queue_);
      if (in_flight_ != nullptr) in_flight_->ctx.TryCancel();
    }
    for (auto& call : queued) call->done(Aborted("the KV channel was closed"));
  }

  rpc::Kv::Stub* stub() { return stub_.get(); }

 private:
  void Start(std::unique_ptr<UnaryCall> owned) {
    UnaryCall* call = owned.release();  // until its callback
    AddToken(&call->ctx, options_);
    call->ctx.set_deadline(std::chrono::system_clock::now() + options_.call_timeout);
    stub_->async()->Call(&call->ctx, &call->req, &call->resp,
                         [self = shared_from_this(), call](::grpc::Status status) {
                           self->Finished(std::unique_ptr<UnaryCall>(call), status);
                         });
  }

  // Runs on a gRPC thread. The next call starts after this one's `done`, so that the `done`s
  // run one at a time, in order; the queue stays busy meanwhile, so no later Send overtakes.
  void Finished(std::unique_ptr<UnaryCall> call, const ::grpc::Status& status) {
    Result<wire::KvResponse> result = status.ok() ? Result<wire::KvResponse>(std::move(call->resp))
                                                  : rpc::FromGrpc(status, call->ctx);
    call->done(std::move(result));
    std::unique_ptr<UnaryCall> next;
    {
      MutexLock lock(&mu_);
      if (!queue_.empty()) {
        next = std::move(queue_.front());
        queue_.pop_front();
        in_flight_ = next.get();
      } else {
        busy_ = false;
        in_flight_ = nullptr;
      }
    }
    call.reset();
    if (next) Start(std::move(next));
  }

  std::unique_ptr<rpc::Kv::Stub> stub_;
  const GrpcChannelOptions options_;
  Mutex mu_;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // a call is in flight or its done runs
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  UnaryCall* in_flight_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::deque<std::unique_ptr<UnaryCall>> queue_ ABSL_GUARDED_BY(mu_);
};

// One Watch stream, read by gRPC's callback API into a KvEventQueue. It owns itself from its
// start to OnDone (self_); the watcher handle shares it.
class WatchStream final : public ::grpc::ClientReadReactor<wire::KvWatchEvents>,
                          public std::enable_shared_from_this<WatchStream> {
 public:
  // Starts the watch of `req` and waits (at most call_timeout) until the node said it started.
  static Result<std::shared_ptr<WatchStream>> Start(std::shared_ptr<CallQueue> calls,
                                                    const GrpcChannelOptions& options,
                                                    wire::KvRequest req) {
    auto s = std::make_shared<WatchStream>();
    s->self_ = s;
    s->calls_ = std::move(calls);
    s->req_ = std::move(req);
    AddToken(&s->ctx_, options);
    s->calls_->stub()->async()->Watch(&s->ctx_, &s->req_, s.get());
    s->StartRead(&s->frame_);
    s->StartCall();
    std::unique_lock<std::mutex> lock(s->mu_);
    if (!s->cv_.wait_for(lock, options.call_timeout, [&] { return s->started_ || s->done_; })) {
      lock.unlock();
      s->Cancel();
      lock.lock();
      s->cv_.wait(lock, [&] { return s->done_; });
      return Timeout("the node did not start the watch within " +
                     std::to_string(options.call_timeout.count()) + " ms");
    }
    if (!s->started_) return s->start_error_;
    return s;
  }

  // Cancels the stream; the queue ends with kAborted (KvEventQueue::Cancel) or has ended.
  void Cancel() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
    }
    ctx_.TryCancel();
  }

  // Waits for the stream's end (prompt once cancelled).
  void WaitDone() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }

  KvEventQueue& queue() { return *queue_; }

  void OnReadDone(bool ok) override {
    if (!ok) return;          // the stream ended: OnDone says how
    if (queue_ == nullptr) {  // the first frame: the watch started
      const int64_t start =
          frame_.resume_revision() > 0 ? frame_.resume_revision() : req_.watch().start_revision();
      std::weak_ptr<WatchStream> weak = weak_from_this();
      queue_ = std::make_shared<KvEventQueue>(start, kGrpcKvWatchEvents, kGrpcKvWatchBytes, [weak] {
        if (auto s = weak.lock()) s->Cancel();
      });
      if (frame_.events_size() > 0 || frame_.end_code() != 0) queue_->Deliver(frame_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        started_ = true;
      }
      cv_.notify_all();
    } else {
      queue_->Deliver(frame_);  // false once ended: read on until the stream ends
    }
    StartRead(&frame_);
  }

  void OnDone(const ::grpc::Status& status) override {
    Status st = rpc::FromGrpc(status, ctx_);
    bool cancelled;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled = cancelled_;
    }
    if (st.ok()) {
      st = Unavailable("the node ended the watch stream without its end frame");
    } else if (status.error_code() == ::grpc::StatusCode::CANCELLED && !cancelled) {
      st = Unavailable("the watch stream was cancelled by the node or the connection: " +
                       status.error_message());
    }
    if (queue_ != nullptr) queue_->End(st);  // a no-op when it had ended
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!started_) start_error_ = st;
      done_ = true;
    }
    cv_.notify_all();
    self_.reset();  // may destroy this: the last statement
  }

 private:
  std::shared_ptr<WatchStream> self_;
  std::shared_ptr<CallQueue> calls_;  // the stub and its connection
  ::grpc::ClientContext ctx_;
  wire::KvRequest req_;
  wire::KvWatchEvents frame_;
  std::shared_ptr<KvEventQueue> queue_;  // set by the first frame, before started_

  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool done_ = false;
  bool cancelled_ = false;  // by this client
  Status start_error_;
};

// The application's handle of a watch: the queue's KvWatcher calls, and the stream's end.
class GrpcKvWatcher final : public KvWatcher {
 public:
  explicit GrpcKvWatcher(std::shared_ptr<WatchStream> stream) : stream_(std::move(stream)) {}
  ~GrpcKvWatcher() override {
    stream_->queue().Cancel();
    stream_->Cancel();  // also when the queue had ended: the stream may still be open
    stream_->WaitDone();
  }

  Result<std::vector<KvEvent>> Next(std::chrono::steady_clock::time_point deadline,
                                    size_t max_events) override {
    return stream_->queue().Next(deadline, max_events);
  }
  void SetNotify(std::function<void()> notify) override {
    stream_->queue().SetNotify(std::move(notify));
  }
  void Cancel() override { stream_->queue().Cancel(); }
  int64_t resume_revision() const override { return stream_->queue().resume_revision(); }

 private:
  std::shared_ptr<WatchStream> stream_;
};

class GrpcKvChannel final : public KvChannel {
 public:
  GrpcKvChannel(std::shared_ptr<::grpc::Channel> channel, GrpcChannelOptions options)
      : calls_(std::make_shared<CallQueue>(std::move(channel), options)),
        options_(std::move(options)) {}
  ~GrpcKvChannel() override { calls_->Close(); }

  void Send(wire::KvRequest req, Done done) override {
    calls_->Send(std::move(req), std::move(done));
  }

  Result<std::unique_ptr<KvWatcher>> Watch(wire::KvRequest req) override {
    if (req.op_case() != wire::KvRequest::kWatch) {
      return InvalidArgument("kv: Watch needs a watch request");
    }
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<WatchStream> stream,
                             WatchStream::Start(calls_, options_, std::move(req)));
    return std::unique_ptr<KvWatcher>(std::make_unique<GrpcKvWatcher>(std::move(stream)));
  }

 private:
  std::shared_ptr<CallQueue> calls_;
  const GrpcChannelOptions options_;
};

}  // namespace

Result<std::shared_ptr<KvChannel>> NewGrpcKvChannel(const std::string& target,
                                                    const GrpcChannelOptions& options) {
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<::grpc::Channel> channel, DialGrpc(target, options));
  return std::shared_ptr<KvChannel>(std::make_shared<GrpcKvChannel>(std::move(channel), options));
}

}  // namespace packice
