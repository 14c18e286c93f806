// The objects resource (docs/http.md): GET, HEAD, PUT and DELETE of /v1/objects/{key}, and
// the listing and POST of /v1/objects. What a request asks is planned by object_plan.h; this
// file carries the plan out on the peer and the connection.
#include <spdlog/spdlog.h>

#include <charconv>
#include <memory>
#include <string>

#include "transport/http/growing_upload.h"
#include "transport/http/http_common.h"
#include "transport/http/http_request.h"
#include "transport/http/http_routes.h"

namespace packice::http_server {
namespace {

constexpr std::string_view kObjectPrefix = "/v1/objects/";  // http::kObjectsPath + "/"

// The one place an object's ETag is made.
std::string ETagOf(const ObjectInfo& info) {
  return http::FormatETag(info.version, info.created_unix_ms);
}

// Headers that describe an object (GET, HEAD, PUT).
template <typename Fields>
void SetObjectHeaders(Fields& res, const ObjectInfo& info, const std::string& etag) {
  res.set(bhttp::field::etag, etag);
  res.set(bhttp::field::last_modified, http::FormatHttpDate(info.created_unix_ms));
  res.set("X-Packice-Version", std::to_string(info.version));
  res.set("X-Packice-Size", std::to_string(info.size));
  if (!info.tier.empty()) res.set("X-Packice-Tier", info.tier);
  if (info.ttl.count() > 0) res.set("X-Packice-TTL", http::FormatTtl(info.ttl));
  if (info.expires_unix_ms > 0) res.set("X-Packice-Expires", std::to_string(info.expires_unix_ms));
  for (const auto& [name, value] : info.meta) {
    res.set(std::string("X-Packice-Meta-") + name, value);
  }
}

std::optional<uint64_t> ToStd(boost::optional<uint64_t> v) {
  return v ? std::optional<uint64_t>(*v) : std::nullopt;
}

// --- GET, HEAD -----------------------------------------------------------------------------

HeadResponse ObjectHead(const Request& req, const ObjectInfo& info, const std::string& etag) {
  HeadResponse res{bhttp::status::ok, req.version()};
  SetObjectHeaders(res, info, etag);
  res.set(bhttp::field::accept_ranges, "bytes");
  auto type = info.meta.find("content-type");
  res.set(bhttp::field::content_type,
          type != info.meta.end() ? type->second : std::string("application/octet-stream"));
  return res;
}

template <typename Stream>
Task<bool> HandleGet(Connection<Stream>& c, Parser& parser, Exchange& x, const std::string& key,
                     bool head) {
  const Request& req = parser.get();
  bool keep = req.keep_alive();
  AcquireRequest acquire;
  acquire.key = key;
  acquire.mode = LeaseMode::kRead;
  auto grant = c.peer().Acquire(acquire);
  if (!grant.ok()) co_return co_await c.SendError(req, x, grant.status(), keep);
  LeaseGuard guard(c.peer(), grant->lease);
  const ObjectInfo& info = grant->info;
  std::string etag = ETagOf(info);
  std::vector<http_plan::Header> headers = HeadersOf(req);
  http_plan::GetPlan plan = http_plan::PlanGet(headers, etag, info.size);
  HeadResponse res = ObjectHead(req, info, etag);
  using Kind = http_plan::GetPlan::Kind;
  if (plan.kind == Kind::kNotModified) {
    res.result(bhttp::status::not_modified);
    res.erase(bhttp::field::content_type);
    co_return co_await c.SendHeaders(std::move(res), x, keep);
  }
  if (plan.kind == Kind::kUnsatisfiable) {
    TextResponse err = RefusalResponse(req.version(), *plan.refusal);
    err.set(bhttp::field::content_range, plan.content_range);
    co_return co_await c.Send(std::move(err), x, keep);
  }
  if (plan.kind == Kind::kPartial) {
    res.result(bhttp::status::partial_content);
    res.set(bhttp::field::content_range, plan.content_range);
  }
  co_return co_await c.SendObject(std::move(res), x, keep, head, *grant->blob, plan.first,
                                  plan.length, {&c.peer(), grant->lease, grant->lease_ttl});
}

// --- PUT, POST -----------------------------------------------------------------------------

template <typename Stream>
Task<bool> SendPutResult(Connection<Stream>& c, const Request& req, Exchange& x,
                         const Result<ObjectInfo>& sealed, bool existed) {
  bool keep = req.keep_alive();
  if (!sealed.ok()) co_return co_await c.SendError(req, x, sealed.status(), keep);
  std::string etag = ETagOf(*sealed);
  if (existed) {
    TextResponse res{bhttp::status::no_content, req.version()};
    SetObjectHeaders(res, *sealed, etag);
    co_return co_await c.Send(std::move(res), x, keep);
  }
  TextResponse res{bhttp::status::created, req.version()};
  res.set(bhttp::field::location,
          std::string(kObjectPrefix) + http::PercentEncodePath(sealed->key));
  SetObjectHeaders(res, *sealed, etag);
  res.set(bhttp::field::content_type, "application/json");
  res.body() = http::PutResultJson(*sealed);
  co_return co_await c.Send(std::move(res), x, keep);
}

// A body of known length: the object is allocated at its size, the body read into it.
template <typename Stream>
Task<bool> PutSized(Connection<Stream>& c, Parser& parser, Exchange& x,
                    const http_plan::PutPlan& plan, bool existed) {
  const Request& req = parser.get();
  Peer& p = c.peer();
  auto grant = p.Acquire(plan.acquire);
  if (!grant.ok()) {
    co_return co_await c.Refuse(parser, x, ErrorResponse(req.version(), grant.status()));
  }
  LeaseGuard guard(p, grant->lease);
  if (plan.expect_continue && !co_await c.SendContinue(req)) co_return false;
  Blob& blob = *grant->blob;
  Status read = co_await c.ReadBody(parser, blob, {&c.peer(), grant->lease, grant->lease_ttl});
  if (!read.ok()) co_return co_await c.AbortBody(req, x, plan.acquire.key, read);
  LeaseId lease = grant->lease;
  const uint64_t size = plan.acquire.size;
  // (Not a ?: around co_await: GCC 12 miscompiles temporaries there.)
  Result<ObjectInfo> sealed = InvalidArgument("unsealed");
  if (IsMappedInProcess(blob)) {
    sealed = p.Seal(lease, size);
  } else {
    sealed = co_await c.Blocking([&p, lease, size] { return p.Seal(lease, size); });
  }
  if (SealEndedLease(sealed.status())) guard.Forget();
  co_return co_await SendPutResult(c, req, x, sealed, existed);
}

// A chunked body: the object grows as it arrives (growing_upload.h).
template <typename Stream>
Task<bool> PutChunked(Connection<Stream>& c, Parser& parser, Exchange& x,
                      const http_plan::PutPlan& plan, bool existed) {
  const Request& req = parser.get();
  Peer& p = c.peer();
  auto started = co_await c.Blocking(
      [&p, &plan] { return GrowingUpload::Start(p, plan.acquire, plan.limit); });
  // A refusal closes the connection: a chunked body cannot be skipped by its length.
  if (!started.ok()) co_return co_await c.SendError(req, x, started.status(), false);
  std::unique_ptr<GrowingUpload> upload = std::move(*started);
  if (plan.expect_continue && !co_await c.SendContinue(req)) co_return false;
  http_plan::Refusal refused;
  Status read = co_await c.ReadChunkedBody(parser, *upload, &refused);
  if (!read.ok() && refused.http_status == 0) {
    co_return co_await c.AbortBody(req, x, plan.acquire.key, read);
  }
  if (!read.ok()) {
    upload.reset();  // discarded before the answer: a client that sees it sees no object
    co_await c.Send(RefusalResponse(req.version(), refused), x, false);
    co_await c.DrainChunked(parser);
    co_return false;
  }
  GrowingUpload* u = upload.get();
  Result<ObjectInfo> sealed = co_await c.Blocking([u] { return u->Seal(); });
  co_return co_await SendPutResult(c, req, x, sealed, existed);
}

// PUT (key set) or POST (key empty: the peer generates an id).
template <typename Stream>
Task<bool> HandlePut(Connection<Stream>& c, Parser& parser, Exchange& x, const std::string& key) {
  const Request& req = parser.get();
  std::vector<http_plan::Header> headers = HeadersOf(req);
  http_plan::PutPlan plan = http_plan::PlanPut(
      headers, key, {req.chunked(), ToStd(parser.content_length())}, c.opt().max_body_bytes);
  if (plan.refusal) {
    co_return co_await c.Refuse(parser, x, RefusalResponse(req.version(), *plan.refusal));
  }
  const bool existed = !key.empty() && !plan.acquire.create.exclusive && c.peer().Stat(key).ok();
  if (plan.chunked) co_return co_await PutChunked(c, parser, x, plan, existed);
  co_return co_await PutSized(c, parser, x, plan, existed);
}

// --- DELETE, listing ---------------------------------------------------------------------

template <typename Stream>
Task<bool> HandleDelete(Connection<Stream>& c, const Request& req, Exchange& x,
                        const std::string& key) {
  Status s = c.peer().Delete(key);
  if (!s.ok()) co_return co_await c.SendError(req, x, s, req.keep_alive());
  co_return co_await c.Send(TextResponse{bhttp::status::no_content, req.version()}, x,
                            req.keep_alive());
}

// The ListOptions of a listing's query string. Errors: kInvalidArgument.
Result<ListOptions> ParseListQuery(std::string_view query) {
  ListOptions options;
  PACKICE_ASSIGN_OR_RETURN(auto params, http_request::ParseQuery(query));
  for (const auto& [name, value] : params) {
    if (name == "prefix") {
      options.prefix = value;
    } else if (name == "start_after") {
      options.start_after = value;
    } else if (name == "limit") {
      uint32_t limit = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc() || end != value.data() + value.size() || limit == 0) {
        return InvalidArgument("limit must be a positive number, not '" + value + "'");
      }
      options.limit = std::min(limit, kMaxListLimit);
    } else {
      return InvalidArgument("unknown query parameter '" + name +
                             "' (use prefix, limit, start_after)");
    }
  }
  return options;
}

template <typename Stream>
Task<bool> HandleList(Connection<Stream>& c, const Request& req, Exchange& x,
                      std::string_view query) {
  bool keep = req.keep_alive();
  Result<ListOptions> options = ParseListQuery(query);
  if (!options.ok()) co_return co_await c.SendError(req, x, options.status(), keep);
  auto page = c.peer().List(*options);
  if (!page.ok()) co_return co_await c.SendError(req, x, page.status(), keep);
  TextResponse res{bhttp::status::ok, req.version()};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = http::ListPageToJson(*page);
  co_return co_await c.Send(std::move(res), x, keep);
}

// --- the two routes ----------------------------------------------------------------------

bool IsCollection(std::string_view path) { return path == http::kObjectsPath; }
// "/v1/objects/" names the empty key: 400, never a listing or a POST.
bool IsObject(std::string_view path) { return path.starts_with(kObjectPrefix); }

template <typename Stream>
Task<bool> ServeCollection(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view,
                           std::string_view query) {
  const Request& req = parser.get();
  if (req.method() == bhttp::verb::get) co_return co_await HandleList(c, req, x, query);
  if (req.method() == bhttp::verb::post) co_return co_await HandlePut(c, parser, x, "");
  co_return co_await c.Send(MethodNotAllowed(req, "GET, POST", "use GET (list) or POST (create)"),
                            x, req.keep_alive());
}

template <typename Stream>
Task<bool> ServeObject(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view path,
                       std::string_view) {
  const Request& req = parser.get();
  std::optional<std::string> key = http::PercentDecode(path.substr(kObjectPrefix.size()));
  if (!key) {
    co_return co_await c.SendError(req, x, InvalidArgument("bad percent escape in the key"),
                                   req.keep_alive());
  }
  if (key->empty()) {  // HandlePut would take it for a POST and generate an id
    co_return co_await c.SendError(req, x, InvalidArgument("empty key"), false);
  }
  switch (req.method()) {
    case bhttp::verb::get:
      co_return co_await HandleGet(c, parser, x, *key, false);
    case bhttp::verb::head:
      co_return co_await HandleGet(c, parser, x, *key, true);
    case bhttp::verb::put:
      co_return co_await HandlePut(c, parser, x, *key);
    case bhttp::verb::delete_:
      co_return co_await HandleDelete(c, req, x, *key);
    default:
      co_return co_await c.Send(
          MethodNotAllowed(req, "GET, HEAD, PUT, DELETE", "use GET, HEAD, PUT or DELETE"), x,
          req.keep_alive());
  }
}

}  // namespace

Route ObjectCollectionRoute() {
  return {"/v1/objects", &IsCollection, /*needs_token=*/true, &ServeCollection<PlainStream>,
          &ServeCollection<TlsStream>};
}

Route ObjectRoute() {
  return {"/v1/objects/{key}", &IsObject, /*needs_token=*/true, &ServeObject<PlainStream>,
          &ServeObject<TlsStream>};
}

}  // namespace packice::http_server
