// The gRPC transport's KvChannel; see grpc_kv_channel.h.
#include "transport/grpc/grpc_kv_channel.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "transport/grpc/grpc_common.h"
#include "transport/grpc/kv_service.grpc.pb.h"

namespace packice {
namespace {

// The token, and for node-to-node calls the forwarded mark (the owner answers itself).
void AddToken(::grpc::ClientContext* ctx, const GrpcChannelOptions& options) {
  if (!options.bearer_token.empty()) {
    ctx->AddMetadata(rpc::kAuthorizationKey, "Bearer " + options.bearer_token);
  }
  if (options.forwarded) ctx->AddMetadata(rpc::kForwardedKey, "1");
}

// A thread of its own for work that blocks in gRPC's synchronous API. (Its callback API on the
// client side — async() calls and read reactors — tripped an assertion in gRPC 1.51's shared
// callback completion queue when channels came and went: "prior > 0".) A thread that drops the
// last reference to its owner from inside the work is detached rather than joined.
void JoinOrDetach(std::thread& t) {
  if (!t.joinable()) return;
  if (t.get_id() == std::this_thread::get_id()) {
    t.detach();
  } else {
    t.join();
  }
}

// A channel's calls, in order, one at a time, on a thread of their own: the next starts when
// the previous answered (see the header for why).
class CallQueue final : public std::enable_shared_from_this<CallQueue> {
 public:
  CallQueue(std::shared_ptr<::grpc::Channel> channel, GrpcChannelOptions options)
      : stub_(rpc::Kv::NewStub(std::move(channel))), options_(std::move(options)) {}
  ~CallQueue() { JoinOrDetach(thread_); }

  void Send(wire::KvRequest req, KvChannel::Done done) {
    if (const size_t n = req.ByteSizeLong(); n > static_cast<size_t>(rpc::kMaxMessageBytes)) {
      return done(InvalidArgument("kv: a request of " + std::to_string(n) +
                                  " bytes is over gRPC's message limit of " +
                                  std::to_string(rpc::kMaxMessageBytes) + " (split the call)"));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!closed_) {
        queue_.push_back({std::move(req), std::move(done)});
        if (!thread_.joinable())
          thread_ = std::thread([self = shared_from_this()] { self->Run(); });
        cv_.notify_one();
        return;
      }
    }
    done(Aborted("the KV channel was closed"));
  }

  // Cancels the call in flight and fails the queued ones with kAborted.
  void Close() {
    std::deque<Queued> queued;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      queued.swap(queue_);
      if (in_flight_ != nullptr) in_flight_->TryCancel();
      cv_.notify_one();
    }
    for (Queued& q : queued) q.done(Aborted("the KV channel was closed"));
  }

  rpc::Kv::Stub* stub() { return stub_.get(); }

 private:
  struct Queued {
    wire::KvRequest req;
    KvChannel::Done done;
  };

  void Run() {
    while (true) {
      Queued q;
      ::grpc::ClientContext ctx;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
        if (queue_.empty()) return;  // closed
        q = std::move(queue_.front());
        queue_.pop_front();
        in_flight_ = &ctx;
      }
      AddToken(&ctx, options_);
      ctx.set_deadline(std::chrono::system_clock::now() + options_.call_timeout);
      wire::KvResponse resp;
      ::grpc::Status status = stub_->Call(&ctx, q.req, &resp);
      {
        std::lock_guard<std::mutex> lock(mu_);
        in_flight_ = nullptr;
      }
      q.done(status.ok() ? Result<wire::KvResponse>(std::move(resp)) : rpc::FromGrpc(status, ctx));
    }
  }

  std::unique_ptr<rpc::Kv::Stub> stub_;
  const GrpcChannelOptions options_;
  std::mutex mu_;  // a plain one: Run waits on cv_ with it
  std::condition_variable cv_;
  bool closed_ = false;  // guarded by mu_, as in_flight_ and queue_
  ::grpc::ClientContext* in_flight_ = nullptr;
  std::deque<Queued> queue_;
  std::thread thread_;  // started by the first Send
};

// One Watch stream, read on a thread of its own into a KvEventQueue.
class WatchStream final : public std::enable_shared_from_this<WatchStream> {
 public:
  // Starts the watch of `req` and waits (at most call_timeout) until the node said it started.
  static Result<std::shared_ptr<WatchStream>> Start(std::shared_ptr<CallQueue> calls,
                                                    const GrpcChannelOptions& options,
                                                    wire::KvRequest req, KvWatchBounds bounds) {
    auto s = std::make_shared<WatchStream>();
    s->calls_ = std::move(calls);
    AddToken(&s->ctx_, options);
    s->thread_ = std::thread([s, req = std::move(req), bounds] { s->Read(req, bounds); });
    std::unique_lock<std::mutex> lock(s->mu_);
    if (!s->cv_.wait_for(lock, options.call_timeout, [&] { return s->started_ || s->done_; })) {
      lock.unlock();
      s->Cancel();
      s->WaitDone();
      return Timeout("the node did not start the watch within " +
                     std::to_string(options.call_timeout.count()) + " ms");
    }
    if (!s->started_) {
      Status error = s->start_error_;
      lock.unlock();
      s->WaitDone();
      return error;
    }
    return s;
  }

  ~WatchStream() { JoinOrDetach(thread_); }

  // Cancels the stream; the queue ends with kAborted (KvEventQueue::Cancel) or has ended.
  void Cancel() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
    }
    ctx_.TryCancel();
  }

  // Waits for the stream's end (prompt once cancelled).
  void WaitDone() { JoinOrDetach(thread_); }

  KvEventQueue& queue() { return *queue_; }

 private:
  void Read(const wire::KvRequest& req, KvWatchBounds bounds) {
    std::unique_ptr<::grpc::ClientReader<wire::KvWatchEvents>> reader =
        calls_->stub()->Watch(&ctx_, req);
    wire::KvWatchEvents frame;
    if (reader->Read(&frame)) {  // the first frame: the watch started
      const int64_t start =
          frame.resume_revision() > 0 ? frame.resume_revision() : req.watch().start_revision();
      std::weak_ptr<WatchStream> weak = weak_from_this();
      queue_ = std::make_shared<KvEventQueue>(start, bounds.events, bounds.bytes, [weak] {
        if (auto s = weak.lock()) s->Cancel();
      });
      if (frame.events_size() > 0 || frame.end_code() != 0) queue_->Deliver(frame);
      {
        std::lock_guard<std::mutex> lock(mu_);
        started_ = true;
      }
      cv_.notify_all();
      while (reader->Read(&frame)) queue_->Deliver(frame);  // false once ended: read on
    }
    ::grpc::Status status = reader->Finish();
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
  }

  std::shared_ptr<CallQueue> calls_;  // the stub and its connection
  ::grpc::ClientContext ctx_;
  std::shared_ptr<KvEventQueue> queue_;  // set by the first frame, before started_
  std::thread thread_;

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
  GrpcKvChannel(std::shared_ptr<::grpc::Channel> channel, GrpcChannelOptions options,
                KvWatchBounds bounds)
      : calls_(std::make_shared<CallQueue>(std::move(channel), options)),
        options_(std::move(options)),
        bounds_(bounds) {}
  ~GrpcKvChannel() override { calls_->Close(); }

  void Send(wire::KvRequest req, Done done) override {
    calls_->Send(std::move(req), std::move(done));
  }

  Result<std::unique_ptr<KvWatcher>> Watch(wire::KvRequest req) override {
    if (req.op_case() != wire::KvRequest::kWatch) {
      return InvalidArgument("kv: Watch needs a watch request");
    }
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<WatchStream> stream,
                             WatchStream::Start(calls_, options_, std::move(req), bounds_));
    return std::unique_ptr<KvWatcher>(std::make_unique<GrpcKvWatcher>(std::move(stream)));
  }

 private:
  std::shared_ptr<CallQueue> calls_;
  const GrpcChannelOptions options_;
  const KvWatchBounds bounds_;
};

}  // namespace

Result<std::shared_ptr<KvChannel>> NewGrpcKvChannel(const std::string& target,
                                                    const GrpcChannelOptions& options,
                                                    KvWatchBounds bounds) {
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<::grpc::Channel> channel, DialGrpc(target, options));
  return std::shared_ptr<KvChannel>(
      std::make_shared<GrpcKvChannel>(std::move(channel), options, bounds));
}

}  // namespace packice
