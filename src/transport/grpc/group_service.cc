#include "transport/grpc/group_service.h"

#include "transport/grpc/group_wire.h"
#include "transport/grpc/grpc_common.h"

namespace packice::rpc {
namespace {

PeerRequest PeerOf(const std::string& group, const std::string& key, uint32_t hops,
                   uint64_t ring_epoch) {
  return PeerRequest{.group = group, .key = key, .hops = hops, .ring_epoch = ring_epoch};
}

}  // namespace

GroupService::GroupService(std::shared_ptr<GroupRegistry> registry, GroupServiceOptions options)
    : registry_(std::move(registry)), options_(std::move(options)) {}

::grpc::Status GroupService::Get(::grpc::ServerContext* context, const GroupKeyRequest* request,
                                 GroupValue* reply) {
  return Serve(context, options_.bearer_token, [&]() -> Status {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Group> group, registry_->Find(request->group()));
    CacheSource source = CacheSource::kMiss;
    Result<CacheValue> v = request->hops() == 0
                               ? group->Get(request->key(), &source)
                               : group->ServePeer(PeerOf(request->group(), request->key(),
                                                         request->hops(), request->ring_epoch()));
    if (!v.ok()) return v.status();
    if (*v == nullptr) return Internal("the group returned no value");
    reply->set_value(**v);  // protobuf owns its bytes: one copy of the value
    reply->set_source(ToWire(source));
    return Status::Ok();
  });
}

::grpc::Status GroupService::Set(::grpc::ServerContext* context, const GroupSetRequest* request,
                                 GroupDone*) {
  return Serve(context, options_.bearer_token, [&]() -> Status {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Group> group, registry_->Find(request->group()));
    std::optional<Duration> ttl;
    if (request->has_ttl_ms()) {
      if (request->ttl_ms() < 0) return InvalidArgument("a negative TTL");
      ttl = Duration(request->ttl_ms());
    }
    // The request is const: its value is copied once into the cache's own string.
    std::string value = request->value();
    if (request->hops() == 0) return group->Set(request->key(), std::move(value), ttl);
    return group->ServePeerStore(
        PeerOf(request->group(), request->key(), request->hops(), request->ring_epoch()),
        std::move(value), ttl);
  });
}

::grpc::Status GroupService::Delete(::grpc::ServerContext* context, const GroupKeyRequest* request,
                                    GroupDone*) {
  return Serve(context, options_.bearer_token, [&]() -> Status {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Group> group, registry_->Find(request->group()));
    if (request->hops() == 0) return group->Delete(request->key());
    return group->ServePeerRemove(
        PeerOf(request->group(), request->key(), request->hops(), request->ring_epoch()));
  });
}

::grpc::Status GroupService::Stats(::grpc::ServerContext* context, const GroupName* request,
                                   GroupStatsReply* reply) {
  return Serve(context, options_.bearer_token, [&]() -> Status {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Group> group, registry_->Find(request->group()));
    ToWire(group->name(), group->Stats(), reply);
    return Status::Ok();
  });
}

::grpc::Status GroupService::ListGroups(::grpc::ServerContext* context, const ListGroupsRequest*,
                                        GroupList* reply) {
  return Serve(context, options_.bearer_token, [&]() -> Status {
    for (const GroupRegistry::Entry& e : registry_->List()) {
      GroupInfo* info = reply->add_groups();
      info->set_name(e.config.name);
      info->set_capacity_bytes(e.config.capacity_bytes);
      info->set_policy(std::string(PolicyName(e.config.policy)));
      info->set_ttl_ms(e.config.ttl.count());
      info->set_origin(e.config.origin);
      info->set_load_timeout_ms(e.config.load_timeout.count());
      info->set_max_value_bytes(e.config.max_value_bytes);
    }
    return Status::Ok();
  });
}

}  // namespace packice::rpc
