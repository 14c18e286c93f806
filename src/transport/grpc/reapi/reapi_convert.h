// Between the REAPI messages and Packice's types: digests, digest functions, statuses.
#ifndef PACKICE_TRANSPORT_GRPC_REAPI_REAPI_CONVERT_H_
#define PACKICE_TRANSPORT_GRPC_REAPI_REAPI_CONVERT_H_

#include <vector>

#include "build/bazel/remote/execution/v2/remote_execution.pb.h"
#include "google/rpc/status.pb.h"
#include "packice/cas.h"
#include "packice/status.h"

namespace packice::rpc {

namespace rex = ::build::bazel::remote::execution::v2;

// The algorithm a request's digest_function names: SHA256, and UNKNOWN (REAPI: infer it from a
// 64-digit hash, which without a name is SHA-256), are kSha256; BLAKE3 is kBlake3. Errors:
// kInvalidArgument for any other function.
Result<DigestAlgorithm> AlgorithmOf(rex::DigestFunction::Value function);
// REAPI's name of `algorithm`.
rex::DigestFunction::Value DigestFunctionOf(DigestAlgorithm algorithm);

// `digest` as a Packice digest of `algorithm`. Errors: kInvalidArgument (not 64 lower-case hex
// digits, a negative size).
Result<Digest> FromProto(const rex::Digest& digest, DigestAlgorithm algorithm);
// `digest` as REAPI's message.
void ToProto(const Digest& digest, rex::Digest* out);

// `status` as google.rpc.Status (gRPC's code for it and its message), for per-blob results.
void ToRpcStatus(const Status& status, ::google::rpc::Status* out);

// A per-blob google.rpc.Status of a batch reply as a Status: gRPC's code mapped as
// rpc::FromGrpc maps it (there is no packice-error trailer per blob), its message kept.
Status FromRpcStatus(const ::google::rpc::Status& status);

// The CAS blobs an action result names: its output files, its output directories' trees (and
// root directories, when given), its stdout and stderr. Errors: kInvalidArgument naming the
// first malformed digest.
Result<std::vector<Digest>> ReferencedBlobs(const rex::ActionResult& result,
                                            DigestAlgorithm algorithm);

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_REAPI_REAPI_CONVERT_H_
