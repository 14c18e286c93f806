#include "transport/grpc/group_service.h"

#include <boost/asio/post.hpp>

#include "transport/grpc/chunk_codec.h"
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
    : registry_(std::move(registry)),
      options_(std::move(options)),
      pool_(static_cast<size_t>(std::max(1, options_.threads))) {}

GroupService::~GroupService() { pool_.join(); }

namespace {

// The GroupValue of `value`: its bytes uncopied, kept alive by the message.
::grpc::ByteBuffer ValueMessage(CacheValue value, CacheSource source) {
  GroupValue other;
  other.set_source(ToWire(source));
  const std::span<const std::byte> bytes = std::as_bytes(std::span(value->data(), value->size()));
  return MessageWithBytes(other.SerializeAsString(), GroupValue::kValueFieldNumber, bytes,
                          std::move(value));
}

}  // namespace

::grpc::ServerUnaryReactor* GroupService::Get(::grpc::CallbackServerContext* context,
                                              const ::grpc::ByteBuffer* request,
                                              ::grpc::ByteBuffer* reply) {
  ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Status auth = CheckBearer(*context, options_.bearer_token); !auth.ok()) {
    reactor->Finish(Unauthenticated(auth, context));
    return reactor;
  }
  auto req = std::make_shared<GroupKeyRequest>();
  auto answer = [context, reactor, reply](const Result<CacheValue>& v, CacheSource source) {
    Status s = v.ok() && *v == nullptr ? Internal("the group returned no value") : v.status();
    if (s.ok()) {
      s = CatchAsStatus([&] {
        *reply = ValueMessage(*v, source);
        return Status::Ok();
      });
    }
    reactor->Finish(ToGrpc(s, context));
  };
  // What the cache answers, here on gRPC's thread.
  Result<std::shared_ptr<Group>> group = CatchAsStatus([&]() -> Result<std::shared_ptr<Group>> {
    PACKICE_RETURN_IF_ERROR(ParseSmallMessage(*request, req.get()));
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Group> g, registry_->Find(req->group()));
    CacheSource source = CacheSource::kHit;
    CacheValue v =
        req->hops() == 0
            ? g->GetCached(req->key(), &source)
            : g->ServePeerCached(PeerOf(req->group(), req->key(), req->hops(), req->ring_epoch()));
    if (v == nullptr) return g;
    answer(v, source);
    return std::shared_ptr<Group>();
  });
  if (!group.ok()) {
    answer(group.status(), CacheSource::kMiss);
    return reactor;
  }
  if (*group == nullptr) return reactor;  // answered
  // The rest waits for a load or the owner: on the service's threads.
  if (waiting_.fetch_add(1, std::memory_order_relaxed) >= options_.max_waiting) {
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    answer(Unavailable("the node has " + std::to_string(options_.max_waiting) +
                       " cache gets waiting for loads; try again later"),
           CacheSource::kMiss);
    return reactor;
  }
  Status posted = CatchAsStatus([&] {
    boost::asio::post(pool_, [this, req, g = *std::move(group), answer] {
      CacheSource source = CacheSource::kMiss;
      Result<CacheValue> v = CatchAsStatus([&] {
        return req->hops() == 0
                   ? g->Get(req->key(), &source)
                   : g->ServePeer(PeerOf(req->group(), req->key(), req->hops(), req->ring_epoch()));
      });
      waiting_.fetch_sub(1, std::memory_order_relaxed);
      answer(v, source);
    });
    return Status::Ok();
  });
  if (!posted.ok()) {  // nothing was posted: answered here
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    answer(posted, CacheSource::kMiss);
  }
  return reactor;
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
