#include "transport/uds/frame.h"

#include <google/protobuf/message_lite.h>

#include <cstring>

namespace packice {

void AppendFrame(const google::protobuf::MessageLite& message, std::string* out) {
  const size_t len = message.ByteSizeLong();
  const size_t at = out->size();
  out->resize(at + kFrameHeaderBytes + len);
  auto* p = reinterpret_cast<uint8_t*>(out->data() + at);
  p[0] = static_cast<uint8_t>(len);
  p[1] = static_cast<uint8_t>(len >> 8);
  p[2] = static_cast<uint8_t>(len >> 16);
  p[3] = static_cast<uint8_t>(len >> 24);
  message.SerializeWithCachedSizesToArray(p + kFrameHeaderBytes);
}

FrameReader::FrameReader(uint32_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

std::span<char> FrameReader::WritableTail(size_t min) {
  if (begin_ == end_) begin_ = end_ = 0;
  if (buf_.size() - end_ < min) {
    if (begin_ > 0) {  // compact first
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buf_.size() - end_ < min) buf_.resize(end_ + min);
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

void FrameReader::Commit(size_t n) { end_ += n; }

void FrameReader::Append(std::string_view bytes) {
  if (bytes.empty()) return;  // memcpy into a buffer not yet allocated (null) is undefined
  std::span<char> tail = WritableTail(bytes.size());
  std::memcpy(tail.data(), bytes.data(), bytes.size());
  Commit(bytes.size());
}

Result<std::optional<std::string_view>> FrameReader::Next() {
  if (end_ - begin_ < kFrameHeaderBytes) return std::optional<std::string_view>();
  const auto* p = reinterpret_cast<const uint8_t*>(buf_.data() + begin_);
  const uint32_t len =
      uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
  if (len > max_frame_bytes_) {
    return ProtocolError("frame of " + std::to_string(len) + " bytes exceeds the limit of " +
                         std::to_string(max_frame_bytes_));
  }
  if (end_ - begin_ - kFrameHeaderBytes < len) return std::optional<std::string_view>();
  std::string_view payload(buf_.data() + begin_ + kFrameHeaderBytes, len);
  begin_ += kFrameHeaderBytes + len;
  return std::optional<std::string_view>(payload);
}

}  // namespace packice
