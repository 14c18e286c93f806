#include "transport/grpc/reapi/reapi_testing.h"

#include <algorithm>

namespace packice::testing {

Result<CasBlob> RecordingCas::Fetch(const Digest& digest, BlobRange range) {
  PACKICE_ASSIGN_OR_RETURN(CasBlob blob, store_->Fetch(digest, range));
  uint64_t seen = max_fetch_.load();
  while (blob.bytes.size() > seen && !max_fetch_.compare_exchange_weak(seen, blob.bytes.size())) {
  }
  return blob;
}

void RecordingCas::Remove(const Digest& digest) {
  EXPECT_OK(store_->local_peer()->Delete(digest.ToString()));
}

std::optional<std::string> RecordingCas::Get(const Digest& digest) {
  Result<CasBlob> blob = store_->Fetch(digest);
  if (!blob.ok()) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(blob->bytes.data()), blob->bytes.size());
}

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

Digest Sha(const std::string& s) { return Digest::Of(DigestAlgorithm::kSha256, Bytes(s)); }

rex::Digest ToProto(const Digest& d) {
  rex::Digest out;
  out.set_hash(d.hex());
  out.set_size_bytes(static_cast<int64_t>(d.size));
  return out;
}

namespace {

// "{digest_function/}{hash}/{size}": the function is named for BLAKE3 only.
std::string BlobPart(const Digest& d) {
  return (d.algorithm == DigestAlgorithm::kBlake3 ? "blake3/" : "") + d.ToBareString();
}

}  // namespace

std::string ReadName(const Digest& d, const std::string& instance) {
  return (instance.empty() ? "" : instance + "/") + "blobs/" + BlobPart(d);
}

std::string UploadName(const Digest& d, const std::string& uuid, const std::string& instance) {
  return (instance.empty() ? "" : instance + "/") + "uploads/" + uuid + "/blobs/" + BlobPart(d);
}

ReapiNode::ReapiNode(rpc::ReapiOptions options) {
  if (options.uploads.staging_dir.empty()) options.uploads.staging_dir = dir_.path();
  Result<std::shared_ptr<CasStore>> store = CasStore::Open({.dir = dir_.path() + "/cas",
                                                            .memory_max_blob_bytes = 0,
                                                            .sync = false,
                                                            .background_threads = false});
  if (!store.ok()) {
    started_ = store.status();
    return;
  }
  cas_ = std::make_shared<RecordingCas>(*store);
  auto peer = MemoryPeer::Create({.capacity_bytes = 64 << 20, .background_threads = false});
  auto action_cache = std::make_shared<ActionCache>(peer);
  server_ = std::make_unique<GrpcServer>(GrpcServerOptions{.listen = "127.0.0.1:0"});
  rpc::CasNegotiationOptions negotiation{.bearer_token = options.bearer_token,
                                         .transport_address = "127.0.0.1:7777"};
  for (auto& s : rpc::NewReapiServices(cas_, action_cache, std::move(options))) {
    server_->AddService(std::move(s));
  }
  server_->AddService(rpc::NewCasNegotiationService(cas_, tokens_, negotiation));
  started_ = server_->Start();
  if (!started_.ok()) return;
  ::grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(rpc::kMaxMessageBytes);
  auto channel = ::grpc::CreateCustomChannel(target(), ::grpc::InsecureChannelCredentials(), args);
  capabilities_ = rex::Capabilities::NewStub(channel);
  storage_ = rex::ContentAddressableStorage::NewStub(channel);
  action_cache_ = rex::ActionCache::NewStub(channel);
  bytestream_ = bs::ByteStream::NewStub(channel);
  negotiation_ = rpc::CasNegotiation::NewStub(channel);
}

Digest ReapiNode::Put(const std::string& data) {
  const Digest d = Sha(data);
  EXPECT_OK(cas_->Store(d, Bytes(data)));
  return d;
}

::grpc::Status ReapiNode::Read(const std::string& name, int64_t offset, int64_t limit,
                               std::string* out, int* chunks) {
  ::grpc::ClientContext context;
  bs::ReadRequest request;
  request.set_resource_name(name);
  request.set_read_offset(offset);
  request.set_read_limit(limit);
  auto reader = bytestream_->Read(&context, request);
  bs::ReadResponse response;
  out->clear();
  if (chunks != nullptr) *chunks = 0;
  while (reader->Read(&response)) {
    EXPECT_LE(response.data().size(), rpc::kChunkBytes);
    out->append(response.data());
    if (chunks != nullptr) ++*chunks;
  }
  return reader->Finish();
}

::grpc::Status ReapiNode::Write(const std::string& name, const std::string& data, int64_t offset,
                                size_t chunk, bool finish, int64_t* committed) {
  ::grpc::ClientContext context;
  bs::WriteResponse response;
  auto writer = bytestream_->Write(&context, &response);
  size_t at = 0;
  do {
    bs::WriteRequest request;
    if (at == 0) request.set_resource_name(name);
    request.set_write_offset(offset + static_cast<int64_t>(at));
    const size_t n = std::min(chunk, data.size() - at);
    request.set_data(data.substr(at, n));
    at += n;
    request.set_finish_write(finish && at == data.size());
    if (!writer->Write(request)) break;  // the server ended the call
  } while (at < data.size());
  writer->WritesDone();
  ::grpc::Status status = writer->Finish();
  if (committed != nullptr) *committed = response.committed_size();
  return status;
}

::grpc::Status ReapiNode::Query(const std::string& name, int64_t* committed, bool* complete) {
  ::grpc::ClientContext context;
  bs::QueryWriteStatusRequest request;
  request.set_resource_name(name);
  bs::QueryWriteStatusResponse response;
  ::grpc::Status status = bytestream_->QueryWriteStatus(&context, request, &response);
  *committed = response.committed_size();
  *complete = response.complete();
  return status;
}

}  // namespace packice::testing
