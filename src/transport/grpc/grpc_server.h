// GrpcServer: the node's one gRPC port. It carries every service (the object API now; the
// cache groups and later services register theirs with AddService), with the node's bearer
// token and TLS. gRPC runs its own threads; handlers call peers and services directly.
//
// Thread safety: AddService and Start from one thread, before serving; Stop from any.
#ifndef PACKICE_TRANSPORT_GRPC_GRPC_SERVER_H_
#define PACKICE_TRANSPORT_GRPC_GRPC_SERVER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "packice/status.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace packice {

struct GrpcServerOptions {
  // "host:port" ("127.0.0.1:9090", "[::1]:9090", ":9090" or "0.0.0.0:9090" for every
  // address); port 0 picks one.
  std::string listen;
  // PEM files; both set: the port speaks TLS only (grpcs://).
  std::string tls_cert_file;
  std::string tls_key_file;
  // Threads serving calls at most; a call beyond them waits for one (gRPC's resource quota).
  int max_threads = 64;
  // Keepalive pings find a dead client (its sessions close) within about interval + timeout.
  std::chrono::milliseconds keepalive_interval{20'000};
  std::chrono::milliseconds keepalive_timeout{10'000};
};

class GrpcServer {
 public:
  explicit GrpcServer(GrpcServerOptions options);
  ~GrpcServer();  // stops
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Adds a service to the port. REQUIRES: before Start.
  void AddService(std::shared_ptr<::grpc::Service> service);
  // Binds and starts serving. Errors: kInvalidArgument (bad address, unreadable TLS files),
  // kUnavailable (the address is in use or cannot be bound).
  Status Start();
  // Ends every call (streams are cancelled) and stops listening.
  void Stop();
  // The bound port (after Start).
  uint16_t port() const { return port_; }

 private:
  GrpcServerOptions options_;
  std::vector<std::shared_ptr<::grpc::Service>> services_;
  std::unique_ptr<::grpc::Server> server_;
  uint16_t port_ = 0;
};

}  // namespace packice

#endif  // PACKICE_TRANSPORT_GRPC_GRPC_SERVER_H_
