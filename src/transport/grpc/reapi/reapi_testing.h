// Test helpers of the REAPI and CAS-negotiation tests: an in-memory Cas, and a node serving the
// services on a loopback port with real gRPC stubs to call them.
#ifndef PACKICE_TRANSPORT_GRPC_REAPI_REAPI_TESTING_H_
#define PACKICE_TRANSPORT_GRPC_REAPI_REAPI_TESTING_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "google/bytestream/bytestream.grpc.pb.h"
#include "packice/cas.h"
#include "packice/memory_peer.h"
#include "services/cas/cas_store.h"
#include "services/cas/transport_tokens.h"
#include "testing.h"
#include "transport/grpc/cas.grpc.pb.h"
#include "transport/grpc/cas_negotiation_service.h"
#include "transport/grpc/grpc_server.h"
#include "transport/grpc/reapi/reapi_service.h"

namespace packice::testing {

namespace rex = ::build::bazel::remote::execution::v2;
namespace bs = ::google::bytestream;

// The node's CAS in these tests: the real CasStore (memory tier off, no fsync, in a TempDir)
// under a decorator that records the longest range one Fetch returned, and can forget a blob
// as an eviction would.
class RecordingCas final : public Cas {
 public:
  explicit RecordingCas(std::shared_ptr<CasStore> store) : store_(std::move(store)) {}

  Status Store(const Digest& digest, std::span<const std::byte> data) override {
    return store_->Store(digest, data);
  }
  Result<uint64_t> Check(const Digest& digest) override { return store_->Check(digest); }
  Result<std::vector<Digest>> FindMissing(std::span<const Digest> digests) override {
    return store_->FindMissing(digests);
  }
  Result<CasBlob> Fetch(const Digest& digest, BlobRange range) override;
  std::optional<std::string> LocalPath(const Digest& digest) override {
    return store_->LocalPath(digest);
  }

  // Forgets a blob (as an eviction would).
  void Remove(const Digest& digest);
  // The blob's bytes, or nullopt.
  std::optional<std::string> Get(const Digest& digest);
  // Blobs stored.
  size_t blobs() { return store_->GetCasStats().local_blobs; }
  // The longest range one Fetch returned.
  uint64_t max_fetch() const { return max_fetch_.load(); }

 private:
  const std::shared_ptr<CasStore> store_;
  std::atomic<uint64_t> max_fetch_{0};
};

std::span<const std::byte> Bytes(const std::string& s);
Digest Sha(const std::string& s);
rex::Digest ToProto(const Digest& d);
// "blobs/<hex>/<size>" after `instance` (and a '/', when it is not empty); "blobs/blake3/..."
// for a BLAKE3 digest.
std::string ReadName(const Digest& d, const std::string& instance = "");
// "uploads/<uuid>/blobs/<hex>/<size>" after `instance`.
std::string UploadName(const Digest& d, const std::string& uuid = "u-1",
                       const std::string& instance = "");

// An in-process node: the REAPI services and the CAS negotiation over a CasStore and an
// ActionCache on a MemoryPeer, on 127.0.0.1, and stubs over one channel to it.
class ReapiNode {
 public:
  // `options.uploads.staging_dir` defaults to a TempDir of the node.
  explicit ReapiNode(rpc::ReapiOptions options = {});

  // The status of starting; the node serves when it is OK.
  const Status& started() const { return started_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(server_->port()); }

  RecordingCas& cas() { return *cas_; }
  TransportTokens& tokens() { return *tokens_; }
  rex::Capabilities::Stub& capabilities() { return *capabilities_; }
  rex::ContentAddressableStorage::Stub& storage() { return *storage_; }
  rex::ActionCache::Stub& action_cache() { return *action_cache_; }
  bs::ByteStream::Stub& bytestream() { return *bytestream_; }
  rpc::CasNegotiation::Stub& negotiation() { return *negotiation_; }

  // Stores `data` in the CAS; returns its SHA-256 digest.
  Digest Put(const std::string& data);
  // Reads `name` from `offset` up to `limit` bytes into `out`; `chunks` counts the messages.
  ::grpc::Status Read(const std::string& name, int64_t offset, int64_t limit, std::string* out,
                      int* chunks = nullptr);
  // Writes `data` to `name` from `offset` in messages of at most `chunk` bytes, the last one
  // with finish_write when `finish`; `committed` gets the response.
  ::grpc::Status Write(const std::string& name, const std::string& data, int64_t offset,
                       size_t chunk, bool finish, int64_t* committed);
  // QueryWriteStatus of `name`.
  ::grpc::Status Query(const std::string& name, int64_t* committed, bool* complete);

 private:
  TempDir dir_;
  std::shared_ptr<RecordingCas> cas_;
  std::shared_ptr<TransportTokens> tokens_ = std::make_shared<TransportTokens>();
  std::unique_ptr<GrpcServer> server_;
  Status started_;
  std::unique_ptr<rex::Capabilities::Stub> capabilities_;
  std::unique_ptr<rex::ContentAddressableStorage::Stub> storage_;
  std::unique_ptr<rex::ActionCache::Stub> action_cache_;
  std::unique_ptr<bs::ByteStream::Stub> bytestream_;
  std::unique_ptr<rpc::CasNegotiation::Stub> negotiation_;
};

}  // namespace packice::testing

#endif  // PACKICE_TRANSPORT_GRPC_REAPI_REAPI_TESTING_H_
