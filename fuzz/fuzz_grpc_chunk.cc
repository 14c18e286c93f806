// libFuzzer target: a streamed chunk message as the gRPC client reads it from a node
// (src/transport/grpc/chunk_codec.h), in pieces as gRPC's received slices cut it. Any crash,
// sanitizer report or unbounded allocation is a bug; so is a split that disagrees with
// protobuf's parse of the same bytes: where both accept the message, the bytes field and the
// other fields must be protobuf's, and where the split's other fields parse, the whole must.
//
// The first byte is how many cuts (up to 7); one byte each gives where (a fraction of the
// message); the rest is the message.
//
//   fuzz_grpc_chunk -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/grpc_chunk
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "transport/grpc/chunk_codec.h"
#include "transport/grpc/objects.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t cuts = std::min<size_t>(data[0] & 7, size - 1);
  const uint8_t* at = data + 1 + cuts;
  const size_t n = size - 1 - cuts;
  const auto* message = reinterpret_cast<const std::byte*>(at);
  std::vector<size_t> points = {0};
  for (size_t i = 0; i < cuts; ++i) {
    points.push_back(std::max(points.back(), n * data[1 + i] / 255));
  }
  points.push_back(n);
  std::vector<std::span<const std::byte>> pieces;
  for (size_t i = 0; i + 1 < points.size(); ++i) {
    pieces.emplace_back(message + points[i], points[i + 1] - points[i]);
  }
  std::string rest, bytes;
  const packice::Status split = packice::rpc::SplitBytesField(
      pieces, packice::rpc::GetChunk::kDataFieldNumber, &rest, [&](std::span<const std::byte> d) {
        bytes.append(reinterpret_cast<const char*>(d.data()), d.size());
        return packice::Status::Ok();
      });
  if (!split.ok()) {
    if (split.code() != packice::StatusCode::kProtocolError) std::abort();
    return 0;
  }
  if (bytes.size() > n) std::abort();
  packice::rpc::GetChunk whole, fields;
  const bool whole_ok = whole.ParseFromArray(at, static_cast<int>(n));
  const bool fields_ok = fields.ParseFromString(rest);
  if (fields_ok && !whole_ok) std::abort();
  if (whole_ok && fields_ok) {
    if (whole.data() != bytes) std::abort();
    whole.clear_data();
    if (whole.SerializeAsString() != fields.SerializeAsString()) std::abort();
  }
  return 0;
}
