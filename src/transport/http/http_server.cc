#include "transport/http/http_server.h"

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
//
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <chrono>
#include <limits>
#include <unordered_map>

#include "core/metrics.h"
#include "core/mutex.h"
#include "transport/http/growing_upload.h"
#include "transport/http/http_common.h"
#include "transport/http/http_request.h"
#include "transport/http/object_plan.h"

namespace packice {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
template <typename T>
using Task = asio::awaitable<T>;
using Parser = bhttp::request_parser<bhttp::buffer_body>;
using Request = bhttp::request<bhttp::buffer_body>;
using TextResponse = bhttp::response<bhttp::string_body>;
using HeadResponse = bhttp::response<bhttp::empty_body>;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

using http_request::IfNoneMatchMatches;
using http_request::ParseQuery;
using http_request::ParseRange;
using http_request::RangeRequest;
using http_request::SplitTarget;

constexpr size_t kChunk = 1 << 20;     // body bytes moved per step through a bounce buffer
constexpr size_t kViewStep = 8 << 20;  // bytes written per step straight from a mapped object
// GET bodies up to this size of objects the node maps leave with their headers in one write.
constexpr uint64_t kOneWriteMax = 64 * 1024;
// A refused PUT body up to this size is read and dropped to keep the connection.
constexpr uint64_t kDrainMax = 64 * 1024;
// After a chunked body is refused mid-way, this much more of it is read and dropped (each read
// waiting at most kDrainTimeout) before the connection closes.
constexpr uint64_t kChunkedDrainMax = 1 << 20;
constexpr std::chrono::milliseconds kDrainTimeout{1000};
constexpr std::string_view kObjectPrefix = "/v1/objects/";  // http::kObjectsPath + "/"

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

bool IEqualsPrefix(std::string_view s, std::string_view lower_prefix) {
  if (s.size() < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_prefix[i]) return false;
  }
  return true;
}

// The JSON error body and X-Packice-Error header every error carries.
TextResponse ErrorResponse(unsigned version, bhttp::status st, const Status& s) {
  TextResponse res{st, version};
  res.set(bhttp::field::content_type, "application/json");
  res.set("X-Packice-Error", std::string(StatusCodeName(s.code())));
  res.body() = http::ErrorJson(s);
  return res;
}

TextResponse ErrorResponse(unsigned version, const Status& s) {
  return ErrorResponse(version, static_cast<bhttp::status>(http::HttpStatusForCode(s.code())), s);
}

TextResponse RefusalResponse(unsigned version, const http_plan::Refusal& r) {
  return ErrorResponse(version, static_cast<bhttp::status>(r.http_status), r.error);
}

// The request's headers as the planning functions (object_plan.h) take them.
template <typename Fields>
std::vector<http_plan::Header> HeadersOf(const Fields& fields) {
  std::vector<http_plan::Header> out;
  for (const auto& f : fields) out.push_back({View(f.name_string()), View(f.value())});
  return out;
}

std::optional<uint64_t> ToStd(boost::optional<uint64_t> v) {
  return v ? std::optional<uint64_t>(*v) : std::nullopt;
}

std::string ETagOf(const ObjectInfo& info) {
  return http::FormatETag(info.version, info.created_unix_ms, info.tier);
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

bool IsMappedInProcess(const Blob& blob) {
  return blob.kind() == "memory" || blob.kind() == "heap";
}

// Ends a lease when the request that holds it ends, however it ends (a client that goes away
// mid-body destroys the coroutine): a create lease's object is discarded.
class LeaseGuard {
 public:
  LeaseGuard(Peer& peer, LeaseId lease) : peer_(peer), lease_(lease) {}
  ~LeaseGuard() {
    if (lease_ != 0) (void)peer_.Release(lease_);
  }
  LeaseGuard(const LeaseGuard&) = delete;
  LeaseGuard& operator=(const LeaseGuard&) = delete;
  void Forget() { lease_ = 0; }

 private:
  Peer& peer_;
  LeaseId lease_;
};

// The route label of metrics: a template, never a key, so the label set stays bounded.
enum class Route { kObject, kObjects, kHealth, kMetrics, kOther };
std::string_view RouteName(Route r) {
  switch (r) {
    case Route::kObject:
      return "/v1/objects/{key}";
    case Route::kObjects:
      return "/v1/objects";
    case Route::kHealth:
      return "/healthz";
    case Route::kMetrics:
      return "/metrics";
    default:
      return "other";
  }
}

// Completion of a connection's coroutine: a throw is a bug, logged rather than lost.
void LogIfThrown(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("event=http_connection_failed error=\"{}\"", ex.what());
  } catch (...) {
    spdlog::error("event=http_connection_failed error=unknown");
  }
}

class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  virtual void Close() = 0;
};

}  // namespace

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(asio::io_context& io, std::shared_ptr<LocalPeer> peer, HttpServerOptions options,
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
                .With({})) {}

  ~Impl() { blocking_.join(); }

  Status Start();
  void Stop();
  uint16_t port() const { return port_; }

  Peer& peer() { return *peer_; }
  const HttpServerOptions& options() const { return options_; }
  MetricsRegistry& metrics() { return *metrics_; }
  asio::thread_pool& blocking() { return blocking_; }

  void Register(ConnectionBase* c, std::weak_ptr<ConnectionBase> w) {
    MutexLock lock(&mu_);
    conns_[c] = std::move(w);
    open_connections_.Add(1);
  }
  void Unregister(ConnectionBase* c) {
    MutexLock lock(&mu_);
    conns_.erase(c);
    open_connections_.Add(-1);
  }
  size_t connection_count() {
    MutexLock lock(&mu_);
    return conns_.size();
  }

  void Record(Route route, std::string_view method, unsigned status, Clock::duration took) {
    std::string code = std::to_string(status);
    requests_.With({RouteName(route), method, code}).Inc();
    latency_.With({RouteName(route), method}).Observe(std::chrono::duration<double>(took).count());
  }
  void CountReceived(uint64_t n) { bytes_received_.Inc(n); }
  void CountSent(uint64_t n) { bytes_sent_.Inc(n); }

 private:
  Task<void> AcceptLoop();
  Task<void> RejectBusy(beast::tcp_stream stream);

  asio::io_context& io_;
  std::shared_ptr<LocalPeer> peer_;
  HttpServerOptions options_;
  std::shared_ptr<MetricsRegistry> metrics_;
  tcp::acceptor acceptor_;
  std::optional<ssl::context> tls_;
  uint16_t port_ = 0;
  // Peer calls that may wait on a disk (a durable seal, a write into a file) run here, so that
  // one slow disk never stalls the io threads.
  asio::thread_pool blocking_{2};
  Family<Counter>& requests_;
  Family<Histogram>& latency_;
  Gauge& open_connections_;
  Counter& bytes_received_;
  Counter& bytes_sent_;
  Mutex mu_;
  std::unordered_map<ConnectionBase*, std::weak_ptr<ConnectionBase>> conns_ ABSL_GUARDED_BY(mu_);
};

namespace {

// One HTTP connection: reads requests in order and answers each before reading the next.
// Runs as a coroutine on its own strand.
template <typename Stream>
class Connection : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Connection(std::shared_ptr<HttpServer::Impl> server, Stream stream)
      : server_(std::move(server)), stream_(std::move(stream)) {}
  ~Connection() override { server_->Unregister(this); }

  // Serves the connection until it closes; `self` keeps it alive meanwhile (a coroutine frame
  // holds its parameters, not `this`'s owner).
  static Task<void> Run(std::shared_ptr<Connection> self) { co_await self->Serve(); }
  void Close() override {
    asio::post(stream_.get_executor(), [w = this->weak_from_this()] {
      if (auto self = w.lock()) {
        error_code ec;
        self->socket().close(ec);
      }
    });
  }

 private:
  struct Exchange {
    Route route = Route::kOther;
    unsigned status = 0;
  };

  Task<void> Serve();
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  tcp::socket& socket() { return lowest().socket(); }
  const HttpServerOptions& opt() const { return server_->options(); }
  Peer& peer() { return server_->peer(); }

  // Serves one request; returns whether the connection stays open for another.
  Task<bool> ServeOne();
  Task<bool> Dispatch(Parser& parser, Exchange& x);
  Task<bool> HandleGet(Parser& parser, Exchange& x, const std::string& key, bool head);
  Task<bool> HandlePut(Parser& parser, Exchange& x, const std::string& key);
  Task<bool> PutChunked(Parser& parser, Exchange& x, const http_plan::PutPlan& plan, bool existed);
  Task<bool> SendContinue(const Request& req);
  Task<bool> AbortPut(const Request& req, Exchange& x, const std::string& key, const Status& read);
  Task<bool> SendPutResult(const Request& req, Exchange& x, const Result<ObjectInfo>& sealed,
                           bool existed);
  // Reads a chunked body into `upload`. On a refusal (over the limit, no room) sets `refused`
  // and returns its error; other errors are the connection's (timeout, malformed, gone).
  Task<Status> ReadChunkedBody(Parser& parser, GrowingUpload& upload, http_plan::Refusal* refused);
  Task<Status> AppendChunk(GrowingUpload& upload, std::span<const char> data);
  Status BodyReadError(error_code ec, uint64_t received) const;
  Task<void> DrainChunked(Parser& parser);
  Task<bool> HandleList(Parser& parser, Exchange& x, std::string_view query);

  Task<bool> Send(TextResponse res, Exchange& x, bool keep_alive);
  Task<bool> SendError(const Request& req, Exchange& x, const Status& s, bool keep_alive) {
    return Send(ErrorResponse(req.version(), s), x, keep_alive);
  }
  Task<bool> SendError(const Request& req, Exchange& x, bhttp::status st, const Status& s,
                       bool keep_alive) {
    return Send(ErrorResponse(req.version(), st, s), x, keep_alive);
  }
  Task<bool> RefusePut(Parser& parser, Exchange& x, TextResponse res);
  Task<Status> ReadBody(Parser& parser, Blob& blob, LeaseId lease, Duration lease_ttl);
  Task<Status> SendBody(Blob& blob, uint64_t first, uint64_t length, LeaseId lease,
                        Duration lease_ttl);
  Task<Status> SendFile(int fd, uint64_t offset, uint64_t length, LeaseId lease,
                        Duration lease_ttl);
  Task<error_code> WaitWritable();
  // A deadline for one read that cancels the read and leaves the socket open. Beast's own
  // (expires_after) closes the socket when it passes, after which no 408 can be sent.
  class ReadDeadline {
   public:
    ReadDeadline(Connection& c, std::chrono::milliseconds timeout)
        : timer_(c.stream_.get_executor()), state_(std::make_shared<State>()) {
      c.lowest().expires_never();
      timer_.expires_after(timeout);
      timer_.async_wait([w = c.weak_from_this(), state = state_](const error_code& ec) {
        if (ec || state->done) return;  // both run on the connection's strand
        state->fired = true;
        if (auto self = w.lock()) {
          error_code ignored;
          self->socket().cancel(ignored);
        }
      });
    }
    ~ReadDeadline() {
      state_->done = true;
      timer_.cancel();
    }
    // The read's error, a cancel by this deadline reported as beast::error::timeout.
    error_code Map(error_code ec) const {
      if (state_->fired && ec == asio::error::operation_aborted) return beast::error::timeout;
      return ec;
    }

   private:
    struct State {
      bool fired = false;
      bool done = false;
    };
    asio::steady_timer timer_;
    std::shared_ptr<State> state_;
  };
  // TCP_CORK on a plain socket: holds partial segments until uncorked.
  void Cork(bool on) {
    if constexpr (!kTls) {
      int v = on ? 1 : 0;
      (void)::setsockopt(socket().native_handle(), IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
    }
  }
  // Runs `f` on the blocking pool and resumes here with its result.
  template <typename F>
  Task<std::invoke_result_t<F>> Blocking(F f) {
    using R = std::invoke_result_t<F>;
    // co_spawn's result must be default-constructible; Result<T> is not.
    std::optional<R> r = co_await asio::co_spawn(
        server_->blocking(),
        [f = std::move(f)]() mutable -> Task<std::optional<R>> { co_return f(); },
        asio::use_awaitable);
    co_return std::move(*r);
  }
  // Keeps a long transfer's lease alive.
  void MaybeRenew(LeaseId lease, Duration ttl, Clock::time_point& last) {
    auto now = Clock::now();
    if (now - last >= ttl / 3) {
      (void)peer().Renew(lease);
      last = now;
    }
  }
  bool Authorized(const Request& req) const;
  std::vector<char>& chunk() {
    if (chunk_.empty()) chunk_.resize(kChunk);
    return chunk_;
  }

  std::shared_ptr<HttpServer::Impl> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::vector<char> chunk_;
  bool body_read_ = false;  // this request's body was read past the parser (ReadBody)
};

template <typename Stream>
Task<void> Connection<Stream>::Serve() {
  error_code ec;
  if constexpr (kTls) {
    lowest().expires_after(opt().io_timeout);
    co_await stream_.async_handshake(ssl::stream_base::server,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      spdlog::debug("event=http_tls_handshake_failed error=\"{}\"", ec.message());
      co_return;
    }
  }
  while (co_await ServeOne()) {
  }
  if constexpr (kTls) {
    lowest().expires_after(std::chrono::seconds(2));
    co_await stream_.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  } else {
    socket().shutdown(tcp::socket::shutdown_send, ec);
  }
}

template <typename Stream>
bool Connection<Stream>::Authorized(const Request& req) const {
  const std::string& token = opt().bearer_token;
  if (token.empty()) return true;
  std::string_view got = View(req[bhttp::field::authorization]);
  constexpr std::string_view kBearer = "Bearer ";
  if (!IEqualsPrefix(got, "bearer ")) return false;
  got.remove_prefix(kBearer.size());
  return got.size() == token.size() && CRYPTO_memcmp(got.data(), token.data(), got.size()) == 0;
}

template <typename Stream>
Task<bool> Connection<Stream>::ServeOne() {
  Parser parser;
  parser.header_limit(static_cast<std::uint32_t>(opt().max_header_bytes));
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // PUT checks its own length
  error_code ec;
  {
    ReadDeadline deadline(*this, opt().idle_timeout);
    co_await bhttp::async_read_header(stream_, buffer_, parser,
                                      asio::redirect_error(asio::use_awaitable, ec));
    ec = deadline.Map(ec);
  }
  if (ec) {
    spdlog::debug("event=http_read_failed error=\"{}\"", ec.message());
    Exchange x;
    unsigned version = 11;
    if (ec == bhttp::error::header_limit) {
      co_await Send(ErrorResponse(version, bhttp::status::request_header_fields_too_large,
                                  ProtocolError("request headers over " +
                                                std::to_string(opt().max_header_bytes) + " bytes")),
                    x, false);
    } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
               ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      co_await Send(ErrorResponse(version, bhttp::status::bad_request,
                                  ProtocolError("malformed request: " + ec.message())),
                    x, false);
    } else if (ec == beast::error::timeout && buffer_.size() > 0) {
      co_await Send(ErrorResponse(version, bhttp::status::request_timeout,
                                  Timeout("no complete request headers within the timeout")),
                    x, false);
    }
    if (x.status != 0) server_->Record(Route::kOther, "-", x.status, {});
    co_return false;
  }
  auto start = Clock::now();
  Exchange x;
  body_read_ = false;
  bool keep = co_await Dispatch(parser, x);
  const Request& req = parser.get();
  if (x.status != 0) {
    server_->Record(x.route, View(req.method_string()), x.status, Clock::now() - start);
    spdlog::debug(
        "event=http_request method={} target=\"{}\" status={} us={}", View(req.method_string()),
        View(req.target()), x.status,
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
  }
  // A body nobody read would be taken for the next request: such a connection closes.
  const bool body_done = parser.is_done() || body_read_;
  co_return (keep && body_done);
}

template <typename Stream>
Task<bool> Connection<Stream>::Dispatch(Parser& parser, Exchange& x) {
  const Request& req = parser.get();
  bool keep = req.keep_alive();
  auto [path, query] = SplitTarget(View(req.target()));
  bhttp::verb method = req.method();

  if (path == "/healthz") {
    x.route = Route::kHealth;
    if (method != bhttp::verb::get && method != bhttp::verb::head) {
      TextResponse res = ErrorResponse(req.version(), bhttp::status::method_not_allowed,
                                       InvalidArgument("use GET /healthz"));
      res.set(bhttp::field::allow, "GET, HEAD");
      co_return co_await Send(std::move(res), x, keep);
    }
    TextResponse res{bhttp::status::ok, req.version()};
    res.set(bhttp::field::content_type, "text/plain");
    res.body() = "ok\n";
    co_return co_await Send(std::move(res), x, keep);
  }
  if (path == "/metrics") x.route = Route::kMetrics;
  if (path == http::kObjectsPath) x.route = Route::kObjects;
  // "/v1/objects/" names the empty key: 400 below (docs/http.md), never a listing or a POST.
  if (path.starts_with(kObjectPrefix)) x.route = Route::kObject;
  if (x.route == Route::kOther) {
    co_return co_await SendError(req, x,
                                 NotFound("no route for '" + std::string(path.substr(0, 256)) +
                                          "': the API is under /v1/objects"),
                                 keep);
  }
  if (!Authorized(req)) {
    TextResponse res = ErrorResponse(req.version(), bhttp::status::unauthorized,
                                     PermissionDenied("missing or wrong bearer token"));
    res.set(bhttp::field::www_authenticate, "Bearer realm=\"packice\"");
    co_return co_await Send(std::move(res), x, keep);
  }

  if (x.route == Route::kMetrics) {
    if (method != bhttp::verb::get) {
      TextResponse res = ErrorResponse(req.version(), bhttp::status::method_not_allowed,
                                       InvalidArgument("use GET /metrics"));
      res.set(bhttp::field::allow, "GET");
      co_return co_await Send(std::move(res), x, keep);
    }
    TextResponse res{bhttp::status::ok, req.version()};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = server_->metrics().Render();
    co_return co_await Send(std::move(res), x, keep);
  }

  if (x.route == Route::kObjects) {
    if (method == bhttp::verb::get) co_return co_await HandleList(parser, x, query);
    if (method == bhttp::verb::post) co_return co_await HandlePut(parser, x, std::string());
    TextResponse res = ErrorResponse(req.version(), bhttp::status::method_not_allowed,
                                     InvalidArgument("use GET (list) or POST (create)"));
    res.set(bhttp::field::allow, "GET, POST");
    co_return co_await Send(std::move(res), x, keep);
  }

  std::optional<std::string> key = http::PercentDecode(path.substr(kObjectPrefix.size()));
  if (!key) {
    co_return co_await SendError(req, x, InvalidArgument("bad percent escape in the key"), keep);
  }
  if (key->empty()) {  // HandlePut would take it for a POST and generate an id
    co_return co_await SendError(req, x, InvalidArgument("empty key"), false);
  }
  switch (method) {
    case bhttp::verb::get:
      co_return co_await HandleGet(parser, x, *key, false);
    case bhttp::verb::head:
      co_return co_await HandleGet(parser, x, *key, true);
    case bhttp::verb::put:
      co_return co_await HandlePut(parser, x, *key);
    case bhttp::verb::delete_: {
      Status s = peer().Delete(*key);
      if (!s.ok()) co_return co_await SendError(req, x, s, keep);
      TextResponse res{bhttp::status::no_content, req.version()};
      co_return co_await Send(std::move(res), x, keep);
    }
    default: {
      TextResponse res = ErrorResponse(req.version(), bhttp::status::method_not_allowed,
                                       InvalidArgument("use GET, HEAD, PUT or DELETE"));
      res.set(bhttp::field::allow, "GET, HEAD, PUT, DELETE");
      co_return co_await Send(std::move(res), x, keep);
    }
  }
}

template <typename Stream>
Task<bool> Connection<Stream>::Send(TextResponse res, Exchange& x, bool keep_alive) {
  x.status = res.result_int();
  res.keep_alive(keep_alive);
  res.prepare_payload();
  lowest().expires_after(opt().io_timeout);
  error_code ec;
  co_await bhttp::async_write(stream_, res, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) server_->CountSent(res.body().size());
  co_return !ec && keep_alive;
}

template <typename Stream>
Task<bool> Connection<Stream>::HandleGet(Parser& parser, Exchange& x, const std::string& key,
                                         bool head) {
  const Request& req = parser.get();
  bool keep = req.keep_alive();
  AcquireRequest acquire;
  acquire.key = key;
  acquire.mode = LeaseMode::kRead;
  auto grant = peer().Acquire(acquire);
  if (!grant.ok()) co_return co_await SendError(req, x, grant.status(), keep);
  LeaseGuard guard(peer(), grant->lease);
  const ObjectInfo& info = grant->info;
  std::string etag = ETagOf(info);

  HeadResponse res{bhttp::status::ok, req.version()};
  SetObjectHeaders(res, info, etag);
  res.set(bhttp::field::accept_ranges, "bytes");
  auto type = info.meta.find("content-type");
  res.set(bhttp::field::content_type,
          type != info.meta.end() ? type->second : std::string("application/octet-stream"));

  if (auto inm = req.find(bhttp::field::if_none_match);
      inm != req.end() && IfNoneMatchMatches(View(inm->value()), etag)) {
    res.result(bhttp::status::not_modified);
    res.erase(bhttp::field::content_type);
    res.keep_alive(keep);
    x.status = res.result_int();
    bhttp::serializer<false, bhttp::empty_body> sr{res};
    lowest().expires_after(opt().io_timeout);
    error_code ec;
    co_await bhttp::async_write(stream_, sr, asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec && keep;
  }

  uint64_t first = 0;
  uint64_t length = info.size;
  auto range_header = req.find(bhttp::field::range);
  auto if_range = req.find(bhttp::field::if_range);
  bool range_applies =
      range_header != req.end() && (if_range == req.end() || View(if_range->value()) == etag);
  if (range_applies) {
    RangeRequest r = ParseRange(View(range_header->value()), info.size);
    if (r.kind == RangeRequest::Kind::kUnsatisfiable) {
      TextResponse err = ErrorResponse(
          req.version(), bhttp::status::range_not_satisfiable,
          InvalidArgument("range '" + std::string(View(range_header->value())) +
                          "' starts past the end of " + std::to_string(info.size) + " bytes"));
      err.set(bhttp::field::content_range, "bytes */" + std::to_string(info.size));
      co_return co_await Send(std::move(err), x, keep);
    }
    if (r.kind == RangeRequest::Kind::kPartial) {
      first = r.range.first;
      length = r.range.length;
      res.result(bhttp::status::partial_content);
      res.set(bhttp::field::content_range, "bytes " + std::to_string(first) + "-" +
                                               std::to_string(first + length - 1) + "/" +
                                               std::to_string(info.size));
    }
  }
  res.content_length(length);
  res.keep_alive(keep);
  x.status = res.result_int();
  Blob& blob = *grant->blob;
  error_code ec;
  if (!head && length > 0 && length <= kOneWriteMax && IsMappedInProcess(blob)) {
    // A small object the node maps: headers and bytes leave in one write (one TCP segment).
    auto opened = blob.OpenView(LeaseMode::kRead);
    if (opened.ok() && first + length <= (*opened)->bytes().size()) {
      const char* bytes = reinterpret_cast<const char*>((*opened)->bytes().data());
      bhttp::response<bhttp::span_body<const char>> full{
          std::move(res.base()), std::span<const char>(bytes + first, length)};
      lowest().expires_after(opt().io_timeout);
      co_await bhttp::async_write(stream_, full, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return false;
      server_->CountSent(length);
      co_return keep;
    }
  }
  // Headers, then the body in pieces. On plain TCP the socket is corked meanwhile, so that the
  // headers share a segment with the first bytes.
  Cork(true);
  bhttp::serializer<false, bhttp::empty_body> sr{res};
  lowest().expires_after(opt().io_timeout);
  co_await bhttp::async_write_header(stream_, sr, asio::redirect_error(asio::use_awaitable, ec));
  Status sent;
  if (ec) {
    sent = Unavailable("send: " + ec.message());
  } else if (!head && length > 0) {
    sent = co_await SendBody(blob, first, length, grant->lease, grant->lease_ttl);
  }
  Cork(false);
  if (!sent.ok()) {
    spdlog::debug("event=http_send_failed key=\"{}\" error=\"{}\"", key, sent.ToString());
    co_return false;  // the length was promised: only closing tells the client
  }
  co_return keep;
}

template <typename Stream>
Task<Status> Connection<Stream>::SendBody(Blob& blob, uint64_t first, uint64_t length,
                                          LeaseId lease, Duration lease_ttl) {
  auto last_renew = Clock::now();
  error_code ec;
  if constexpr (!kTls) {
    // Straight from the object's file: sendfile(2), no copy in the node. Not from a memory
    // segment: sendfile queues references to its pages, not copies, and once the lease ends
    // (when the last byte is queued, not delivered) the segment is zeroed and reused by the
    // pool while the socket's send queue still holds up to a few MiB of its pages.
    auto exported = IsMappedInProcess(blob) ? Result<BlobExport>(Unimplemented("mapped"))
                                            : blob.Export(LeaseMode::kRead);
    if (exported.ok() && exported->kind == BlobExport::Kind::kFd) {
      co_return co_await SendFile(exported->fd.get(), exported->offset + first, length, lease,
                                  lease_ttl);
    }
  }
  if (IsMappedInProcess(blob)) {
    // The node's own mapping of the object (TLS, or no descriptor): written from there.
    auto opened = blob.OpenView(LeaseMode::kRead);
    if (!opened.ok()) co_return opened.status();
    std::shared_ptr<BlobView> view = *opened;
    std::span<std::byte> bytes = view->bytes();
    if (first + length > bytes.size()) co_return Internal("object view shorter than its size");
    uint64_t done = 0;
    while (done < length) {
      // write_some with a deadline each: io_timeout bounds a stall, not an 8 MiB write.
      size_t want = static_cast<size_t>(std::min<uint64_t>(length - done, kViewStep));
      lowest().expires_after(opt().io_timeout);
      size_t n = co_await stream_.async_write_some(asio::buffer(bytes.data() + first + done, want),
                                                   asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return Unavailable("send: " + ec.message());
      done += n;
      server_->CountSent(n);
      MaybeRenew(lease, lease_ttl, last_renew);
    }
    co_return Status();
  }
  // TLS and a file: through a bounce buffer.
  std::vector<char>& buf = chunk();
  uint64_t done = 0;
  while (done < length) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(length - done, buf.size()));
    auto out = std::as_writable_bytes(std::span<char>(buf.data(), n));
    Status read = co_await Blocking([&blob, out, at = first + done] { return blob.Read(at, out); });
    if (!read.ok()) co_return read;
    for (size_t sent = 0; sent < n;) {  // a deadline per write: io_timeout bounds a stall
      lowest().expires_after(opt().io_timeout);
      sent += co_await stream_.async_write_some(asio::buffer(buf.data() + sent, n - sent),
                                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return Unavailable("send: " + ec.message());
    }
    done += n;
    server_->CountSent(n);
    MaybeRenew(lease, lease_ttl, last_renew);
  }
  co_return Status();
}

template <typename Stream>
Task<error_code> Connection<Stream>::WaitWritable() {
  // A socket wait has no Beast deadline: a timer closes a socket that makes no progress.
  asio::steady_timer timer(stream_.get_executor());
  timer.expires_after(opt().io_timeout);
  timer.async_wait([w = this->weak_from_this()](const error_code& ec) {
    if (ec) return;
    if (auto self = w.lock()) {
      error_code ignored;
      self->socket().cancel(ignored);
    }
  });
  error_code ec;
  co_await socket().async_wait(tcp::socket::wait_write,
                               asio::redirect_error(asio::use_awaitable, ec));
  timer.cancel();
  co_return ec;
}

template <typename Stream>
Task<Status> Connection<Stream>::SendFile(int fd, uint64_t offset, uint64_t length, LeaseId lease,
                                          Duration lease_ttl) {
  // Straight from the file (or shared-memory segment) to the socket: no copy in the node.
  auto last_renew = Clock::now();
  error_code ec;
  socket().native_non_blocking(true, ec);
  if (ec) co_return Internal("socket: " + ec.message());
  int sock = socket().native_handle();
  off_t off = static_cast<off_t>(offset);
  uint64_t left = length;
  while (left > 0) {
    ssize_t n = ::sendfile(sock, fd, &off, static_cast<size_t>(std::min<uint64_t>(left, 1 << 30)));
    if (n > 0) {
      left -= static_cast<uint64_t>(n);
      server_->CountSent(static_cast<uint64_t>(n));
      MaybeRenew(lease, lease_ttl, last_renew);
      continue;
    }
    if (n == 0) co_return Internal("object file shorter than its size");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) co_return Unavailable(std::string("sendfile: ") + strerror(errno));
    if (error_code w = co_await WaitWritable(); w) {
      co_return Unavailable("send: " + w.message());
    }
  }
  co_return Status();
}

template <typename Stream>
Task<bool> Connection<Stream>::HandlePut(Parser& parser, Exchange& x, const std::string& key) {
  Request& req = parser.get();
  std::vector<http_plan::Header> headers = HeadersOf(req);
  http_plan::PutPlan plan = http_plan::PlanPut(
      headers, key, {req.chunked(), ToStd(parser.content_length())}, opt().max_body_bytes);
  if (plan.refusal)
    co_return co_await RefusePut(parser, x, RefusalResponse(req.version(), *plan.refusal));
  const bool existed = !key.empty() && !plan.acquire.create.exclusive && peer().Stat(key).ok();
  if (plan.chunked) co_return co_await PutChunked(parser, x, plan, existed);
  auto grant = peer().Acquire(plan.acquire);
  if (!grant.ok()) {
    co_return co_await RefusePut(parser, x, ErrorResponse(req.version(), grant.status()));
  }
  LeaseGuard guard(peer(), grant->lease);
  if (plan.expect_continue && !co_await SendContinue(req)) co_return false;
  Blob& blob = *grant->blob;
  Status read = co_await ReadBody(parser, blob, grant->lease, grant->lease_ttl);
  if (!read.ok()) co_return co_await AbortPut(req, x, key, read);
  LeaseId lease = grant->lease;
  const uint64_t size = plan.acquire.size;
  Peer& p = peer();
  // (Not a ?: around co_await: GCC 12 miscompiles temporaries there.)
  Result<ObjectInfo> sealed = InvalidArgument("unsealed");
  if (IsMappedInProcess(blob)) {
    sealed = p.Seal(lease, size);
  } else {
    sealed = co_await Blocking([&p, lease, size] { return p.Seal(lease, size); });
  }
  if (SealEndedLease(sealed.status())) guard.Forget();
  co_return co_await SendPutResult(req, x, sealed, existed);
}

template <typename Stream>
Task<bool> Connection<Stream>::PutChunked(Parser& parser, Exchange& x,
                                          const http_plan::PutPlan& plan, bool existed) {
  const Request& req = parser.get();
  Peer& p = peer();
  auto started =
      co_await Blocking([&p, &plan] { return GrowingUpload::Start(p, plan.acquire, plan.limit); });
  if (!started.ok()) {
    co_return co_await SendError(req, x, started.status(), false);  // a chunked body cannot be
                                                                    // skipped by its length
  }
  std::unique_ptr<GrowingUpload> upload = std::move(*started);
  if (plan.expect_continue && !co_await SendContinue(req)) co_return false;
  http_plan::Refusal refused;
  Status read = co_await ReadChunkedBody(parser, *upload, &refused);
  if (!read.ok()) {
    if (refused.http_status == 0) co_return co_await AbortPut(req, x, plan.acquire.key, read);
    upload.reset();  // discarded before the answer: a client that sees it sees no object
    co_await Send(RefusalResponse(req.version(), refused), x, false);
    co_await DrainChunked(parser);
    co_return false;
  }
  GrowingUpload* u = upload.get();
  Result<ObjectInfo> sealed = co_await Blocking([u] { return u->Seal(); });
  co_return co_await SendPutResult(req, x, sealed, existed);
}

template <typename Stream>
Task<bool> Connection<Stream>::SendContinue(const Request& req) {
  HeadResponse cont{bhttp::status::continue_, req.version()};
  lowest().expires_after(opt().io_timeout);
  error_code ec;
  co_await bhttp::async_write(stream_, cont, asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

template <typename Stream>
Task<bool> Connection<Stream>::AbortPut(const Request& req, Exchange& x, const std::string& key,
                                        const Status& read) {
  spdlog::debug("event=http_put_aborted key=\"{}\" error=\"{}\"", key, read.ToString());
  if (read.code() == StatusCode::kTimeout) {
    co_await SendError(req, x, bhttp::status::request_timeout, read, false);
  } else if (read.code() != StatusCode::kUnavailable) {
    co_await SendError(req, x, read, false);
  }
  co_return false;
}

template <typename Stream>
Task<bool> Connection<Stream>::SendPutResult(const Request& req, Exchange& x,
                                             const Result<ObjectInfo>& sealed, bool existed) {
  bool keep = req.keep_alive();
  if (!sealed.ok()) co_return co_await SendError(req, x, sealed.status(), keep);
  std::string etag = ETagOf(*sealed);
  if (existed) {
    TextResponse res{bhttp::status::no_content, req.version()};
    SetObjectHeaders(res, *sealed, etag);
    co_return co_await Send(std::move(res), x, keep);
  }
  TextResponse res{bhttp::status::created, req.version()};
  res.set(bhttp::field::location,
          std::string(kObjectPrefix) + http::PercentEncodePath(sealed->key));
  SetObjectHeaders(res, *sealed, etag);
  res.set(bhttp::field::content_type, "application/json");
  res.body() = http::PutResultJson(*sealed);
  co_return co_await Send(std::move(res), x, keep);
}

template <typename Stream>
Task<Status> Connection<Stream>::ReadChunkedBody(Parser& parser, GrowingUpload& upload,
                                                 http_plan::Refusal* refused) {
  // Beast decodes the chunk framing into a bounce buffer; each piece is appended to the
  // growing object. Memory: the bounce buffer and Beast's read buffer, whatever the body size.
  std::vector<char>& buf = chunk();
  auto last_renew = Clock::now();
  while (!parser.is_done()) {
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    error_code ec;
    {
      ReadDeadline deadline(*this, opt().io_timeout);
      co_await bhttp::async_read_some(stream_, buffer_, parser,
                                      asio::redirect_error(asio::use_awaitable, ec));
      ec = deadline.Map(ec);
    }
    if (ec == bhttp::error::need_buffer) ec = {};
    const size_t n = buf.size() - parser.get().body().size;
    server_->CountReceived(n);
    if (n > upload.limit() - upload.written()) {
      *refused = {413, InvalidArgument("chunked body over the node's limit of " +
                                       std::to_string(upload.limit()) + " bytes")};
      co_return refused->error;
    }
    if (n > 0) {
      Status appended = co_await AppendChunk(upload, std::span<const char>(buf.data(), n));
      if (!appended.ok()) {
        *refused = http_plan::RefusalFor(appended);
        co_return appended;
      }
    }
    if (ec) co_return BodyReadError(ec, upload.written());
    MaybeRenew(upload.grant().lease, upload.grant().lease_ttl, last_renew);
  }
  body_read_ = true;
  co_return Status();
}

template <typename Stream>
Task<Status> Connection<Stream>::AppendChunk(GrowingUpload& upload, std::span<const char> data) {
  auto bytes = std::as_bytes(data);
  if (!upload.MayBlock(bytes.size())) co_return upload.Append(bytes);
  GrowingUpload* u = &upload;
  co_return co_await Blocking([u, bytes] { return u->Append(bytes); });
}

template <typename Stream>
Status Connection<Stream>::BodyReadError(error_code ec, uint64_t received) const {
  if (ec == beast::error::timeout) {
    return Timeout("the body stalled for " + std::to_string(opt().io_timeout.count()) +
                   " ms after " + std::to_string(received) + " bytes");
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_chunk).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
    return ProtocolError("malformed chunked body: " + ec.message());
  }
  return Unavailable("receive: " + ec.message());
}

template <typename Stream>
Task<void> Connection<Stream>::DrainChunked(Parser& parser) {
  // After a refusal mid-body: what the client already sent is read (up to kChunkedDrainMax) so
  // that closing does not reset the connection under the answer before the client reads it.
  std::vector<char>& buf = chunk();
  uint64_t dropped = 0;
  while (!parser.is_done() && dropped < kChunkedDrainMax) {
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    error_code ec;
    {
      ReadDeadline deadline(*this, std::min(opt().io_timeout, kDrainTimeout));
      co_await bhttp::async_read_some(stream_, buffer_, parser,
                                      asio::redirect_error(asio::use_awaitable, ec));
    }
    dropped += buf.size() - parser.get().body().size;
    if (ec && ec != bhttp::error::need_buffer) break;
  }
}

template <typename Stream>
Task<bool> Connection<Stream>::RefusePut(Parser& parser, Exchange& x, TextResponse res) {
  // A small body the client is sending anyway (no Expect: 100-continue) is read and dropped, so
  // that the connection carries the next request and the client is not reset mid-send.
  const Request& req = parser.get();
  auto length = parser.content_length();  // boost::optional
  bool keep = false;
  if (req.keep_alive() && length && *length <= kDrainMax &&
      !IEqualsPrefix(View(req[bhttp::field::expect]), "100-continue")) {
    uint64_t left = *length;
    size_t have = static_cast<size_t>(std::min<uint64_t>(left, buffer_.size()));
    buffer_.consume(have);
    left -= have;
    std::vector<char>& buf = chunk();
    error_code ec;
    while (left > 0 && !ec) {
      ReadDeadline deadline(*this, opt().io_timeout);
      size_t n = co_await stream_.async_read_some(
          asio::buffer(buf.data(), static_cast<size_t>(std::min<uint64_t>(left, buf.size()))),
          asio::redirect_error(asio::use_awaitable, ec));
      left -= n;
    }
    keep = left == 0;
    body_read_ = keep;
    spdlog::debug("event=http_put_refused dropped_body={} error=\"{}\"", keep, ec.message());
  }
  co_return co_await Send(std::move(res), x, keep);
}

template <typename Stream>
Task<Status> Connection<Stream>::ReadBody(Parser& parser, Blob& blob, LeaseId lease,
                                          Duration lease_ttl) {
  // A Content-Length body is plain bytes (chunked uploads are refused), so it is read straight
  // from the socket in large reads: into the object itself when the node maps it (memory),
  // else through a bounce buffer into Blob::Write. Beast's parser would move it 4 KiB at a time.
  const uint64_t size = *parser.content_length();
  std::shared_ptr<BlobView> view;
  if (IsMappedInProcess(blob)) {
    auto opened = blob.OpenView(LeaseMode::kCreate);
    if (opened.ok() && (*opened)->bytes().size() >= size) view = *opened;
  }
  auto last_renew = Clock::now();
  uint64_t offset = 0;
  while (offset < size) {
    char* dst;
    size_t room;
    if (view) {
      dst = reinterpret_cast<char*>(view->bytes().data()) + offset;
      room = static_cast<size_t>(std::min<uint64_t>(size - offset, kViewStep));
    } else {
      dst = chunk().data();
      room = static_cast<size_t>(std::min<uint64_t>(size - offset, kChunk));
    }
    // First the body bytes that arrived with the headers, then the socket.
    size_t got = std::min(room, buffer_.size());
    if (got > 0) {
      asio::buffer_copy(asio::buffer(dst, got), buffer_.data());
      buffer_.consume(got);
    }
    while (got < room) {
      // A deadline per read: io_timeout bounds a stall, not the whole (up to 8 MiB) step.
      error_code ec;
      size_t n;
      {
        ReadDeadline deadline(*this, opt().io_timeout);
        n = co_await stream_.async_read_some(asio::buffer(dst + got, room - got),
                                             asio::redirect_error(asio::use_awaitable, ec));
        ec = deadline.Map(ec);
      }
      got += n;
      if (ec) {
        server_->CountReceived(got);
        if (ec == beast::error::timeout) {
          co_return Timeout("the body stalled for " + std::to_string(opt().io_timeout.count()) +
                            " ms after " + std::to_string(offset + got) + " of " +
                            std::to_string(size) + " bytes");
        }
        co_return Unavailable("receive: " + ec.message());
      }
    }
    if (!view) {
      auto data = std::as_bytes(std::span<const char>(dst, got));
      Status wrote = co_await Blocking([&blob, at = offset, data] { return blob.Write(at, data); });
      if (!wrote.ok()) co_return wrote;
    }
    offset += got;
    server_->CountReceived(got);
    MaybeRenew(lease, lease_ttl, last_renew);
  }
  body_read_ = true;
  co_return Status();
}

template <typename Stream>
Task<bool> Connection<Stream>::HandleList(Parser& parser, Exchange& x, std::string_view query) {
  const Request& req = parser.get();
  bool keep = req.keep_alive();
  ListOptions options;
  auto params = ParseQuery(query);
  if (!params.ok()) co_return co_await SendError(req, x, params.status(), keep);
  for (const auto& [name, value] : *params) {
    if (name == "prefix") {
      options.prefix = value;
    } else if (name == "start_after") {
      options.start_after = value;
    } else if (name == "limit") {
      uint32_t limit = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc() || end != value.data() + value.size() || limit == 0) {
        co_return co_await SendError(
            req, x, InvalidArgument("limit must be a positive number, not '" + value + "'"), keep);
      }
      options.limit = std::min(limit, kMaxListLimit);
    } else {
      co_return co_await SendError(req, x,
                                   InvalidArgument("unknown query parameter '" + name +
                                                   "' (use prefix, limit, start_after)"),
                                   keep);
    }
  }
  auto page = peer().List(options);
  if (!page.ok()) co_return co_await SendError(req, x, page.status(), keep);
  TextResponse res{bhttp::status::ok, req.version()};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = http::ListPageToJson(*page);
  co_return co_await Send(std::move(res), x, keep);
}

// Splits "host:port", "[v6]:port" or ":port".
Result<std::pair<std::string, std::string>> SplitHostPort(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    return InvalidArgument("http listen address '" + listen + "' needs host:port");
  }
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  return std::make_pair(host, port);
}

}  // namespace

Status HttpServer::Impl::Start() {
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
      return InvalidArgument("TLS needs both a certificate (tls_cert) and a key (tls_key)");
    }
    tls_.emplace(ssl::context::tls_server);
    tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    // OpenSSL's own errors do not say a file is missing; check that first.
    for (const std::string* file : {&options_.tls_cert_file, &options_.tls_key_file}) {
      if (::access(file->c_str(), R_OK) != 0) {
        return InvalidArgument(
            std::string(file == &options_.tls_cert_file ? "tls_cert" : "tls_key") + " '" + *file +
            "': " + strerror(errno));
      }
    }
    error_code ec;
    tls_->use_certificate_chain_file(options_.tls_cert_file, ec);
    if (ec) {
      return InvalidArgument("tls_cert '" + options_.tls_cert_file + "': " + ec.message());
    }
    tls_->use_private_key_file(options_.tls_key_file, ssl::context::pem, ec);
    if (ec) return InvalidArgument("tls_key '" + options_.tls_key_file + "': " + ec.message());
  }
  PACKICE_ASSIGN_OR_RETURN(auto host_port, SplitHostPort(options_.listen));
  error_code ec;
  tcp::resolver resolver(io_);
  auto endpoints = resolver.resolve(host_port.first, host_port.second,
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return InvalidArgument("http listen address '" + options_.listen +
                           "': " + (ec ? ec.message() : "no address"));
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("http listen " + options_.listen + ": " + ec.message());
  port_ = acceptor_.local_endpoint(ec).port();
  asio::co_spawn(io_, AcceptLoop(), LogIfThrown);
  return Status();
}

Task<void> HttpServer::Impl::AcceptLoop() {
  auto self = shared_from_this();
  for (;;) {
    beast::tcp_stream stream(asio::make_strand(io_));
    error_code ec;
    co_await acceptor_.async_accept(stream.socket(), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      spdlog::warn("event=http_accept_failed error=\"{}\"", ec.message());
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));  // e.g. out of descriptors
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    stream.socket().set_option(tcp::no_delay(true), ec);
    if (connection_count() >= options_.max_connections) {
      auto ex = stream.get_executor();
      asio::co_spawn(ex, RejectBusy(std::move(stream)), asio::detached);
      continue;
    }
    auto ex = stream.get_executor();
    if (tls_) {
      auto c = std::make_shared<Connection<TlsStream>>(self, TlsStream(std::move(stream), *tls_));
      Register(c.get(), c);
      asio::co_spawn(ex, Connection<TlsStream>::Run(c), LogIfThrown);
    } else {
      auto c = std::make_shared<Connection<PlainStream>>(self, std::move(stream));
      Register(c.get(), c);
      asio::co_spawn(ex, Connection<PlainStream>::Run(c), LogIfThrown);
    }
  }
}

Task<void> HttpServer::Impl::RejectBusy(beast::tcp_stream stream) {
  // Over the connection limit: a plain-text 503 (a TLS client just sees the close).
  error_code ec;
  if (!tls_) {
    static constexpr std::string_view kBusy =
        "HTTP/1.1 503 Service Unavailable\r\nX-Packice-Error: unavailable\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n";
    stream.expires_after(std::chrono::seconds(1));
    co_await asio::async_write(stream, asio::buffer(kBusy.data(), kBusy.size()),
                               asio::redirect_error(asio::use_awaitable, ec));
  }
  stream.socket().close(ec);
}

void HttpServer::Impl::Stop() {
  error_code ec;
  acceptor_.close(ec);
  std::vector<std::shared_ptr<ConnectionBase>> open;
  {
    MutexLock lock(&mu_);
    for (auto& [ptr, weak] : conns_) {
      if (auto c = weak.lock()) open.push_back(std::move(c));
    }
  }
  for (auto& c : open) c->Close();
}

HttpServer::HttpServer(asio::io_context& io, std::shared_ptr<LocalPeer> peer,
                       HttpServerOptions options, std::shared_ptr<MetricsRegistry> metrics)
    : impl_(std::make_shared<Impl>(io, std::move(peer), std::move(options), std::move(metrics))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() { return impl_->Start(); }
void HttpServer::Stop() { impl_->Stop(); }
uint16_t HttpServer::port() const { return impl_->port(); }

}  // namespace packice
