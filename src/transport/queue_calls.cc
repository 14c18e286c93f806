#include "transport/queue_calls.h"

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <mutex>
#include <vector>

#include "transport/uds/queue_wire_convert.h"

namespace packice {

namespace asio = boost::asio;

namespace {
Status Stopping() { return Unavailable("the node is stopping"); }
}  // namespace

struct QueueCalls::Parked {
  Parked(wire::QueueRequest r, Done d, asio::any_io_executor timers)
      : req(std::move(r)), done(std::move(d)), strand(asio::make_strand(timers)), timer(strand) {}

  wire::QueueRequest req;
  std::mutex mu;
  Done done;                       // guarded by mu; empty once answered
  bool retry_pending = false;      // guarded by mu
  QueueSubscription subscription;  // guarded by mu
  asio::strand<asio::any_io_executor> strand;
  asio::steady_timer timer;  // on `strand`
};

QueueCalls::QueueCalls(std::shared_ptr<Queue> queue, asio::thread_pool* pool,
                       asio::any_io_executor timers)
    : queue_(std::move(queue)), pool_(pool), timers_(std::move(timers)) {}

void QueueCalls::Run(wire::QueueRequest req, Done done) {
  asio::post(*pool_,
             [self = shared_from_this(), req = std::move(req), done = std::move(done)]() mutable {
               self->RunNow(std::move(req), std::move(done));
             });
}

bool QueueCalls::Quick(const wire::QueueRequest& req) const {
  return req.op_case() == wire::QueueRequest::kAppend && !queue_->AppendsWait(req.topic());
}

Status QueueCalls::RunHere(wire::QueueRequest& req, wire::QueueResponse* resp) {
  return HandleQueueRequest(*queue_, req, resp);
}

void QueueCalls::RunNow(wire::QueueRequest req, Done done) {
  if (req.op_case() == wire::QueueRequest::kAppend) {
    // The pool thread does not wait for the append's fdatasync: the queue calls back (and
    // appends from many connections share the syncs however few the pool's threads).
    // The work guard keeps the pool's join waiting for the answer, so that a server that joins
    // its pool before it lets its io_context go still has it when `done` posts there.
    const std::vector<QueueRecord> records = AppendRecords(req);
    auto work = std::make_shared<asio::executor_work_guard<asio::thread_pool::executor_type>>(
        pool_->get_executor());
    return queue_->AppendAsync(req.topic(), req.append().bucket(), records,
                               [work, done = std::move(done)](Result<uint64_t> at) {
                                 wire::QueueResponse resp;
                                 if (at.ok()) resp.set_append_offset(*at);
                                 done(at.ok() ? Status::Ok() : at.status(), std::move(resp));
                               });
  }
  wire::QueueResponse resp;
  Status s = HandleQueueRequest(*queue_, req, &resp);
  if (s.ok() && IsEmptyRead(resp) && req.read().wait_ms() > 0 && req.read().limit() > 0 &&
      parked_.load() < kMaxParked) {
    return Park(std::move(req), std::move(done));
  }
  done(std::move(s), std::move(resp));
}

void QueueCalls::Stop() {
  std::vector<std::shared_ptr<Parked>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    for (auto& [raw, weak] : parked_calls_) {
      if (std::shared_ptr<Parked> p = weak.lock()) live.push_back(std::move(p));
    }
  }
  for (const std::shared_ptr<Parked>& p : live) Finish(p, Stopping(), {});
}

void QueueCalls::Park(wire::QueueRequest req, Done done) {
  const auto wait = std::chrono::milliseconds(std::min(req.read().wait_ms(), kMaxWaitMs));
  auto p = std::make_shared<Parked>(std::move(req), std::move(done), timers_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) {
      Done answer = std::move(p->done);
      p->done = nullptr;
      return answer(Stopping(), {});
    }
    parked_calls_.emplace(p.get(), p);
  }
  ++parked_;
  std::weak_ptr<Parked> weak = p;
  // Runs under the topic's lock: it only schedules the read again.
  Result<QueueSubscription> sub =
      queue_->Subscribe(p->req.topic(), [self = shared_from_this(), weak] {
        std::shared_ptr<Parked> parked = weak.lock();
        if (parked == nullptr) return;
        std::lock_guard<std::mutex> lock(parked->mu);
        if (!parked->done || parked->retry_pending) return;
        parked->retry_pending = true;
        asio::post(*self->pool_, [self, parked] { self->Retry(parked); });
      });
  if (!sub.ok()) return Finish(p, sub.status(), {});
  {
    std::unique_lock<std::mutex> lock(p->mu);
    if (p->done) {
      p->subscription = *std::move(sub);
    } else {  // answered already (an append woke it): drop the subscription outside the lock
      lock.unlock();
      sub->reset();
    }
  }
  asio::post(p->strand, [self = shared_from_this(), p, wait] {
    p->timer.expires_after(wait);
    p->timer.async_wait([self, p](boost::system::error_code ec) {
      if (!ec) {
        wire::QueueResponse empty;
        empty.mutable_read();
        self->Finish(p, Status::Ok(), std::move(empty));
      }
    });
  });
  // An append between the first read and the subscription woke nobody: read once more.
  Retry(p);
}

void QueueCalls::Retry(const std::shared_ptr<Parked>& p) {
  {
    std::lock_guard<std::mutex> lock(p->mu);
    if (!p->done) return;
    p->retry_pending = false;
  }
  wire::QueueResponse resp;
  Status s = HandleQueueRequest(*queue_, p->req, &resp);
  if (!s.ok() || !IsEmptyRead(resp)) Finish(p, std::move(s), std::move(resp));
}

void QueueCalls::Finish(const std::shared_ptr<Parked>& p, Status s, wire::QueueResponse resp) {
  Done done;
  QueueSubscription subscription;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    if (!p->done) return;
    done = std::move(p->done);
    p->done = nullptr;
    subscription = std::move(p->subscription);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    parked_calls_.erase(p.get());
  }
  --parked_;
  subscription.reset();  // takes the topic's lock: never called under it
  asio::post(p->strand, [p] { p->timer.cancel(); });
  done(std::move(s), std::move(resp));
}

}  // namespace packice
