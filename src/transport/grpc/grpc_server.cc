#include "transport/grpc/grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <spdlog/spdlog.h>

#include "core/io.h"
#include "transport/grpc/grpc_common.h"

namespace packice {
namespace {

// gRPC's own log lines (a failed TLS handshake, a malformed frame) in the node's log format,
// instead of gRPC's on stderr.
void LogToSpdlog(gpr_log_func_args* args) {
  const auto level = args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::warn
                     : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                               : spdlog::level::debug;
  spdlog::log(level, "event=grpc_log source={}:{} message=\"{}\"", args->file, args->line,
              args->message);
}

}  // namespace

GrpcServer::GrpcServer(GrpcServerOptions options) : options_(std::move(options)) {}

GrpcServer::~GrpcServer() { Stop(); }

void GrpcServer::AddService(std::shared_ptr<::grpc::Service> service) {
  services_.push_back(std::move(service));
}

Status GrpcServer::Start() {
  std::string address = options_.listen;
  if (address.starts_with(":")) address = "0.0.0.0" + address;  // every address, as HTTP has it
  if (address.rfind(':') == std::string::npos) {
    return InvalidArgument("gRPC listen address '" + options_.listen + "' is not host:port");
  }
  if (services_.empty()) return InvalidArgument("a gRPC port needs at least one service");
  gpr_set_log_function(LogToSpdlog);
  std::shared_ptr<::grpc::ServerCredentials> creds;
  const bool tls = !options_.tls_cert_file.empty() || !options_.tls_key_file.empty();
  if (tls) {
    if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
      return InvalidArgument("TLS needs both a certificate and a key");
    }
    ::grpc::SslServerCredentialsOptions ssl;
    ::grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    PACKICE_ASSIGN_OR_RETURN(pair.cert_chain, ReadSmallFile(options_.tls_cert_file));
    PACKICE_ASSIGN_OR_RETURN(pair.private_key, ReadSmallFile(options_.tls_key_file));
    ssl.pem_key_cert_pairs.push_back(std::move(pair));
    creds = ::grpc::SslServerCredentials(ssl);
  } else {
    creds = ::grpc::InsecureServerCredentials();
  }

  ::grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, creds, &port);
  for (const auto& service : services_) builder.RegisterService(service.get());
  ::grpc::ResourceQuota quota("packiced-grpc");
  quota.SetMaxThreads(options_.max_threads);
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(rpc::kMaxMessageBytes);
  builder.SetMaxSendMessageSize(rpc::kMaxMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(options_.keepalive_interval.count()));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(options_.keepalive_timeout.count()));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Clients ping as often as every 10 s (GrpcChannel does); the default (5 min) would answer
  // them with GOAWAY.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // Only this node serves this port: a second packiced on the same port must fail, not share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    server_.reset();
    return Unavailable("cannot serve gRPC on " + options_.listen +
                       " (address in use, or not a local address)");
  }
  port_ = static_cast<uint16_t>(port);
  return Status::Ok();
}

void GrpcServer::Stop() {
  if (server_ == nullptr) return;
  // Streams (sessions, long reads) would hold a graceful shutdown forever: cancel them at once.
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
  server_.reset();
}

}  // namespace packice
