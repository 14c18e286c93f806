// The HTTP server's routes: one file per resource (object_routes.cc, group_routes.cc,
// cas_routes.cc, kv_routes.cc, queue_routes.cc, metrics_routes.cc, health_routes.cc), each giving
// the Routes it serves, and one list of them all (http_routes.cc). A new service adds its routes
// file and one line to that list.
#ifndef PACKICE_TRANSPORT_HTTP_HTTP_ROUTES_H_
#define PACKICE_TRANSPORT_HTTP_HTTP_ROUTES_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "transport/http/http_connection.h"

namespace packice::http_server {

// Serves one request whose path the route matched; returns whether the connection stays open.
template <typename Stream>
using Handler = Task<bool> (*)(Connection<Stream>& c, Parser& parser, Exchange& x,
                               std::string_view path, std::string_view query);

struct Route {
  std::string_view label;                  // the metrics label: a template, never a key
  bool (*matches)(std::string_view path);  // whether this route serves `path`
  bool needs_token = true;                 // false: served without the bearer token
  Handler<PlainStream> plain;
  Handler<TlsStream> tls;

  template <typename Stream>
  Handler<Stream> handler() const {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      return tls;
    } else {
      return plain;
    }
  }
};

// Every route, in the order they are tried.
std::span<const Route> AllRoutes();

// Each resource's routes (its routes file).
Route HealthRoute();
Route MetricsRoute();
Route ObjectCollectionRoute();  // /v1/objects: list, POST
Route ObjectRoute();            // /v1/objects/{key}
Route GroupListRoute();         // /v1/groups
Route GroupRoute();             // /v1/groups/{group}: stats
Route GroupKeyRoute();          // /v1/groups/{group}/{key}
Route BazelCasRoute();          // /cas/{sha256}: Bazel's HTTP cache, blobs
Route BazelActionCacheRoute();  // /ac/{sha256}: Bazel's HTTP cache, action results
Route CasBlobRoute();           // /v1/cas/{digest}
Route CasMissingRoute();        // /v1/cas:missing
Route KvListRoute();            // /v1/kv: the namespaces
Route KvNamespaceRoute();       // /v1/kv/{ns}: create, delete, scan, batch, watch
Route KvKeyRoute();             // /v1/kv/{ns}/{key}
Route QueueListRoute();         // /v1/queue: the topics
Route QueueTopicRoute();        // /v1/queue/{topic}: create, delete, stat
Route QueueRecordsRoute();      // /v1/queue/{topic}/records: append, read (long poll)
Route QueueGroupRoute();        // /v1/queue/{topic}/groups/{group}: commit, positions
Route QueueSchemaRoute();       // /v1/queue/{topic}/schema: its versions, a new one

// The 405 answer to a method a route does not serve, with its Allow header.
TextResponse MethodNotAllowed(const Request& req, std::string_view allow, std::string_view hint);

// --- what several routes files use -------------------------------------------------------------

// A JSON answer.
TextResponse Json(unsigned version, bhttp::status st, std::string body);
// The value of the request's header `name`; nullopt when absent.
std::optional<std::string_view> Header(const Request& req, std::string_view name);
// A route's own bound on a body (`own`), and the node's max_body_bytes when set.
uint64_t BodyLimit(const HttpServerOptions& opt, uint64_t own);

// Whether a body of up to `limit` bytes may be read, or the refusal.
struct BodyPlan {
  std::optional<TextResponse> refusal;
  uint64_t size = 0;
  bool expect_continue = false;
};
BodyPlan PlanBody(const Parser& parser, uint64_t limit, std::string_view what);

// Reads the request's Content-Length body (up to `limit` bytes: a chunked one is 411, a
// bigger one 413) into `*out`. False: it was refused or failed and answered; `*keep` then says
// whether the connection stays.
template <typename Stream>
Task<bool> ReadSmallBody(Connection<Stream>& c, Parser& parser, Exchange& x, uint64_t limit,
                         std::string_view what, std::string* out, bool* keep) {
  const Request& req = parser.get();
  BodyPlan plan = PlanBody(parser, limit, what);
  if (plan.refusal) {
    *keep = co_await c.Refuse(parser, x, std::move(*plan.refusal));
    co_return false;
  }
  if (plan.size == 0) co_return true;
  if (plan.expect_continue) {
    const bool sent = co_await c.SendContinue(req);
    if (!sent) {
      *keep = false;
      co_return false;
    }
  }
  Status read = co_await c.ReadBodyInto(plan.size, out);
  if (!read.ok()) {
    *keep = co_await c.AbortBody(req, x, what, read);
    co_return false;
  }
  co_return true;
}

}  // namespace packice::http_server

#endif  // PACKICE_TRANSPORT_HTTP_HTTP_ROUTES_H_
