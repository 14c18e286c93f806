// The client side of the KV over the Unix socket: one connection, many calls in flight
// (pipelined: each is written as it is made, answers are matched by id by a reader thread),
// watches as pushed frames (docs/protocol.md, "KV").
#ifndef PACKICE_TRANSPORT_UDS_UDS_KV_CHANNEL_H_
#define PACKICE_TRANSPORT_UDS_UDS_KV_CHANNEL_H_

#include <memory>
#include <string>

#include "transport/kv_channel.h"

namespace packice {

// Connects to the node at `path` and says hello. Errors: kInvalidArgument (path),
// kUnavailable (no node), kProtocolError (not a Packice node).
Result<std::shared_ptr<KvChannel>> NewUdsKvChannel(const std::string& path,
                                                   KvWatchBounds bounds = {});

}  // namespace packice

#endif  // PACKICE_TRANSPORT_UDS_UDS_KV_CHANNEL_H_
