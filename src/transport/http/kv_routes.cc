// The namespaced KV over HTTP (docs/kv.md, docs/http.md "KV"): the node's KvStore.
//
//   GET    /v1/kv?prefix=/team              the namespaces (JSON)
//   PUT    /v1/kv/{ns}                      create a namespace (body: its options, optional)
//   DELETE /v1/kv/{ns}                      delete it
//   GET    /v1/kv/{ns}?prefix=P | ?start=A&end=B, &after, &limit, &keys_only    a scan (JSON)
//   POST   /v1/kv/{ns}?batch                an atomic batch (JSON)
//   GET    /v1/kv/{ns}?watch&prefix=P       a watch, as server-sent events
//   GET    /v1/kv/{ns}/{key}                the value (revisions in headers); ?watch: a watch
//   PUT    /v1/kv/{ns}/{key}                put (If-Match / If-None-Match: compare-and-swap)
//   DELETE /v1/kv/{ns}/{key}                delete
//
// {ns} is one percent-encoded segment ("%2Fteam%2Fns"); what the requests say is parsed by
// kv_request.h, and every KV call runs on the connection's KV pool (Connection::KvCall), never
// on an io thread. A watch pulls from its KvWatcher only when the previous chunk was taken by
// the socket, so a client that does not read fills the watcher's bounded buffer, which ends the
// watch "too slow" — the node never queues events for it.
#include <memory>
#include <string>
#include <vector>

#include "packice/kv.h"
#include "transport/http/http_common.h"
#include "transport/http/http_routes.h"
#include "transport/http/kv_request.h"

namespace packice::http_server {
namespace {

using http_kv::KvPath;
using http_kv::KvQuery;

// Events taken from a watcher per chunk (whole revisions; more than a default batch).
constexpr size_t kEventsPerChunk = 4096;
// The largest body of a namespace's options, and of a batch when the node sets no max_body (a
// batch holds at most 4 MiB of keys and values, which base64 and JSON make about 6 MiB).
constexpr uint64_t kMaxOptionsBodyBytes = 64 * 1024;
constexpr uint64_t kMaxBatchBodyBytes = 16ull << 20;

Status NoKv() {
  return NotFound(
      "this node serves no KV (start packiced with a data directory or --kv-dir DIR, and "
      "without --no-kv)");
}

// The answer to a failed call: the code's status (docs/http.md), but a compare-and-swap that
// does not hold is 412 Precondition Failed (kAlreadyExists already is).
TextResponse KvError(unsigned version, const Status& s) {
  if (s.code() == StatusCode::kWrongState) {
    return ErrorResponse(version, bhttp::status::precondition_failed, s);
  }
  return ErrorResponse(version, s);
}

TextResponse ValueResponse(unsigned version, KeyValue kv) {
  TextResponse res{bhttp::status::ok, version};
  res.set(bhttp::field::content_type, "application/octet-stream");
  res.set(bhttp::field::etag, "\"" + std::to_string(kv.mod_revision) + "\"");
  res.set("X-Packice-Create-Revision", std::to_string(kv.create_revision));
  res.set("X-Packice-Mod-Revision", std::to_string(kv.mod_revision));
  res.set("X-Packice-Version", std::to_string(kv.version));
  if (kv.expires_unix_ms != 0) {
    res.set("X-Packice-Expires-Unix-Ms", std::to_string(kv.expires_unix_ms));
  }
  res.body() = std::move(kv.value);
  return res;
}

HeadResponse StreamHead(unsigned version) {
  HeadResponse res{bhttp::status::ok, version};
  res.set(bhttp::field::content_type, "text/event-stream");
  res.set(bhttp::field::cache_control, "no-cache");
  res.set("X-Accel-Buffering", "no");  // proxies that buffer (nginx) pass events on at once
  return res;
}

// --- the calls, as plain functions (the coroutines only carry them out) ------------------------

Result<std::string> ListNamespaces(KvStore& kv, const std::string& prefix) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<NamespaceInfo> list, kv.ListNamespaces(prefix));
  return http_kv::NamespaceListJson(list);
}

Result<std::string> ScanPage(KvStore& kv, const std::string& ns, const ScanOptions& o) {
  PACKICE_ASSIGN_OR_RETURN(ScanResult page, kv.Scan(ns, o));
  return http_kv::ScanJson(page, o.keys_only);
}

Result<std::string> PutValue(KvStore& kv, const std::string& ns, const std::string& key,
                             const std::string& value, const PutOptions& o) {
  PACKICE_ASSIGN_OR_RETURN(PutResult r, kv.Put(ns, key, value, o));
  return http_kv::RevisionJson(r.revision, r.prev);
}

Result<std::string> DeleteKey(KvStore& kv, const std::string& ns, const std::string& key,
                              const DeleteOptions& o) {
  PACKICE_ASSIGN_OR_RETURN(DeleteResult r, kv.Delete(ns, key, o));
  return http_kv::RevisionJson(r.revision, r.prev);
}

Result<std::string> CommitBatch(KvStore& kv, const std::string& ns, const std::string& body) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<BatchOp> ops, http_kv::ParseBatch(body));
  PACKICE_ASSIGN_OR_RETURN(BatchResult r, kv.Commit(ns, ops));
  return http_kv::RevisionJson(r.revision, std::nullopt);
}

Status CreateNamespace(KvStore& kv, const std::string& ns, const std::string& body) {
  PACKICE_ASSIGN_OR_RETURN(NamespaceOptions o, http_kv::ParseNamespaceOptions(body));
  return kv.CreateNamespace(ns, o);
}

// --- a watch as server-sent events -------------------------------------------------------------

// Unhooks and cancels the watcher however the stream ends (the client went away, the node
// stops, the coroutine is destroyed): its notify then never reaches a dead connection.
struct WatcherGuard {
  KvWatcher* w;
  ~WatcherGuard() {
    w->SetNotify(nullptr);
    w->Cancel();
  }
};

template <typename Stream>
Task<bool> ServeWatch(Connection<Stream>& c, const Request& req, Exchange& x, const std::string& ns,
                      const WatchOptions& options) {
  const bool keep = req.keep_alive();
  KvStore* kv = c.kv();
  const std::string* n = &ns;  // the lambdas capture only pointers (GCC 12, see group_routes.cc)
  const WatchOptions* o = &options;
  Result<std::unique_ptr<KvWatcher>> opened =
      co_await c.KvCall([kv, n, o] { return kv->Watch(*n, *o); });
  if (!opened.ok()) co_return co_await c.Send(KvError(req.version(), opened.status()), x, keep);
  std::unique_ptr<KvWatcher> watcher = *std::move(opened);
  WatcherGuard guard{watcher.get()};
  // The notify runs on the store's publishing thread: it only posts to this connection.
  watcher->SetNotify(c.Waker());
  if (!co_await c.StartStream(StreamHead(req.version()), x)) co_return false;
  const std::chrono::milliseconds keepalive = c.opt().kv_watch_keepalive;
  for (;;) {
    // Pulled only now that the last chunk is in the socket: a client that does not read leaves
    // the events in the watcher's bounded buffer, which ends the watch when it overflows.
    Result<std::vector<KvEvent>> events =
        watcher->Next(std::chrono::steady_clock::time_point::min(), kEventsPerChunk);
    if (events.ok()) {
      const bool open_tail = events->size() >= kEventsPerChunk &&
                             events->front().kv.mod_revision == events->back().kv.mod_revision;
      Status sent = co_await c.SendChunk(http_kv::SseEvents(*events, open_tail));
      if (!sent.ok()) co_return false;
      continue;
    }
    if (events.status().code() != StatusCode::kTimeout) {
      Status sent =
          co_await c.SendChunk(http_kv::SseEnd(events.status(), watcher->resume_revision()));
      if (sent.ok()) (void)co_await c.EndStream();
      co_return false;
    }
    const auto wake = co_await c.WaitForWake(keepalive);
    if (wake == Connection<Stream>::Wake::kClientGone) co_return false;
    if (wake == Connection<Stream>::Wake::kTimeout) {
      Status sent = co_await c.SendChunk(http_kv::kSseKeepalive);
      if (!sent.ok()) co_return false;
    }
  }
}

// --- /v1/kv ------------------------------------------------------------------------------------

template <typename Stream>
Task<bool> ServeList(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view,
                     std::string_view query) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  if (req.method() != bhttp::verb::get) {
    co_return co_await c.Send(MethodNotAllowed(req, "GET", "use GET /v1/kv?prefix=P"), x, keep);
  }
  if (c.kv() == nullptr) co_return co_await c.SendError(req, x, NoKv(), keep);
  Result<KvQuery> q = KvQuery::Parse(query);
  if (!q.ok()) co_return co_await c.SendError(req, x, q.status(), keep);
  const std::string prefix = q->Get("prefix").value_or("");
  KvStore* kv = c.kv();
  const std::string* p = &prefix;
  Result<std::string> body = co_await c.KvCall([kv, p] { return ListNamespaces(*kv, *p); });
  if (!body.ok()) co_return co_await c.SendError(req, x, body.status(), keep);
  co_return co_await c.Send(Json(req.version(), bhttp::status::ok, *std::move(body)), x, keep);
}

// --- /v1/kv/{ns} -------------------------------------------------------------------------------

template <typename Stream>
Task<bool> HandleCreate(Connection<Stream>& c, Parser& parser, Exchange& x, const std::string& ns) {
  const Request& req = parser.get();
  std::string body;
  bool keep = req.keep_alive();
  if (!co_await ReadSmallBody(c, parser, x, kMaxOptionsBodyBytes, "a namespace's options", &body,
                              &keep)) {
    co_return keep;
  }
  KvStore* kv = c.kv();
  const std::string* n = &ns;
  const std::string* b = &body;
  Status s = co_await c.KvCall([kv, n, b] { return CreateNamespace(*kv, *n, *b); });
  if (s.code() == StatusCode::kAlreadyExists) {
    co_return co_await c.SendError(req, x, bhttp::status::conflict, s, keep);
  }
  if (!s.ok()) co_return co_await c.SendError(req, x, s, keep);
  co_return co_await c.Send(
      Json(req.version(), bhttp::status::created, http_kv::NamespaceCreatedJson(ns)), x, keep);
}

template <typename Stream>
Task<bool> HandleDropNamespace(Connection<Stream>& c, const Request& req, Exchange& x,
                               const std::string& ns) {
  const bool keep = req.keep_alive();
  KvStore* kv = c.kv();
  const std::string* n = &ns;
  Status s = co_await c.KvCall([kv, n] { return kv->DeleteNamespace(*n); });
  if (!s.ok()) co_return co_await c.SendError(req, x, s, keep);
  co_return co_await c.Send(TextResponse{bhttp::status::no_content, req.version()}, x, keep);
}

template <typename Stream>
Task<bool> HandleScan(Connection<Stream>& c, const Request& req, Exchange& x, const std::string& ns,
                      const KvQuery& q) {
  const bool keep = req.keep_alive();
  Result<ScanOptions> options = http_kv::ParseScanQuery(q);
  if (!options.ok()) co_return co_await c.SendError(req, x, options.status(), keep);
  KvStore* kv = c.kv();
  const std::string* n = &ns;
  const ScanOptions* o = &*options;
  Result<std::string> body = co_await c.KvCall([kv, n, o] { return ScanPage(*kv, *n, *o); });
  if (!body.ok()) co_return co_await c.SendError(req, x, body.status(), keep);
  co_return co_await c.Send(Json(req.version(), bhttp::status::ok, *std::move(body)), x, keep);
}

template <typename Stream>
Task<bool> HandleBatch(Connection<Stream>& c, Parser& parser, Exchange& x, const std::string& ns) {
  const Request& req = parser.get();
  std::string body;
  bool keep = req.keep_alive();
  if (!co_await ReadSmallBody(c, parser, x, BodyLimit(c.opt(), kMaxBatchBodyBytes), "a batch",
                              &body, &keep)) {
    co_return keep;
  }
  KvStore* kv = c.kv();
  const std::string* n = &ns;
  const std::string* b = &body;
  Result<std::string> answer = co_await c.KvCall([kv, n, b] { return CommitBatch(*kv, *n, *b); });
  if (!answer.ok()) co_return co_await c.Send(KvError(req.version(), answer.status()), x, keep);
  co_return co_await c.Send(Json(req.version(), bhttp::status::ok, *std::move(answer)), x, keep);
}

template <typename Stream>
Task<bool> HandleNamespaceWatch(Connection<Stream>& c, const Request& req, Exchange& x,
                                const std::string& ns, const KvQuery& q) {
  Result<WatchOptions> options =
      http_kv::ParseWatchQuery(q, std::nullopt, Header(req, "Last-Event-ID"));
  if (!options.ok()) co_return co_await c.SendError(req, x, options.status(), req.keep_alive());
  co_return co_await ServeWatch(c, req, x, ns, *options);
}

// A /v1/kv/{ns}[/{key}] request's namespace, key and query; else the error to answer with
// (the node serves no KV, a bad path, a bad query).
struct KvTarget {
  KvPath path;
  KvQuery query;
};
Result<KvTarget> ParseTarget(bool serves_kv, std::string_view path, std::string_view query) {
  if (!serves_kv) return NoKv();
  PACKICE_ASSIGN_OR_RETURN(KvPath p, http_kv::ParseKvPath(path.substr(http_kv::kKvPrefix.size())));
  PACKICE_ASSIGN_OR_RETURN(KvQuery q, KvQuery::Parse(query));
  return KvTarget{std::move(p), std::move(q)};
}

template <typename Stream>
Task<bool> ServeNamespace(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view path,
                          std::string_view query) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  // A body left unread closes the connection (ServeOne), so errors before it need no draining.
  Result<KvTarget> target = ParseTarget(c.kv() != nullptr, path, query);
  if (!target.ok()) co_return co_await c.SendError(req, x, target.status(), keep);
  const KvPath* p = &target->path;
  const KvQuery* q = &target->query;
  switch (req.method()) {
    case bhttp::verb::get:
      if (q->Flag("watch")) co_return co_await HandleNamespaceWatch(c, req, x, p->ns, *q);
      co_return co_await HandleScan(c, req, x, p->ns, *q);
    case bhttp::verb::put:
      co_return co_await HandleCreate(c, parser, x, p->ns);
    case bhttp::verb::delete_:
      co_return co_await HandleDropNamespace(c, req, x, p->ns);
    case bhttp::verb::post:
      if (q->Flag("batch")) co_return co_await HandleBatch(c, parser, x, p->ns);
      co_return co_await c.SendError(
          req, x, InvalidArgument("POST /v1/kv/{namespace} is a batch: add ?batch"), keep);
    default:
      co_return co_await c.Send(
          MethodNotAllowed(req, "GET, PUT, DELETE, POST", "use GET, PUT, DELETE or POST ?batch"), x,
          keep);
  }
}

// --- /v1/kv/{ns}/{key} -------------------------------------------------------------------------

template <typename Stream>
Task<bool> HandleGet(Connection<Stream>& c, const Request& req, Exchange& x, const KvPath& p) {
  const bool keep = req.keep_alive();
  KvStore* kv = c.kv();
  const KvPath* at = &p;
  Result<KeyValue> got = co_await c.KvCall([kv, at] { return kv->Get(at->ns, *at->key); });
  if (!got.ok()) co_return co_await c.SendError(req, x, got.status(), keep);
  co_return co_await c.Send(ValueResponse(req.version(), *std::move(got)), x, keep);
}

template <typename Stream>
Task<bool> HandleKeyWatch(Connection<Stream>& c, const Request& req, Exchange& x, const KvPath& p,
                          const KvQuery& q) {
  Result<WatchOptions> options = http_kv::ParseWatchQuery(q, p.key, Header(req, "Last-Event-ID"));
  if (!options.ok()) co_return co_await c.SendError(req, x, options.status(), req.keep_alive());
  co_return co_await ServeWatch(c, req, x, p.ns, *options);
}

template <typename Stream>
Task<bool> HandlePut(Connection<Stream>& c, Parser& parser, Exchange& x, const KvPath& p,
                     const KvQuery& q) {
  const Request& req = parser.get();
  bool keep = req.keep_alive();
  Result<std::optional<int64_t>> condition =
      http_kv::ParseCondition(Header(req, "If-Match"), Header(req, "If-None-Match"));
  if (!condition.ok()) co_return co_await c.SendError(req, x, condition.status(), keep);
  Result<PutOptions> options = http_kv::ParsePutOptions(q, *condition);
  if (!options.ok()) co_return co_await c.SendError(req, x, options.status(), keep);
  std::string value;
  if (!co_await ReadSmallBody(c, parser, x, BodyLimit(c.opt(), c.opt().kv_max_value_bytes),
                              "a value", &value, &keep)) {
    co_return keep;
  }
  KvStore* kv = c.kv();
  const KvPath* at = &p;
  const std::string* v = &value;
  const PutOptions* o = &*options;
  Result<std::string> answer =
      co_await c.KvCall([kv, at, v, o] { return PutValue(*kv, at->ns, *at->key, *v, *o); });
  if (!answer.ok()) co_return co_await c.Send(KvError(req.version(), answer.status()), x, keep);
  co_return co_await c.Send(Json(req.version(), bhttp::status::ok, *std::move(answer)), x, keep);
}

template <typename Stream>
Task<bool> HandleDelete(Connection<Stream>& c, const Request& req, Exchange& x, const KvPath& p,
                        const KvQuery& q) {
  const bool keep = req.keep_alive();
  Result<std::optional<int64_t>> condition =
      http_kv::ParseCondition(Header(req, "If-Match"), Header(req, "If-None-Match"));
  if (!condition.ok()) co_return co_await c.SendError(req, x, condition.status(), keep);
  Result<DeleteOptions> options = http_kv::ParseDeleteOptions(q, *condition);
  if (!options.ok()) co_return co_await c.SendError(req, x, options.status(), keep);
  KvStore* kv = c.kv();
  const KvPath* at = &p;
  const DeleteOptions* o = &*options;
  Result<std::string> answer =
      co_await c.KvCall([kv, at, o] { return DeleteKey(*kv, at->ns, *at->key, *o); });
  if (!answer.ok()) co_return co_await c.Send(KvError(req.version(), answer.status()), x, keep);
  co_return co_await c.Send(Json(req.version(), bhttp::status::ok, *std::move(answer)), x, keep);
}

template <typename Stream>
Task<bool> ServeKey(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view path,
                    std::string_view query) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  Result<KvTarget> target = ParseTarget(c.kv() != nullptr, path, query);
  if (!target.ok()) co_return co_await c.SendError(req, x, target.status(), keep);
  const KvPath* p = &target->path;
  const KvQuery* q = &target->query;
  switch (req.method()) {
    case bhttp::verb::get:
      if (q->Flag("watch")) co_return co_await HandleKeyWatch(c, req, x, *p, *q);
      co_return co_await HandleGet(c, req, x, *p);
    case bhttp::verb::put:
      co_return co_await HandlePut(c, parser, x, *p, *q);
    case bhttp::verb::delete_:
      co_return co_await HandleDelete(c, req, x, *p, *q);
    default:
      co_return co_await c.Send(MethodNotAllowed(req, "GET, PUT, DELETE", "use GET, PUT or DELETE"),
                                x, keep);
  }
}

bool IsList(std::string_view path) { return path == http_kv::kKvPath; }
// "/v1/kv/{ns}": no '/' after the segment ("/v1/kv/" is an empty namespace: 400).
bool IsNamespace(std::string_view path) {
  return path.starts_with(http_kv::kKvPrefix) &&
         path.find('/', http_kv::kKvPrefix.size()) == std::string_view::npos;
}
bool IsKey(std::string_view path) {
  return path.starts_with(http_kv::kKvPrefix) &&
         path.find('/', http_kv::kKvPrefix.size()) != std::string_view::npos;
}

}  // namespace

Route KvListRoute() {
  return {"/v1/kv", &IsList, /*needs_token=*/true, &ServeList<PlainStream>, &ServeList<TlsStream>};
}

Route KvNamespaceRoute() {
  return {"/v1/kv/{ns}", &IsNamespace, /*needs_token=*/true, &ServeNamespace<PlainStream>,
          &ServeNamespace<TlsStream>};
}

Route KvKeyRoute() {
  return {"/v1/kv/{ns}/{key}", &IsKey, /*needs_token=*/true, &ServeKey<PlainStream>,
          &ServeKey<TlsStream>};
}

}  // namespace packice::http_server
