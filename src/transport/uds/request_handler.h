// ServerSession: the server side of one client connection, independent of the socket. It turns
// request payloads into response frames by calling the Peer, and owns the connection's session
// (closing it releases the client's leases). The Unix-socket server feeds it; so does the fuzzer.
//
// Thread safety: not thread-safe; one connection drives it from one strand.
#ifndef PACKICE_TRANSPORT_UDS_REQUEST_HANDLER_H_
#define PACKICE_TRANSPORT_UDS_REQUEST_HANDLER_H_

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "packice/peer.h"
#include "transport/uds/frame.h"

namespace packice {
namespace wire {
class KvRequest;
class QueueRequest;
}  // namespace wire

struct ServerLimits {
  uint32_t max_frame_bytes = kDefaultMaxFrameBytes;
  // Objects of at most this size are returned inline by Get, and may be Put inline.
  uint64_t inline_max_bytes = 64 * 1024;
};

// Responses ready to send: their frames and the descriptors that go with them (closed once
// sent).
struct Outgoing {
  std::string frame;
  std::vector<UniqueFd> fds;
};

class ServerSession {
 public:
  ServerSession(std::shared_ptr<Peer> peer, ServerLimits limits);
  ~ServerSession();  // closes the session: the client's leases end
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // Handles one request payload and appends its response to `out`. A payload that does not
  // parse gets a kProtocolError response; the session stays usable.
  void Handle(std::string_view payload, Outgoing* out);

  // Where KV calls (Request.kv) go instead: (request id, the call, its payload's size); their
  // answers are the handler's to send. Unset: they answer kUnimplemented.
  using KvHandler = std::function<void(uint64_t, wire::KvRequest&&, size_t)>;
  void set_kv_handler(KvHandler handler) { kv_handler_ = std::move(handler); }
  // Where queue calls (Request.queue) go, as KV calls do; unset: kUnimplemented.
  using QueueHandler = std::function<void(uint64_t, wire::QueueRequest&&)>;
  void set_queue_handler(QueueHandler handler) { queue_handler_ = std::move(handler); }

 private:
  class Dispatch;
  std::shared_ptr<Peer> peer_;
  ServerLimits limits_;
  SessionId session_;
  // Create leases whose bytes travel inline: the seal carries them into this blob.
  absl::flat_hash_map<LeaseId, std::shared_ptr<Blob>> inline_creates_;
  KvHandler kv_handler_;
  QueueHandler queue_handler_;
  // Leases granted to this connection and not yet ended by it.
  absl::flat_hash_set<LeaseId> leases_;
};

inline constexpr uint32_t kProtocolVersion = 1;

}  // namespace packice

#endif  // PACKICE_TRANSPORT_UDS_REQUEST_HANDLER_H_
