// QueueCalls: a node's queue calls (queue_wire.proto) for any transport. Each runs on a pool
// (an append may wait for its fdatasync); a read that finds nothing and may wait is parked —
// no thread held — on a Queue::Subscribe until an append to its topic (it reads again) or its
// wait's end (it answers empty). A wait is capped at kMaxWaitMs, and at most kMaxParked reads
// are parked per node: past that a read answers at once, empty (the client asks again).
//
// Stop answers every parked read kUnavailable ("the node is stopping") and parks none after it
// (a read that would wait answers so too): a server calls it before it waits for its calls to
// end, so that no read holds the shutdown up for its wait.
//
// An append runs as Queue::AppendAsync from the pool: no pool thread waits for its
// fdatasync, and its `done` runs on the queue's thread that finishes it; until then it holds
// the pool's work (the pool's join waits for it).
//
// Thread safety: every method may be called from any thread; `done` runs once, on a pool
// thread, the queue's (an append), the timers' executor or Stop's caller, and must not block.
#ifndef PACKICE_TRANSPORT_QUEUE_CALLS_H_
#define PACKICE_TRANSPORT_QUEUE_CALLS_H_

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "packice/queue.h"
#include "transport/uds/queue_wire.pb.h"

namespace packice {

class QueueCalls : public std::enable_shared_from_this<QueueCalls> {
 public:
  static constexpr int64_t kMaxWaitMs = 30000;
  static constexpr size_t kMaxParked = 65536;

  using Done = std::function<void(Status, wire::QueueResponse)>;

  // `pool` and `timers` outlive this object and every call's `done`.
  QueueCalls(std::shared_ptr<Queue> queue, boost::asio::thread_pool* pool,
             boost::asio::any_io_executor timers);

  void Run(wire::QueueRequest req, Done done);
  // Whether `req` needs no pool: an append that does not wait (Queue::AppendsWait). A
  // transport's io thread runs such a call itself (RunHere), two thread switches fewer a call.
  bool Quick(const wire::QueueRequest& req) const;
  // Runs `req` (Quick) on the caller's thread and returns its answer.
  Status RunHere(wire::QueueRequest& req, wire::QueueResponse* resp);
  void Stop();

  size_t parked() const { return parked_.load(); }
  const std::shared_ptr<Queue>& queue() const { return queue_; }

 private:
  struct Parked;
  void RunNow(wire::QueueRequest req, Done done);
  void Park(wire::QueueRequest req, Done done);
  void Retry(const std::shared_ptr<Parked>& p);
  void Finish(const std::shared_ptr<Parked>& p, Status s, wire::QueueResponse resp);

  std::shared_ptr<Queue> queue_;
  boost::asio::thread_pool* pool_;
  boost::asio::any_io_executor timers_;
  std::atomic<size_t> parked_{0};
  std::mutex mu_;
  bool stopped_ = false;                                             // guarded by mu_
  std::unordered_map<Parked*, std::weak_ptr<Parked>> parked_calls_;  // guarded by mu_
};

}  // namespace packice

#endif  // PACKICE_TRANSPORT_QUEUE_CALLS_H_
