// The HTTP server's routes: one file per resource (object_routes.cc, group_routes.cc,
// cas_routes.cc, kv_routes.cc, metrics_routes.cc, health_routes.cc), each giving the Routes it
// serves, and one list of them all (http_routes.cc). A new service adds its routes file and one
// line to that list.
#ifndef PACKICE_TRANSPORT_HTTP_HTTP_ROUTES_H_
#define PACKICE_TRANSPORT_HTTP_HTTP_ROUTES_H_

#include <span>
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

// The 405 answer to a method a route does not serve, with its Allow header.
TextResponse MethodNotAllowed(const Request& req, std::string_view allow, std::string_view hint);

}  // namespace packice::http_server

#endif  // PACKICE_TRANSPORT_HTTP_HTTP_ROUTES_H_
