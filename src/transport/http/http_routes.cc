#include "transport/http/http_routes.h"

#include <array>

namespace packice::http_server {

std::span<const Route> AllRoutes() {
  static const std::array<Route, 14> kRoutes = {
      HealthRoute(),           MetricsRoute(), ObjectCollectionRoute(), ObjectRoute(),
      GroupListRoute(),        GroupRoute(),   GroupKeyRoute(),         BazelCasRoute(),
      BazelActionCacheRoute(), CasBlobRoute(), CasMissingRoute(),       KvListRoute(),
      KvNamespaceRoute(),      KvKeyRoute(),
  };
  return kRoutes;
}

TextResponse MethodNotAllowed(const Request& req, std::string_view allow, std::string_view hint) {
  TextResponse res = ErrorResponse(req.version(), bhttp::status::method_not_allowed,
                                   InvalidArgument(std::string(hint)));
  res.set(bhttp::field::allow, std::string(allow));
  return res;
}

}  // namespace packice::http_server
