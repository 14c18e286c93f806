// The gRPC transport, client side: the Channel of Connect("grpc://host:port") and
// Connect("grpcs://host:port"), over service packice.rpc.Objects (objects.proto).
//
// Leases are the node's, as over the Unix socket; bytes are copied, as over HTTP:
//  - The channel keeps one Session stream open (opened at the first Create or Open, and again
//    after it broke); its leases die with it, so a client that goes away loses them at once.
//  - Create takes a create lease on the node and hands out a private buffer; Seal streams the
//    buffer and seals it in one call.
//  - Open takes a read lease and streams the content into a private buffer; Get streams it
//    with no lease held (lease 0). Put streams the bytes and seals.
// A dead node is found by keepalive pings; unary calls have a deadline (call_timeout), streams
// none, so objects of any size move on slow links.
//
// Thread safety: safe for concurrent use (gRPC multiplexes calls on one connection).
#ifndef PACKICE_TRANSPORT_GRPC_GRPC_CHANNEL_H_
#define PACKICE_TRANSPORT_GRPC_GRPC_CHANNEL_H_

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "packice/status.h"
#include "packice/types.h"
#include "transport/channel.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace packice {

struct GrpcChannelOptions {
  // TLS (grpcs://): the certificate is verified, host name included.
  bool tls = false;
  // A PEM bundle of the CAs that may sign the node's certificate; empty: the system's.
  std::string ca_file;
  // Sent as "authorization: Bearer <token>" on every call; empty: none.
  std::string bearer_token;
  // NewGrpcChannel waits this long for a connection; none is kUnavailable.
  std::chrono::milliseconds connect_timeout{10'000};
  // Deadline of each unary call (not of streams, which carry objects of any size).
  std::chrono::milliseconds call_timeout{30'000};
  // Node to node: the calls are marked "packice-forwarded", so that the node answers them from
  // its local peer and never forwards them again (peers/cluster_peer.h).
  bool forwarded = false;
};

// A Channel with one more call: a streamed get into memory the caller provides.
class GrpcChannel : public Channel {
 public:
  // Streams the object under `key` into the span `allocate` returns for its info (of exactly
  // info.size bytes); the node holds no lease once it returns. Errors: those of the node, of
  // `allocate`, kProtocolError (the node sent more or fewer bytes than the size it announced).
  virtual Result<ObjectInfo> GetInto(
      std::string_view key,
      const std::function<Result<std::span<std::byte>>(const ObjectInfo&)>& allocate) = 0;
};

// `target`: "host:port" ("[v6]:port"). Errors: kInvalidArgument (bad target or token, an
// unreadable CA file), kUnavailable (no node answers within connect_timeout).
Result<std::shared_ptr<GrpcChannel>> NewGrpcChannel(const std::string& target,
                                                    const GrpcChannelOptions& options);

// A connection to `target` as every gRPC client here makes it (GrpcChannel, the group client,
// node to node), not connected yet: the target and token checked, TLS when `tls` (trusting
// `ca_file`, else the system's CAs), the transport's message limits and keepalive, a reconnect
// within 2 s of a node's return, and a connection of its own (two clients in one process do
// not share, and serialise on, one TCP stream). Errors: kInvalidArgument.
Result<std::shared_ptr<::grpc::Channel>> NewGrpcConnection(const std::string& target, bool tls,
                                                           const std::string& ca_file,
                                                           const std::string& bearer_token);

// The connection under a GrpcChannel, for the node's other services (cluster, groups): a
// NewGrpcConnection connected within connect_timeout. Errors as NewGrpcChannel's.
Result<std::shared_ptr<::grpc::Channel>> DialGrpc(const std::string& target,
                                                  const GrpcChannelOptions& options);
// A GrpcChannel over a connection DialGrpc made.
std::shared_ptr<GrpcChannel> NewGrpcChannel(std::shared_ptr<::grpc::Channel> channel,
                                            const GrpcChannelOptions& options);

}  // namespace packice

#endif  // PACKICE_TRANSPORT_GRPC_GRPC_CHANNEL_H_
