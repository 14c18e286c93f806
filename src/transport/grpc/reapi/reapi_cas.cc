// The REAPI client Cas; see reapi_cas.h.
#include "transport/grpc/reapi/reapi_cas.h"

#include <absl/container/flat_hash_set.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "google/bytestream/bytestream.grpc.pb.h"
#include "transport/grpc/grpc_channel.h"
#include "transport/grpc/grpc_common.h"
#include "transport/grpc/reapi/reapi_convert.h"
#include "transport/grpc/reapi/resource_name.h"

namespace packice {
namespace {

namespace rex = ::build::bazel::remote::execution::v2;
namespace bs = ::google::bytestream;

// What a batch's message carries beside the blobs' bytes (digests, statuses, field tags).
constexpr uint64_t kBatchEnvelopeBytes = 64 << 10;

// The key of a digest in a set: its hash and its size (the algorithm is the request's).
std::string SetKey(const Digest& d) {
  std::string key(reinterpret_cast<const char*>(d.hash.data()), d.hash.size());
  key.append(reinterpret_cast<const char*>(&d.size), sizeof d.size);
  return key;
}

// A random version-4 UUID: a ByteStream upload's name of its own.
std::string NewUuid() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  const uint64_t hi = (random() & ~uint64_t{0xf000}) | 0x4000;
  const uint64_t lo = (random() & ~(uint64_t{3} << 62)) | (uint64_t{2} << 62);
  char text[37];
  std::snprintf(text, sizeof text, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xffff),
                static_cast<unsigned long long>(hi & 0xffff),
                static_cast<unsigned long long>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffull));
  return text;
}

// Failures after which a ByteStream upload is resumed.
bool Retryable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kAborted ||
         s.code() == StatusCode::kTimeout;
}

class GrpcCas final : public Cas {
 public:
  GrpcCas(std::shared_ptr<::grpc::Channel> channel, GrpcCasOptions options)
      : channel_(std::move(channel)),
        storage_(rex::ContentAddressableStorage::NewStub(channel_)),
        capabilities_(rex::Capabilities::NewStub(channel_)),
        bytestream_(bs::ByteStream::NewStub(channel_)),
        options_(std::move(options)) {}

  Status Store(const Digest& digest, std::span<const std::byte> data) override {
    if (data.size() != digest.size) {
      return DigestMismatch(std::to_string(data.size()) + " bytes cannot be " + digest.ToString());
    }
    if (digest.empty_blob()) return Status::Ok();  // always there
    if (digest.size <= BatchLimit()) return StoreBatched(digest, data);
    return StoreStreamed(digest, data);
  }

  Result<uint64_t> Check(const Digest& digest) override {
    PACKICE_ASSIGN_OR_RETURN(std::vector<Digest> missing, FindMissing(std::span(&digest, 1)));
    if (!missing.empty()) return NotFound("the remote CAS has no blob " + digest.ToString());
    return digest.size;
  }

  Result<std::vector<Digest>> FindMissing(std::span<const Digest> digests) override {
    absl::flat_hash_set<std::string> missing[2];  // by algorithm: [kBlake3, kSha256]
    for (DigestAlgorithm algorithm : {DigestAlgorithm::kBlake3, DigestAlgorithm::kSha256}) {
      std::vector<const Digest*> of;
      for (const Digest& d : digests) {
        if (d.algorithm == algorithm && !d.empty_blob()) of.push_back(&d);
      }
      for (size_t at = 0; at < of.size(); at += options_.max_find_missing_digests) {
        const size_t n = std::min(options_.max_find_missing_digests, of.size() - at);
        PACKICE_RETURN_IF_ERROR(
            FindMissingBatch(algorithm, std::span(of).subspan(at, n), &missing[Index(algorithm)]));
      }
    }
    std::vector<Digest> out;
    for (const Digest& d : digests) {
      if (missing[Index(d.algorithm)].contains(SetKey(d))) out.push_back(d);
    }
    return out;
  }

  Result<CasBlob> Fetch(const Digest& digest, BlobRange range) override {
    PACKICE_ASSIGN_OR_RETURN(auto span, range.Resolve(digest.size));
    const auto [start, length] = span;
    if (length > options_.max_fetch_bytes) {
      return OutOfCapacity("a range of " + std::to_string(length) + " bytes of " +
                           digest.ToString() + " is more than one fetch holds (max_fetch_bytes " +
                           std::to_string(options_.max_fetch_bytes) + "): fetch it in ranges");
    }
    if (digest.empty_blob()) return CasBlob{.digest = digest};
    if (length == 0) {  // nothing to move, but the blob must be there
      PACKICE_RETURN_IF_ERROR(Check(digest).status());
      return CasBlob{.digest = digest, .offset = start};
    }
    const bool whole = start == 0 && length == digest.size;
    Result<CasBlob> blob = whole && digest.size <= BatchLimit()
                               ? FetchBatched(digest)
                               : FetchStreamed(digest, start, length);
    if (blob.ok() && whole && options_.verify_fetches) {
      if (const Digest got = Digest::Of(digest.algorithm, blob->bytes); got != digest) {
        return DigestMismatch("the remote CAS sent bytes that hash to " + got.ToString() + " for " +
                              digest.ToString());
      }
    }
    return blob;
  }

  std::optional<std::string> LocalPath(const Digest&) override { return std::nullopt; }

 private:
  static size_t Index(DigestAlgorithm a) { return a == DigestAlgorithm::kBlake3 ? 0 : 1; }

  // Token, hop marker and a deadline for a call that moves `bytes`.
  void Prepare(::grpc::ClientContext* ctx, uint64_t bytes = 0) const {
    if (!options_.bearer_token.empty()) {
      ctx->AddMetadata(rpc::kAuthorizationKey, "Bearer " + options_.bearer_token);
    }
    if (options_.forwarded) ctx->AddMetadata(rpc::kForwardedKey, "1");
    auto timeout =
        std::chrono::duration_cast<std::chrono::system_clock::duration>(options_.call_timeout);
    if (bytes > 0) {
      const uint64_t rate = std::max<uint64_t>(options_.min_stream_bytes_per_second, 1);
      timeout += std::chrono::milliseconds(bytes / rate * 1000 + (bytes % rate) * 1000 / rate);
    }
    ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  }

  // The blob bytes one batch carries: the server's limit (asked once) within the message
  // limit, or default_batch_bytes when the server does not answer Capabilities.
  uint64_t BatchLimit() { return std::min(options_.max_batch_bytes, ServerBatchLimit()); }

  uint64_t ServerBatchLimit() {
    if (options_.max_batch_bytes == 0) return 0;
    std::lock_guard lock(mu_);
    if (batch_limit_) return *batch_limit_;
    ::grpc::ClientContext ctx;
    Prepare(&ctx);
    rex::GetCapabilitiesRequest request;
    request.set_instance_name(options_.instance_name);
    rex::ServerCapabilities caps;
    Status s = rpc::FromGrpc(capabilities_->GetCapabilities(&ctx, request, &caps), ctx);
    constexpr uint64_t kMost = rpc::kMaxMessageBytes - kBatchEnvelopeBytes;
    if (!s.ok()) {
      // A server that is down is asked again later; one that does not say gets the default.
      if (s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kTimeout) {
        return std::min(options_.default_batch_bytes, kMost);
      }
      batch_limit_ = std::min(options_.default_batch_bytes, kMost);
      return *batch_limit_;
    }
    const int64_t server = caps.cache_capabilities().max_batch_total_size_bytes();
    // REAPI: 0 is no limit of the server's own; the message limit still holds.
    batch_limit_ = server <= 0 ? kMost : std::min<uint64_t>(uint64_t(server), kMost);
    return *batch_limit_;
  }

  Status FindMissingBatch(DigestAlgorithm algorithm, std::span<const Digest* const> digests,
                          absl::flat_hash_set<std::string>* missing) {
    ::grpc::ClientContext ctx;
    Prepare(&ctx);
    rex::FindMissingBlobsRequest request;
    request.set_instance_name(options_.instance_name);
    request.set_digest_function(rpc::DigestFunctionOf(algorithm));
    request.mutable_blob_digests()->Reserve(static_cast<int>(digests.size()));
    for (const Digest* d : digests) rpc::ToProto(*d, request.add_blob_digests());
    rex::FindMissingBlobsResponse reply;
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(storage_->FindMissingBlobs(&ctx, request, &reply), ctx));
    for (const rex::Digest& m : reply.missing_blob_digests()) {
      Result<Digest> d = rpc::FromProto(m, algorithm);
      if (!d.ok())
        return ProtocolError("the remote CAS named a bad missing digest: " +
                             std::string(d.status().message()));
      missing->insert(SetKey(*d));
    }
    return Status::Ok();
  }

  Status StoreBatched(const Digest& digest, std::span<const std::byte> data) {
    ::grpc::ClientContext ctx;
    Prepare(&ctx, data.size());
    rex::BatchUpdateBlobsRequest request;
    request.set_instance_name(options_.instance_name);
    request.set_digest_function(rpc::DigestFunctionOf(digest.algorithm));
    auto* blob = request.add_requests();
    rpc::ToProto(digest, blob->mutable_digest());
    blob->set_data(reinterpret_cast<const char*>(data.data()), data.size());
    rex::BatchUpdateBlobsResponse reply;
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(storage_->BatchUpdateBlobs(&ctx, request, &reply), ctx));
    if (reply.responses_size() != 1) {
      return ProtocolError("the remote CAS answered a batch of 1 with " +
                           std::to_string(reply.responses_size()) + " statuses");
    }
    return rpc::FromRpcStatus(reply.responses(0).status());
  }

  // ByteStream.Write, resumed at the server's committed size after a broken stream.
  Status StoreStreamed(const Digest& digest, std::span<const std::byte> data) {
    const std::string name = rpc::WriteResourceName(options_.instance_name, NewUuid(), digest);
    uint64_t offset = 0;
    Status last;
    for (int attempt = 0; attempt < std::max(options_.write_attempts, 1); ++attempt) {
      if (attempt > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
        Result<std::optional<uint64_t>> committed = QueryCommitted(name, digest);
        if (!committed.ok()) {
          last = committed.status();
          if (Retryable(last)) continue;
          return last;
        }
        if (!*committed) return Status::Ok();  // complete: the server holds the blob
        offset = **committed;
      }
      Result<uint64_t> committed = WriteFrom(name, digest, data, offset);
      if (committed.ok()) {
        if (*committed == digest.size) return Status::Ok();
        return ProtocolError("the remote CAS committed " + std::to_string(*committed) +
                             " bytes of " + digest.ToString());
      }
      last = committed.status();
      if (!Retryable(last)) return last;
    }
    return last;
  }

  // One Write stream from `offset` to the end, finish_write on the last chunk. The committed
  // size of the reply.
  Result<uint64_t> WriteFrom(const std::string& name, const Digest& digest,
                             std::span<const std::byte> data, uint64_t offset) {
    ::grpc::ClientContext ctx;
    Prepare(&ctx, data.size() - offset);
    bs::WriteResponse reply;
    std::unique_ptr<::grpc::ClientWriter<bs::WriteRequest>> writer =
        bytestream_->Write(&ctx, &reply);
    bs::WriteRequest request;
    request.set_resource_name(name);
    for (uint64_t at = offset; at < digest.size;) {
      const uint64_t n = std::min<uint64_t>(rpc::kChunkBytes, digest.size - at);
      request.set_write_offset(static_cast<int64_t>(at));
      request.set_data(reinterpret_cast<const char*>(data.data()) + at, n);
      at += n;
      request.set_finish_write(at == digest.size);
      // false: the server ended the call (it holds the blob, or failed): Finish says which.
      if (!writer->Write(request)) break;
      request.clear_resource_name();
    }
    writer->WritesDone();
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(writer->Finish(), ctx));
    return static_cast<uint64_t>(std::max<int64_t>(reply.committed_size(), 0));
  }

  // The committed size of upload `name`; nullopt when it is complete; 0 when the server knows
  // of no such upload (it starts again).
  Result<std::optional<uint64_t>> QueryCommitted(const std::string& name, const Digest& digest) {
    ::grpc::ClientContext ctx;
    Prepare(&ctx);
    bs::QueryWriteStatusRequest request;
    request.set_resource_name(name);
    bs::QueryWriteStatusResponse reply;
    Status s = rpc::FromGrpc(bytestream_->QueryWriteStatus(&ctx, request, &reply), ctx);
    if (s.code() == StatusCode::kNotFound) return std::optional<uint64_t>(0);
    PACKICE_RETURN_IF_ERROR(s);
    if (reply.complete()) return std::optional<uint64_t>();
    if (reply.committed_size() < 0 || uint64_t(reply.committed_size()) > digest.size) {
      return ProtocolError("the remote CAS reports " + std::to_string(reply.committed_size()) +
                           " bytes committed of " + digest.ToString());
    }
    return std::optional<uint64_t>(uint64_t(reply.committed_size()));
  }

  Result<CasBlob> FetchBatched(const Digest& digest) {
    ::grpc::ClientContext ctx;
    Prepare(&ctx, digest.size);
    rex::BatchReadBlobsRequest request;
    request.set_instance_name(options_.instance_name);
    request.set_digest_function(rpc::DigestFunctionOf(digest.algorithm));
    rpc::ToProto(digest, request.add_digests());
    rex::BatchReadBlobsResponse reply;
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(storage_->BatchReadBlobs(&ctx, request, &reply), ctx));
    if (reply.responses_size() != 1) {
      return ProtocolError("the remote CAS answered a batch read of 1 with " +
                           std::to_string(reply.responses_size()) + " blobs");
    }
    auto* response = reply.mutable_responses(0);
    PACKICE_RETURN_IF_ERROR(rpc::FromRpcStatus(response->status()));
    if (response->data().size() != digest.size) {
      return ProtocolError("the remote CAS sent " + std::to_string(response->data().size()) +
                           " bytes of " + digest.ToString());
    }
    auto bytes = std::make_shared<std::string>(std::move(*response->mutable_data()));
    CasBlob out{.digest = digest};
    out.bytes = std::as_bytes(std::span(bytes->data(), bytes->size()));
    out.holder = std::move(bytes);
    return out;
  }

  Result<CasBlob> FetchStreamed(const Digest& digest, uint64_t start, uint64_t length) {
    std::shared_ptr<std::byte[]> buffer;
    try {
      buffer = std::shared_ptr<std::byte[]>(new std::byte[length]);
    } catch (const std::bad_alloc&) {
      return OutOfCapacity("no memory for " + std::to_string(length) + " bytes of " +
                           digest.ToString());
    }
    ::grpc::ClientContext ctx;
    Prepare(&ctx, length);
    bs::ReadRequest request;
    request.set_resource_name(rpc::ReadResourceName(options_.instance_name, digest));
    request.set_read_offset(static_cast<int64_t>(start));
    request.set_read_limit(static_cast<int64_t>(length));
    std::unique_ptr<::grpc::ClientReader<bs::ReadResponse>> reader =
        bytestream_->Read(&ctx, request);
    bs::ReadResponse message;
    uint64_t received = 0;
    Status status;
    while (reader->Read(&message)) {
      const std::string& data = message.data();
      if (data.size() > length - received) {
        status = ProtocolError("the remote CAS sent more than the " + std::to_string(length) +
                               " bytes asked of " + digest.ToString());
        ctx.TryCancel();
        break;
      }
      std::memcpy(buffer.get() + received, data.data(), data.size());
      received += data.size();
    }
    Status finished = rpc::FromGrpc(reader->Finish(), ctx);
    if (!status.ok()) return status;
    PACKICE_RETURN_IF_ERROR(finished);
    if (received != length) {
      return ProtocolError("the remote CAS sent " + std::to_string(received) + " of the " +
                           std::to_string(length) + " bytes asked of " + digest.ToString());
    }
    CasBlob out{.digest = digest, .offset = start};
    out.bytes = std::span<const std::byte>(buffer.get(), length);
    out.holder = std::move(buffer);
    return out;
  }

  const std::shared_ptr<::grpc::Channel> channel_;
  const std::unique_ptr<rex::ContentAddressableStorage::Stub> storage_;
  const std::unique_ptr<rex::Capabilities::Stub> capabilities_;
  const std::unique_ptr<bs::ByteStream::Stub> bytestream_;
  const GrpcCasOptions options_;
  std::mutex mu_;                        // guards batch_limit_ (and one Capabilities call)
  std::optional<uint64_t> batch_limit_;  // known once the server answered Capabilities
};

}  // namespace

Result<GrpcCasTarget> ParseGrpcCasUrl(std::string_view url) {
  GrpcCasTarget out;
  std::string_view rest;
  if (url.starts_with("grpc://")) {
    rest = url.substr(7);
  } else if (url.starts_with("grpcs://")) {
    rest = url.substr(8);
    out.tls = true;
  } else {
    return InvalidArgument("a remote CAS URL is grpc://HOST:PORT or grpcs://HOST:PORT, not '" +
                           std::string(url) + "'");
  }
  const size_t slash = rest.find('/');
  out.target = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) {
    std::string_view instance = rest.substr(slash + 1);
    while (instance.ends_with('/')) instance.remove_suffix(1);
    out.instance = std::string(instance);
    // The instance must name a resource the server's parser takes back.
    if (!out.instance.empty()) {
      const Digest probe = Digest::Empty(DigestAlgorithm::kSha256);
      Result<rpc::BlobResource> parsed =
          rpc::ParseReadResource(rpc::ReadResourceName(out.instance, probe));
      if (!parsed.ok() || parsed->instance != out.instance) {
        return InvalidArgument("bad REAPI instance name '" + out.instance + "' in '" +
                               std::string(url) + "'");
      }
    }
  }
  if (out.target.empty() || out.target.rfind(':') == std::string::npos) {
    return InvalidArgument("a remote CAS URL names HOST:PORT: '" + std::string(url) + "'");
  }
  return out;
}

std::shared_ptr<Cas> NewGrpcCas(std::shared_ptr<::grpc::Channel> channel,
                                const GrpcCasOptions& options) {
  return std::make_shared<GrpcCas>(std::move(channel), options);
}

Result<std::shared_ptr<Cas>> OpenGrpcCas(std::string_view url, const GrpcCasOptions& options) {
  PACKICE_ASSIGN_OR_RETURN(GrpcCasTarget target, ParseGrpcCasUrl(url));
  PACKICE_ASSIGN_OR_RETURN(
      std::shared_ptr<::grpc::Channel> channel,
      NewGrpcConnection(target.target, target.tls, options.ca_file, options.bearer_token));
  GrpcCasOptions o = options;
  if (!target.instance.empty()) o.instance_name = target.instance;
  return NewGrpcCas(std::move(channel), o);
}

}  // namespace packice
