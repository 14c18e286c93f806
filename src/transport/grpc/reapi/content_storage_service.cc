// ContentAddressableStorage: FindMissingBlobs over the checker pool; BatchUpdateBlobs and
// BatchReadBlobs with a status per blob, the whole call INVALID_ARGUMENT when its blobs exceed
// max_batch_bytes.
#include <algorithm>
#include <string>

#include "transport/grpc/reapi/reapi_services.h"

namespace packice::rpc {
namespace {

std::span<const std::byte> AsBytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

Status CheckBatchSize(uint64_t total, uint64_t limit, std::string_view what) {
  if (total <= limit) return Status::Ok();
  return InvalidArgument(std::string(what) + " of " + std::to_string(total) +
                         " bytes exceeds max_batch_total_size_bytes " + std::to_string(limit) +
                         ": use ByteStream for large blobs");
}

}  // namespace

::grpc::Status ContentStorageService::FindMissingBlobs(::grpc::ServerContext* context,
                                                       const rex::FindMissingBlobsRequest* request,
                                                       rex::FindMissingBlobsResponse* reply) {
  return Serve(context, context_->options().bearer_token, [&]() -> Status {
    PACKICE_RETURN_IF_ERROR(context_->CheckInstance(request->instance_name()));
    PACKICE_ASSIGN_OR_RETURN(DigestAlgorithm algorithm, AlgorithmOf(request->digest_function()));
    std::vector<Digest> digests;
    digests.reserve(request->blob_digests_size());
    for (const rex::Digest& d : request->blob_digests()) {
      PACKICE_ASSIGN_OR_RETURN(digests.emplace_back(), FromProto(d, algorithm));
    }
    PACKICE_ASSIGN_OR_RETURN(std::vector<Digest> missing,
                             context_->finder().FindMissing(context_->cas(*context), digests));
    reply->mutable_missing_blob_digests()->Reserve(static_cast<int>(missing.size()));
    for (const Digest& d : missing) ToProto(d, reply->add_missing_blob_digests());
    return Status::Ok();
  });
}

::grpc::Status ContentStorageService::BatchUpdateBlobs(::grpc::ServerContext* context,
                                                       const rex::BatchUpdateBlobsRequest* request,
                                                       rex::BatchUpdateBlobsResponse* reply) {
  return Serve(context, context_->options().bearer_token, [&]() -> Status {
    PACKICE_RETURN_IF_ERROR(context_->CheckInstance(request->instance_name()));
    PACKICE_ASSIGN_OR_RETURN(DigestAlgorithm algorithm, AlgorithmOf(request->digest_function()));
    uint64_t total = 0;
    for (const auto& blob : request->requests()) total += blob.data().size();
    PACKICE_RETURN_IF_ERROR(
        CheckBatchSize(total, context_->options().max_batch_bytes, "a batch update"));
    Cas& cas = context_->cas(*context);
    for (const auto& blob : request->requests()) {
      auto* response = reply->add_responses();
      *response->mutable_digest() = blob.digest();
      ToRpcStatus(UpdateOne(cas, blob, algorithm), response->mutable_status());
    }
    return Status::Ok();
  });
}

Status ContentStorageService::UpdateOne(Cas& cas, const rex::BatchUpdateBlobsRequest::Request& blob,
                                        DigestAlgorithm algorithm) {
  PACKICE_ASSIGN_OR_RETURN(Digest digest, FromProto(blob.digest(), algorithm));
  if (blob.compressor() != rex::Compressor::IDENTITY) {
    return InvalidArgument("compressor " + rex::Compressor::Value_Name(blob.compressor()) +
                           " is not supported");
  }
  if (blob.data().size() != digest.size) {
    return DigestMismatch("blob of " + std::to_string(blob.data().size()) + " bytes for digest " +
                          digest.ToString());
  }
  return cas.Store(digest, AsBytes(blob.data()));
}

::grpc::Status ContentStorageService::BatchReadBlobs(::grpc::ServerContext* context,
                                                     const rex::BatchReadBlobsRequest* request,
                                                     rex::BatchReadBlobsResponse* reply) {
  return Serve(context, context_->options().bearer_token, [&]() -> Status {
    PACKICE_RETURN_IF_ERROR(context_->CheckInstance(request->instance_name()));
    PACKICE_ASSIGN_OR_RETURN(DigestAlgorithm algorithm, AlgorithmOf(request->digest_function()));
    uint64_t total = 0;  // saturates past the limit: sizes may be anything up to 2^63 - 1
    for (const rex::Digest& d : request->digests()) {
      const uint64_t size = static_cast<uint64_t>(std::max<int64_t>(d.size_bytes(), 0));
      total = std::min(total + std::min(size, kMaxMessageBytes + uint64_t{1}),
                       uint64_t{kMaxMessageBytes} + 1);
    }
    PACKICE_RETURN_IF_ERROR(
        CheckBatchSize(total, context_->options().max_batch_bytes, "a batch read"));
    Cas& cas = context_->cas(*context);
    for (const rex::Digest& d : request->digests()) {
      auto* response = reply->add_responses();
      *response->mutable_digest() = d;
      Status read = ReadOne(cas, d, algorithm, response->mutable_data());
      if (!read.ok()) response->clear_data();
      ToRpcStatus(read, response->mutable_status());
    }
    return Status::Ok();
  });
}

Status ContentStorageService::ReadOne(Cas& cas, const rex::Digest& digest,
                                      DigestAlgorithm algorithm, std::string* out) {
  PACKICE_ASSIGN_OR_RETURN(Digest d, FromProto(digest, algorithm));
  PACKICE_ASSIGN_OR_RETURN(CasBlob blob, cas.Fetch(d));
  out->assign(reinterpret_cast<const char*>(blob.bytes.data()), blob.bytes.size());
  return Status::Ok();
}

}  // namespace packice::rpc
