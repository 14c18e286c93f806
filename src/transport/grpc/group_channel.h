// Cache groups over gRPC, client side (service packice.rpc.Groups, groups.proto):
//  - GrpcGroupClient: a client's calls (hops = 0), for the CLI and applications;
//  - NewGrpcGroupLoader: the RemoteLoader one node uses to reach another node's groups
//    (hops >= 1), which the cluster layer makes once per member and hands to RingPeers.
//
// Both are cheap to make: the gRPC channel connects at the first call, not before, and
// reconnects by itself after the node comes back. Each call has a deadline (`timeout`). A node
// that cannot be reached, or does not answer within the deadline, is kUnavailable, so that a
// Group fetching from it falls back to its own getter (docs/cache_groups.md).
//
// Thread safety: safe for concurrent use (gRPC multiplexes calls on one connection).
#ifndef PACKICE_TRANSPORT_GRPC_GROUP_CHANNEL_H_
#define PACKICE_TRANSPORT_GRPC_GROUP_CHANNEL_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "packice/cache.h"
#include "packice/status.h"

namespace packice {

struct GrpcGroupOptions {
  // Sent as "authorization: Bearer <token>" on every call; empty: none.
  std::string bearer_token;
  // TLS (grpcs://): the node's certificate is verified, host name included.
  bool tls = false;
  // A PEM bundle of the CAs that may sign the node's certificate; empty: the system's.
  std::string ca_file;
  // Deadline of each call. For a loader, longer than the owner's load_timeout, so that a slow
  // load is answered by the owner (kTimeout) rather than taken for a dead node.
  std::chrono::milliseconds timeout{15'000};
};

// What ListGroups says of one group.
struct GroupListing {
  std::string name;
  uint64_t capacity_bytes = 0;
  std::string policy;
  Duration ttl{0};
  std::string origin;
  Duration load_timeout{0};
  uint64_t max_value_bytes = 0;
};

class GrpcGroupClient {
 public:
  // `target`: "host:port" ("[v6]:port"). Errors: kInvalidArgument (bad target or token, an
  // unreadable CA file). Does not connect.
  static Result<std::unique_ptr<GrpcGroupClient>> Create(const std::string& target,
                                                         const GrpcGroupOptions& options);
  ~GrpcGroupClient();

  // As Group::Get on the node; `source` (may be null) gets where the value came from.
  Result<std::string> Get(std::string_view group, std::string_view key,
                          CacheSource* source = nullptr);
  Status Set(std::string_view group, std::string_view key, std::string_view value,
             std::optional<Duration> ttl = std::nullopt);
  Status Delete(std::string_view group, std::string_view key);
  Result<GroupStats> Stats(std::string_view group);
  Result<std::vector<GroupListing>> List();

  // As RemoteLoader, with the request's hops and ring epoch.
  Result<CacheValue> Fetch(const PeerRequest& request);
  Status Store(const PeerRequest& request, std::string_view value, std::optional<Duration> ttl);
  Status Remove(const PeerRequest& request);

  class Impl;

 private:
  explicit GrpcGroupClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A RemoteLoader reaching the groups of the node at `target` ("host:port"). Errors: as
// GrpcGroupClient::Create.
Result<std::shared_ptr<RemoteLoader>> NewGrpcGroupLoader(const std::string& target,
                                                         const GrpcGroupOptions& options);

}  // namespace packice

#endif  // PACKICE_TRANSPORT_GRPC_GROUP_CHANNEL_H_
