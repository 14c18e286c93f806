// Cache groups over gRPC, server side: service packice.rpc.Groups (groups.proto) over the node's
// GroupRegistry. A request with hops = 0 is a client's (Group::Get / Set / Delete, which may
// forward to the key's owner); hops >= 1 is another node's (Group::ServePeer*, served here and
// never forwarded). Errors as rpc::Serve gives them (Get makes the same checks itself): the
// bearer token first, then the Packice code in the trailing metadata; an unknown group is
// kNotFound, a malformed name kInvalidArgument.
//
// Get is a raw callback method: the value goes out as a slice of the cached bytes, uncopied
// (chunk_codec.h's MessageWithBytes; the message is a plain GroupValue). A Get the cache
// answers runs on gRPC's thread; one that must wait for a load or a fetch from the owner runs
// on the service's threads (at most max_waiting of them queued or waiting: more is
// kUnavailable).
//
// Thread safety: gRPC calls the methods from its threads concurrently.
#ifndef PACKICE_TRANSPORT_GRPC_GROUP_SERVICE_H_
#define PACKICE_TRANSPORT_GRPC_GROUP_SERVICE_H_

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <string>

#include "services/cache/group_registry.h"
#include "transport/grpc/groups.grpc.pb.h"

namespace packice::rpc {

struct GroupServiceOptions {
  // Required as "authorization: Bearer <token>" on every call; empty: none.
  std::string bearer_token;
  // Threads that run the Gets the cache does not answer (they wait for a load or a fetch, up to
  // the group's load_timeout).
  int threads = 16;
  // Such Gets queued or running at once; past this, kUnavailable.
  size_t max_waiting = 1024;
};

class GroupService final : public Groups::WithRawCallbackMethod_Get<Groups::Service> {
 public:
  GroupService(std::shared_ptr<GroupRegistry> registry, GroupServiceOptions options);
  ~GroupService() override;

  // A GroupKeyRequest in, a GroupValue out.
  ::grpc::ServerUnaryReactor* Get(::grpc::CallbackServerContext* context,
                                  const ::grpc::ByteBuffer* request,
                                  ::grpc::ByteBuffer* reply) override;
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
  std::atomic<size_t> waiting_{0};  // Gets posted to pool_ and not yet answered
  boost::asio::thread_pool pool_;   // last: joined before the members its tasks use go
};

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_GROUP_SERVICE_H_
