// The REAPI services' classes (reapi_service.h makes them): what they share, and one class per
// service, each in its own .cc. Not API: the node calls NewReapiServices.
#ifndef PACKICE_TRANSPORT_GRPC_REAPI_REAPI_SERVICES_H_
#define PACKICE_TRANSPORT_GRPC_REAPI_REAPI_SERVICES_H_

#include <memory>
#include <string_view>

#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "google/bytestream/bytestream.grpc.pb.h"
#include "services/cas/missing_finder.h"
#include "services/cas/upload_table.h"
#include "transport/grpc/reapi/reapi_convert.h"
#include "transport/grpc/reapi/reapi_service.h"

namespace packice::rpc {

// What the four services share. Thread-safe.
class ReapiContext {
 public:
  ReapiContext(std::shared_ptr<Cas> cas, std::shared_ptr<ActionCache> action_cache,
               ReapiOptions options);

  // OK when the options serve `instance`. Errors: kInvalidArgument.
  Status CheckInstance(std::string_view instance) const;

  Cas& cas() { return *cas_; }
  // The Cas of one call: options().forwarded_cas for a call marked "packice-forwarded".
  Cas& cas(const ::grpc::ServerContextBase& call);
  ActionCache& action_cache() { return *action_cache_; }
  const ReapiOptions& options() const { return options_; }
  UploadTable& uploads() { return uploads_; }
  MissingFinder& finder() { return finder_; }

 private:
  const std::shared_ptr<Cas> cas_;
  const std::shared_ptr<ActionCache> action_cache_;
  const ReapiOptions options_;
  UploadTable uploads_;
  MissingFinder finder_;
};

class CapabilitiesService final : public rex::Capabilities::Service {
 public:
  explicit CapabilitiesService(std::shared_ptr<ReapiContext> context)
      : context_(std::move(context)) {}

  ::grpc::Status GetCapabilities(::grpc::ServerContext* context,
                                 const rex::GetCapabilitiesRequest* request,
                                 rex::ServerCapabilities* reply) override;

 private:
  std::shared_ptr<ReapiContext> context_;
};

class ContentStorageService final : public rex::ContentAddressableStorage::Service {
 public:
  explicit ContentStorageService(std::shared_ptr<ReapiContext> context)
      : context_(std::move(context)) {}

  ::grpc::Status FindMissingBlobs(::grpc::ServerContext* context,
                                  const rex::FindMissingBlobsRequest* request,
                                  rex::FindMissingBlobsResponse* reply) override;
  ::grpc::Status BatchUpdateBlobs(::grpc::ServerContext* context,
                                  const rex::BatchUpdateBlobsRequest* request,
                                  rex::BatchUpdateBlobsResponse* reply) override;
  ::grpc::Status BatchReadBlobs(::grpc::ServerContext* context,
                                const rex::BatchReadBlobsRequest* request,
                                rex::BatchReadBlobsResponse* reply) override;

 private:
  // One blob of a batch update: stored, or the reason it is not.
  Status UpdateOne(Cas& cas, const rex::BatchUpdateBlobsRequest::Request& blob,
                   DigestAlgorithm algorithm);
  // One blob of a batch read into `out`.
  Status ReadOne(Cas& cas, const rex::Digest& digest, DigestAlgorithm algorithm, std::string* out);

  std::shared_ptr<ReapiContext> context_;
};

class ActionCacheService final : public rex::ActionCache::Service {
 public:
  explicit ActionCacheService(std::shared_ptr<ReapiContext> context)
      : context_(std::move(context)) {}

  ::grpc::Status GetActionResult(::grpc::ServerContext* context,
                                 const rex::GetActionResultRequest* request,
                                 rex::ActionResult* reply) override;
  ::grpc::Status UpdateActionResult(::grpc::ServerContext* context,
                                    const rex::UpdateActionResultRequest* request,
                                    rex::ActionResult* reply) override;

 private:
  Status Get(const rex::GetActionResultRequest& request, rex::ActionResult* reply);
  // Inlines what the request asks for, within the batch limit.
  void Inline(const rex::GetActionResultRequest& request, DigestAlgorithm algorithm,
              rex::ActionResult* reply);

  std::shared_ptr<ReapiContext> context_;
};

class ByteStreamService final : public ::google::bytestream::ByteStream::Service {
 public:
  explicit ByteStreamService(std::shared_ptr<ReapiContext> context)
      : context_(std::move(context)) {}

  ::grpc::Status Read(::grpc::ServerContext* context,
                      const ::google::bytestream::ReadRequest* request,
                      ::grpc::ServerWriter<::google::bytestream::ReadResponse>* writer) override;
  ::grpc::Status Write(::grpc::ServerContext* context,
                       ::grpc::ServerReader<::google::bytestream::WriteRequest>* reader,
                       ::google::bytestream::WriteResponse* reply) override;
  ::grpc::Status QueryWriteStatus(::grpc::ServerContext* context,
                                  const ::google::bytestream::QueryWriteStatusRequest* request,
                                  ::google::bytestream::QueryWriteStatusResponse* reply) override;

 private:
  Status DoRead(Cas& cas, const ::google::bytestream::ReadRequest& request,
                ::grpc::ServerWriter<::google::bytestream::ReadResponse>* writer);
  Status DoWrite(Cas& cas, ::grpc::ServerReader<::google::bytestream::WriteRequest>* reader,
                 ::google::bytestream::WriteResponse* reply);
  // The rest of a Write stream whose first message is `request`, into `writer`.
  Status WriteChunks(Cas& cas, ::grpc::ServerReader<::google::bytestream::WriteRequest>* reader,
                     ::google::bytestream::WriteRequest& request, const Digest& digest,
                     UploadWriter& writer);

  std::shared_ptr<ReapiContext> context_;
};

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_REAPI_REAPI_SERVICES_H_
