// The HTTP transport, server side: the REST API of docs/http.md over Boost.Beast, on the node's
// io_context. Bodies stream between the socket and the object's blob (sendfile for GETs).
#ifndef PACKICE_TRANSPORT_HTTP_HTTP_SERVER_H_
#define PACKICE_TRANSPORT_HTTP_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "packice/local_peer.h"
#include "packice/status.h"

namespace boost::asio {
class io_context;
}

namespace packice {

class CasStore;
class GroupRegistry;
class KvStore;
class MetricsRegistry;
class Queue;

struct HttpServerOptions {
  // "host:port" ("127.0.0.1:8080", "[::1]:8080", ":8080" for every address); port 0 picks one.
  std::string listen;
  // When set, every request but /healthz needs "Authorization: Bearer <token>".
  std::string bearer_token;
  // PEM files; both set: the listener speaks TLS only.
  std::string tls_cert_file;
  std::string tls_key_file;
  size_t max_connections = 1024;
  size_t max_header_bytes = 16 * 1024;
  // Largest body a PUT may send; 0: no limit but the store's capacity.
  uint64_t max_body_bytes = 0;
  // A keep-alive connection with no request for this long is closed.
  std::chrono::milliseconds idle_timeout{60'000};
  // A read or write that makes no progress for this long ends the connection.
  std::chrono::milliseconds io_timeout{30'000};
  // The cache groups served under /v1/groups (group_routes.cc); null: none (404).
  std::shared_ptr<GroupRegistry> groups;
  // Threads serving cache-group calls: a Get that misses holds one while it waits for its load
  // (up to the group's load_timeout), so they are neither the io threads nor the disk pool.
  int group_threads = 16;
  // The content-addressed store served under /cas, /v1/cas (cas_routes.cc); null: none (404).
  std::shared_ptr<CasStore> cas;
  // Where the Bazel HTTP cache's action results (/ac/{sha256}) live, under keys
  // "ac/sha256:<hex>"; null: /ac is 404. Set with `cas` (see docs/cas.md).
  std::shared_ptr<LocalPeer> action_cache;
  // The namespaced KV served under /v1/kv (kv_routes.cc); null: none (404).
  std::shared_ptr<KvStore> kv;
  // Threads running KV calls (a put waits for its fdatasync; a watch from the past reads the
  // log), so that no disk wait holds an io thread.
  int kv_threads = 4;
  // The largest value a PUT /v1/kv/{ns}/{key} may send (the KV's KvOptions::max_value_bytes;
  // max_body_bytes bounds it too). Over it: 413 before the body is read.
  uint64_t kv_max_value_bytes = 1ull << 20;
  // A watch stream with nothing to send for this long sends an SSE comment (": keepalive"), so
  // that proxies and clients do not take a quiet watch for a dead one.
  std::chrono::milliseconds kv_watch_keepalive{15'000};
  // The queue served under /v1/queue (queue_routes.cc); null: none (404). Its calls run on
  // the KV's pool (kv_threads); a read that waits holds no thread (queue_calls.h).
  std::shared_ptr<Queue> queue;
};

class HttpServer {
 public:
  // `metrics` (may be null) receives the request counters and histograms and is what
  // GET /metrics renders.
  HttpServer(boost::asio::io_context& io, std::shared_ptr<LocalPeer> peer,
             HttpServerOptions options, std::shared_ptr<MetricsRegistry> metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. Errors: kInvalidArgument (bad address, unreadable TLS files),
  // kUnavailable (the address is in use).
  Status Start();
  // Stops accepting and closes every connection.
  void Stop();
  // The bound port (after Start).
  uint16_t port() const;

  class Impl;  // opaque; public so that connections can name it

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace packice

#endif  // PACKICE_TRANSPORT_HTTP_HTTP_SERVER_H_
