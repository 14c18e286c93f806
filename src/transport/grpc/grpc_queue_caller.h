// The gRPC transport of the queue, client side: a QueueCaller (queue_wire_convert.h) whose
// every call is one unary Call of service packice.rpc.Queue (queue_service.proto), blocking
// the calling thread. Calls from several threads run at once, over one HTTP/2 connection.
//
// Each call has a deadline of call_timeout from when it starts, plus its wait for a read that
// may wait. Errors are the node's exact Packice codes (the "packice-error" trailer), else the
// mapping of grpc_common.h; no node, or a broken connection, is kUnavailable.
#ifndef PACKICE_TRANSPORT_GRPC_GRPC_QUEUE_CALLER_H_
#define PACKICE_TRANSPORT_GRPC_GRPC_QUEUE_CALLER_H_

#include <string>

#include "packice/status.h"
#include "transport/grpc/grpc_channel.h"
#include "transport/uds/queue_wire_convert.h"

namespace packice {

// `target`: "host:port". Uses options' tls, ca_file, bearer_token, connect_timeout,
// call_timeout and forwarded (a cluster node's call: the receiver answers from its own queue). Errors as DialGrpc's: kInvalidArgument (bad target or token, an unreadable CA
// file), kUnavailable (no node answers within connect_timeout).
Result<QueueCaller> NewGrpcQueueCaller(const std::string& target,
                                       const GrpcChannelOptions& options);

}  // namespace packice

#endif  // PACKICE_TRANSPORT_GRPC_GRPC_QUEUE_CALLER_H_
