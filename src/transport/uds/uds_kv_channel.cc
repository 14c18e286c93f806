// The KV over the Unix socket, client side (uds_kv_channel.h).
//
// Reading: whoever needs an answer reads the socket. A thread making a synchronous call
// (Call) reads itself when no other thread is reading, and hands the socket on to another
// waiting caller when its own answer arrived (leader/follower): a call costs its send and its
// receive on the caller's thread, no wake-up of another. Answers to asynchronous calls
// (Send: futures) and watch frames are read by a background thread, which reads only while
// such calls or watches are outstanding and no caller is reading. Whoever reads dispatches
// every frame it receives, to whichever call or watch it belongs. Otherwise the background
// thread waits in poll for the node to hang up (not woken by data: a caller reads that), so
// a connection the node closed while idle is known broken before the next call is sent on
// it, and the client connects again.
//
// Sending: a frame is appended to the outgoing buffer; the thread that finds no send under
// way writes the buffer, and whatever other threads appended meanwhile, in one write.
#include "transport/uds/uds_kv_channel.h"

#include <absl/container/flat_hash_map.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <future>
#include <optional>
#include <thread>

#include "transport/uds/fd_socket.h"
#include "transport/uds/frame.h"
#include "transport/uds/request_handler.h"
#include "transport/uds/wire.pb.h"
#include "transport/uds/wire_convert.h"

namespace packice {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kReplyTimeout = std::chrono::seconds(60);
// Answers may be larger than the requests the node accepts (a MultiGet's or a Scan's page
// holds up to 16 MiB of values).
constexpr uint32_t kMaxReplyFrameBytes = 64u << 20;
constexpr size_t kReadChunk = 64 * 1024;

// The connection's state, shared by the channel (the application's handle), the background
// reader thread, and watches' cancel callbacks (weakly): the thread keeps it alive, so no
// callback ever destroys the channel under the thread.
class Core final : public std::enable_shared_from_this<Core> {
 public:
  using Handler = std::function<void(Result<wire::Response>)>;

  // A synchronous caller's slot: its answer, and its wake-up.
  struct Waiter {
    std::optional<Result<wire::Response>> result;
    std::condition_variable cv;
  };

  Core(UniqueFd fd, UniqueFd wake, KvWatchBounds bounds)
      : fd_(std::move(fd)), wake_(std::move(wake)), bounds_(bounds) {}

  Status Hello() {
    timeval tv{std::chrono::seconds(kReplyTimeout).count(), 0};
    setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    wire::Request hello;
    hello.mutable_hello()->set_protocol_version(kProtocolVersion);
    PACKICE_ASSIGN_OR_RETURN(wire::Response resp,
                             Call(std::move(hello), Clock::now() + kReplyTimeout));
    if (!resp.has_hello()) return ProtocolError("kv: the node's hello has no body");
    max_frame_ = resp.hello().max_frame_bytes();
    return Status::Ok();
  }

  // The channel's handle is gone: ends the connection and the background thread.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    shutdown(fd_.get(), SHUT_RDWR);
    Wake();
  }

  // Sends `r` and reads until its answer is in (or another reader hands it over).
  Result<wire::Response> Call(wire::Request r,
                              std::optional<Clock::time_point> deadline = std::nullopt) {
    Waiter w;
    // A send that fails after registering fails the connection, and so answers `w`.
    PACKICE_RETURN_IF_ERROR(Enqueue(std::move(r), [&](uint64_t id) -> Status {
      calls_[id] = Pending{nullptr, &w};
      return Status::Ok();
    }));
    std::unique_lock<std::mutex> lock(mu_);
    while (!w.result) {
      if (reading_) {
        waiters_.push_back(&w);
        w.cv.wait(lock);
        waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &w));
        continue;
      }
      if (!ReadAsReader(lock) && !w.result && deadline && Clock::now() >= *deadline) {
        lock.unlock();
        Break(Timeout("kv: no answer from the node in " +
                      std::to_string(std::chrono::seconds(kReplyTimeout).count()) + " s"));
        lock.lock();
      }
    }
    HandOffLocked();
    return std::move(*w.result);
  }

  // Sends `r`; `handler` runs with its answer on whichever thread reads it.
  void Send(wire::Request r, Handler handler) {
    Status s = Enqueue(std::move(r), [&](uint64_t id) -> Status {
      calls_[id] = Pending{std::move(handler), nullptr};
      ++async_calls_;
      WakeBackgroundLocked();
      return Status::Ok();
    });
    if (!s.ok()) handler(s);  // not registered (so not moved from): answered here
  }

  Result<std::unique_ptr<KvWatcher>> Watch(wire::KvRequest req);

  bool healthy() const { return !broken_.load(); }

 private:
  struct Pending {
    Handler handler;           // an asynchronous call
    Waiter* waiter = nullptr;  // a synchronous one
  };
  struct WatchEntry {
    std::shared_ptr<KvEventQueue> queue;
    std::shared_ptr<std::promise<Status>> started;
    bool is_started = false;
  };

  // Assigns `r` its id, registers it (`add`, under mu_), and sends it, with whatever other
  // threads queued meanwhile. Fails without registering when the connection is broken or the
  // frame is over the node's limit.
  Status Enqueue(wire::Request r, const std::function<Status(uint64_t)>& add) {
    {
      std::lock_guard<std::mutex> out(out_mu_);
      const uint64_t id = next_id_++;
      r.set_id(id);
      const size_t before = out_.size();
      AppendFrame(r, &out_);
      const size_t bytes = out_.size() - before - kFrameHeaderBytes;
      if (max_frame_ != 0 && bytes > max_frame_) {
        out_.resize(before);
        return InvalidArgument("kv: a request of " + std::to_string(bytes) +
                               " bytes is over the node's frame limit of " +
                               std::to_string(max_frame_) + " (split the call)");
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        Status s = broken_ ? Unavailable("kv: the connection to the node is closed") : add(id);
        if (!s.ok()) {
          out_.resize(before);
          return s;
        }
      }
      if (sending_) return Status::Ok();  // the thread sending now sends this too
      sending_ = true;
    }
    std::string buf;
    while (true) {
      {
        std::lock_guard<std::mutex> out(out_mu_);
        buf.clear();
        if (out_.empty()) {
          sending_ = false;
          return Status::Ok();
        }
        buf.swap(out_);
      }
      if (Status s = SendAll(fd_.get(), buf, {}); !s.ok()) {
        {
          std::lock_guard<std::mutex> out(out_mu_);
          sending_ = false;
          out_.clear();
        }
        // Fails every call in flight, the one just registered too.
        Break(Unavailable("kv: sending to the node failed: " + std::string(s.message())));
        return Status::Ok();
      }
    }
  }

  void SendCancel(uint64_t watch_id) {
    wire::Request r;
    r.mutable_kv()->set_cancel_watch(true);
    r.mutable_kv()->set_watch_id(watch_id);
    Send(std::move(r), [](Result<wire::Response>) {});
  }

  // The background thread reads while asynchronous calls or watches wait and no caller does.
  // (Or to read the end of a connection the node closed.)
  bool BackgroundNeededLocked() const { return async_calls_ > 0 || !watches_.empty() || hung_up_; }
  void WakeBackgroundLocked() {
    if (!reading_ && background_polling_) Wake();
  }
  void Wake() {
    const uint64_t one = 1;
    (void)!write(wake_.get(), &one, sizeof one);
  }
  // The socket is free: a waiting caller without its answer, or else the background thread,
  // reads next.
  void HandOffLocked() {
    if (reading_) return;
    for (Waiter* w : waiters_) {
      if (!w->result) {
        w->cv.notify_one();
        return;
      }
    }
    if (BackgroundNeededLocked()) WakeBackgroundLocked();
  }

 public:
  void BackgroundLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      if (stopping_ || broken_) return;
      if (reading_ || !BackgroundNeededLocked()) {
        // Woken by Wake; by the socket only when the node hangs up (once seen, not again:
        // the hang-up stays readable until someone reads the end).
        background_polling_ = true;
        const bool watch_socket = !hung_up_;
        lock.unlock();
        pollfd p[2] = {{wake_.get(), POLLIN, 0}, {fd_.get(), POLLRDHUP, 0}};
        const int ready = poll(p, watch_socket ? 2 : 1, -1);
        if (ready > 0 && (p[0].revents & POLLIN) != 0) {
          uint64_t n;
          (void)!read(wake_.get(), &n, sizeof n);
        }
        lock.lock();
        background_polling_ = false;
        if (ready > 0 && watch_socket && p[1].revents != 0) hung_up_ = true;
        continue;
      }
      ReadAsReader(lock);
      HandOffLocked();
    }
  }

 private:
  // Takes the receiving side (REQUIRES: `lock` holds mu_, reading_ is false), receives once,
  // and gives it back; a failure breaks the connection. False when nothing was received.
  bool ReadAsReader(std::unique_lock<std::mutex>& lock) {
    reading_ = true;
    lock.unlock();
    Result<bool> got = ReadOnce();
    lock.lock();
    reading_ = false;
    if (got.ok()) return *got;
    lock.unlock();
    Break(got.status());
    lock.lock();
    return false;
  }

  // One receive, and every complete frame in it dispatched. False when the receive timed out
  // with nothing. REQUIRES: this thread holds reading_.
  Result<bool> ReadOnce() {
    // poll, then a receive that does not block: a thread blocked in recv on a Unix stream
    // socket is woken each time the node consumes what this side sent (the kernel's
    // write-space wake-up is not filtered for readers), poll's wait is woken only by data.
    pollfd p{fd_.get(), POLLIN, 0};
    int ready;
    do {
      ready = poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kReplyTimeout).count()));
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) return false;
    std::span<char> tail = reader_.WritableTail(kReadChunk);
    ssize_t n;
    do {
      n = recv(fd_.get(), tail.data(), tail.size(), MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n == 0) return Unavailable("kv: the node closed the connection");
    if (n < 0) {
      const Status e = ErrnoError("kv: receiving from the node", errno);
      return Unavailable(std::string(e.message()));
    }
    reader_.Commit(static_cast<size_t>(n));
    while (true) {
      PACKICE_ASSIGN_OR_RETURN(std::optional<std::string_view> next, reader_.Next());
      if (!next) return true;
      wire::Response resp;
      if (!resp.ParseFromArray(next->data(), static_cast<int>(next->size()))) {
        return ProtocolError("kv: an answer from the node does not parse");
      }
      Dispatch(std::move(resp));
    }
  }

  void Dispatch(wire::Response resp) {
    const uint64_t id = resp.id();
    std::unique_lock<std::mutex> lock(mu_);
    if (auto it = calls_.find(id); it != calls_.end()) {
      Pending p = std::move(it->second);
      calls_.erase(it);
      Status s = StatusFromWire(resp);
      if (p.waiter != nullptr) {
        // Under mu_: the caller may return (and its slot go) as soon as it sees the result.
        if (s.ok()) {
          p.waiter->result.emplace(std::move(resp));
        } else {
          p.waiter->result.emplace(std::move(s));
        }
        p.waiter->cv.notify_one();
        return;
      }
      --async_calls_;
      lock.unlock();
      if (s.ok()) {
        p.handler(std::move(resp));
      } else {
        p.handler(std::move(s));
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

 public:
  // Fails every call in flight and ends every watch with `why`; later calls fail at once.
  void Break(const Status& why) {
    absl::flat_hash_map<uint64_t, Pending> calls;
    absl::flat_hash_map<uint64_t, WatchEntry> watches;
    const Status lost = why.code() == StatusCode::kUnavailable
                            ? why
                            : Unavailable("kv: connection to the node lost: " + why.ToString());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (broken_) return;
      broken_ = true;
      calls.swap(calls_);
      watches.swap(watches_);
      async_calls_ = 0;
      for (auto& [id, p] : calls) {
        if (p.waiter != nullptr) {
          p.waiter->result.emplace(lost);
          p.waiter->cv.notify_one();
        }
      }
      for (Waiter* w : waiters_) w->cv.notify_one();
    }
    Wake();
    shutdown(fd_.get(), SHUT_RDWR);
    for (auto& [id, p] : calls) {
      if (p.waiter == nullptr) p.handler(lost);
    }
    for (auto& [id, w] : watches) {
      if (!w.is_started) {
        w.started->set_value(lost);
      } else {
        w.queue->End(lost);
      }
    }
  }

 private:
  UniqueFd fd_;
  UniqueFd wake_;  // an eventfd: wakes the background thread from its poll
  const KvWatchBounds bounds_;
  std::atomic<uint32_t> max_frame_{0};  // the node's, from its hello

  std::mutex out_mu_;     // before mu_ when both are held
  uint64_t next_id_ = 1;  // guarded by out_mu_: ids in sending order
  std::string out_;       // guarded by out_mu_: frames not yet handed to the socket
  bool sending_ = false;  // guarded by out_mu_: a thread is writing out_

  std::mutex mu_;
  std::atomic<bool> broken_{false};  // set under mu_
  bool stopping_ = false;            // guarded by mu_
  bool reading_ = false;             // guarded by mu_: a thread owns the receiving side
  size_t async_calls_ = 0;           // guarded by mu_
  std::vector<Waiter*> waiters_;     // guarded by mu_: callers waiting while another reads
  absl::flat_hash_map<uint64_t, Pending> calls_;       // guarded by mu_
  absl::flat_hash_map<uint64_t, WatchEntry> watches_;  // guarded by mu_
  bool background_polling_ = false;          // guarded by mu_: the background thread is in poll
  bool hung_up_ = false;                     // guarded by mu_: poll saw the node hang up
  FrameReader reader_{kMaxReplyFrameBytes};  // used by the thread holding reading_
};

// The KvWatcher handed out: the queue the reader fills, cancelled when dropped.
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

Result<std::unique_ptr<KvWatcher>> Core::Watch(wire::KvRequest req) {
  auto started = std::make_shared<std::promise<Status>>();
  auto future = started->get_future();
  std::shared_ptr<KvEventQueue> queue;
  const int64_t start = req.watch().start_revision();
  wire::Request r;
  *r.mutable_kv() = std::move(req);
  PACKICE_RETURN_IF_ERROR(Enqueue(std::move(r), [&](uint64_t id) -> Status {
    queue = std::make_shared<KvEventQueue>(start, bounds_.events, bounds_.bytes,
                                           [weak = weak_from_this(), id] {
                                             if (auto self = weak.lock()) self->SendCancel(id);
                                           });
    watches_[id] = WatchEntry{queue, started, false};
    WakeBackgroundLocked();
    return Status::Ok();
  }));
  if (future.wait_for(kReplyTimeout) != std::future_status::ready) {
    queue->Cancel();
    return Timeout("kv: the node did not start the watch in 60 s");
  }
  PACKICE_RETURN_IF_ERROR(future.get());
  return std::unique_ptr<KvWatcher>(new WatchHandle(std::move(queue)));
}

class UdsKvChannel final : public KvChannel {
 public:
  explicit UdsKvChannel(std::shared_ptr<Core> core) : core_(std::move(core)) {
    background_ = std::thread([core = core_] { core->BackgroundLoop(); });
  }
  ~UdsKvChannel() override {
    core_->Stop();
    // An application's callback run by the thread (a watch's notify) may drop the channel:
    // the thread holds the core, not the channel, and ends by itself.
    if (background_.get_id() == std::this_thread::get_id()) {
      background_.detach();
    } else {
      background_.join();
    }
  }

  Status Start() { return core_->Hello(); }

  void Send(wire::KvRequest req, Done done) override {
    wire::Request r;
    *r.mutable_kv() = std::move(req);
    core_->Send(std::move(r), [done = std::move(done)](Result<wire::Response> resp) {
      done(KvAnswer(std::move(resp)));
    });
  }

  Result<wire::KvResponse> Call(wire::KvRequest req) override {
    wire::Request r;
    *r.mutable_kv() = std::move(req);
    return KvAnswer(core_->Call(std::move(r)));
  }

  Result<std::unique_ptr<KvWatcher>> Watch(wire::KvRequest req) override {
    return core_->Watch(std::move(req));
  }

  bool healthy() const override { return core_->healthy(); }

 private:
  static Result<wire::KvResponse> KvAnswer(Result<wire::Response> resp) {
    PACKICE_RETURN_IF_ERROR(resp.status());
    if (!resp->has_kv()) return ProtocolError("kv: the node's answer is not a KV response");
    return std::move(*resp->mutable_kv());
  }

  std::shared_ptr<Core> core_;
  std::thread background_;
};

}  // namespace

Result<std::shared_ptr<KvChannel>> NewUdsKvChannel(const std::string& path, KvWatchBounds bounds) {
  PACKICE_ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnixSocket(path));
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return ErrnoError("kv: eventfd", errno);
  auto channel = std::make_shared<UdsKvChannel>(
      std::make_shared<Core>(std::move(fd), std::move(wake), bounds));
  PACKICE_RETURN_IF_ERROR(channel->Start());
  return std::shared_ptr<KvChannel>(std::move(channel));
}

}  // namespace packice
