#include "transport/grpc/cluster_node.h"

#include <grpcpp/grpcpp.h>

#include "core/mutex.h"
#include "transport/grpc/cluster.grpc.pb.h"
#include "transport/grpc/grpc_common.h"

namespace packice {
namespace {

class GrpcClusterNode final : public ClusterNode {
 public:
  GrpcClusterNode(ClusterMember member, GrpcChannelOptions options)
      : member_(std::move(member)), options_(std::move(options)) {
    options_.forwarded = true;
  }

  Result<ObjectInfo> FetchInto(
      std::string_view key,
      const std::function<Result<std::span<std::byte>>(const ObjectInfo&)>& allocate) override {
    PACKICE_ASSIGN_OR_RETURN(Connection c, Connect());
    return c.objects->GetInto(key, allocate);
  }
  Result<ObjectInfo> Put(std::string_view key, std::span<const std::byte> data,
                         const CreateOptions& options) override {
    PACKICE_ASSIGN_OR_RETURN(Connection c, Connect());
    return c.objects->Put(key, data, options);
  }
  Result<ObjectInfo> Stat(std::string_view key) override {
    PACKICE_ASSIGN_OR_RETURN(Connection c, Connect());
    return c.objects->Stat(key);
  }
  Result<ListPage> List(const ListOptions& options) override {
    PACKICE_ASSIGN_OR_RETURN(Connection c, Connect());
    return c.objects->List(options);
  }
  Status Delete(std::string_view key) override {
    PACKICE_ASSIGN_OR_RETURN(Connection c, Connect());
    return c.objects->Delete(key);
  }
  Status Invalidate(std::span<const std::string> keys) override {
    PACKICE_ASSIGN_OR_RETURN(Connection c, Connect());
    ::grpc::ClientContext ctx;
    if (!options_.bearer_token.empty()) {
      ctx.AddMetadata(rpc::kAuthorizationKey, "Bearer " + options_.bearer_token);
    }
    ctx.set_deadline(std::chrono::system_clock::now() + options_.call_timeout);
    rpc::InvalidateRequest req;
    for (const std::string& k : keys) req.add_keys(k);
    rpc::Empty reply;
    return rpc::FromGrpc(c.cluster->Invalidate(&ctx, req, &reply), ctx);
  }

 private:
  struct Connection {
    std::shared_ptr<GrpcChannel> objects;
    std::shared_ptr<rpc::Cluster::Stub> cluster;
  };

  Result<Connection> Connect() {
    MutexLock lock(&mu_);
    if (connection_.objects == nullptr) {
      Result<std::shared_ptr<::grpc::Channel>> channel = DialGrpc(member_.grpc_address, options_);
      if (!channel.ok()) {
        return Status(channel.status().code(), "cluster member " + member_.id + " at " +
                                                   member_.grpc_address + ": " +
                                                   std::string(channel.status().message()));
      }
      connection_.objects = NewGrpcChannel(*channel, options_);
      connection_.cluster = rpc::Cluster::NewStub(*channel);
    }
    return connection_;
  }

  const ClusterMember member_;
  GrpcChannelOptions options_;
  Mutex mu_;
  Connection connection_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::shared_ptr<ClusterNode> NewGrpcClusterNode(const ClusterMember& member,
                                                GrpcChannelOptions options) {
  return std::make_shared<GrpcClusterNode>(member, std::move(options));
}

}  // namespace packice
