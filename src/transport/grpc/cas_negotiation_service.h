// The node's CAS negotiation over gRPC (service packice.rpc.CasNegotiation, cas.proto; seed 004):
// NegotiateBlobs answers each batch of digests of a stream with the ones the CAS lacks, checked
// on a pool of one thread per core (MissingFinder); GetTransportDetails names the byte
// transport's address, a one-time token from TransportTokens and the concurrency to use. The
// node hands the same TransportTokens to its byte transport, which calls ConsumeTransportToken
// on each transfer.
//
//   auto tokens = std::make_shared<TransportTokens>();
//   server.AddService(rpc::NewCasNegotiationService(cas, tokens, {.transport_address = addr}));
//
// Thread safety: gRPC calls the service from its threads concurrently; it is safe for it.
#ifndef PACKICE_TRANSPORT_GRPC_CAS_NEGOTIATION_SERVICE_H_
#define PACKICE_TRANSPORT_GRPC_CAS_NEGOTIATION_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "packice/cas.h"
#include "services/cas/transport_tokens.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace packice::rpc {

struct CasNegotiationOptions {
  // Required as "authorization: Bearer <token>" on every call; empty: none.
  std::string bearer_token;
  // "host:port" of the node's byte transport (its gRPC or HTTP port) for TransportDetails.
  // Empty: GetTransportDetails is kUnavailable.
  std::string transport_address;
  // The concurrency TransportDetails recommends; 0: std::thread::hardware_concurrency().
  uint32_t recommended_concurrency = 0;
  // Threads checking digests; 0: std::thread::hardware_concurrency().
  size_t check_threads = 0;
  // Digests one NegotiateRequest may carry.
  size_t max_digests_per_request = 100'000;
};

// The service over `cas`, issuing tokens from `tokens`. REQUIRES: both not null.
std::shared_ptr<::grpc::Service> NewCasNegotiationService(std::shared_ptr<Cas> cas,
                                                          std::shared_ptr<TransportTokens> tokens,
                                                          CasNegotiationOptions options);

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_CAS_NEGOTIATION_SERVICE_H_
