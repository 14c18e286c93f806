#include "transport/grpc/chunk_codec.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace packice::rpc {
namespace {

// Protobuf's wire types (https://protobuf.dev/programming-guides/encoding/).
constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kFixed32 = 5;

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Reads forward through the pieces of one message.
class Cursor {
 public:
  explicit Cursor(std::span<const std::span<const std::byte>> pieces) : pieces_(pieces) {
    for (const auto& p : pieces) left_ += p.size();
    Skip();
  }

  uint64_t left() const { return left_; }

  bool Byte(uint8_t* b) {
    if (left_ == 0) return false;
    *b = static_cast<uint8_t>(pieces_[piece_][at_]);
    Advance(1);
    return true;
  }

  // A varint of at most 10 bytes whose value fits in 64 bits.
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!Byte(&b)) return false;
      if (shift == 63 && b > 1) return false;
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  // A tag or a length, as protobuf reads them: a varint of at most 5 bytes, at most `max`.
  bool Varint32(uint64_t* v, uint64_t max) {
    *v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      uint8_t b;
      if (!Byte(&b)) return false;
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return *v <= max;
    }
    return false;
  }

  // Hands the next n bytes (REQUIRES: n <= left()) to `f`, one contiguous span at a time.
  template <typename F>
  Status Take(uint64_t n, F&& f) {
    while (n > 0) {
      const std::span<const std::byte> p = pieces_[piece_];
      const uint64_t k = std::min<uint64_t>(n, p.size() - at_);
      PACKICE_RETURN_IF_ERROR(f(p.subspan(at_, k)));
      Advance(k);
      n -= k;
    }
    return Status::Ok();
  }

 private:
  void Advance(uint64_t n) {
    at_ += n;
    left_ -= n;
    Skip();
  }
  // Moves past exhausted (and empty) pieces.
  void Skip() {
    while (piece_ < pieces_.size() && at_ == pieces_[piece_].size()) {
      ++piece_;
      at_ = 0;
    }
  }

  std::span<const std::span<const std::byte>> pieces_;
  size_t piece_ = 0;
  uint64_t at_ = 0;  // in pieces_[piece_]
  uint64_t left_ = 0;
};

constexpr uint64_t kMaxTag = 0xffffffff;
constexpr uint64_t kMaxLength = 0x7fffffff;

Status Truncated(const char* what) {
  return ProtocolError(std::string("a streamed chunk message ends inside ") + what +
                       ", or it is malformed");
}

}  // namespace

std::string ChunkPrefix(std::string other, uint32_t field, uint64_t data_bytes) {
  AppendVarint(&other, (static_cast<uint64_t>(field) << 3) | kLengthDelimited);
  AppendVarint(&other, data_bytes);
  return other;
}

Status SplitBytesField(std::span<const std::span<const std::byte>> pieces, uint32_t field,
                       std::string* rest,
                       absl::FunctionRef<Status(std::span<const std::byte>)> data) {
  Cursor in(pieces);
  const auto keep = [rest](std::span<const std::byte> s) {
    rest->append(reinterpret_cast<const char*>(s.data()), s.size());
    return Status::Ok();
  };
  bool seen = false;
  while (in.left() > 0) {
    uint64_t tag;
    if (!in.Varint32(&tag, kMaxTag)) return Truncated("a field's tag");
    const uint64_t number = tag >> 3;
    const uint32_t type = static_cast<uint32_t>(tag & 7);
    if (number == 0 || number > (uint64_t{1} << 29) - 1) {
      return ProtocolError("a streamed chunk message has a field numbered " +
                           std::to_string(number));
    }
    if (number == field) {
      if (type != kLengthDelimited) {
        return ProtocolError("a streamed chunk message's bytes field has wire type " +
                             std::to_string(type));
      }
      if (seen) return ProtocolError("a streamed chunk message carries its bytes field twice");
      seen = true;
      uint64_t n;
      if (!in.Varint32(&n, kMaxLength)) return Truncated("the bytes field's length");
      if (n > in.left()) return Truncated("the bytes field");
      PACKICE_RETURN_IF_ERROR(in.Take(n, data));
      continue;
    }
    AppendVarint(rest, tag);
    switch (type) {
      case kVarint: {
        uint64_t v;
        if (!in.Varint(&v)) return Truncated("a varint field");
        AppendVarint(rest, v);
        break;
      }
      case kFixed64:
      case kFixed32: {
        const uint64_t n = type == kFixed64 ? 8 : 4;
        if (n > in.left()) return Truncated("a fixed-size field");
        PACKICE_RETURN_IF_ERROR(in.Take(n, keep));
        break;
      }
      case kLengthDelimited: {
        uint64_t n;
        if (!in.Varint32(&n, kMaxLength)) return Truncated("a field's length");
        if (n > in.left()) return Truncated("a length-delimited field");
        AppendVarint(rest, n);
        PACKICE_RETURN_IF_ERROR(in.Take(n, keep));
        break;
      }
      default:
        return ProtocolError("a streamed chunk message has a field of wire type " +
                             std::to_string(type));
    }
  }
  return Status::Ok();
}

::grpc::Slice SharedSlice(std::span<const std::byte> data, std::shared_ptr<const void> owner) {
  // gRPC's slice API takes a mutable pointer; it never writes through it.
  void* bytes = const_cast<std::byte*>(data.data());
  return ::grpc::Slice(
      bytes, data.size(),
      [](void* keep) { delete static_cast<std::shared_ptr<const void>*>(keep); },
      new std::shared_ptr<const void>(std::move(owner)));
}

::grpc::ByteBuffer MessageWithBytes(std::string other, uint32_t field,
                                    std::span<const std::byte> data,
                                    std::shared_ptr<const void> owner) {
  ::grpc::Slice slices[2] = {::grpc::Slice(ChunkPrefix(std::move(other), field, data.size())),
                             SharedSlice(data, std::move(owner))};
  return ::grpc::ByteBuffer(slices, data.empty() ? 1 : 2);
}

Status ParseSmallMessage(const ::grpc::ByteBuffer& buffer, google::protobuf::MessageLite* out) {
  std::vector<::grpc::Slice> slices;
  std::string bytes;
  if (buffer.Dump(&slices).ok()) {
    for (const auto& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
  }
  if (!out->ParseFromString(bytes)) {
    return InvalidArgument("malformed " + out->GetTypeName() + " message");
  }
  return Status::Ok();
}

}  // namespace packice::rpc
