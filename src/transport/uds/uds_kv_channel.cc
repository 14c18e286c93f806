#include "transport/uds/uds_kv_channel.h"

#include <absl/container/flat_hash_map.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <thread>

#include "transport/uds/fd_socket.h"
#include "transport/uds/frame.h"
#include "transport/uds/request_handler.h"
#include "transport/uds/wire.pb.h"
#include "transport/uds/wire_convert.h"

namespace packice {
namespace {

constexpr auto kReplyTimeout = std::chrono::seconds(60);
// Answers may be larger than the requests the node accepts (a MultiGet's or a Scan's page
// holds up to 16 MiB of values).
constexpr uint32_t kMaxReplyFrameBytes = 64u << 20;

// The KvWatcher handed out: the queue the reader thread fills, cancelled when dropped.
class WatchHandle final : public KvWatcher {
 public:
  explicit WatchHandle(std::shared_ptr<KvEventQueue> q) : q_(std::move(q)) {}
  ~WatchHandle() override { q_->Cancel(); }
  Result<std::vector<KvEvent>> Next(std::chrono::steady_clock::time_point deadline,
                                    size_t max_events) override {
    return q_->Next(deadline, max_events);
  }
  void SetNotify(std::function<void()> notify) override { q_->SetNotify(std::move(notify)); }
  void Cancel() override { q_->Cancel(); }
  int64_t resume_revision() const override { return q_->resume_revision(); }

 private:
  std::shared_ptr<KvEventQueue> q_;
};

class UdsKvChannel final : public KvChannel, public std::enable_shared_from_this<UdsKvChannel> {
 public:
  using Handler = std::function<void(Result<wire::Response>)>;

  UdsKvChannel(UniqueFd fd, KvWatchBounds bounds) : fd_(std::move(fd)), bounds_(bounds) {}

  ~UdsKvChannel() override {
    shutdown(fd_.get(), SHUT_RDWR);
    if (reader_.joinable()) {
      // The reader may drop the last reference itself (a watch's cancel callback).
      if (reader_.get_id() == std::this_thread::get_id()) {
        reader_.detach();
      } else {
        reader_.join();
      }
    }
  }

  Status Start() {
    timeval tv{std::chrono::seconds(kReplyTimeout).count(), 0};
    setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    reader_ = std::thread([this] { ReadLoop(); });
    wire::Request hello;
    hello.mutable_hello()->set_protocol_version(kProtocolVersion);
    auto answer = std::make_shared<std::promise<Result<wire::Response>>>();
    auto future = answer->get_future();
    Submit(std::move(hello),
           [answer](Result<wire::Response> r) { answer->set_value(std::move(r)); });
    if (future.wait_for(kReplyTimeout) != std::future_status::ready) {
      return Timeout("kv: no hello from the node in 60 s");
    }
    PACKICE_ASSIGN_OR_RETURN(wire::Response resp, future.get());
    if (!resp.has_hello()) return ProtocolError("kv: the node's hello has no body");
    max_frame_ = resp.hello().max_frame_bytes();
    return Status::Ok();
  }

  void Send(wire::KvRequest req, Done done) override {
    wire::Request r;
    *r.mutable_kv() = std::move(req);
    Submit(std::move(r), [done = std::move(done)](Result<wire::Response> resp) {
      if (!resp.ok()) return done(resp.status());
      if (!resp->has_kv()) {
        return done(ProtocolError("kv: the node's answer is not a KV response"));
      }
      done(std::move(*resp->mutable_kv()));
    });
  }

  Result<std::unique_ptr<KvWatcher>> Watch(wire::KvRequest req) override {
    auto started = std::make_shared<std::promise<Status>>();
    auto future = started->get_future();
    std::weak_ptr<UdsKvChannel> weak = weak_from_this();
    uint64_t id = 0;
    std::shared_ptr<KvEventQueue> queue;
    {
      std::lock_guard<std::mutex> send(send_mu_);
      id = next_id_++;
      queue = std::make_shared<KvEventQueue>(req.watch().start_revision(), bounds_.events,
                                             bounds_.bytes, [weak, id] {
                                               if (auto self = weak.lock()) self->SendCancel(id);
                                             });
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (broken_) return Unavailable("kv: the connection to the node is closed");
        watches_[id] = WatchEntry{queue, started, false};
      }
      wire::Request r;
      r.set_id(id);
      *r.mutable_kv() = std::move(req);
      std::string frame;
      AppendFrame(r, &frame);
      if (Status s = SendFrame(frame); !s.ok()) return s;
    }
    if (future.wait_for(kReplyTimeout) != std::future_status::ready) {
      queue->Cancel();
      return Timeout("kv: the node did not start the watch in 60 s");
    }
    PACKICE_RETURN_IF_ERROR(future.get());
    return std::unique_ptr<KvWatcher>(new WatchHandle(std::move(queue)));
  }

  bool healthy() const override { return !broken_.load(); }

 private:
  struct WatchEntry {
    std::shared_ptr<KvEventQueue> queue;
    std::shared_ptr<std::promise<Status>> started;
    bool is_started = false;
  };

  // Writes one request (its id assigned here) after registering `handler` for its answer.
  void Submit(wire::Request r, Handler handler) {
    std::string frame;
    std::lock_guard<std::mutex> send(send_mu_);
    const uint64_t id = next_id_++;
    r.set_id(id);
    AppendFrame(r, &frame);
    if (max_frame_ != 0 && frame.size() - 4 > max_frame_) {
      return handler(InvalidArgument("kv: a request of " + std::to_string(frame.size() - 4) +
                                     " bytes is over the node's frame limit of " +
                                     std::to_string(max_frame_) + " (split the call)"));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (broken_) return handler(Unavailable("kv: the connection to the node is closed"));
      calls_[id] = std::move(handler);
    }
    SendFrame(frame).IgnoreError();  // a failure fails every call in flight, this one too
  }

  // REQUIRES: send_mu_ held.
  Status SendFrame(const std::string& frame) {
    Status s = SendAll(fd_.get(), frame, {});
    if (!s.ok()) {
      Break(Unavailable("kv: sending to the node failed: " + std::string(s.message())));
    }
    return s;
  }

  void SendCancel(uint64_t watch_id) {
    wire::KvRequest req;
    req.set_cancel_watch(true);
    req.set_watch_id(watch_id);
    Send(std::move(req), [](Result<wire::KvResponse>) {});
  }

  void ReadLoop() {
    FrameReader reader(kMaxReplyFrameBytes);
    Status why = Unavailable("kv: the node closed the connection");
    while (true) {
      std::span<char> tail = reader.WritableTail(64 * 1024);
      const ssize_t n = recv(fd_.get(), tail.data(), tail.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      reader.Commit(static_cast<size_t>(n));
      bool bad = false;
      while (true) {
        auto next = reader.Next();
        if (!next.ok()) {
          why = next.status();
          bad = true;
          break;
        }
        if (!next->has_value()) break;
        wire::Response resp;
        if (!resp.ParseFromArray((*next)->data(), static_cast<int>((*next)->size()))) {
          why = ProtocolError("kv: an answer from the node does not parse");
          bad = true;
          break;
        }
        Dispatch(std::move(resp));
      }
      if (bad) break;
    }
    Break(why);
  }

  void Dispatch(wire::Response resp) {
    const uint64_t id = resp.id();
    std::unique_lock<std::mutex> lock(mu_);
    if (auto it = calls_.find(id); it != calls_.end()) {
      Handler h = std::move(it->second);
      calls_.erase(it);
      lock.unlock();
      Status s = StatusFromWire(resp);
      if (s.ok()) {
        h(std::move(resp));
      } else {
        h(std::move(s));
      }
      return;
    }
    auto it = watches_.find(id);
    if (it == watches_.end()) return;  // a watch that ended here already
    WatchEntry& w = it->second;
    Status s = StatusFromWire(resp);
    if (!w.is_started) {
      w.is_started = true;
      auto started = w.started;
      std::shared_ptr<KvEventQueue> queue = w.queue;
      if (!s.ok()) watches_.erase(it);
      lock.unlock();
      // The started frame carries the first revision the watch delivers.
      if (s.ok() && resp.has_kv() && resp.kv().has_watch()) queue->Deliver(resp.kv().watch());
      started->set_value(s);
      return;
    }
    std::shared_ptr<KvEventQueue> queue = w.queue;
    if (!s.ok() || !resp.has_kv() || !resp.kv().has_watch()) {
      watches_.erase(it);
      lock.unlock();
      queue->End(s.ok() ? ProtocolError("kv: a watch frame without events") : s);
      return;
    }
    lock.unlock();
    if (!queue->Deliver(resp.kv().watch())) {
      std::lock_guard<std::mutex> relock(mu_);
      watches_.erase(id);
    }
  }

  // Fails every call in flight and ends every watch with `why`; later calls fail at once.
  void Break(const Status& why) {
    absl::flat_hash_map<uint64_t, Handler> calls;
    absl::flat_hash_map<uint64_t, WatchEntry> watches;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (broken_) return;
      broken_ = true;
      calls.swap(calls_);
      watches.swap(watches_);
    }
    shutdown(fd_.get(), SHUT_RDWR);
    const Status lost = why.code() == StatusCode::kUnavailable
                            ? why
                            : Unavailable("kv: connection to the node lost: " + why.ToString());
    for (auto& [id, h] : calls) h(lost);
    for (auto& [id, w] : watches) {
      if (!w.is_started) {
        w.started->set_value(lost);
      } else {
        w.queue->End(lost);
      }
    }
  }

  UniqueFd fd_;
  const KvWatchBounds bounds_;
  uint32_t max_frame_ = 0;  // the node's, from its hello
  std::mutex send_mu_;      // one frame at a time on the socket, ids in sending order
  uint64_t next_id_ = 1;    // guarded by send_mu_
  std::mutex mu_;
  std::atomic<bool> broken_{false};                    // set under mu_
  absl::flat_hash_map<uint64_t, Handler> calls_;       // guarded by mu_
  absl::flat_hash_map<uint64_t, WatchEntry> watches_;  // guarded by mu_
  std::thread reader_;
};

}  // namespace

Result<std::shared_ptr<KvChannel>> NewUdsKvChannel(const std::string& path, KvWatchBounds bounds) {
  PACKICE_ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnixSocket(path));
  auto channel = std::make_shared<UdsKvChannel>(std::move(fd), bounds);
  PACKICE_RETURN_IF_ERROR(channel->Start());
  return std::shared_ptr<KvChannel>(std::move(channel));
}

}  // namespace packice
