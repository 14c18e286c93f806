// The gRPC transport's KvChannel: KV calls over service packice.rpc.Kv (kv_service.proto) to a
// node's gRPC port.
//
// Order: KvChannel promises that the node runs one channel's calls in the order they were sent
// (a Get sent after a Put sees it). Over gRPC each Call is its own HTTP/2 stream, served by
// whichever server thread takes it first: two calls in flight at once may run in either order.
// So a channel keeps exactly one Call in flight and queues the rest in order (FIFO): the next
// one starts when the previous answer arrived. Send never waits: it queues, and each call's
// `done` runs on a gRPC thread when its answer is in, in the order sent. This costs one round
// trip per call; the Unix socket (one ordered connection) is the pipelined transport.
//
// Each call has a deadline of call_timeout from when it starts. Errors are the node's exact
// Packice codes (the "packice-error" trailer), else the mapping of grpc_common.h; a connection
// that fails or breaks is kUnavailable. Destroying the channel fails its queued calls with
// kAborted and cancels the one in flight (its `done` still runs, once).
//
// Watch starts a server stream and returns once the node sent its first frame (the watch
// started) or an error; the events then go into a KvEventQueue bounded by 4096 events and
// 16 MiB by default (KvWatchBounds). The stream is read by gRPC's callback API (no thread per
// watch). Cancelling or destroying the watcher cancels the stream; the destructor waits for
// the stream's end, which cancellation makes prompt. A broken connection or a stopped node
// ends the watch with kUnavailable (or kAborted), keeping resume_revision.
// Watches are not ordered with the channel's calls.
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_TRANSPORT_GRPC_GRPC_KV_CHANNEL_H_
#define PACKICE_TRANSPORT_GRPC_GRPC_KV_CHANNEL_H_

#include <memory>
#include <string>

#include "packice/status.h"
#include "transport/grpc/grpc_channel.h"
#include "transport/kv_channel.h"

namespace packice {

// `target`: "host:port". Uses options' tls, ca_file, bearer_token, connect_timeout and
// call_timeout; `forwarded` marks every call as a node's (kv_service.h: the owner serves it
// from its own store). Errors as NewGrpcChannel's: kInvalidArgument (bad
// target or token, an unreadable CA file), kUnavailable (no node answers within
// connect_timeout).
Result<std::shared_ptr<KvChannel>> NewGrpcKvChannel(const std::string& target,
                                                    const GrpcChannelOptions& options,
                                                    KvWatchBounds bounds = {});

}  // namespace packice

#endif  // PACKICE_TRANSPORT_GRPC_GRPC_KV_CHANNEL_H_
