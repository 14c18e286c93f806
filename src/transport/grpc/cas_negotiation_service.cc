#include "transport/grpc/cas_negotiation_service.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "services/cas/missing_finder.h"
#include "transport/grpc/cas.grpc.pb.h"
#include "transport/grpc/grpc_common.h"

namespace packice::rpc {
namespace {

class CasNegotiationService final : public CasNegotiation::Service {
 public:
  CasNegotiationService(std::shared_ptr<Cas> cas, std::shared_ptr<TransportTokens> tokens,
                        CasNegotiationOptions options)
      : tokens_(std::move(tokens)),
        options_(std::move(options)),
        finder_(std::move(cas), options_.check_threads) {}

  ::grpc::Status NegotiateBlobs(
      ::grpc::ServerContext* context,
      ::grpc::ServerReaderWriter<NegotiateResponse, NegotiateRequest>* stream) override {
    return Serve(context, options_.bearer_token, [&]() -> Status { return Negotiate(stream); });
  }

  ::grpc::Status GetTransportDetails(::grpc::ServerContext* context, const TransportDetailsRequest*,
                                     TransportDetails* reply) override {
    return Serve(context, options_.bearer_token, [&]() -> Status { return Details(reply); });
  }

 private:
  Status Negotiate(::grpc::ServerReaderWriter<NegotiateResponse, NegotiateRequest>* stream) {
    NegotiateRequest request;
    NegotiateResponse response;
    while (stream->Read(&request)) {
      PACKICE_ASSIGN_OR_RETURN(std::vector<Digest> digests, Parse(request));
      PACKICE_ASSIGN_OR_RETURN(std::vector<Digest> missing, finder_.FindMissing(digests));
      response.Clear();
      response.set_checked(digests.size());
      for (const Digest& d : missing) response.add_missing(d.ToString());
      if (!stream->Write(response)) return Aborted("the client went away");
    }
    return Status::Ok();
  }

  Result<std::vector<Digest>> Parse(const NegotiateRequest& request) {
    if (static_cast<size_t>(request.digests_size()) > options_.max_digests_per_request) {
      return InvalidArgument("a NegotiateRequest of " + std::to_string(request.digests_size()) +
                             " digests; at most " +
                             std::to_string(options_.max_digests_per_request));
    }
    std::vector<Digest> digests;
    digests.reserve(request.digests_size());
    for (const std::string& text : request.digests()) {
      Result<Digest> d = Digest::Parse(text);
      if (!d.ok()) {
        return InvalidArgument("digest '" + text.substr(0, 200) +
                               "': " + std::string(d.status().message()));
      }
      digests.push_back(*d);
    }
    return digests;
  }

  Status Details(TransportDetails* reply) {
    if (options_.transport_address.empty()) {
      return Unavailable("this node names no byte transport for its CAS");
    }
    const uint32_t concurrency = options_.recommended_concurrency != 0
                                     ? options_.recommended_concurrency
                                     : std::max(1u, std::thread::hardware_concurrency());
    reply->set_address(options_.transport_address);
    reply->set_token(tokens_->Issue());
    reply->set_token_ttl_ms(tokens_->options().ttl.count());
    reply->set_concurrency(concurrency);
    return Status::Ok();
  }

  const std::shared_ptr<TransportTokens> tokens_;
  const CasNegotiationOptions options_;
  MissingFinder finder_;
};

}  // namespace

std::shared_ptr<::grpc::Service> NewCasNegotiationService(std::shared_ptr<Cas> cas,
                                                          std::shared_ptr<TransportTokens> tokens,
                                                          CasNegotiationOptions options) {
  return std::make_shared<CasNegotiationService>(std::move(cas), std::move(tokens),
                                                 std::move(options));
}

}  // namespace packice::rpc
