#include "cluster/etcd_client.h"

#include <fmt/format.h>

#include "cluster/etcd.grpc.pb.h"
#include "cluster/etcd_channels.h"

namespace packice::cluster {

namespace {

// "http://host:port" -> "host:port". Errors: kInvalidArgument, kUnimplemented for https.
Result<std::string> TargetOf(std::string_view endpoint) {
  constexpr std::string_view kHttp = "http://";
  if (endpoint.starts_with("https://")) {
    return Unimplemented(fmt::format("etcd endpoint '{}': TLS is not supported", endpoint));
  }
  if (!endpoint.starts_with(kHttp)) {
    return InvalidArgument(fmt::format("etcd endpoint '{}' is not http://host:port", endpoint));
  }
  std::string_view target = endpoint.substr(kHttp.size());
  if (target.ends_with('/')) target.remove_suffix(1);
  const size_t colon = target.rfind(':');
  if (target.empty() || colon == std::string_view::npos || colon == 0 ||
      colon + 1 == target.size() || target.find('/') != std::string_view::npos ||
      target.find_first_not_of("0123456789", colon + 1) != std::string_view::npos) {
    return InvalidArgument(fmt::format("etcd endpoint '{}' is not http://host:port", endpoint));
  }
  return std::string(target);
}

}  // namespace

Result<std::vector<std::string>> ParseEtcdEndpoints(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    PACKICE_RETURN_IF_ERROR(TargetOf(item).status());
    out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  if (out.empty()) return InvalidArgument("no etcd endpoints");
  return out;
}

std::string EtcdPrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

Result<std::unique_ptr<EtcdClient>> EtcdClient::Create(EtcdOptions options) {
  if (options.endpoints.empty()) return InvalidArgument("no etcd endpoints");
  if (options.call_timeout.count() <= 0 || options.retry_initial.count() <= 0 ||
      options.retry_max < options.retry_initial) {
    return InvalidArgument("etcd: call_timeout and retry delays must be positive");
  }
  std::vector<std::string> targets;
  for (const auto& endpoint : options.endpoints) {
    PACKICE_ASSIGN_OR_RETURN(std::string target, TargetOf(endpoint));
    targets.push_back(std::move(target));
  }
  auto channels = std::make_shared<EtcdChannels>(std::move(options), std::move(targets));
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(channels)));
}

EtcdClient::EtcdClient(std::shared_ptr<EtcdChannels> channels) : channels_(std::move(channels)) {}
EtcdClient::~EtcdClient() = default;

Result<EtcdKeyValue> EtcdClient::Get(std::string_view key) {
  etcdserverpb::RangeRequest req;
  req.set_key(std::string(key));
  etcdserverpb::RangeResponse resp;
  PACKICE_RETURN_IF_ERROR(channels_->Unary(
      "Range", StatusCode::kNotFound, [&](const auto& channel, grpc::ClientContext* ctx) {
        resp.Clear();
        return etcdserverpb::KV::NewStub(channel)->Range(ctx, req, &resp);
      }));
  if (resp.kvs_size() == 0) return NotFound(fmt::format("etcd: no key '{}'", key));
  return FromProto(resp.kvs(0));
}

Result<EtcdRange> EtcdClient::GetPrefix(std::string_view prefix) {
  return channels_->ListPrefix(prefix);
}

Result<int64_t> EtcdClient::Put(std::string_view key, std::string_view value, int64_t lease) {
  etcdserverpb::PutRequest req;
  req.set_key(std::string(key));
  req.set_value(std::string(value));
  req.set_lease(lease);
  etcdserverpb::PutResponse resp;
  PACKICE_RETURN_IF_ERROR(channels_->Unary(
      "Put", StatusCode::kLeaseExpired, [&](const auto& channel, grpc::ClientContext* ctx) {
        resp.Clear();
        return etcdserverpb::KV::NewStub(channel)->Put(ctx, req, &resp);
      }));
  return resp.header().revision();
}

Result<std::string> EtcdClient::CreateOrGet(std::string_view key, std::string_view value) {
  etcdserverpb::TxnRequest req;
  etcdserverpb::Compare* absent = req.add_compare();
  absent->set_result(etcdserverpb::Compare::EQUAL);
  absent->set_target(etcdserverpb::Compare::CREATE);
  absent->set_key(std::string(key));
  absent->set_create_revision(0);
  etcdserverpb::PutRequest* put = req.add_success()->mutable_request_put();
  put->set_key(std::string(key));
  put->set_value(std::string(value));
  req.add_failure()->mutable_request_range()->set_key(std::string(key));
  etcdserverpb::TxnResponse resp;
  PACKICE_RETURN_IF_ERROR(channels_->Unary(
      "Txn", StatusCode::kInternal, [&](const auto& channel, grpc::ClientContext* ctx) {
        resp.Clear();
        return etcdserverpb::KV::NewStub(channel)->Txn(ctx, req, &resp);
      }));
  if (resp.succeeded()) return std::string(value);
  if (resp.responses_size() != 1 || !resp.responses(0).has_response_range() ||
      resp.responses(0).response_range().kvs_size() != 1) {
    // Deleted between the compare and the range: cannot happen in one Txn, but say so.
    return Internal("etcd Txn on " + std::string(key) + " answered no value");
  }
  return resp.responses(0).response_range().kvs(0).value();
}

Result<int64_t> EtcdClient::Delete(std::string_view key) {
  etcdserverpb::DeleteRangeRequest req;
  req.set_key(std::string(key));
  etcdserverpb::DeleteRangeResponse resp;
  PACKICE_RETURN_IF_ERROR(channels_->Unary(
      "DeleteRange", StatusCode::kNotFound, [&](const auto& channel, grpc::ClientContext* ctx) {
        resp.Clear();
        return etcdserverpb::KV::NewStub(channel)->DeleteRange(ctx, req, &resp);
      }));
  return resp.deleted();
}

Result<EtcdLease> EtcdClient::Grant(std::chrono::seconds ttl) {
  if (ttl.count() <= 0) return InvalidArgument("etcd: a lease TTL must be positive");
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl.count());
  etcdserverpb::LeaseGrantResponse resp;
  PACKICE_RETURN_IF_ERROR(channels_->Unary(
      "LeaseGrant", StatusCode::kNotFound, [&](const auto& channel, grpc::ClientContext* ctx) {
        resp.Clear();
        return etcdserverpb::Lease::NewStub(channel)->LeaseGrant(ctx, req, &resp);
      }));
  if (!resp.error().empty()) return Internal("etcd LeaseGrant: " + resp.error());
  return EtcdLease{resp.id(), std::chrono::seconds(resp.ttl())};
}

Status EtcdClient::Revoke(int64_t lease) {
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(lease);
  etcdserverpb::LeaseRevokeResponse resp;
  return channels_->Unary(
      "LeaseRevoke", StatusCode::kLeaseExpired, [&](const auto& channel, grpc::ClientContext* ctx) {
        return etcdserverpb::Lease::NewStub(channel)->LeaseRevoke(ctx, req, &resp);
      });
}

Result<std::unique_ptr<EtcdKeepAlive>> EtcdClient::KeepAlive(
    const EtcdLease& lease, std::function<void(const Status&)> on_lost) {
  if (lease.id <= 0 || lease.ttl.count() <= 0) {
    return InvalidArgument("etcd: keepalive of an invalid lease");
  }
  return std::make_unique<EtcdKeepAlive>(StartKeepAlive(channels_, lease, std::move(on_lost)));
}

Result<std::unique_ptr<EtcdWatch>> EtcdClient::Watch(std::string prefix, int64_t start_revision,
                                                     EtcdWatchCallback callback) {
  if (start_revision < 0) return InvalidArgument("etcd: negative watch revision");
  if (!callback) return InvalidArgument("etcd: a watch needs a callback");
  return std::make_unique<EtcdWatch>(
      StartWatch(channels_, std::move(prefix), start_revision, std::move(callback)));
}

}  // namespace packice::cluster
