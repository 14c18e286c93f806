#include "transport/grpc/reapi/reapi_convert.h"

#include <string>

#include "transport/grpc/grpc_common.h"

namespace packice::rpc {

Result<DigestAlgorithm> AlgorithmOf(rex::DigestFunction::Value function) {
  switch (function) {
    case rex::DigestFunction::UNKNOWN:
    case rex::DigestFunction::SHA256:
      return DigestAlgorithm::kSha256;
    case rex::DigestFunction::BLAKE3:
      return DigestAlgorithm::kBlake3;
    default:
      return InvalidArgument("digest function " + rex::DigestFunction::Value_Name(function) +
                             " is not supported (SHA256 and BLAKE3 are)");
  }
}

rex::DigestFunction::Value DigestFunctionOf(DigestAlgorithm algorithm) {
  return algorithm == DigestAlgorithm::kBlake3 ? rex::DigestFunction::BLAKE3
                                               : rex::DigestFunction::SHA256;
}

Result<Digest> FromProto(const rex::Digest& digest, DigestAlgorithm algorithm) {
  if (digest.size_bytes() < 0) {
    return InvalidArgument("digest '" + digest.hash() + "' has a negative size");
  }
  Result<Digest> d =
      Digest::FromHex(algorithm, digest.hash(), static_cast<uint64_t>(digest.size_bytes()));
  if (!d.ok()) {
    return InvalidArgument("digest '" + digest.hash() + "/" + std::to_string(digest.size_bytes()) +
                           "': " + std::string(d.status().message()));
  }
  return d;
}

void ToProto(const Digest& digest, rex::Digest* out) {
  out->set_hash(digest.hex());
  out->set_size_bytes(static_cast<int64_t>(digest.size));
}

void ToRpcStatus(const Status& status, ::google::rpc::Status* out) {
  out->set_code(static_cast<int32_t>(ToGrpcCode(status.code())));
  out->set_message(std::string(status.message()));
}

Status FromRpcStatus(const ::google::rpc::Status& status) {
  std::string message = status.message();
  switch (static_cast<::grpc::StatusCode>(status.code())) {
    case ::grpc::StatusCode::OK:
      return Status::Ok();
    case ::grpc::StatusCode::NOT_FOUND:
      return NotFound(std::move(message));
    case ::grpc::StatusCode::INVALID_ARGUMENT:
      return InvalidArgument(std::move(message));
    case ::grpc::StatusCode::OUT_OF_RANGE:
      return OutOfRange(std::move(message));
    case ::grpc::StatusCode::RESOURCE_EXHAUSTED:
      return OutOfCapacity(std::move(message));
    case ::grpc::StatusCode::UNAVAILABLE:
      return Unavailable(std::move(message));
    case ::grpc::StatusCode::DEADLINE_EXCEEDED:
      return Timeout(std::move(message));
    case ::grpc::StatusCode::PERMISSION_DENIED:
    case ::grpc::StatusCode::UNAUTHENTICATED:
      return PermissionDenied(std::move(message));
    case ::grpc::StatusCode::ABORTED:
    case ::grpc::StatusCode::CANCELLED:
      return Aborted(std::move(message));
    default:
      return Internal("gRPC " + std::to_string(status.code()) + ": " + message);
  }
}

namespace {

Status AddBlob(const rex::Digest& digest, DigestAlgorithm algorithm, std::string_view what,
               std::vector<Digest>* out) {
  Result<Digest> d = FromProto(digest, algorithm);
  if (!d.ok()) return InvalidArgument(std::string(what) + ": " + std::string(d.status().message()));
  out->push_back(*d);
  return Status::Ok();
}

}  // namespace

Result<std::vector<Digest>> ReferencedBlobs(const rex::ActionResult& result,
                                            DigestAlgorithm algorithm) {
  std::vector<Digest> blobs;
  for (const rex::OutputFile& f : result.output_files()) {
    PACKICE_RETURN_IF_ERROR(
        AddBlob(f.digest(), algorithm, "output file '" + f.path() + "'", &blobs));
  }
  for (const rex::OutputDirectory& d : result.output_directories()) {
    const std::string what = "output directory '" + d.path() + "'";
    PACKICE_RETURN_IF_ERROR(AddBlob(d.tree_digest(), algorithm, what, &blobs));
    if (d.has_root_directory_digest()) {
      PACKICE_RETURN_IF_ERROR(AddBlob(d.root_directory_digest(), algorithm, what, &blobs));
    }
  }
  if (result.has_stdout_digest()) {
    PACKICE_RETURN_IF_ERROR(AddBlob(result.stdout_digest(), algorithm, "stdout", &blobs));
  }
  if (result.has_stderr_digest()) {
    PACKICE_RETURN_IF_ERROR(AddBlob(result.stderr_digest(), algorithm, "stderr", &blobs));
  }
  return blobs;
}

}  // namespace packice::rpc
