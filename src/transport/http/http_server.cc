#include "transport/http/http_server.h"

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
//
#include <errno.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>

#include "transport/http/http_connection.h"
#include "transport/http/http_server_impl.h"

namespace packice {
namespace {

using namespace http_server;  // NOLINT: the aliases of http_connection.h
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// Completion of a connection's coroutine: a throw is a bug, logged rather than lost.
void LogIfThrown(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("event=http_connection_failed error=\"{}\"", ex.what());
  } catch (...) {
    spdlog::error("event=http_connection_failed error=unknown");
  }
}

// Splits "host:port", "[v6]:port" or ":port".
Result<std::pair<std::string, std::string>> SplitHostPort(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    return InvalidArgument("http listen address '" + listen + "' needs host:port");
  }
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  return std::make_pair(host, port);
}

}  // namespace

Status HttpServer::Impl::Start() {
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
      return InvalidArgument("TLS needs both a certificate (tls_cert) and a key (tls_key)");
    }
    tls_.emplace(ssl::context::tls_server);
    tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    // OpenSSL's own errors do not say a file is missing; check that first.
    for (const std::string* file : {&options_.tls_cert_file, &options_.tls_key_file}) {
      if (::access(file->c_str(), R_OK) != 0) {
        return InvalidArgument(
            std::string(file == &options_.tls_cert_file ? "tls_cert" : "tls_key") + " '" + *file +
            "': " + strerror(errno));
      }
    }
    error_code ec;
    tls_->use_certificate_chain_file(options_.tls_cert_file, ec);
    if (ec) {
      return InvalidArgument("tls_cert '" + options_.tls_cert_file + "': " + ec.message());
    }
    tls_->use_private_key_file(options_.tls_key_file, ssl::context::pem, ec);
    if (ec) return InvalidArgument("tls_key '" + options_.tls_key_file + "': " + ec.message());
  }
  PACKICE_ASSIGN_OR_RETURN(auto host_port, SplitHostPort(options_.listen));
  error_code ec;
  tcp::resolver resolver(io_);
  auto endpoints = resolver.resolve(host_port.first, host_port.second,
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return InvalidArgument("http listen address '" + options_.listen +
                           "': " + (ec ? ec.message() : "no address"));
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("http listen " + options_.listen + ": " + ec.message());
  port_ = acceptor_.local_endpoint(ec).port();
  asio::co_spawn(io_, AcceptLoop(), LogIfThrown);
  return Status();
}

Task<void> HttpServer::Impl::AcceptLoop() {
  auto self = shared_from_this();
  for (;;) {
    beast::tcp_stream stream(asio::make_strand(io_));
    error_code ec;
    co_await acceptor_.async_accept(stream.socket(), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      spdlog::warn("event=http_accept_failed error=\"{}\"", ec.message());
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));  // e.g. out of descriptors
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    stream.socket().set_option(tcp::no_delay(true), ec);
    if (connection_count() >= options_.max_connections) {
      auto ex = stream.get_executor();
      asio::co_spawn(ex, RejectBusy(std::move(stream)), asio::detached);
      continue;
    }
    auto ex = stream.get_executor();
    if (tls_) {
      auto c = std::make_shared<Connection<TlsStream>>(self, TlsStream(std::move(stream), *tls_));
      Register(c.get(), c);
      asio::co_spawn(ex, Connection<TlsStream>::Run(c), LogIfThrown);
    } else {
      auto c = std::make_shared<Connection<PlainStream>>(self, std::move(stream));
      Register(c.get(), c);
      asio::co_spawn(ex, Connection<PlainStream>::Run(c), LogIfThrown);
    }
  }
}

Task<void> HttpServer::Impl::RejectBusy(beast::tcp_stream stream) {
  // Over the connection limit: a plain-text 503 (a TLS client just sees the close).
  error_code ec;
  if (!tls_) {
    static constexpr std::string_view kBusy =
        "HTTP/1.1 503 Service Unavailable\r\nX-Packice-Error: unavailable\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n";
    stream.expires_after(std::chrono::seconds(1));
    co_await asio::async_write(stream, asio::buffer(kBusy.data(), kBusy.size()),
                               asio::redirect_error(asio::use_awaitable, ec));
  }
  stream.socket().close(ec);
}

void HttpServer::Impl::Stop() {
  error_code ec;
  acceptor_.close(ec);
  std::vector<std::shared_ptr<ConnectionBase>> open;
  {
    MutexLock lock(&mu_);
    for (auto& [ptr, weak] : conns_) {
      if (auto c = weak.lock()) open.push_back(std::move(c));
    }
  }
  for (auto& c : open) c->Close();
  if (queue_) queue_->Stop();  // parked reads answer now, not at the end of their wait
}

HttpServer::HttpServer(asio::io_context& io, std::shared_ptr<LocalPeer> peer,
                       HttpServerOptions options, std::shared_ptr<MetricsRegistry> metrics)
    : impl_(std::make_shared<Impl>(io, std::move(peer), std::move(options), std::move(metrics))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() { return impl_->Start(); }
void HttpServer::Stop() { impl_->Stop(); }
uint16_t HttpServer::port() const { return impl_->port(); }

}  // namespace packice
