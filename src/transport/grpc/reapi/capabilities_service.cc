// Capabilities.GetCapabilities: a cache, no execution. SHA-256 and BLAKE3; action results may
// be uploaded; batches up to max_batch_bytes; no compressor but identity (which is never
// listed); absolute symlink targets allowed (the cache stores results, it runs nothing).
#include "transport/grpc/reapi/reapi_services.h"

namespace packice::rpc {
namespace {

// REAPI versions served: 2.0 (ActionResult's v2.0 symlink fields are stored as given) to 2.3.
void SetVersion(int minor, ::build::bazel::semver::SemVer* v) {
  v->set_major(2);
  v->set_minor(minor);
}

}  // namespace

::grpc::Status CapabilitiesService::GetCapabilities(::grpc::ServerContext* context,
                                                    const rex::GetCapabilitiesRequest* request,
                                                    rex::ServerCapabilities* reply) {
  return Serve(context, context_->options().bearer_token, [&]() -> Status {
    PACKICE_RETURN_IF_ERROR(context_->CheckInstance(request->instance_name()));
    rex::CacheCapabilities* cache = reply->mutable_cache_capabilities();
    cache->add_digest_functions(rex::DigestFunction::SHA256);
    cache->add_digest_functions(rex::DigestFunction::BLAKE3);
    cache->mutable_action_cache_update_capabilities()->set_update_enabled(true);
    cache->set_max_batch_total_size_bytes(
        static_cast<int64_t>(context_->options().max_batch_bytes));
    cache->set_symlink_absolute_path_strategy(rex::SymlinkAbsolutePathStrategy::ALLOWED);
    // A ByteStream upload is staged whole before it is stored: no blob larger than the staging.
    cache->set_max_cas_blob_size_bytes(
        static_cast<int64_t>(context_->options().uploads.max_staged_bytes));
    SetVersion(0, reply->mutable_deprecated_api_version());
    SetVersion(0, reply->mutable_low_api_version());
    SetVersion(3, reply->mutable_high_api_version());
    return Status::Ok();
  });
}

}  // namespace packice::rpc
