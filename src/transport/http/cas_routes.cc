// The content-addressed store over HTTP (docs/cas.md): the node's CasStore, in two layouts.
//
//   GET|HEAD|PUT /cas/{sha256 hex}     Bazel's and ccache's HTTP cache: blobs by SHA-256 hash
//   GET|HEAD|PUT /ac/{sha256 hex}      the same cache's action results: opaque bytes by key
//   GET|HEAD|PUT /v1/cas/{digest}      a blob by its digest (any text form of packice/cas.h);
//                                      GET takes one Range (206, or 416 out_of_range)
//   POST         /v1/cas:missing       {"digests": [...]} -> {"missing": [...]}
//
// Every PUT is verified: a body that is not its digest is 400 digest_mismatch and stores
// nothing. Blobs go out from the mapped view a CasStore::Fetch hands out, and bodies come in
// straight into the blob's file on the local tier (a CasWriter): no copy of a blob is held in
// memory. Blocking CAS calls run on the connection's blocking pool.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/json.h"
#include "services/cas/cas_store.h"
#include "transport/http/http_common.h"
#include "transport/http/http_routes.h"

namespace packice::http_server {
namespace {

constexpr std::string_view kBazelCasPrefix = "/cas/";
constexpr std::string_view kBazelAcPrefix = "/ac/";
constexpr std::string_view kCasPrefix = "/v1/cas/";
constexpr std::string_view kMissingPath = "/v1/cas:missing";
// The most digests one POST /v1/cas:missing may ask about, and the largest body it may send.
constexpr size_t kMaxMissingDigests = 10'000;
constexpr uint64_t kMaxMissingBodyBytes = 4 << 20;
// The largest blob a PUT may send when the server sets no max_body (the local tier's capacity
// bounds it further).
constexpr uint64_t kDefaultMaxBlobBytes = 64ull << 30;

Status NoCas() {
  return NotFound(
      "this node serves no content-addressed store (start packiced with a disk store or "
      "--cas-dir DIR, and without --no-cas)");
}

uint64_t MaxBlobBytes(const HttpServerOptions& opt) {
  return opt.max_body_bytes == 0 ? kDefaultMaxBlobBytes : opt.max_body_bytes;
}

std::string ETagOf(const Digest& d) { return "\"" + d.hex() + "\""; }

HeadResponse BlobHead(const Request& req, const Digest& d) {
  HeadResponse res{bhttp::status::ok, req.version()};
  res.set(bhttp::field::content_type, "application/octet-stream");
  res.set(bhttp::field::etag, ETagOf(d));
  res.set(bhttp::field::accept_ranges, "bytes");
  res.set("X-Packice-Digest", d.ToString());
  return res;
}

// The plan of a GET or HEAD of a blob of `size` bytes; a range past its end is out_of_range.
http_plan::GetPlan PlanBlobGet(const Request& req, const Digest& d, uint64_t size) {
  std::vector<http_plan::Header> headers = HeadersOf(req);
  http_plan::GetPlan plan = http_plan::PlanGet(headers, ETagOf(d), size);
  if (plan.refusal) plan.refusal->error = OutOfRange(std::string(plan.refusal->error.message()));
  return plan;
}

// The SHA-256 digest named by the hex of a Bazel path ("/cas/{hex}"), of size `size`.
Result<Digest> BazelDigest(std::string_view hex, uint64_t size) {
  Result<Digest> d = Digest::FromHex(DigestAlgorithm::kSha256, hex, size);
  if (!d.ok()) {
    return InvalidArgument("a Bazel cache path is /cas/{sha256} or /ac/{sha256}: " +
                           std::string(d.status().message()));
  }
  return d;
}

// --- sending a blob --------------------------------------------------------------------------

template <typename Stream>
Task<bool> SendBlob(Connection<Stream>& c, const Request& req, Exchange& x, const Digest& digest,
                    bool head) {
  const bool keep = req.keep_alive();
  CasStore* cas = c.cas();
  const Digest* d = &digest;  // the lambdas capture only pointers (GCC 12, see group_routes.cc)
  Result<uint64_t> size = co_await c.Blocking([cas, d] { return cas->Check(*d); });
  if (!size.ok()) co_return co_await c.SendError(req, x, size.status(), keep);
  http_plan::GetPlan plan = PlanBlobGet(req, digest, *size);
  HeadResponse res = BlobHead(req, digest);
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
  if (head) {
    res.content_length(plan.length);
    co_return co_await c.SendHeaders(std::move(res), x, keep);
  }
  const BlobRange range = BlobRange::Of(plan.first, plan.length);
  const BlobRange* r = &range;
  Result<CasBlob> blob = co_await c.Blocking([cas, d, r] { return cas->Fetch(*d, *r); });
  if (!blob.ok()) co_return co_await c.SendError(req, x, blob.status(), keep);
  co_return co_await c.SendBytes(std::move(res), x, keep, blob->bytes);
}

// --- receiving a blob ------------------------------------------------------------------------

// What a PUT of a blob sends, or why it is refused. Plain code: the coroutine carries it out.
struct BlobPutPlan {
  std::optional<TextResponse> refusal;
  uint64_t size = 0;
  bool expect_continue = false;
};

// `digest` is the blob's (nullopt: the body's length gives its size).
BlobPutPlan PlanBlobPut(const Parser& parser, std::optional<uint64_t> digest_size,
                        uint64_t max_bytes) {
  const Request& req = parser.get();
  BlobPutPlan plan;
  const auto refuse = [&](bhttp::status st, Status error) {
    plan.refusal = ErrorResponse(req.version(), st, error);
    return plan;
  };
  if (req.chunked() || !parser.content_length()) {
    return refuse(bhttp::status::length_required,
                  InvalidArgument("a blob needs a Content-Length (no chunked body)"));
  }
  plan.size = *parser.content_length();
  if (digest_size && *digest_size != plan.size) {
    return refuse(bhttp::status::bad_request,
                  DigestMismatch("the body has " + std::to_string(plan.size) +
                                 " bytes, the digest says " + std::to_string(*digest_size)));
  }
  if (plan.size > max_bytes) {
    return refuse(bhttp::status::payload_too_large,
                  InvalidArgument("a blob of " + std::to_string(plan.size) +
                                  " bytes (this node takes at most " + std::to_string(max_bytes) +
                                  " in one PUT)"));
  }
  plan.expect_continue = http::ToLower(View(req[bhttp::field::expect])) == "100-continue";
  return plan;
}

std::string StoredJson(const Digest& d) {
  return nlohmann::json{{"digest", d.ToString()}, {"size", d.size}}.dump();
}

// Reads the body of a PUT of `digest` (whose size may be the body's: `sized`) and stores it.
template <typename Stream>
Task<bool> ReceiveBlob(Connection<Stream>& c, Parser& parser, Exchange& x, Digest digest,
                       bool sized) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  std::optional<uint64_t> digest_size;
  if (sized) digest_size = digest.size;
  BlobPutPlan plan = PlanBlobPut(parser, digest_size, MaxBlobBytes(c.opt()));
  if (plan.refusal) co_return co_await c.Refuse(parser, x, std::move(*plan.refusal));
  if (!sized) digest.size = plan.size;
  // Straight into the blob's file on the local tier (no copy of the body in memory); the commit
  // verifies it.
  CasStore* cas = c.cas();
  const Digest* d = &digest;
  Result<std::unique_ptr<CasWriter>> writer =
      co_await c.Blocking([cas, d] { return cas->BeginStore(*d); });
  if (!writer.ok()) {
    co_return co_await c.Refuse(parser, x, ErrorResponse(req.version(), writer.status()));
  }
  CasWriter* w = writer->get();
  if (plan.expect_continue) {
    const bool sent = co_await c.SendContinue(req);
    if (!sent) co_return false;
  }
  Status read =
      co_await c.ReadBody(parser, w->blob(), {cas->local_peer().get(), w->lease(), w->lease_ttl()});
  if (!read.ok()) co_return co_await c.AbortBody(req, x, digest.ToString(), read);
  Status stored = co_await c.Blocking([w] { return w->Commit(); });
  writer->reset();
  if (!stored.ok()) co_return co_await c.SendError(req, x, stored, keep);
  TextResponse res{bhttp::status::created, req.version()};
  res.set(bhttp::field::content_type, "application/json");
  res.set("X-Packice-Digest", digest.ToString());
  res.body() = StoredJson(digest);
  co_return co_await c.Send(std::move(res), x, keep);
}

template <typename Stream>
Task<bool> ServeBlob(Connection<Stream>& c, Parser& parser, Exchange& x, const Digest& digest,
                     bool sized) {
  const Request& req = parser.get();
  switch (req.method()) {
    case bhttp::verb::get:
      co_return co_await SendBlob(c, req, x, digest, false);
    case bhttp::verb::head:
      co_return co_await SendBlob(c, req, x, digest, true);
    case bhttp::verb::put:
      co_return co_await ReceiveBlob(c, parser, x, digest, sized);
    default:
      co_return co_await c.Send(MethodNotAllowed(req, "GET, HEAD, PUT", "use GET, HEAD or PUT"), x,
                                req.keep_alive());
  }
}

// --- /cas/{hex}, /v1/cas/{digest} ------------------------------------------------------------

// The digest a GET or HEAD of /cas/{hex} names (the stored blob of that hash), or of a PUT (its
// size is the body's: filled in later).
Result<Digest> BazelBlobDigest(CasStore& cas, const Request& req, std::string_view hex) {
  PACKICE_ASSIGN_OR_RETURN(Digest d, BazelDigest(hex, 0));
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) return d;
  return cas.FindByHash(DigestAlgorithm::kSha256, hex);
}

template <typename Stream>
Task<bool> ServeBazelCas(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view path,
                         std::string_view) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  // A body left unread closes the connection (ServeOne), so errors before it need no draining.
  if (c.cas() == nullptr) co_return co_await c.SendError(req, x, NoCas(), keep);
  CasStore* cas = c.cas();
  const Request* rq = &req;
  const std::string_view hex = path.substr(kBazelCasPrefix.size());
  const std::string_view* h = &hex;
  Result<Digest> digest =
      co_await c.Blocking([cas, rq, h] { return BazelBlobDigest(*cas, *rq, *h); });
  if (!digest.ok()) co_return co_await c.SendError(req, x, digest.status(), keep);
  co_return co_await ServeBlob(c, parser, x, *digest, /*sized=*/false);
}

Result<Digest> ParseDigestPath(std::string_view rest) {
  std::optional<std::string> text = http::PercentDecode(rest);
  if (!text) return InvalidArgument("bad percent escape in the digest");
  return Digest::Parse(*text);
}

template <typename Stream>
Task<bool> ServeCasBlob(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view path,
                        std::string_view) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  if (c.cas() == nullptr) co_return co_await c.SendError(req, x, NoCas(), keep);
  Result<Digest> digest = ParseDigestPath(path.substr(kCasPrefix.size()));
  if (!digest.ok()) co_return co_await c.SendError(req, x, digest.status(), keep);
  co_return co_await ServeBlob(c, parser, x, *digest, /*sized=*/true);
}

// --- /ac/{hex} ---------------------------------------------------------------------------------

Result<std::string> ActionKey(std::string_view hex) {
  PACKICE_ASSIGN_OR_RETURN(Digest d, BazelDigest(hex, 0));
  return "ac/sha256:" + d.hex();
}

template <typename Stream>
Task<bool> SendAction(Connection<Stream>& c, const Request& req, Exchange& x,
                      const std::string& key, bool head) {
  const bool keep = req.keep_alive();
  LocalPeer& ac = *c.action_cache();
  AcquireRequest acquire;
  acquire.key = key;
  acquire.mode = LeaseMode::kRead;
  Result<Grant> grant = ac.Acquire(acquire);
  if (!grant.ok()) co_return co_await c.SendError(req, x, grant.status(), keep);
  LeaseGuard guard(ac, grant->lease);
  HeadResponse res{bhttp::status::ok, req.version()};
  res.set(bhttp::field::content_type, "application/octet-stream");
  co_return co_await c.SendObject(std::move(res), x, keep, head, *grant->blob, 0, grant->info.size,
                                  {&ac, grant->lease, grant->lease_ttl});
}

template <typename Stream>
Task<bool> ReceiveAction(Connection<Stream>& c, Parser& parser, Exchange& x,
                         const std::string& key) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  BlobPutPlan plan = PlanBlobPut(parser, std::nullopt, MaxBlobBytes(c.opt()));
  if (plan.refusal) co_return co_await c.Refuse(parser, x, std::move(*plan.refusal));
  LocalPeer& ac = *c.action_cache();
  AcquireRequest create;
  create.key = key;
  create.mode = LeaseMode::kCreate;
  create.size = plan.size;
  Result<Grant> grant = ac.Acquire(create);
  if (!grant.ok()) {
    co_return co_await c.Refuse(parser, x, ErrorResponse(req.version(), grant.status()));
  }
  LeaseGuard guard(ac, grant->lease);
  if (plan.expect_continue) {
    const bool sent = co_await c.SendContinue(req);
    if (!sent) co_return false;
  }
  Status read = co_await c.ReadBody(parser, *grant->blob, {&ac, grant->lease, grant->lease_ttl});
  if (!read.ok()) co_return co_await c.AbortBody(req, x, key, read);
  LocalPeer* p = &ac;
  const LeaseId lease = grant->lease;
  const uint64_t size = plan.size;
  Result<ObjectInfo> sealed =
      co_await c.Blocking([p, lease, size] { return p->Seal(lease, size); });
  if (SealEndedLease(sealed.status())) guard.Forget();
  if (!sealed.ok()) co_return co_await c.SendError(req, x, sealed.status(), keep);
  co_return co_await c.Send(TextResponse{bhttp::status::no_content, req.version()}, x, keep);
}

template <typename Stream>
Task<bool> ServeBazelAc(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view path,
                        std::string_view) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  if (c.action_cache() == nullptr) co_return co_await c.SendError(req, x, NoCas(), keep);
  Result<std::string> key = ActionKey(path.substr(kBazelAcPrefix.size()));
  if (!key.ok()) co_return co_await c.SendError(req, x, key.status(), keep);
  switch (req.method()) {
    case bhttp::verb::get:
      co_return co_await SendAction(c, req, x, *key, false);
    case bhttp::verb::head:
      co_return co_await SendAction(c, req, x, *key, true);
    case bhttp::verb::put:
      co_return co_await ReceiveAction(c, parser, x, *key);
    default:
      co_return co_await c.Send(MethodNotAllowed(req, "GET, HEAD, PUT", "use GET, HEAD or PUT"), x,
                                keep);
  }
}

// --- /v1/cas:missing -----------------------------------------------------------------------------

// The digests of a {"digests": [...]} body. Errors: kInvalidArgument.
Result<std::vector<Digest>> ParseMissingRequest(const std::string& body) {
  nlohmann::json j = ParseJson(body);
  if (!j.is_object() || !j.contains("digests") || !j["digests"].is_array()) {
    return InvalidArgument("the body must be {\"digests\": [\"blake3:<hex>/<size>\", ...]}");
  }
  const nlohmann::json& list = j["digests"];
  if (list.size() > kMaxMissingDigests) {
    return InvalidArgument("at most " + std::to_string(kMaxMissingDigests) +
                           " digests per request, not " + std::to_string(list.size()));
  }
  std::vector<Digest> digests;
  digests.reserve(list.size());
  for (const nlohmann::json& item : list) {
    if (!item.is_string()) return InvalidArgument("every digest must be a string");
    PACKICE_ASSIGN_OR_RETURN(Digest d, Digest::Parse(item.get<std::string>()));
    digests.push_back(d);
  }
  return digests;
}

// The {"missing": [...]} answer: the digests of `body` the CAS does not hold.
Result<std::string> FindMissingJson(Cas& cas, const std::string& body) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<Digest> digests, ParseMissingRequest(body));
  PACKICE_ASSIGN_OR_RETURN(std::vector<Digest> missing, cas.FindMissing(digests));
  nlohmann::json list = nlohmann::json::array();
  for (const Digest& d : missing) list.push_back(d.ToString());
  nlohmann::json out;
  out["missing"] = std::move(list);
  return out.dump();
}

template <typename Stream>
Task<bool> ServeMissing(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view,
                        std::string_view) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  if (req.method() != bhttp::verb::post) {
    co_return co_await c.Send(MethodNotAllowed(req, "POST", "use POST /v1/cas:missing"), x, keep);
  }
  if (c.cas() == nullptr) co_return co_await c.SendError(req, x, NoCas(), keep);
  BlobPutPlan plan = PlanBlobPut(parser, std::nullopt, kMaxMissingBodyBytes);
  if (plan.refusal) co_return co_await c.Refuse(parser, x, std::move(*plan.refusal));
  if (plan.expect_continue) {
    const bool sent = co_await c.SendContinue(req);
    if (!sent) co_return false;
  }
  std::string body;
  Status read = co_await c.ReadBodyInto(plan.size, &body);
  if (!read.ok()) co_return co_await c.AbortBody(req, x, kMissingPath, read);
  CasStore* cas = c.cas();
  const std::string* b = &body;
  Result<std::string> answer = co_await c.Blocking([cas, b] { return FindMissingJson(*cas, *b); });
  if (!answer.ok()) co_return co_await c.SendError(req, x, answer.status(), keep);
  TextResponse res{bhttp::status::ok, req.version()};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = *std::move(answer);
  co_return co_await c.Send(std::move(res), x, keep);
}

bool IsBazelCas(std::string_view path) { return path.starts_with(kBazelCasPrefix); }
bool IsBazelAc(std::string_view path) { return path.starts_with(kBazelAcPrefix); }
bool IsCasBlob(std::string_view path) { return path.starts_with(kCasPrefix); }
bool IsMissing(std::string_view path) { return path == kMissingPath; }

}  // namespace

Route BazelCasRoute() {
  return {"/cas/{sha256}", &IsBazelCas, /*needs_token=*/true, &ServeBazelCas<PlainStream>,
          &ServeBazelCas<TlsStream>};
}

Route BazelActionCacheRoute() {
  return {"/ac/{sha256}", &IsBazelAc, /*needs_token=*/true, &ServeBazelAc<PlainStream>,
          &ServeBazelAc<TlsStream>};
}

Route CasBlobRoute() {
  return {"/v1/cas/{digest}", &IsCasBlob, /*needs_token=*/true, &ServeCasBlob<PlainStream>,
          &ServeCasBlob<TlsStream>};
}

Route CasMissingRoute() {
  return {"/v1/cas:missing", &IsMissing, /*needs_token=*/true, &ServeMissing<PlainStream>,
          &ServeMissing<TlsStream>};
}

}  // namespace packice::http_server
