// Cache groups over gRPC, server side: service packice.rpc.Groups (groups.proto) over the node's
// GroupRegistry. A request with hops = 0 is a client's (Group::Get / Set / Delete, which may
// forward to the key's owner); hops >= 1 is another node's (Group::ServePeer*, served here and
// never forwarded). Errors go through rpc::Serve: the bearer token first, then the Packice code
// in the trailing metadata; an unknown group is kNotFound, a malformed name kInvalidArgument.
//
// Thread safety: gRPC calls the methods from its threads concurrently. A Get that misses waits
// for its load on the calling gRPC thread (bounded by the group's load_timeout).
#ifndef PACKICE_TRANSPORT_GRPC_GROUP_SERVICE_H_
#define PACKICE_TRANSPORT_GRPC_GROUP_SERVICE_H_

#include <memory>
#include <string>

#include "services/cache/group_registry.h"
#include "transport/grpc/groups.grpc.pb.h"

namespace packice::rpc {

struct GroupServiceOptions {
  // Required as "authorization: Bearer <token>" on every call; empty: none.
  std::string bearer_token;
};

class GroupService final : public Groups::Service {
 public:
  GroupService(std::shared_ptr<GroupRegistry> registry, GroupServiceOptions options);

  ::grpc::Status Get(::grpc::ServerContext* context, const GroupKeyRequest* request,
                     GroupValue* reply) override;
  ::grpc::Status Set(::grpc::ServerContext* context, const GroupSetRequest* request,
                     GroupDone* reply) override;
  ::grpc::Status Delete(::grpc::ServerContext* context, const GroupKeyRequest* request,
                        GroupDone* reply) override;
  ::grpc::Status Stats(::grpc::ServerContext* context, const GroupName* request,
                       GroupStatsReply* reply) override;
  ::grpc::Status ListGroups(::grpc::ServerContext* context, const ListGroupsRequest* request,
                            GroupList* reply) override;

 private:
  std::shared_ptr<GroupRegistry> registry_;
  GroupServiceOptions options_;
};

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_GROUP_SERVICE_H_
