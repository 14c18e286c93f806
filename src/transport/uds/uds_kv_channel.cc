// The KV over the Unix socket, client side (uds_kv_channel.h).
//
// Reading: whoever needs an answer reads the socket. A thread waiting for an answer — a
// synchronous call (Call), or a future's get (Start, Await) — reads itself when no other
// thread is reading, and hands the socket on to another waiting thread when its own answer
// arrived (leader/follower): a call costs its send and its receive on the caller's thread, no
// wake-up of another. Answers to calls answered by callbacks (Send) and watch frames are read
// by a background thread, which reads only while such calls or watches are outstanding and no
// caller is reading. Whoever reads dispatches every frame it receives, to whichever call or
// watch it belongs. Otherwise the background thread waits in poll for the node to hang up
// (not woken by data: a caller reads that), so a connection the node closed while idle is
// known broken before the next call is sent on it, and the client connects again; while
// futures are out it also ticks (kTick), writing and reading for futures nobody waits for.
//
// Sending: a frame is appended to the outgoing buffer. A synchronous call's thread, finding no
// send under way, writes the buffer, and whatever other threads appended meanwhile, in one
// write. A future's frame waits to be written by whoever writes next: the thread that waits
// for a future (first of all), any synchronous call, or the background thread's tick — so the
// calls of a pipeline, made one after another before the first is waited for, go out in one
// write, the node receives them together too, and answers them in one write. A callback
// call's frame is written by the background thread, woken by the first one queued.
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
// The background thread's tick while futures are out (Core::Start), and how many idle ticks
// it keeps ticking after.
constexpr auto kTick = std::chrono::milliseconds(1);
constexpr int kIdleTicks = 100;

// The connection's state, shared by the channel (the application's handle), the background
// reader thread, and watches' cancel callbacks (weakly): the thread keeps it alive, so no
// callback ever destroys the channel under the thread.
class Core final : public std::enable_shared_from_this<Core> {
 public:
  using Handler = std::function<void(Result<wire::Response>)>;

  // A waiting caller's slot: its answer, and its wake-up.
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

  // Sends `r` and reads until its answer is in (or another reader hands it over). Past
  // `deadline` the connection is broken (the call fails kTimeout).
  Result<wire::Response> Call(wire::Request r,
                              std::optional<Clock::time_point> deadline = std::nullopt) {
    Waiter w;
    // A send that fails after registering fails the connection, and so answers `w`.
    PACKICE_RETURN_IF_ERROR(Enqueue(
        std::move(r),
        [&](uint64_t id) -> Status {
          calls_[id] = Pending{nullptr, &w, nullptr};
          return Status::Ok();
        },
        SendBy::kNow));
    if (!Await(w, deadline)) {
      Break(Timeout("kv: no answer from the node in " +
                    std::to_string(std::chrono::seconds(kReplyTimeout).count()) + " s"));
    }
    return std::move(*w.result);  // Break answered it, if nothing else did
  }

  // Queues `r`; its answer is awaited on the slot returned (Await), whose waiter writes it
  // (with the calls queued after it) and reads the answer. One nobody waits for is written and
  // read by the background thread within kTick.
  std::shared_ptr<Waiter> Start(wire::Request r) {
    auto w = std::make_shared<Waiter>();
    bool wake = false;
    Status s = Enqueue(
        std::move(r),
        [&](uint64_t id) -> Status {
          calls_[id] = Pending{nullptr, w.get(), w};
          ++future_calls_;
          wake = !ticking_;  // the background thread sleeps without a tick: start it
          return Status::Ok();
        },
        SendBy::kLazy);
    if (!s.ok()) w->result.emplace(s);  // not registered: answered here
    if (wake) Wake();
    return w;
  }

  // Waits until `w` is answered or `deadline` passed (false then; none: without end). The
  // calling thread writes the deferred calls (its own among them) and reads the socket when
  // no other thread does, or else waits to be handed the answer or the socket.
  bool Await(Waiter& w, std::optional<Clock::time_point> deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (w.result) return true;
    lock.unlock();
    FlushDeferred();
    lock.lock();
    while (!w.result) {
      if (deadline && Clock::now() >= *deadline) break;
      if (reading_) {
        waiters_.push_back(&w);
        if (deadline) {
          w.cv.wait_until(lock, *deadline);
        } else {
          w.cv.wait(lock);
        }
        waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &w));
        continue;
      }
      ReadAsReader(lock, /*background=*/false, deadline);
    }
    HandOffLocked();
    return w.result.has_value();
  }

  // Sends `r`; `handler` runs with its answer on whichever thread reads it.
  void Send(wire::Request r, Handler handler) {
    // The background thread, woken to write it, then reads its answer.
    Status s = Enqueue(
        std::move(r),
        [&](uint64_t id) -> Status {
          calls_[id] = Pending{std::move(handler), nullptr, nullptr};
          ++callback_calls_;
          return Status::Ok();
        },
        SendBy::kBackground);
    if (!s.ok()) handler(s);  // not registered (so not moved from): answered here
  }

  Result<std::unique_ptr<KvWatcher>> Watch(wire::KvRequest req);

  bool healthy() const { return !broken_.load(); }

 private:
  struct Pending {
    Handler handler;                // an asynchronous call answered by a callback
    Waiter* waiter = nullptr;       // one a caller waits for (Call, Start)
    std::shared_ptr<Waiter> owned;  // Start's: the slot lives until answered
  };
  struct WatchEntry {
    std::shared_ptr<KvEventQueue> queue;
    std::shared_ptr<std::promise<Status>> started;
    bool is_started = false;
  };

  // How Enqueue sends: now, with whatever other threads queued meanwhile; by the background
  // thread, woken by the first frame queued since its last write; or lazily, by whoever next
  // writes (a waiter's Await, any call sent now, the background thread's tick).
  enum class SendBy { kNow, kBackground, kLazy };

  // Assigns `r` its id, registers it (`add`, under mu_), and queues it to be sent as `how`
  // says. Fails without registering when the connection is broken or the frame is over the
  // node's limit.
  Status Enqueue(wire::Request r, const std::function<Status(uint64_t)>& add, SendBy how) {
    bool wake = false;
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
      switch (how) {
        case SendBy::kNow:
          sending_ = true;
          break;
        case SendBy::kBackground:
          wake = !flush_wanted_;
          flush_wanted_ = true;
          break;
        case SendBy::kLazy:
          break;
      }
    }
    if (how == SendBy::kNow) SendQueued();
    if (wake) Wake();
    return Status::Ok();
  }

  // Writes what asynchronous calls queued, unless a send is under way (which writes it).
  void FlushDeferred() {
    {
      std::lock_guard<std::mutex> out(out_mu_);
      if (sending_ || out_.empty()) return;
      sending_ = true;
    }
    SendQueued();
  }

  // REQUIRES: this thread set sending_. Writes out_ until it stays empty; a failure breaks
  // the connection (every call in flight fails with it, the one just queued too).
  void SendQueued() {
    std::string buf;
    while (true) {
      {
        std::lock_guard<std::mutex> out(out_mu_);
        buf.clear();
        if (out_.empty()) {
          sending_ = false;
          return;
        }
        buf.swap(out_);
        flush_wanted_ = false;
      }
      if (Status s = SendAll(fd_.get(), buf, {}); !s.ok()) {
        {
          std::lock_guard<std::mutex> out(out_mu_);
          sending_ = false;
          out_.clear();
        }
        Break(Unavailable("kv: sending to the node failed: " + std::string(s.message())));
        return;
      }
    }
  }

  void SendCancel(uint64_t watch_id) {
    wire::Request r;
    r.mutable_kv()->set_cancel_watch(true);
    r.mutable_kv()->set_watch_id(watch_id);
    Send(std::move(r), [](Result<wire::Response>) {});
  }

  // The background thread reads while calls answered by callbacks or watches wait and no
  // caller does (or to read the end of a connection the node closed). Futures' answers are
  // read by their waiters; those nobody waits for, on the thread's tick.
  bool BackgroundNeededLocked() const {
    return callback_calls_ > 0 || !watches_.empty() || hung_up_;
  }
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
    int idle_ticks = 0;
    while (true) {
      if (stopping_ || broken_) return;
      if (!reading_ && BackgroundNeededLocked()) {
        ReadAsReader(lock, /*background=*/true);
        HandOffLocked();
        continue;
      }
      // Woken by Wake; by the socket only when the node hangs up (once seen, not again: the
      // hang-up stays readable until someone reads the end). While futures are out, and for
      // kIdleTicks after, also every kTick.
      idle_ticks = future_calls_ > 0 ? 0 : idle_ticks + 1;
      ticking_ = future_calls_ > 0 || (ticking_ && idle_ticks < kIdleTicks);
      background_polling_ = true;
      const bool watch_socket = !hung_up_;
      const int timeout = ticking_ ? static_cast<int>(kTick.count()) : -1;
      lock.unlock();
      pollfd p[2] = {{wake_.get(), POLLIN, 0}, {fd_.get(), POLLRDHUP, 0}};
      const int ready = poll(p, watch_socket ? 2 : 1, timeout);
      if (ready > 0 && (p[0].revents & POLLIN) != 0) {
        uint64_t n;
        (void)!read(wake_.get(), &n, sizeof n);
      }
      FlushDeferred();
      lock.lock();
      background_polling_ = false;
      if (ready > 0 && watch_socket && p[1].revents != 0) hung_up_ = true;
      if (ready == 0) {
        // A tick: answers of futures nobody is waiting for, as far as they have arrived.
        while (future_calls_ > 0 && !reading_ && !broken_ &&
               ReadAsReader(lock, /*background=*/true, Clock::now())) {
        }
        HandOffLocked();
      }
    }
  }

 private:
  // Takes the receiving side (REQUIRES: `lock` holds mu_, reading_ is false), receives once,
  // and gives it back; a failure breaks the connection. False when nothing was received.
  bool ReadAsReader(std::unique_lock<std::mutex>& lock, bool background,
                    std::optional<Clock::time_point> deadline = std::nullopt) {
    reading_ = true;
    lock.unlock();
    Result<bool> got = ReadOnce(background, deadline);
    lock.lock();
    reading_ = false;
    if (got.ok()) return *got;
    lock.unlock();
    Break(got.status());
    lock.lock();
    return false;
  }

  // One receive, and every complete frame in it dispatched. False when the receive timed out
  // with nothing. `background`: the background thread, which also wakes to write deferred
  // calls (FlushDeferred) and then returns. REQUIRES: this thread holds reading_.
  Result<bool> ReadOnce(bool background, std::optional<Clock::time_point> deadline) {
    // poll, then a receive that does not block: a thread blocked in recv on a Unix stream
    // socket is woken each time the node consumes what this side sent (the kernel's
    // write-space wake-up is not filtered for readers), poll's wait is woken only by data.
    pollfd p[2] = {{fd_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(kReplyTimeout);
    if (deadline) {
      wait = std::clamp(std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()),
                        std::chrono::milliseconds(0), wait);
    }
    int ready;
    do {
      ready = poll(p, background ? 2 : 1, static_cast<int>(wait.count()));
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) return false;
    if (background && (p[1].revents & POLLIN) != 0) {
      uint64_t n;
      (void)!read(wake_.get(), &n, sizeof n);
      FlushDeferred();
      if ((p[0].revents & POLLIN) == 0) return true;
    }
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
        if (p.owned != nullptr) --future_calls_;
        // Under mu_: the caller may return (and its slot go) as soon as it sees the result.
        if (s.ok()) {
          p.waiter->result.emplace(std::move(resp));
        } else {
          p.waiter->result.emplace(std::move(s));
        }
        p.waiter->cv.notify_one();
        return;
      }
      --callback_calls_;
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
      callback_calls_ = 0;
      future_calls_ = 0;
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

  std::mutex out_mu_;          // before mu_ when both are held
  uint64_t next_id_ = 1;       // guarded by out_mu_: ids in sending order
  std::string out_;            // guarded by out_mu_: frames not yet handed to the socket
  bool sending_ = false;       // guarded by out_mu_: a thread is writing out_
  bool flush_wanted_ = false;  // guarded by out_mu_: the background thread was woken to write

  std::mutex mu_;
  std::atomic<bool> broken_{false};  // set under mu_
  bool stopping_ = false;            // guarded by mu_
  bool reading_ = false;             // guarded by mu_: a thread owns the receiving side
  size_t callback_calls_ = 0;        // guarded by mu_: Send's in flight
  size_t future_calls_ = 0;          // guarded by mu_: Start's in flight
  bool ticking_ = false;             // guarded by mu_: the background thread polls with kTick
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
  PACKICE_RETURN_IF_ERROR(Enqueue(
      std::move(r),
      [&](uint64_t id) -> Status {
        queue = std::make_shared<KvEventQueue>(start, bounds_.events, bounds_.bytes,
                                               [weak = weak_from_this(), id] {
                                                 if (auto self = weak.lock()) self->SendCancel(id);
                                               });
        watches_[id] = WatchEntry{queue, started, false};
        WakeBackgroundLocked();
        return Status::Ok();
      },
      SendBy::kNow));
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
      done(ToKvResponse(std::move(resp)));
    });
  }

  Result<wire::KvResponse> Call(wire::KvRequest req) override {
    wire::Request r;
    *r.mutable_kv() = std::move(req);
    return ToKvResponse(core_->Call(std::move(r)));
  }

  std::shared_ptr<internal::KvAnswer<wire::KvResponse>> Start(wire::KvRequest req) override {
    wire::Request r;
    *r.mutable_kv() = std::move(req);
    return std::make_shared<Answer>(core_, core_->Start(std::move(r)));
  }

  Result<std::unique_ptr<KvWatcher>> Watch(wire::KvRequest req) override {
    return core_->Watch(std::move(req));
  }

  bool healthy() const override { return core_->healthy(); }

 private:
  // Start's: the caller that waits reads the answer itself when no other thread reads.
  class Answer final : public internal::KvAnswer<wire::KvResponse> {
   public:
    Answer(std::shared_ptr<Core> core, std::shared_ptr<Core::Waiter> w)
        : core_(std::move(core)), w_(std::move(w)) {}
    bool WaitUntil(std::optional<Clock::time_point> deadline) override {
      return core_->Await(*w_, deadline);
    }
    // After WaitUntil saw the result (under the core's mutex): no one writes it again.
    Result<wire::KvResponse> Take() override { return ToKvResponse(std::move(*w_->result)); }

   private:
    std::shared_ptr<Core> core_;
    std::shared_ptr<Core::Waiter> w_;
  };

  static Result<wire::KvResponse> ToKvResponse(Result<wire::Response> resp) {
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
