#include "transport/grpc/kv_service.h"

#include <deque>

#include "core/mutex.h"
#include "transport/grpc/grpc_common.h"
#include "transport/uds/kv_wire_convert.h"

namespace packice::rpc {
namespace {

// A frame stops taking events before it passes the message limit. One event is at most a key
// and a value plus its previous ones (about 2 MiB with the KV's default limits), so each fits.
constexpr size_t kMaxFrameBytes = kMaxMessageBytes - (256u << 10);

// `events` (whole revisions, as KvWatcher::Next returns them) as frames. A frame holds whole
// revisions, so that the client's buffer takes or refuses a revision at once; only a revision
// bigger than one message (a batch of large values) is split over several frames.
void AppendFrames(const std::vector<KvEvent>& events, std::deque<wire::KvWatchEvents>* frames) {
  wire::KvWatchEvents* frame = nullptr;
  size_t bytes = 0;
  for (const KvEvent& e : events) {
    wire::KvEventMsg msg;
    ToWire(e, &msg);
    const size_t n = msg.ByteSizeLong() + 8;
    if (frame == nullptr || bytes + n > kMaxFrameBytes) {
      frame = &frames->emplace_back();
      bytes = 0;
    }
    *frame->add_events() = std::move(msg);
    bytes += n;
  }
}

}  // namespace

// One Watch stream. Frames are written one at a time; the watcher is pulled (without waiting)
// only when no write is in flight: from the notify callback, and when a write completes. The
// stream ends with the watcher's end frame (StartWriteAndFinish), or at once when the call is
// cancelled (a client cancel, a deadline, the server's shutdown); OnDone destroys the watcher.
class KvService::WatchReactor final : public ::grpc::ServerWriteReactor<wire::KvWatchEvents> {
 public:
  WatchReactor(KvService* service, ::grpc::CallbackServerContext* context,
               const wire::KvRequest* request) {
    if (Status auth = CheckBearer(*context, service->options_.bearer_token); !auth.ok()) {
      Finish(Unauthenticated(auth, context));
      return;
    }
    Result<std::unique_ptr<KvWatcher>> watcher =
        request->op_case() == wire::KvRequest::kWatch
            ? service->StoreFor(*context).Watch(request->ns(), FromWire(request->watch()))
            : Result<std::unique_ptr<KvWatcher>>(
                  InvalidArgument("kv: a Watch call carries a watch request"));
    if (!watcher.ok()) {
      Finish(ToGrpc(watcher.status(), context));
      return;
    }
    watcher_ = *std::move(watcher);
    wake_ = std::make_shared<Wake>();
    wake_->reactor = this;
    const wire::KvWatchEvents* started;
    {
      MutexLock lock(&mu_);
      started = &frames_.emplace_back();  // no events: the watch started
      frames_.back().set_resume_revision(watcher_->resume_revision());
      writing_ = true;
      live_ = true;
    }
    // Runs on the KV's publishing thread: pulls what is buffered, never waits.
    watcher_->SetNotify([wake = wake_] {
      MutexLock lock(&wake->mu);
      if (wake->reactor != nullptr) wake->reactor->Pump();
    });
    StartWrite(started);
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    {
      MutexLock lock(&mu_);
      writing_ = false;
      if (!live_) return;  // finished: the end frame's write, or the call was cancelled
      frames_.pop_front();
      if (!ok || cancelled_) {
        live_ = false;
        finish = true;
      }
    }
    if (finish) {
      Finish(::grpc::Status(::grpc::StatusCode::CANCELLED, "the watch's call was cancelled"));
      return;
    }
    Pump();
  }

  void OnCancel() override {
    bool finish = false;
    {
      MutexLock lock(&mu_);
      cancelled_ = true;
      // A write in flight fails and OnWriteDone finishes.
      if (live_ && !writing_) {
        live_ = false;
        finish = true;
      }
    }
    if (finish) {
      Finish(::grpc::Status(::grpc::StatusCode::CANCELLED, "the watch's call was cancelled"));
    }
  }

  void OnDone() override {
    if (wake_ != nullptr) {
      MutexLock lock(&wake_->mu);
      wake_->reactor = nullptr;  // a notify from now on finds no reactor
    }
    delete this;  // the watcher's destructor cancels it
  }

 private:
  // How the notify callback, which the watcher keeps and may run at any time, reaches the
  // reactor while it lives.
  struct Wake {
    Mutex mu;
    WatchReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
  };

  // Writes the next frame unless one is in flight: a pending one, else what the watcher has
  // buffered, else its end (then the stream finishes).
  void Pump() {
    const wire::KvWatchEvents* frame = nullptr;
    bool last = false;
    {
      MutexLock lock(&mu_);
      if (writing_ || !live_ || cancelled_) return;
      if (frames_.empty() && !ended_) Pull();
      if (frames_.empty()) return;
      writing_ = true;
      frame = &frames_.front();
      last = ended_ && frames_.size() == 1;
      if (last) live_ = false;
    }
    if (last) {
      StartWriteAndFinish(frame, ::grpc::WriteOptions(), ::grpc::Status::OK);
    } else {
      StartWrite(frame);
    }
  }

  void Pull() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Result<std::vector<KvEvent>> events =
        watcher_->Next(std::chrono::steady_clock::time_point::min(), kEventsPerFrame);
    if (events.ok()) {
      AppendFrames(*events, &frames_);
      return;
    }
    if (events.status().code() == StatusCode::kTimeout) return;  // nothing yet
    wire::KvWatchEvents& end = frames_.emplace_back();
    end.set_end_code(static_cast<int32_t>(events.status().code()));
    end.set_end_message(std::string(events.status().message()));
    end.set_resume_revision(watcher_->resume_revision());
    ended_ = true;
  }

  std::unique_ptr<KvWatcher> watcher_;
  std::shared_ptr<Wake> wake_;
  Mutex mu_;  // after Wake::mu; before the watcher's own lock (Next)
  std::deque<wire::KvWatchEvents> frames_ ABSL_GUARDED_BY(mu_);  // front: being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool live_ ABSL_GUARDED_BY(mu_) = false;   // Finish not called yet
  bool ended_ ABSL_GUARDED_BY(mu_) = false;  // the end frame is queued
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

KvService::KvService(std::shared_ptr<KvStore> kv, KvServiceOptions options)
    : kv_(std::move(kv)), options_(std::move(options)) {}

KvStore& KvService::StoreFor(const ::grpc::ServerContextBase& context) const {
  if (options_.forwarded_kv != nullptr && !ClientMetadata(context, kForwardedKey).empty()) {
    return *options_.forwarded_kv;
  }
  return *kv_;
}

::grpc::Status KvService::Call(::grpc::ServerContext* context, const wire::KvRequest* request,
                               wire::KvResponse* reply) {
  return Serve(context, options_.bearer_token,
               [&]() -> Status { return HandleKvRequest(StoreFor(*context), *request, reply); });
}

::grpc::ServerWriteReactor<wire::KvWatchEvents>* KvService::Watch(
    ::grpc::CallbackServerContext* context, const wire::KvRequest* request) {
  return new WatchReactor(this, context, request);
}

}  // namespace packice::rpc
