#include "cluster/etcd_channels.h"

#include <fmt/format.h>

#include "cluster/etcd.grpc.pb.h"

namespace packice::cluster {

namespace {

// A channel that notices a dead etcd fast and reconnects fast when it is back. gRPC's own
// reconnect backoff grows to two minutes, which would keep a node out of its cluster long after
// etcd returned; the keepalive pings find a peer that stopped answering without closing the
// connection (etcd refuses pings more often than every 5 s, its --grpc-keepalive-min-time).
// GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is also the connect timeout (20 s by default).
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 3'000);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

Status FromGrpcStatus(const grpc::Status& status, std::string_view what, std::string_view endpoint,
                      StatusCode not_found) {
  if (status.ok()) return Status::Ok();
  std::string message = fmt::format("etcd {} {}: {}", endpoint, what, status.error_message());
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
      return Unavailable(std::move(message));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Timeout(std::move(message));
    case grpc::StatusCode::NOT_FOUND:
      return Status(not_found, std::move(message));
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:  // a compacted or future revision
    case grpc::StatusCode::FAILED_PRECONDITION:
      return InvalidArgument(std::move(message));
    case grpc::StatusCode::RESOURCE_EXHAUSTED:  // database space exceeded, message too large
      return OutOfCapacity(std::move(message));
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return PermissionDenied(std::move(message));
    case grpc::StatusCode::UNIMPLEMENTED:
      return Unimplemented(std::move(message));
    default:
      return Internal(std::move(message));
  }
}

bool IsConnectionFailure(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

EtcdKeyValue FromProto(const mvccpb::KeyValue& kv) {
  EtcdKeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

EtcdChannels::EtcdChannels(EtcdOptions options, std::vector<std::string> targets)
    : options_(std::move(options)) {
  for (const auto& target : targets) channels_.push_back(MakeChannel(target));
}

EtcdChannels::Pick EtcdChannels::Current() const {
  const size_t i = current_.load() % channels_.size();
  return Pick{i, channels_[i], options_.endpoints[i]};
}

void EtcdChannels::Failed(size_t index) {
  size_t expected = index;
  // Only the first of several calls that saw the same endpoint fail moves on.
  current_.compare_exchange_strong(expected, (index + 1) % channels_.size());
}

bool EtcdChannels::WaitConnected(const Pick& pick, std::chrono::system_clock::time_point deadline) {
  return pick.channel->WaitForConnected(deadline);
}

Status EtcdChannels::Unary(std::string_view what, StatusCode not_found, const UnaryCall& call) {
  Status last;
  for (size_t attempt = 0; attempt < channels_.size(); ++attempt) {
    const Pick pick = Current();
    grpc::ClientContext ctx;
    const auto deadline = std::chrono::system_clock::now() + options_.call_timeout;
    if (!WaitConnected(pick, deadline)) {
      last = Unavailable(fmt::format("etcd {} {}: not reachable within {} ms", pick.endpoint, what,
                                     options_.call_timeout.count()));
      Failed(pick.index);
      continue;
    }
    ctx.set_deadline(deadline);
    const grpc::Status s = call(pick.channel, &ctx);
    if (s.ok()) return Status::Ok();
    last = FromGrpcStatus(s, what, pick.endpoint, not_found);
    if (!IsConnectionFailure(s)) return last;
    Failed(pick.index);
  }
  return last;
}

Result<EtcdRange> EtcdChannels::ListPrefix(std::string_view prefix) {
  etcdserverpb::RangeRequest req;
  req.set_key(std::string(prefix));
  req.set_range_end(EtcdPrefixEnd(prefix));
  etcdserverpb::RangeResponse resp;
  PACKICE_RETURN_IF_ERROR(
      Unary("Range", StatusCode::kNotFound, [&](const auto& channel, grpc::ClientContext* ctx) {
        resp.Clear();
        return etcdserverpb::KV::NewStub(channel)->Range(ctx, req, &resp);
      }));
  EtcdRange range;
  range.revision = resp.header().revision();
  range.kvs.reserve(resp.kvs_size());
  for (const auto& kv : resp.kvs()) range.kvs.push_back(FromProto(kv));
  return range;
}

}  // namespace packice::cluster
