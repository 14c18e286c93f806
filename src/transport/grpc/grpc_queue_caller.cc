#include "transport/grpc/grpc_queue_caller.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "transport/grpc/grpc_common.h"
#include "transport/grpc/queue_service.grpc.pb.h"
#include "transport/queue_calls.h"

namespace packice {

Result<QueueCaller> NewGrpcQueueCaller(const std::string& target,
                                       const GrpcChannelOptions& options) {
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<::grpc::Channel> channel, DialGrpc(target, options));
  std::shared_ptr<rpc::Queue::Stub> stub = rpc::Queue::NewStub(channel);
  return QueueCaller([stub, options](wire::QueueRequest req) -> Result<wire::QueueResponse> {
    if (const size_t n = req.ByteSizeLong(); n > static_cast<size_t>(rpc::kMaxMessageBytes)) {
      return InvalidArgument("queue: a request of " + std::to_string(n) +
                             " bytes is over gRPC's message limit of " +
                             std::to_string(rpc::kMaxMessageBytes) + " (split the batch)");
    }
    ::grpc::ClientContext ctx;
    auto deadline = std::chrono::system_clock::now() + options.call_timeout;
    if (req.op_case() == wire::QueueRequest::kRead) {
      deadline += std::chrono::milliseconds(
          std::clamp<int64_t>(req.read().wait_ms(), 0, QueueCalls::kMaxWaitMs));
    }
    ctx.set_deadline(deadline);
    if (!options.bearer_token.empty()) {
      ctx.AddMetadata(rpc::kAuthorizationKey, "Bearer " + options.bearer_token);
    }
    if (options.forwarded) ctx.AddMetadata(rpc::kForwardedKey, "1");  // node to node
    wire::QueueResponse resp;
    ::grpc::Status status = stub->Call(&ctx, req, &resp);
    if (!status.ok()) return rpc::FromGrpc(status, ctx);
    return resp;
  });
}

}  // namespace packice
