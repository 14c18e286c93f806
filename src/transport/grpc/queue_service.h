// The node's queue over gRPC, server side: service packice.rpc.Queue (queue_service.proto) over
// a Queue.
//
// Call is a callback-API unary method: the service's QueueCalls (queue_calls.h) runs it on a
// pool of its own, and a read that finds nothing and may wait is parked on the topic — no
// thread held — until an append wakes it or its wait ends; then the reactor finishes. So
// thousands of consumers long-polling a quiet topic cost no threads, and never hold up the
// port's other calls. The service's destructor (after the server's Stop) and Stop answer every
// parked read kUnavailable at once.
//
// Thread safety: gRPC calls Call from its threads concurrently.
#ifndef PACKICE_TRANSPORT_GRPC_QUEUE_SERVICE_H_
#define PACKICE_TRANSPORT_GRPC_QUEUE_SERVICE_H_

#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <string>

#include "packice/queue.h"
#include "transport/grpc/queue_service.grpc.pb.h"

namespace packice {
class QueueCalls;
}

namespace packice::rpc {

struct QueueServiceOptions {
  // Required as "authorization: Bearer <token>" on every call; empty: none.
  std::string bearer_token;
  // Threads running the calls (an append waits for its fdatasync).
  int threads = 4;
  // Calls marked forwarded (another node of a cluster routing to this one) run on this queue,
  // the node's own, instead of the served one; nullptr: every call on the served one.
  std::shared_ptr<::packice::Queue> forwarded_queue;
};

class QueueService final : public Queue::CallbackService {
 public:
  QueueService(std::shared_ptr<::packice::Queue> queue, QueueServiceOptions options);
  ~QueueService() override;

  ::grpc::ServerUnaryReactor* Call(::grpc::CallbackServerContext* context,
                                   const wire::QueueRequest* request,
                                   wire::QueueResponse* reply) override;

  // Answers every parked read kUnavailable and parks none after it: call it before the
  // server's Stop, which waits for the calls under way.
  void Stop();

 private:
  QueueServiceOptions options_;
  boost::asio::thread_pool pool_;
  std::shared_ptr<QueueCalls> calls_;
  std::shared_ptr<QueueCalls> forwarded_calls_;  // with forwarded_queue
};

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_QUEUE_SERVICE_H_
