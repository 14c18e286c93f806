// Conversions between cache-group types and their wire form (groups.proto), shared by the
// server (group_service.cc) and the client side (group_channel.cc).
#ifndef PACKICE_TRANSPORT_GRPC_GROUP_WIRE_H_
#define PACKICE_TRANSPORT_GRPC_GROUP_WIRE_H_

#include <string_view>

#include "packice/cache.h"
#include "transport/grpc/groups.pb.h"

namespace packice::rpc {

// The wire form of `stats` of group `name`, and back.
void ToWire(std::string_view name, const GroupStats& stats, GroupStatsReply* out);
GroupStats FromWire(const GroupStatsReply& in);

GroupValueSource ToWire(CacheSource source);
// kMiss for an unknown value (a newer node's).
CacheSource FromWire(GroupValueSource source);

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_GROUP_WIRE_H_
