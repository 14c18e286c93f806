// Length-prefixed frames: a 4-byte little-endian payload length, then the payload.
#ifndef PACKICE_TRANSPORT_UDS_FRAME_H_
#define PACKICE_TRANSPORT_UDS_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "packice/status.h"

namespace google::protobuf {
class MessageLite;
}

namespace packice {

inline constexpr size_t kFrameHeaderBytes = 4;
// Largest payload accepted by default: inline puts are capped well below it.
inline constexpr uint32_t kDefaultMaxFrameBytes = 4u << 20;

// Appends one frame holding `message` to `out`.
void AppendFrame(const google::protobuf::MessageLite& message, std::string* out);

// Reassembles frames from a byte stream. Memory is bounded by max_frame_bytes plus one read.
// Thread safety: not thread-safe.
class FrameReader {
 public:
  explicit FrameReader(uint32_t max_frame_bytes = kDefaultMaxFrameBytes);

  // Space for at least `min` more bytes; write into it, then Commit what was written.
  std::span<char> WritableTail(size_t min);
  void Commit(size_t n);
  // Copies `bytes` in (tests and fuzzing).
  void Append(std::string_view bytes);

  // The next complete payload, valid until the next call on this reader; nullopt when more
  // bytes are needed. kProtocolError when a frame announces more than max_frame_bytes (the
  // stream cannot be resynchronised: close it).
  Result<std::optional<std::string_view>> Next();

  // Bytes received but not yet returned by Next.
  size_t buffered() const { return end_ - begin_; }

 private:
  uint32_t max_frame_bytes_;
  std::vector<char> buf_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace packice

#endif  // PACKICE_TRANSPORT_UDS_FRAME_H_
