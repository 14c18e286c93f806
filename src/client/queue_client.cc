// ConnectQueue: a Queue whose calls are queue_wire.proto messages over the node's Unix socket,
// one connection per call under way (a reader waiting on one does not hold up a writer), or
// over its gRPC port (grpc_queue_caller.h).
#include <mutex>
#include <vector>

#include "client/make_client.h"
#include "packice/queue.h"
#include "transport/grpc/grpc_queue_caller.h"
#include "transport/uds/queue_wire_convert.h"
#include "transport/uds/uds_call.h"

namespace packice {
namespace {

class UdsConnections {
 public:
  UdsConnections(std::string path, size_t max_idle) : path_(std::move(path)), max_idle_(max_idle) {}

  Result<wire::QueueResponse> Call(wire::QueueRequest q) {
    std::unique_ptr<UdsCall> conn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (conn == nullptr) {
      PACKICE_ASSIGN_OR_RETURN(conn, UdsCall::Connect(path_));
    }
    wire::Request req;
    *req.mutable_queue() = std::move(q);
    Result<wire::Response> resp = conn->Call(req);
    if (!conn->broken()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (idle_.size() < max_idle_) idle_.push_back(std::move(conn));
    }
    if (!resp.ok()) return resp.status();
    return std::move(*resp->mutable_queue());
  }

 private:
  const std::string path_;
  const size_t max_idle_;
  std::mutex mu_;
  std::vector<std::unique_ptr<UdsCall>> idle_;  // guarded by mu_
};

}  // namespace

Result<std::shared_ptr<Queue>> ConnectQueue(std::string_view url, QueueClientOptions options) {
  const std::string scheme = UrlScheme(url);
  QueueCaller call;
  if (scheme == "grpc" || scheme == "grpcs") {
    PACKICE_ASSIGN_OR_RETURN(
        call, NewGrpcQueueCaller(GrpcTarget(url, scheme),
                                 GrpcOptions(scheme, options.token, options.ca_file)));
  } else {
    std::string path(scheme.empty() ? url : (scheme == "uds" ? url.substr(6) : ""));
    if (path.empty() || path[0] != '/') {
      return InvalidArgument("unsupported queue URL '" + std::string(url) +
                             "': expected uds:///path/to/socket, grpc://host:port or "
                             "grpcs://host:port");
    }
    auto conns =
        std::make_shared<UdsConnections>(path, std::max<size_t>(1, options.max_connections));
    call = [conns](wire::QueueRequest q) { return conns->Call(std::move(q)); };
  }
  // One call now, so that a wrong address (or token) says so here.
  wire::QueueRequest probe;
  probe.set_list_topics(true);
  PACKICE_RETURN_IF_ERROR(call(probe).status());
  return NewWireQueue(std::move(call));
}

}  // namespace packice
