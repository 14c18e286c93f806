#include "transport/grpc/reapi/reapi_service.h"

#include <algorithm>

#include "transport/grpc/reapi/reapi_services.h"

namespace packice::rpc {
namespace {

ReapiOptions Clamped(ReapiOptions options) {
  options.max_batch_bytes = std::min(options.max_batch_bytes, kDefaultMaxBatchBytes);
  return options;
}

}  // namespace

ReapiContext::ReapiContext(std::shared_ptr<Cas> cas, std::shared_ptr<ActionCache> action_cache,
                           ReapiOptions options)
    : cas_(std::move(cas)),
      action_cache_(std::move(action_cache)),
      options_(Clamped(std::move(options))),
      uploads_(options_.uploads),
      finder_(cas_, options_.check_threads) {}

Cas& ReapiContext::cas(const ::grpc::ServerContextBase& call) {
  if (options_.forwarded_cas != nullptr && ClientMetadata(call, kForwardedKey) == "1") {
    return *options_.forwarded_cas;
  }
  return *cas_;
}

Status ReapiContext::CheckInstance(std::string_view instance) const {
  const auto& names = options_.instance_names;
  if (names.empty() || std::find(names.begin(), names.end(), instance) != names.end()) {
    return Status::Ok();
  }
  return InvalidArgument("unknown instance name '" + std::string(instance) + "'");
}

std::vector<std::shared_ptr<::grpc::Service>> NewReapiServices(
    std::shared_ptr<Cas> cas, std::shared_ptr<ActionCache> action_cache, ReapiOptions options) {
  auto context =
      std::make_shared<ReapiContext>(std::move(cas), std::move(action_cache), std::move(options));
  return {std::make_shared<CapabilitiesService>(context),
          std::make_shared<ContentStorageService>(context),
          std::make_shared<ActionCacheService>(context),
          std::make_shared<ByteStreamService>(context)};
}

}  // namespace packice::rpc
