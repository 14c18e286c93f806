// What the gRPC transport's server and client sides agree on: how a Status travels, the
// metadata entries, and the bearer-token check. docs/grpc.md describes them for clients in
// other languages.
#ifndef PACKICE_TRANSPORT_GRPC_GRPC_COMMON_H_
#define PACKICE_TRANSPORT_GRPC_GRPC_COMMON_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include "packice/status.h"

namespace packice::rpc {

// Trailing metadata of a failed call: the Packice code's stable name ("not_found"), so that a
// client gets the exact code where gRPC's own codes are coarser (kLeaseExpired and kWrongState
// are both FAILED_PRECONDITION).
inline constexpr char kErrorKey[] = "packice-error";
// Request metadata: the session a call's leases belong to (decimal; see objects.proto).
inline constexpr char kSessionKey[] = "packice-session";
// Request metadata: a call one node of a cluster forwards to another ("1"): served from the
// receiver's local peer, never forwarded again.
inline constexpr char kForwardedKey[] = "packice-forwarded";
// Request metadata: "Bearer <token>" when the node requires a token.
inline constexpr char kAuthorizationKey[] = "authorization";

// Bytes per streamed message. gRPC's default limit on a received message is 4 MiB; a chunk of
// 1 MiB stays well inside it and keeps a stream's memory small.
inline constexpr uint64_t kChunkBytes = 1u << 20;
// The largest message either side accepts: a chunk plus its envelope (key, metadata).
inline constexpr int kMaxMessageBytes = 4 << 20;

// The gRPC code for a Packice code.
::grpc::StatusCode ToGrpcCode(StatusCode code);

// Server side: the gRPC status of `status`, with its Packice code in the trailing metadata.
::grpc::Status ToGrpc(const Status& status, ::grpc::ServerContextBase* context);

// Client side: the Status of a finished call — the code named in the trailing metadata, else
// the one gRPC's code maps to (UNAVAILABLE is kUnavailable, DEADLINE_EXCEEDED kTimeout,
// UNAUTHENTICATED kPermissionDenied, RESOURCE_EXHAUSTED without a Packice code kProtocolError:
// a message over the size limit).
Status FromGrpc(const ::grpc::Status& status, const ::grpc::ClientContext& context);

// Server side: OK when the node needs no token or the call carries "authorization: Bearer
// <token>" (compared in constant time); else kPermissionDenied.
Status CheckBearer(const ::grpc::ServerContextBase& context, std::string_view token);

// A refused token: gRPC's UNAUTHENTICATED, with kPermissionDenied in the trailing metadata.
::grpc::Status Unauthenticated(const Status& status, ::grpc::ServerContextBase* context);

// The value of request metadata `key`, or "" when absent.
std::string_view ClientMetadata(const ::grpc::ServerContextBase& context, std::string_view key);

// Runs `f` (returning a Status or a Result) and returns what it returns, or kInternal if it
// throws: an exception is a bug, and on a gRPC thread it would terminate the node.
template <typename F>
auto CatchAsStatus(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Internal(std::string("unexpected exception: ") + e.what());
  }
}

// Runs `handler` (returning a Status) for one call: checks the token first, converts the result
// (and any exception, which is a bug: kInternal) to the gRPC status. Every service's methods
// go through it, so none can forget the token.
template <typename F>
::grpc::Status Serve(::grpc::ServerContextBase* context, std::string_view token, F&& handler) {
  if (Status auth = CheckBearer(*context, token); !auth.ok()) return Unauthenticated(auth, context);
  return ToGrpc(CatchAsStatus(std::forward<F>(handler)), context);
}

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_GRPC_COMMON_H_
