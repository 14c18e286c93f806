// ClusterNode over gRPC: how a ClusterPeer in packiced reaches another node — its object
// service with every call marked forwarded, and its Cluster service for invalidations.
#ifndef PACKICE_TRANSPORT_GRPC_CLUSTER_NODE_H_
#define PACKICE_TRANSPORT_GRPC_CLUSTER_NODE_H_

#include <memory>

#include "peers/cluster_peer.h"
#include "transport/grpc/grpc_channel.h"

namespace packice {

// Connects when first used (and again after a failed attempt), so that a member that is not up
// yet costs nothing until a key of its is asked for. options.forwarded is set.
std::shared_ptr<ClusterNode> NewGrpcClusterNode(const ClusterMember& member,
                                                GrpcChannelOptions options);

}  // namespace packice

#endif  // PACKICE_TRANSPORT_GRPC_CLUSTER_NODE_H_
