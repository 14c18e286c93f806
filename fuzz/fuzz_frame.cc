// libFuzzer target: the bytes a client could send down a Unix socket. They are cut into frames
// by a FrameReader and every frame is handled by a ServerSession over a MemoryPeer, as the
// socket server does; the responses are discarded. Any crash, sanitizer report, leak or
// unbounded allocation is a bug (DESIGN.md, invariant 3).
//
//   fuzz_frame -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/frame
//
// The first input byte picks how the rest is fed to the reader (all at once, or in chunks of
// that many bytes), so split frames are explored as well as whole ones.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "packice/memory_peer.h"
#include "transport/uds/frame.h"
#include "transport/uds/request_handler.h"

namespace {

constexpr uint32_t kMaxFrameBytes = 1u << 20;

packice::MemoryPeerOptions PeerOptions() {
  packice::MemoryPeerOptions o;
  o.capacity_bytes = 64ull << 20;
  o.pool_bytes = 16ull << 20;
  o.background_threads = false;  // deterministic: nothing runs between inputs
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = data[0] == 0 ? size : data[0];
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  // A fresh peer per input, so that every input is reproducible on its own.
  std::shared_ptr<packice::MemoryPeer> peer = packice::MemoryPeer::Create(PeerOptions());
  packice::ServerLimits limits;
  limits.max_frame_bytes = kMaxFrameBytes;
  {
    packice::ServerSession session(peer, limits);
    packice::FrameReader reader(kMaxFrameBytes);
    packice::Outgoing out;
    while (!input.empty()) {
      const size_t n = std::min(chunk, input.size());
      reader.Append(input.substr(0, n));
      input.remove_prefix(n);
      while (true) {
        auto next = reader.Next();
        if (!next.ok()) return 0;  // the server would answer and close the connection
        if (!next->has_value()) break;
        session.Handle(**next, &out);
        out = packice::Outgoing();  // the response is discarded
      }
    }
  }  // the session closes: the peer ends whatever leases it still holds
  packice::MemoryPeer::Stats st = peer->GetStats();
  if (st.leases != 0 || st.creating != 0) __builtin_trap();  // a closed session leaks nothing
  return 0;
}
