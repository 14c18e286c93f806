#include "transport/grpc/queue_service.h"

#include <algorithm>

#include "transport/grpc/grpc_common.h"
#include "transport/queue_calls.h"

namespace packice::rpc {
namespace {

// A read's answer stays under the message limit: records up to this many bytes, and a record
// that alone is larger is refused rather than sent into a transport error.
constexpr uint64_t kMaxReadBytes = kMaxMessageBytes - (256u << 10);

}  // namespace

QueueService::QueueService(std::shared_ptr<::packice::Queue> queue, QueueServiceOptions options)
    : options_(std::move(options)),
      pool_(static_cast<size_t>(std::max(1, options_.threads))),
      // The pool is the parked reads' timers too: they need no io_context.
      calls_(std::make_shared<QueueCalls>(std::move(queue), &pool_, pool_.get_executor())) {
  if (options_.forwarded_queue != nullptr) {
    forwarded_calls_ =
        std::make_shared<QueueCalls>(options_.forwarded_queue, &pool_, pool_.get_executor());
  }
}

QueueService::~QueueService() {
  Stop();
  pool_.join();
}

void QueueService::Stop() {
  calls_->Stop();
  if (forwarded_calls_) forwarded_calls_->Stop();
}

::grpc::ServerUnaryReactor* QueueService::Call(::grpc::CallbackServerContext* context,
                                               const wire::QueueRequest* request,
                                               wire::QueueResponse* reply) {
  ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Status auth = CheckBearer(*context, options_.bearer_token); !auth.ok()) {
    reactor->Finish(Unauthenticated(auth, context));
    return reactor;
  }
  wire::QueueRequest req = *request;
  if (req.op_case() == wire::QueueRequest::kRead) {
    wire::QueueRead* read = req.mutable_read();
    if (read->max_bytes() == 0 || read->max_bytes() > kMaxReadBytes) {
      read->set_max_bytes(kMaxReadBytes);
    }
  }
  QueueCalls& calls =
      forwarded_calls_ != nullptr && !ClientMetadata(*context, kForwardedKey).empty()
          ? *forwarded_calls_
          : *calls_;
  // `reply` lives until Finish; the answer is moved into it.
  calls.Run(std::move(req), [reactor, context, reply](Status s, wire::QueueResponse resp) {
    if (s.ok() && resp.ByteSizeLong() > static_cast<size_t>(kMaxMessageBytes)) {
      s = InvalidArgument("queue: an answer of " + std::to_string(resp.ByteSizeLong()) +
                          " bytes is over gRPC's message limit of " +
                          std::to_string(kMaxMessageBytes) +
                          " (a record this large reads over HTTP)");
    }
    if (s.ok()) reply->Swap(&resp);
    reactor->Finish(ToGrpc(s, context));
  });
  return reactor;
}

}  // namespace packice::rpc
