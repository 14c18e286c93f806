// HttpServer::Impl: the listener (accept loop, connection table, TLS context) and what every
// connection shares (the peer, options, metrics, the blocking pool). Not API: the server, the
// connection core and nothing else include it.
#ifndef PACKICE_TRANSPORT_HTTP_HTTP_SERVER_IMPL_H_
#define PACKICE_TRANSPORT_HTTP_HTTP_SERVER_IMPL_H_

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/metrics.h"
#include "core/mutex.h"
#include "transport/http/http_connection.h"
#include "transport/http/http_server.h"
#include "transport/queue_calls.h"

namespace packice {

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(boost::asio::io_context& io, std::shared_ptr<LocalPeer> peer, HttpServerOptions options,
       std::shared_ptr<MetricsRegistry> metrics)
      : io_(io),
        peer_(std::move(peer)),
        options_(std::move(options)),
        metrics_(metrics ? std::move(metrics) : std::make_shared<MetricsRegistry>()),
        acceptor_(io),
        requests_(metrics_->AddCounter("packice_http_requests_total",
                                       "HTTP requests answered, by route, method and status.",
                                       {"route", "method", "status"})),
        latency_(metrics_->AddHistogram("packice_http_request_duration_seconds",
                                        "Time from a request's headers to the end of its reply.",
                                        {"route", "method"}, LatencyBuckets())),
        open_connections_(
            metrics_->AddGauge("packice_http_connections", "Open HTTP connections.").With({})),
        bytes_received_(metrics_
                            ->AddCounter("packice_http_bytes_received_total",
                                         "Request body bytes received over HTTP.")
                            .With({})),
        bytes_sent_(
            metrics_->AddCounter("packice_http_bytes_sent_total", "Body bytes sent over HTTP.")
                .With({})) {
    if (options_.queue != nullptr) {
      queue_ = std::make_shared<QueueCalls>(options_.queue, &kv_pool_, io_.get_executor());
    }
  }

  ~Impl() {
    blocking_.join();
    groups_pool_.join();
    kv_pool_.join();
  }

  Status Start();
  void Stop();
  uint16_t port() const { return port_; }

  Peer& peer() { return *peer_; }
  const HttpServerOptions& options() const { return options_; }
  MetricsRegistry& metrics() { return *metrics_; }
  boost::asio::thread_pool& blocking() { return blocking_; }
  boost::asio::thread_pool& groups_pool() { return groups_pool_; }
  boost::asio::thread_pool& kv_pool() { return kv_pool_; }
  // The queue's calls (with options().queue), and the turn keyless appends take buckets in.
  QueueCalls* queue_calls() { return queue_.get(); }
  const std::shared_ptr<std::atomic<uint64_t>>& queue_turn() const { return queue_turn_; }

  void Register(http_server::ConnectionBase* c, std::weak_ptr<http_server::ConnectionBase> w) {
    MutexLock lock(&mu_);
    conns_[c] = std::move(w);
    open_connections_.Add(1);
  }
  void Unregister(http_server::ConnectionBase* c) {
    MutexLock lock(&mu_);
    conns_.erase(c);
    open_connections_.Add(-1);
  }
  size_t connection_count() {
    MutexLock lock(&mu_);
    return conns_.size();
  }

  void Record(std::string_view route, std::string_view method, unsigned status,
              std::chrono::steady_clock::duration took) {
    std::string code = std::to_string(status);
    requests_.With({route, method, code}).Inc();
    latency_.With({route, method}).Observe(std::chrono::duration<double>(took).count());
  }
  void CountReceived(uint64_t n) { bytes_received_.Inc(n); }
  void CountSent(uint64_t n) { bytes_sent_.Inc(n); }

 private:
  http_server::Task<void> AcceptLoop();
  http_server::Task<void> RejectBusy(boost::beast::tcp_stream stream);

  boost::asio::io_context& io_;
  std::shared_ptr<LocalPeer> peer_;
  HttpServerOptions options_;
  std::shared_ptr<MetricsRegistry> metrics_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::optional<boost::asio::ssl::context> tls_;
  uint16_t port_ = 0;
  // Peer calls that may wait on a disk (a durable seal, a write into a file) run here, so that
  // one slow disk never stalls the io threads.
  boost::asio::thread_pool blocking_{2};
  // Cache-group calls (HttpServerOptions::group_threads).
  boost::asio::thread_pool groups_pool_{static_cast<size_t>(std::max(1, options_.group_threads))};
  // KV and queue calls (HttpServerOptions::kv_threads; one idle thread when the node serves
  // neither).
  boost::asio::thread_pool kv_pool_{
      static_cast<size_t>(options_.kv || options_.queue ? std::max(1, options_.kv_threads) : 1)};
  std::shared_ptr<QueueCalls> queue_;  // with options_.queue
  std::shared_ptr<std::atomic<uint64_t>> queue_turn_ = std::make_shared<std::atomic<uint64_t>>(0);
  Family<Counter>& requests_;
  Family<Histogram>& latency_;
  Gauge& open_connections_;
  Counter& bytes_received_;
  Counter& bytes_sent_;
  Mutex mu_;
  std::unordered_map<http_server::ConnectionBase*, std::weak_ptr<http_server::ConnectionBase>>
      conns_ ABSL_GUARDED_BY(mu_);
};

}  // namespace packice

#endif  // PACKICE_TRANSPORT_HTTP_HTTP_SERVER_IMPL_H_
