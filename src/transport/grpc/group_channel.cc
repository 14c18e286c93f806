#include "transport/grpc/group_channel.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "transport/grpc/group_wire.h"
#include "transport/grpc/groups.grpc.pb.h"
#include "transport/grpc/grpc_channel.h"
#include "transport/grpc/grpc_common.h"

namespace packice {

class GrpcGroupClient::Impl {
 public:
  Impl(std::string target, std::shared_ptr<::grpc::Channel> channel, GrpcGroupOptions options)
      : target_(std::move(target)),
        stub_(rpc::Groups::NewStub(std::move(channel))),
        options_(std::move(options)) {}

  Result<rpc::GroupValue> Get(std::string_view group, std::string_view key, uint32_t hops,
                              uint64_t epoch) {
    rpc::GroupKeyRequest req;
    req.set_group(std::string(group));
    req.set_key(std::string(key));
    req.set_hops(hops);
    req.set_ring_epoch(epoch);
    rpc::GroupValue reply;
    ::grpc::ClientContext ctx;
    Prepare(&ctx);
    PACKICE_RETURN_IF_ERROR(Finish(stub_->Get(&ctx, req, &reply), ctx));
    return reply;
  }

  Status Set(std::string_view group, std::string_view key, std::string_view value,
             std::optional<Duration> ttl, uint32_t hops, uint64_t epoch) {
    rpc::GroupSetRequest req;
    req.set_group(std::string(group));
    req.set_key(std::string(key));
    req.set_value(std::string(value));
    if (ttl) req.set_ttl_ms(ttl->count());
    req.set_hops(hops);
    req.set_ring_epoch(epoch);
    rpc::GroupDone reply;
    ::grpc::ClientContext ctx;
    Prepare(&ctx);
    return Finish(stub_->Set(&ctx, req, &reply), ctx);
  }

  Status Delete(std::string_view group, std::string_view key, uint32_t hops, uint64_t epoch) {
    rpc::GroupKeyRequest req;
    req.set_group(std::string(group));
    req.set_key(std::string(key));
    req.set_hops(hops);
    req.set_ring_epoch(epoch);
    rpc::GroupDone reply;
    ::grpc::ClientContext ctx;
    Prepare(&ctx);
    return Finish(stub_->Delete(&ctx, req, &reply), ctx);
  }

  Result<GroupStats> Stats(std::string_view group) {
    rpc::GroupName req;
    req.set_group(std::string(group));
    rpc::GroupStatsReply reply;
    ::grpc::ClientContext ctx;
    Prepare(&ctx);
    PACKICE_RETURN_IF_ERROR(Finish(stub_->Stats(&ctx, req, &reply), ctx));
    return rpc::FromWire(reply);
  }

  Result<std::vector<GroupListing>> List() {
    rpc::ListGroupsRequest req;
    rpc::GroupList reply;
    ::grpc::ClientContext ctx;
    Prepare(&ctx);
    PACKICE_RETURN_IF_ERROR(Finish(stub_->ListGroups(&ctx, req, &reply), ctx));
    std::vector<GroupListing> out;
    for (const rpc::GroupInfo& g : reply.groups()) {
      out.push_back({g.name(), g.capacity_bytes(), g.policy(), Duration(g.ttl_ms()), g.origin(),
                     Duration(g.load_timeout_ms()), g.max_value_bytes()});
    }
    return out;
  }

 private:
  void Prepare(::grpc::ClientContext* ctx) const {
    if (!options_.bearer_token.empty()) {
      ctx->AddMetadata(rpc::kAuthorizationKey, "Bearer " + options_.bearer_token);
    }
    ctx->set_deadline(std::chrono::system_clock::now() + options_.timeout);
  }

  // The call's Status. Our own deadline passing (no Packice code from the node) means the node
  // did not answer: kUnavailable, as for a node that cannot be reached, so that a fetching
  // Group falls back to its getter. A node's own kTimeout (its load timed out) stays kTimeout.
  Status Finish(const ::grpc::Status& status, const ::grpc::ClientContext& ctx) const {
    Status s = rpc::FromGrpc(status, ctx);
    if (s.ok()) return s;
    const auto& trailers = ctx.GetServerTrailingMetadata();
    const bool from_node = trailers.find(rpc::kErrorKey) != trailers.end();
    if (!from_node && status.error_code() == ::grpc::StatusCode::DEADLINE_EXCEEDED) {
      return Unavailable("node " + target_ + " did not answer within " +
                         std::to_string(options_.timeout.count()) + " ms");
    }
    if (!from_node && s.code() == StatusCode::kUnavailable) {
      return Unavailable("node " + target_ + " cannot be reached: " + std::string(s.message()));
    }
    return s;
  }

  const std::string target_;
  const std::unique_ptr<rpc::Groups::Stub> stub_;
  const GrpcGroupOptions options_;
};

GrpcGroupClient::GrpcGroupClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcGroupClient::~GrpcGroupClient() = default;

Result<std::unique_ptr<GrpcGroupClient>> GrpcGroupClient::Create(const std::string& target,
                                                                 const GrpcGroupOptions& options) {
  if (options.timeout.count() <= 0) return InvalidArgument("a call timeout must be positive");
  // Not connected yet: the first call connects.
  PACKICE_ASSIGN_OR_RETURN(
      std::shared_ptr<::grpc::Channel> channel,
      NewGrpcConnection(target, options.tls, options.ca_file, options.bearer_token));
  return std::unique_ptr<GrpcGroupClient>(
      new GrpcGroupClient(std::make_unique<Impl>(target, std::move(channel), options)));
}

Result<std::string> GrpcGroupClient::Get(std::string_view group, std::string_view key,
                                         CacheSource* source) {
  PACKICE_ASSIGN_OR_RETURN(rpc::GroupValue v, impl_->Get(group, key, 0, 0));
  if (source != nullptr) *source = rpc::FromWire(v.source());
  return std::move(*v.mutable_value());
}

Status GrpcGroupClient::Set(std::string_view group, std::string_view key, std::string_view value,
                            std::optional<Duration> ttl) {
  return impl_->Set(group, key, value, ttl, 0, 0);
}

Status GrpcGroupClient::Delete(std::string_view group, std::string_view key) {
  return impl_->Delete(group, key, 0, 0);
}

Result<GroupStats> GrpcGroupClient::Stats(std::string_view group) { return impl_->Stats(group); }

Result<std::vector<GroupListing>> GrpcGroupClient::List() { return impl_->List(); }

Result<CacheValue> GrpcGroupClient::Fetch(const PeerRequest& request) {
  PACKICE_ASSIGN_OR_RETURN(
      rpc::GroupValue v,
      impl_->Get(request.group, request.key, std::max(request.hops, 1u), request.ring_epoch));
  return std::make_shared<const std::string>(std::move(*v.mutable_value()));
}

Status GrpcGroupClient::Store(const PeerRequest& request, std::string_view value,
                              std::optional<Duration> ttl) {
  return impl_->Set(request.group, request.key, value, ttl, std::max(request.hops, 1u),
                    request.ring_epoch);
}

Status GrpcGroupClient::Remove(const PeerRequest& request) {
  return impl_->Delete(request.group, request.key, std::max(request.hops, 1u), request.ring_epoch);
}

namespace {

class GrpcGroupLoader final : public RemoteLoader {
 public:
  explicit GrpcGroupLoader(std::unique_ptr<GrpcGroupClient> client) : client_(std::move(client)) {}
  Result<CacheValue> Fetch(const PeerRequest& request) override { return client_->Fetch(request); }
  Status Store(const PeerRequest& request, std::string_view value,
               std::optional<Duration> ttl) override {
    return client_->Store(request, value, ttl);
  }
  Status Remove(const PeerRequest& request) override { return client_->Remove(request); }

 private:
  const std::unique_ptr<GrpcGroupClient> client_;
};

}  // namespace

Result<std::shared_ptr<RemoteLoader>> NewGrpcGroupLoader(const std::string& target,
                                                         const GrpcGroupOptions& options) {
  PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<GrpcGroupClient> client,
                           GrpcGroupClient::Create(target, options));
  return std::shared_ptr<RemoteLoader>(std::make_shared<GrpcGroupLoader>(std::move(client)));
}

}  // namespace packice
