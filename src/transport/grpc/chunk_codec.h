// The bytes of a streamed chunk message (GetChunk and Chunk in objects.proto) framed and read
// without protobuf copying them. The messages on the wire are plain protobuf, so any gRPC client
// reads them; the node and the C++ client only avoid protobuf's copies of the large field:
//
// - the server sends a message as two slices: ChunkPrefix (every other field, then the bytes
//   field's tag and length) and the bytes themselves, a slice pointing into the object's mapped
//   blob — no copy in user space;
// - the client walks the received slices with SplitBytesField, copying the bytes field once,
//   straight to where the object goes, and parses only the rest (small) with protobuf.
//
// A unary reply with one large bytes field (a cache group's value) is sent the same way
// (MessageWithBytes); requests of raw (ByteBuffer) methods, always small, are parsed with
// ParseSmallMessage.
#ifndef PACKICE_TRANSPORT_GRPC_CHUNK_CODEC_H_
#define PACKICE_TRANSPORT_GRPC_CHUNK_CODEC_H_

#include <absl/functional/function_ref.h>
#include <google/protobuf/message_lite.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "packice/status.h"

namespace packice::rpc {

// `other` (the message's other fields, serialized), then the tag and length of the bytes field
// `field` holding `data_bytes` bytes: what precedes those bytes in the message.
std::string ChunkPrefix(std::string other, uint32_t field, uint64_t data_bytes);

// Splits one received message, given as consecutive pieces of its bytes, into the bytes field
// `field`, handed to `data` piece by piece in order (pointing into `pieces`), and every other
// field, appended to `rest` in its wire form (to parse as the message; that parse checks them).
// A message without the field hands nothing to `data`. Errors: kProtocolError for bytes that
// are not a protobuf message this client reads — a truncated varint, tag or field, a field
// number of 0, a group (wire types 3 and 4) or an unknown wire type, the bytes field with
// another wire type or more than once; and whatever `data` returns.
Status SplitBytesField(std::span<const std::span<const std::byte>> pieces, uint32_t field,
                       std::string* rest,
                       absl::FunctionRef<Status(std::span<const std::byte>)> data);

// A slice of `data` that holds `owner` (which keeps `data` alive) until gRPC is done with it.
::grpc::Slice SharedSlice(std::span<const std::byte> data, std::shared_ptr<const void> owner);

// One message: `other` (the message's other fields, serialized), then `data` as the bytes field
// `field`, uncopied (SharedSlice).
::grpc::ByteBuffer MessageWithBytes(std::string other, uint32_t field,
                                    std::span<const std::byte> data,
                                    std::shared_ptr<const void> owner);

// Parses `buffer` (a small message: one copy of its bytes) into `out`. Errors: kInvalidArgument
// for bytes that are not such a message.
Status ParseSmallMessage(const ::grpc::ByteBuffer& buffer, google::protobuf::MessageLite* out);

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_CHUNK_CODEC_H_
