// GET /healthz: "ok", with no token needed.
#include "transport/http/http_routes.h"

namespace packice::http_server {
namespace {

bool IsHealth(std::string_view path) { return path == "/healthz"; }

template <typename Stream>
Task<bool> ServeHealth(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view,
                       std::string_view) {
  const Request& req = parser.get();
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
    co_return co_await c.Send(MethodNotAllowed(req, "GET, HEAD", "use GET /healthz"), x,
                              req.keep_alive());
  }
  TextResponse res{bhttp::status::ok, req.version()};
  res.set(bhttp::field::content_type, "text/plain");
  res.body() = "ok\n";
  co_return co_await c.Send(std::move(res), x, req.keep_alive());
}

}  // namespace

Route HealthRoute() {
  return {"/healthz", &IsHealth, /*needs_token=*/false, &ServeHealth<PlainStream>,
          &ServeHealth<TlsStream>};
}

}  // namespace packice::http_server
