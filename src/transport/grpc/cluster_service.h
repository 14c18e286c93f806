// The node-to-node service packice.rpc.Cluster (cluster.proto) over a ClusterPeer.
#ifndef PACKICE_TRANSPORT_GRPC_CLUSTER_SERVICE_H_
#define PACKICE_TRANSPORT_GRPC_CLUSTER_SERVICE_H_

#include <memory>
#include <string>

#include "peers/cluster_peer.h"
#include "transport/grpc/cluster.grpc.pb.h"

namespace packice::rpc {

class ClusterService final : public Cluster::Service {
 public:
  // `bearer_token`: required on every call, as on the node's other services; empty: none.
  ClusterService(std::shared_ptr<ClusterPeer> cluster, std::string bearer_token);

  ::grpc::Status Invalidate(::grpc::ServerContext* context, const InvalidateRequest* request,
                            Empty* reply) override;

 private:
  std::shared_ptr<ClusterPeer> cluster_;
  std::string bearer_token_;
};

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_CLUSTER_SERVICE_H_
