#include "transport/http/http_routes.h"

#include <algorithm>
#include <array>

#include "transport/http/http_common.h"

namespace packice::http_server {

std::span<const Route> AllRoutes() {
  static const std::array<Route, 19> kRoutes = {
      HealthRoute(),           MetricsRoute(),    ObjectCollectionRoute(), ObjectRoute(),
      GroupListRoute(),        GroupRoute(),      GroupKeyRoute(),         BazelCasRoute(),
      BazelActionCacheRoute(), CasBlobRoute(),    CasMissingRoute(),       KvListRoute(),
      KvNamespaceRoute(),      KvKeyRoute(),      QueueListRoute(),        QueueTopicRoute(),
      QueueRecordsRoute(),     QueueGroupRoute(), QueueSchemaRoute(),
  };
  return kRoutes;
}

TextResponse MethodNotAllowed(const Request& req, std::string_view allow, std::string_view hint) {
  TextResponse res = ErrorResponse(req.version(), bhttp::status::method_not_allowed,
                                   InvalidArgument(std::string(hint)));
  res.set(bhttp::field::allow, std::string(allow));
  return res;
}

TextResponse Json(unsigned version, bhttp::status st, std::string body) {
  TextResponse res{st, version};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

std::optional<std::string_view> Header(const Request& req, std::string_view name) {
  auto it = req.find(beast::string_view(name.data(), name.size()));
  if (it == req.end()) return std::nullopt;
  return View(it->value());
}

uint64_t BodyLimit(const HttpServerOptions& opt, uint64_t own) {
  return opt.max_body_bytes == 0 ? own : std::min(own, opt.max_body_bytes);
}

BodyPlan PlanBody(const Parser& parser, uint64_t limit, std::string_view what) {
  const Request& req = parser.get();
  BodyPlan plan;
  if (req.chunked()) {
    plan.refusal = ErrorResponse(
        req.version(), bhttp::status::length_required,
        InvalidArgument(std::string(what) + " needs a Content-Length (no chunked body)"));
    return plan;
  }
  plan.size = parser.content_length() ? *parser.content_length() : 0;  // none: no body
  if (plan.size > limit) {
    plan.refusal =
        ErrorResponse(req.version(), bhttp::status::payload_too_large,
                      InvalidArgument(std::string(what) + " of " + std::to_string(plan.size) +
                                      " bytes (at most " + std::to_string(limit) + ")"));
    return plan;
  }
  plan.expect_continue = http::ToLower(View(req[bhttp::field::expect])) == "100-continue";
  return plan;
}

}  // namespace packice::http_server
