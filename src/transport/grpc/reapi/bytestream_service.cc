// ByteStream over the CAS: Read streams a range of a blob in chunks of at most kChunkBytes, each
// fetched on its own (a blob is never held whole in memory); Write stages an upload in the
// UploadTable and stores it at finish_write; a broken Write is resumed at QueryWriteStatus's
// committed_size. Resource names: resource_name.h.
#include <algorithm>
#include <string>

#include "transport/grpc/reapi/reapi_services.h"
#include "transport/grpc/reapi/resource_name.h"

namespace packice::rpc {

namespace bs = ::google::bytestream;

namespace {

std::span<const std::byte> AsBytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

}  // namespace

// --- Read ------------------------------------------------------------------------------------

::grpc::Status ByteStreamService::Read(::grpc::ServerContext* context,
                                       const bs::ReadRequest* request,
                                       ::grpc::ServerWriter<bs::ReadResponse>* writer) {
  return Serve(context, context_->options().bearer_token,
               [&]() -> Status { return DoRead(context_->cas(*context), *request, writer); });
}

Status ByteStreamService::DoRead(Cas& cas, const bs::ReadRequest& request,
                                 ::grpc::ServerWriter<bs::ReadResponse>* writer) {
  PACKICE_ASSIGN_OR_RETURN(BlobResource resource, ParseReadResource(request.resource_name()));
  PACKICE_RETURN_IF_ERROR(context_->CheckInstance(resource.instance));
  const Digest& digest = resource.digest;
  if (request.read_offset() < 0) return OutOfRange("a negative read_offset");
  if (request.read_limit() < 0) return InvalidArgument("a negative read_limit");
  const uint64_t offset = static_cast<uint64_t>(request.read_offset());
  if (offset > digest.size) {
    return OutOfRange("read_offset " + std::to_string(offset) + " is past the blob's " +
                      std::to_string(digest.size) + " bytes");
  }
  uint64_t length = digest.size - offset;
  if (request.read_limit() > 0) length = std::min(length, uint64_t(request.read_limit()));
  if (length == 0) return cas.Check(digest).status();  // NOT_FOUND if absent
  bs::ReadResponse message;
  for (uint64_t at = offset, end = offset + length; at < end;) {
    const uint64_t n = std::min<uint64_t>(kChunkBytes, end - at);
    PACKICE_ASSIGN_OR_RETURN(CasBlob part, cas.Fetch(digest, BlobRange::Of(at, n)));
    if (part.bytes.size() != n) return Internal("the CAS returned a short range");
    message.set_data(reinterpret_cast<const char*>(part.bytes.data()), n);
    if (!writer->Write(message)) return Aborted("the client went away");
    at += n;
  }
  return Status::Ok();
}

// --- Write -----------------------------------------------------------------------------------

::grpc::Status ByteStreamService::Write(::grpc::ServerContext* context,
                                        ::grpc::ServerReader<bs::WriteRequest>* reader,
                                        bs::WriteResponse* reply) {
  return Serve(context, context_->options().bearer_token,
               [&]() -> Status { return DoWrite(context_->cas(*context), reader, reply); });
}

Status ByteStreamService::DoWrite(Cas& cas, ::grpc::ServerReader<bs::WriteRequest>* reader,
                                  bs::WriteResponse* reply) {
  bs::WriteRequest request;
  if (!reader->Read(&request)) return InvalidArgument("a Write stream without a request");
  PACKICE_ASSIGN_OR_RETURN(BlobResource resource, ParseWriteResource(request.resource_name()));
  PACKICE_RETURN_IF_ERROR(context_->CheckInstance(resource.instance));
  if (request.write_offset() < 0) return InvalidArgument("a negative write_offset");
  const std::string key = resource.UploadKey();
  if (cas.Contains(resource.digest)) {
    // REAPI: an upload of a blob the CAS holds ends at once, with the blob's full size.
    context_->uploads().Discard(key);
    reply->set_committed_size(static_cast<int64_t>(resource.digest.size));
    return Status::Ok();
  }
  PACKICE_ASSIGN_OR_RETURN(
      std::unique_ptr<UploadWriter> writer,
      context_->uploads().Attach(key, resource.digest, uint64_t(request.write_offset())));
  PACKICE_RETURN_IF_ERROR(WriteChunks(cas, reader, request, resource.digest, *writer));
  reply->set_committed_size(static_cast<int64_t>(writer->committed()));
  return Status::Ok();
}

Status ByteStreamService::WriteChunks(Cas& cas, ::grpc::ServerReader<bs::WriteRequest>* reader,
                                      bs::WriteRequest& request, const Digest& digest,
                                      UploadWriter& writer) {
  const std::string name = request.resource_name();
  uint64_t offset = uint64_t(request.write_offset());
  for (;;) {
    if (!request.resource_name().empty() && request.resource_name() != name) {
      return InvalidArgument("a Write stream's resource_name changed");
    }
    if (request.write_offset() < 0 || uint64_t(request.write_offset()) != offset) {
      return InvalidArgument("write_offset " + std::to_string(request.write_offset()) +
                             " where the stream is at " + std::to_string(offset));
    }
    PACKICE_RETURN_IF_ERROR(writer.Append(offset, AsBytes(request.data())));
    offset += request.data().size();
    if (request.finish_write()) {
      return writer.Finish(
          [&](std::span<const std::byte> bytes) { return cas.Store(digest, bytes); });
    }
    // A stream that ends (half-closed, cancelled, broken) before finish_write keeps the upload.
    if (!reader->Read(&request)) return Status::Ok();
  }
}

// --- QueryWriteStatus ------------------------------------------------------------------------

::grpc::Status ByteStreamService::QueryWriteStatus(::grpc::ServerContext* context,
                                                   const bs::QueryWriteStatusRequest* request,
                                                   bs::QueryWriteStatusResponse* reply) {
  return Serve(context, context_->options().bearer_token, [&]() -> Status {
    PACKICE_ASSIGN_OR_RETURN(BlobResource resource, ParseWriteResource(request->resource_name()));
    PACKICE_RETURN_IF_ERROR(context_->CheckInstance(resource.instance));
    if (context_->cas(*context).Contains(resource.digest)) {
      reply->set_committed_size(static_cast<int64_t>(resource.digest.size));
      reply->set_complete(true);
      return Status::Ok();
    }
    PACKICE_ASSIGN_OR_RETURN(uint64_t committed, context_->uploads().Query(resource.UploadKey()));
    reply->set_committed_size(static_cast<int64_t>(committed));
    reply->set_complete(false);
    return Status::Ok();
  });
}

}  // namespace packice::rpc
