// GET /metrics: the node's registry in the Prometheus text format 0.0.4.
#include "core/metrics.h"
#include "transport/http/http_routes.h"

namespace packice::http_server {
namespace {

bool IsMetrics(std::string_view path) { return path == "/metrics"; }

template <typename Stream>
Task<bool> ServeMetrics(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view,
                        std::string_view) {
  const Request& req = parser.get();
  if (req.method() != bhttp::verb::get) {
    co_return co_await c.Send(MethodNotAllowed(req, "GET", "use GET /metrics"), x,
                              req.keep_alive());
  }
  TextResponse res{bhttp::status::ok, req.version()};
  res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.body() = c.metrics().Render();
  co_return co_await c.Send(std::move(res), x, req.keep_alive());
}

}  // namespace

Route MetricsRoute() {
  return {"/metrics", &IsMetrics, /*needs_token=*/true, &ServeMetrics<PlainStream>,
          &ServeMetrics<TlsStream>};
}

}  // namespace packice::http_server
