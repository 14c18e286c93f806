// UdsCall: one connection to a node's Unix socket for calls whose replies carry no descriptors
// (the queue's): one call at a time, the reply waited for (uds_channel.cc, its 60 s reply
// timeout).
#ifndef PACKICE_TRANSPORT_UDS_UDS_CALL_H_
#define PACKICE_TRANSPORT_UDS_UDS_CALL_H_

#include <memory>
#include <string>

#include "packice/status.h"
#include "transport/channel.h"
#include "transport/uds/wire.pb.h"

namespace packice {

class UdsCall {
 public:
  // Errors: kUnavailable (no node at `path`), kProtocolError (not a Packice node).
  static Result<std::unique_ptr<UdsCall>> Connect(const std::string& path);
  // Sends `req` (its id set here) and returns the reply; a non-OK reply is its Status.
  // Errors: kUnavailable (the connection broke: broken() from then on), kTimeout.
  Result<wire::Response> Call(wire::Request& req);
  bool broken() const;

 private:
  explicit UdsCall(std::shared_ptr<Channel> channel) : channel_(std::move(channel)) {}
  std::shared_ptr<Channel> channel_;  // a UdsChannel
};

}  // namespace packice

#endif  // PACKICE_TRANSPORT_UDS_UDS_CALL_H_
