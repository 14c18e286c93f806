// ActionCache: results stored as serialized ActionResult bytes in the ActionCache (an object per
// action in a LocalPeer). A result is served only while every blob it names is in the CAS:
// otherwise NOT_FOUND, and the client runs the action again.
#include <string>

#include "transport/grpc/reapi/reapi_services.h"

namespace packice::rpc {

::grpc::Status ActionCacheService::GetActionResult(::grpc::ServerContext* context,
                                                   const rex::GetActionResultRequest* request,
                                                   rex::ActionResult* reply) {
  return Serve(context, context_->options().bearer_token,
               [&]() -> Status { return Get(*request, reply); });
}

Status ActionCacheService::Get(const rex::GetActionResultRequest& request,
                               rex::ActionResult* reply) {
  PACKICE_RETURN_IF_ERROR(context_->CheckInstance(request.instance_name()));
  PACKICE_ASSIGN_OR_RETURN(DigestAlgorithm algorithm, AlgorithmOf(request.digest_function()));
  PACKICE_ASSIGN_OR_RETURN(Digest action, FromProto(request.action_digest(), algorithm));
  PACKICE_ASSIGN_OR_RETURN(std::string bytes, context_->action_cache().Get(action));
  if (!reply->ParseFromString(bytes)) {
    return Internal("the action cache's entry for " + action.ToString() + " is corrupt");
  }
  Result<std::vector<Digest>> blobs = ReferencedBlobs(*reply, algorithm);
  if (!blobs.ok()) return Internal("stored action result: " + blobs.status().ToString());
  PACKICE_ASSIGN_OR_RETURN(std::vector<Digest> missing, context_->finder().FindMissing(*blobs));
  if (!missing.empty()) {
    reply->Clear();
    return NotFound("the result of action " + action.ToString() + " names " +
                    std::to_string(missing.size()) + " blob(s) the CAS lacks, e.g. " +
                    missing.front().ToString());
  }
  Inline(request, algorithm, reply);
  return Status::Ok();
}

void ActionCacheService::Inline(const rex::GetActionResultRequest& request,
                                DigestAlgorithm algorithm, rex::ActionResult* reply) {
  // REAPI lets the server omit any inlining, and requires it to when the reply would grow past
  // the message limit: blobs are inlined while the reply stays within the batch limit.
  const uint64_t limit = context_->options().max_batch_bytes;
  const uint64_t size = reply->ByteSizeLong();
  uint64_t budget = size < limit ? limit - size : 0;
  auto fill = [&](const rex::Digest& digest, std::string* out) {
    Result<Digest> d = FromProto(digest, algorithm);
    if (!d.ok() || d->size > budget) return;
    Result<CasBlob> blob = context_->cas().Fetch(*d);
    if (!blob.ok()) return;  // not inlined; the client reads it from the CAS
    out->assign(reinterpret_cast<const char*>(blob->bytes.data()), blob->bytes.size());
    budget -= d->size;
  };
  if (request.inline_stdout() && reply->has_stdout_digest()) {
    fill(reply->stdout_digest(), reply->mutable_stdout_raw());
  }
  if (request.inline_stderr() && reply->has_stderr_digest()) {
    fill(reply->stderr_digest(), reply->mutable_stderr_raw());
  }
  for (const std::string& path : request.inline_output_files()) {
    for (rex::OutputFile& f : *reply->mutable_output_files()) {
      if (f.path() == path) fill(f.digest(), f.mutable_contents());
    }
  }
}

::grpc::Status ActionCacheService::UpdateActionResult(::grpc::ServerContext* context,
                                                      const rex::UpdateActionResultRequest* request,
                                                      rex::ActionResult* reply) {
  return Serve(context, context_->options().bearer_token, [&]() -> Status {
    PACKICE_RETURN_IF_ERROR(context_->CheckInstance(request->instance_name()));
    PACKICE_ASSIGN_OR_RETURN(DigestAlgorithm algorithm, AlgorithmOf(request->digest_function()));
    PACKICE_ASSIGN_OR_RETURN(Digest action, FromProto(request->action_digest(), algorithm));
    PACKICE_RETURN_IF_ERROR(ReferencedBlobs(request->action_result(), algorithm).status());
    PACKICE_RETURN_IF_ERROR(
        context_->action_cache().Put(action, request->action_result().SerializeAsString()));
    *reply = request->action_result();
    return Status::Ok();
  });
}

}  // namespace packice::rpc
