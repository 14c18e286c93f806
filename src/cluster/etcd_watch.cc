// The watch of one prefix: a Watch stream with one watcher, opened again after it breaks from
// the first revision not yet delivered, and a fresh listing (kReset) when that revision was
// compacted away.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "cluster/backoff.h"
#include "cluster/etcd.grpc.pb.h"
#include "cluster/etcd_channels.h"
#include "cluster/etcd_client.h"

namespace packice::cluster {

constexpr std::string_view kMethod = "Watch";

class EtcdWatch::Impl {
 public:
  Impl(std::shared_ptr<EtcdChannels> channels, std::string prefix, int64_t start_revision,
       EtcdWatchCallback callback)
      : channels_(std::move(channels)),
        prefix_(std::move(prefix)),
        callback_(std::move(callback)),
        next_revision_(start_revision) {}

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      if (active_ctx_ != nullptr) active_ctx_->TryCancel();
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  bool synced() const {
    std::lock_guard<std::mutex> lock(mu_);
    return synced_;
  }
  int64_t next_revision() const {
    std::lock_guard<std::mutex> lock(mu_);
    return next_revision_;
  }
  uint64_t reconnects() const {
    std::lock_guard<std::mutex> lock(mu_);
    return reconnects_;
  }
  Status last_error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_error_;
  }

 private:
  bool stopped() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

  void Run() {
    Backoff backoff(channels_->options().retry_initial, channels_->options().retry_max);
    while (!stopped()) {
      Status s = NextRevision() == 0 ? List() : RunStream(&backoff);
      if (s.ok()) continue;  // listed, or compacted: list again at once
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) return;
      last_error_ = s;
      ++reconnects_;
      cv_.wait_for(lock, backoff.Next(), [this] { return stop_; });
    }
  }

  int64_t NextRevision() {
    std::lock_guard<std::mutex> lock(mu_);
    return next_revision_;
  }

  // Lists the prefix and hands it over as a kReset.
  Status List() {
    Result<EtcdRange> range = channels_->ListPrefix(prefix_);
    if (!range.ok()) return range.status();
    EtcdWatchUpdate update;
    update.kind = EtcdWatchUpdate::Kind::kReset;
    update.kvs = std::move(range->kvs);
    update.revision = range->revision;
    if (stopped()) return Status::Ok();
    callback_(update);
    std::lock_guard<std::mutex> lock(mu_);
    next_revision_ = range->revision + 1;
    return Status::Ok();
  }

  // One stream, until it breaks or Stop. Returns why it ended: OK for Stop and for a compacted
  // start revision (next_revision_ is then 0, so Run lists again).
  Status RunStream(Backoff* backoff) {
    const EtcdChannels::Pick pick = channels_->Current();
    const auto connect_timeout = channels_->options().call_timeout;
    if (!channels_->WaitConnected(pick, std::chrono::system_clock::now() + connect_timeout)) {
      channels_->Failed(pick.index);
      return Unavailable(fmt::format("etcd {} {}: not reachable within {} ms", pick.endpoint,
                                     kMethod, connect_timeout.count()));
    }
    grpc::ClientContext ctx;
    int64_t start;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return Status::Ok();
      active_ctx_ = &ctx;
      start = next_revision_;
    }
    auto stub = etcdserverpb::Watch::NewStub(pick.channel);
    auto stream = stub->Watch(&ctx);
    etcdserverpb::WatchRequest req;
    auto* create = req.mutable_create_request();
    create->set_key(prefix_);
    create->set_range_end(EtcdPrefixEnd(prefix_));
    create->set_start_revision(start);
    create->set_prev_kv(true);

    Status result = Unavailable("watch stream closed");
    if (stream->Write(req)) {
      etcdserverpb::WatchResponse resp;
      while (stream->Read(&resp)) {
        if (resp.compact_revision() > 0) {
          spdlog::warn("event=etcd_watch_compacted prefix={} wanted={} compacted={}", prefix_,
                       start, resp.compact_revision());
          std::lock_guard<std::mutex> lock(mu_);
          next_revision_ = 0;
          result = Status::Ok();
          break;
        }
        if (resp.canceled()) {
          result = Unavailable("watch cancelled by etcd: " + resp.cancel_reason());
          break;
        }
        if (resp.created()) {
          std::lock_guard<std::mutex> lock(mu_);
          synced_ = true;
          backoff->Reset();
        }
        if (resp.events_size() > 0) Deliver(resp);
      }
    }
    bool stopped_now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      synced_ = false;
      active_ctx_ = nullptr;
      stopped_now = stop_;
    }
    ctx.TryCancel();
    const grpc::Status finish = stream->Finish();
    if (stopped_now || result.ok()) return Status::Ok();
    if (!finish.ok() && finish.error_code() != grpc::StatusCode::CANCELLED) {
      result = FromGrpcStatus(finish, "Watch", pick.endpoint);
    } else {
      result =
          Status(result.code(), fmt::format("etcd {} Watch: {}", pick.endpoint, result.message()));
    }
    channels_->Failed(pick.index);
    return result;
  }

  void Deliver(const etcdserverpb::WatchResponse& resp) {
    EtcdWatchUpdate update;
    update.kind = EtcdWatchUpdate::Kind::kEvents;
    update.revision = resp.header().revision();
    update.events.reserve(resp.events_size());
    for (const auto& e : resp.events()) {
      EtcdEvent event;
      event.type =
          e.type() == mvccpb::Event::DELETE ? EtcdEvent::Type::kDelete : EtcdEvent::Type::kPut;
      event.kv = FromProto(e.kv());
      if (e.has_prev_kv()) event.prev_kv = FromProto(e.prev_kv());
      update.events.push_back(std::move(event));
    }
    const int64_t next = update.events.back().kv.mod_revision + 1;
    if (stopped()) return;
    callback_(update);
    std::lock_guard<std::mutex> lock(mu_);
    next_revision_ = next;
  }

  const std::shared_ptr<EtcdChannels> channels_;
  const std::string prefix_;
  const EtcdWatchCallback callback_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                          // guarded by mu_
  bool synced_ = false;                        // guarded by mu_
  int64_t next_revision_;                      // guarded by mu_; 0: list first
  uint64_t reconnects_ = 0;                    // guarded by mu_
  Status last_error_;                          // guarded by mu_
  grpc::ClientContext* active_ctx_ = nullptr;  // guarded by mu_: the open stream's
  std::thread thread_;
};

std::shared_ptr<EtcdWatch::Impl> StartWatch(std::shared_ptr<EtcdChannels> channels,
                                            std::string prefix, int64_t start_revision,
                                            EtcdWatchCallback callback) {
  auto impl = std::make_shared<EtcdWatch::Impl>(std::move(channels), std::move(prefix),
                                                start_revision, std::move(callback));
  impl->Start();
  return impl;
}

EtcdWatch::~EtcdWatch() { Stop(); }
void EtcdWatch::Stop() { impl_->Stop(); }
bool EtcdWatch::synced() const { return impl_->synced(); }
int64_t EtcdWatch::next_revision() const { return impl_->next_revision(); }
uint64_t EtcdWatch::reconnects() const { return impl_->reconnects(); }
Status EtcdWatch::last_error() const { return impl_->last_error(); }

}  // namespace packice::cluster
