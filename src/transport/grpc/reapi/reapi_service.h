// The Remote Execution API v2 as a remote cache, over gRPC: services
// build.bazel.remote.execution.v2.Capabilities, .ContentAddressableStorage (FindMissingBlobs,
// BatchUpdateBlobs, BatchReadBlobs), .ActionCache, and google.bytestream.ByteStream (Read,
// resumable Write, QueryWriteStatus) over a Cas and an ActionCache. Bazel and other REAPI
// clients use a node as their --remote_cache with it. docs/reapi.md describes what is served,
// the resource names, the limits and what is left out.
//
//   auto services = rpc::NewReapiServices(cas, action_cache, {.bearer_token = token});
//   for (auto& s : services) grpc_server.AddService(s);
//
// Errors map to gRPC codes through rpc::ToGrpc (the Packice code rides in the packice-error
// trailer): kDigestMismatch is INVALID_ARGUMENT, kOutOfRange OUT_OF_RANGE, kOutOfCapacity
// RESOURCE_EXHAUSTED, kNotFound NOT_FOUND.
//
// Thread safety: gRPC calls the services from its threads concurrently; they are safe for it.
#ifndef PACKICE_TRANSPORT_GRPC_REAPI_REAPI_SERVICE_H_
#define PACKICE_TRANSPORT_GRPC_REAPI_REAPI_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "packice/cas.h"
#include "services/cas/action_cache.h"
#include "services/cas/upload_table.h"
#include "transport/grpc/grpc_common.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace packice::rpc {

// The batch limit REAPI clients are told: a batch's blobs plus the message's envelope stay
// below the port's kMaxMessageBytes.
inline constexpr uint64_t kDefaultMaxBatchBytes = kMaxMessageBytes - (64 << 10);

struct ReapiOptions {
  // Required as "authorization: Bearer <token>" on every call; empty: none.
  std::string bearer_token;
  // The most blob bytes one BatchUpdateBlobs or BatchReadBlobs moves (CacheCapabilities'
  // max_batch_total_size_bytes). Clamped to kDefaultMaxBatchBytes: more would not fit in a
  // message.
  uint64_t max_batch_bytes = kDefaultMaxBatchBytes;
  // The instance names served. Empty: any name, all of them the same CAS and action cache
  // (instance names do not partition). Otherwise only these ("" is the unnamed instance);
  // others are INVALID_ARGUMENT.
  std::vector<std::string> instance_names;
  // ByteStream uploads: staging, bounds, how long a broken upload is kept for a resume.
  UploadTableOptions uploads;
  // Threads checking FindMissingBlobs and the referenced blobs of action results; 0: one per
  // core.
  size_t check_threads = 0;
  // The Cas that calls marked "packice-forwarded" (another node's remote tier, GrpcCasOptions::
  // forwarded) are served from: the node's store without its own remote tier
  // (CasStore::local_tiers), so that nodes that are each other's remote never loop. nullptr:
  // the same Cas as every call.
  std::shared_ptr<Cas> forwarded_cas;
};

// The four services over `cas` and `action_cache`, for GrpcServer::AddService. They share one
// upload table and one checker pool, which live as long as any of the services.
// REQUIRES: cas and action_cache not null.
std::vector<std::shared_ptr<::grpc::Service>> NewReapiServices(
    std::shared_ptr<Cas> cas, std::shared_ptr<ActionCache> action_cache, ReapiOptions options);

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_REAPI_REAPI_SERVICE_H_
