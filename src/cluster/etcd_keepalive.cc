// The keepalive of one lease: a LeaseKeepAlive stream with a renewal every ttl/3.
//
// Two threads per stream: this one writes the renewals and waits, with a deadline, for each to
// be answered; a reader thread blocks in Read and hands the answers over. A sync gRPC Read
// cannot be given a deadline of its own, and a stream deadline would end healthy streams, so
// the wait for an answer is where a hung etcd is noticed (then the stream is cancelled).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "cluster/backoff.h"
#include "cluster/etcd.grpc.pb.h"
#include "cluster/etcd_channels.h"
#include "cluster/etcd_client.h"

namespace packice::cluster {

using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kMethod = "LeaseKeepAlive";

class EtcdKeepAlive::Impl {
 public:
  Impl(std::shared_ptr<EtcdChannels> channels, const EtcdLease& lease,
       std::function<void(const Status&)> on_lost)
      : channels_(std::move(channels)),
        lease_(lease),
        on_lost_(std::move(on_lost)),
        interval_(std::max<std::chrono::milliseconds>(
            std::chrono::milliseconds(100),
            std::chrono::duration_cast<std::chrono::milliseconds>(lease.ttl) / 3)),
        // Granted just now: the lease lives for its TTL from here unless renewed.
        deadline_(SteadyClock::now() + lease.ttl) {}

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

  int64_t lease() const { return lease_.id; }
  bool healthy() const {
    std::lock_guard<std::mutex> lock(mu_);
    return healthy_;
  }
  Status status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

 private:
  void Run() {
    Backoff backoff(channels_->options().retry_initial, channels_->options().retry_max);
    Status lost;
    while (true) {
      bool answered = false;
      const Status broke = RunStream(&answered);
      if (answered) backoff.Reset();
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) return;
      if (!status_.ok()) {  // etcd said the lease is gone
        lost = status_;
        break;
      }
      const auto now = SteadyClock::now();
      if (now >= deadline_) {
        status_ = Status(broke.ok() ? StatusCode::kTimeout : broke.code(),
                         fmt::format("etcd lease {:x}: its TTL passed without a renewal ({})",
                                     lease_.id, broke.ToString()));
        lost = status_;
        break;
      }
      const auto delay = std::min<SteadyClock::duration>(backoff.Next(), deadline_ - now);
      cv_.wait_for(lock, delay, [this] { return stop_; });
      if (stop_) return;
    }
    spdlog::warn("event=etcd_lease_lost lease={:x} error=\"{}\"", lease_.id, lost.ToString());
    if (on_lost_) on_lost_(lost);
  }

  // One stream, until it breaks, an answer is late, or Stop. Returns why it ended (OK for Stop
  // or a lease etcd reported gone, which is in status_); `answered` says whether any renewal
  // was answered.
  Status RunStream(bool* answered) {
    const EtcdChannels::Pick pick = channels_->Current();
    const auto connect_timeout = channels_->options().call_timeout;
    if (!channels_->WaitConnected(pick, std::chrono::system_clock::now() + connect_timeout)) {
      channels_->Failed(pick.index);
      return Unavailable(fmt::format("etcd {} {}: not reachable within {} ms", pick.endpoint,
                                     kMethod, connect_timeout.count()));
    }
    grpc::ClientContext ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return Status::Ok();
      active_ctx_ = &ctx;
    }
    auto stub = etcdserverpb::Lease::NewStub(pick.channel);
    auto stream = stub->LeaseKeepAlive(&ctx);
    uint64_t acks = 0;         // answers read on this stream; guarded by mu_
    bool reader_done = false;  // guarded by mu_
    std::thread reader([&] {
      etcdserverpb::LeaseKeepAliveResponse resp;
      while (stream->Read(&resp)) {
        std::lock_guard<std::mutex> lock(mu_);
        if (resp.ttl() <= 0) {
          status_ = LeaseExpired(fmt::format("etcd lease {:x} is gone", lease_.id));
          break;
        }
        ++acks;
        healthy_ = true;
        deadline_ = SteadyClock::now() + std::chrono::seconds(resp.ttl());
        cv_.notify_all();
      }
      std::lock_guard<std::mutex> lock(mu_);
      reader_done = true;
      cv_.notify_all();
    });

    Status result;
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(lease_.id);
    const auto timeout = channels_->options().call_timeout;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      const uint64_t before = acks;
      lock.unlock();
      const bool wrote = stream->Write(req);
      lock.lock();
      if (!wrote) {
        result = Unavailable("keepalive stream closed");
        break;
      }
      cv_.wait_for(lock, timeout,
                   [&] { return stop_ || !status_.ok() || reader_done || acks != before; });
      if (stop_ || !status_.ok()) break;
      if (acks == before) {
        result = reader_done
                     ? Unavailable("keepalive stream closed")
                     : Timeout(fmt::format("no keepalive answer within {} ms", timeout.count()));
        break;
      }
      *answered = true;
      cv_.wait_for(lock, interval_, [&] { return stop_ || reader_done; });
      if (stop_) break;
      if (reader_done) {
        result = Unavailable("keepalive stream closed");
        break;
      }
    }
    healthy_ = false;
    active_ctx_ = nullptr;
    lock.unlock();

    ctx.TryCancel();
    reader.join();
    const grpc::Status finish = stream->Finish();
    if (result.ok()) return result;
    // The stream's own status says more than "closed" (connection refused, ...), unless it is
    // only the cancellation above.
    if (!finish.ok() && finish.error_code() != grpc::StatusCode::CANCELLED) {
      result = FromGrpcStatus(finish, "LeaseKeepAlive", pick.endpoint, StatusCode::kLeaseExpired);
    } else {
      result = Status(result.code(),
                      fmt::format("etcd {} LeaseKeepAlive: {}", pick.endpoint, result.message()));
    }
    channels_->Failed(pick.index);
    return result;
  }

  const std::shared_ptr<EtcdChannels> channels_;
  const EtcdLease lease_;
  const std::function<void(const Status&)> on_lost_;
  const std::chrono::milliseconds interval_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                          // guarded by mu_
  bool healthy_ = false;                       // guarded by mu_
  Status status_;                              // guarded by mu_
  SteadyClock::time_point deadline_;           // guarded by mu_: when etcd drops the lease
  grpc::ClientContext* active_ctx_ = nullptr;  // guarded by mu_: the open stream's
  std::thread thread_;
};

std::shared_ptr<EtcdKeepAlive::Impl> StartKeepAlive(std::shared_ptr<EtcdChannels> channels,
                                                    const EtcdLease& lease,
                                                    std::function<void(const Status&)> on_lost) {
  auto impl = std::make_shared<EtcdKeepAlive::Impl>(std::move(channels), lease, std::move(on_lost));
  impl->Start();
  return impl;
}

EtcdKeepAlive::~EtcdKeepAlive() { Stop(); }
void EtcdKeepAlive::Stop() { impl_->Stop(); }
int64_t EtcdKeepAlive::lease() const { return impl_->lease(); }
bool EtcdKeepAlive::healthy() const { return impl_->healthy(); }
Status EtcdKeepAlive::status() const { return impl_->status(); }

}  // namespace packice::cluster
