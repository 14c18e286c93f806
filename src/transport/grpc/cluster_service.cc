#include "transport/grpc/cluster_service.h"

#include <vector>

#include "transport/grpc/grpc_common.h"

namespace packice::rpc {

// More keys than this in one call is not a batch ClusterPeer sends (it sends at most 1024).
constexpr int kMaxInvalidateKeys = 65'536;

ClusterService::ClusterService(std::shared_ptr<ClusterPeer> cluster, std::string bearer_token)
    : cluster_(std::move(cluster)), bearer_token_(std::move(bearer_token)) {}

::grpc::Status ClusterService::Invalidate(::grpc::ServerContext* context,
                                          const InvalidateRequest* request, Empty*) {
  return Serve(context, bearer_token_, [&]() -> Status {
    if (request->keys_size() > kMaxInvalidateKeys) {
      return InvalidArgument("at most " + std::to_string(kMaxInvalidateKeys) +
                             " keys per invalidation");
    }
    std::vector<std::string> keys(request->keys().begin(), request->keys().end());
    cluster_->DropCopies(keys);
    return Status::Ok();
  });
}

}  // namespace packice::rpc
