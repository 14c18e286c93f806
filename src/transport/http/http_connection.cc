#include "transport/http/http_connection.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <limits>

#include "transport/http/growing_upload.h"
#include "transport/http/http_common.h"
#include "transport/http/http_request.h"
#include "transport/http/http_routes.h"
#include "transport/http/http_server_impl.h"

namespace packice::http_server {
namespace {

namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

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

bool IEqualsPrefix(std::string_view s, std::string_view lower_prefix) {
  if (s.size() < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_prefix[i]) return false;
  }
  return true;
}

}  // namespace

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

std::vector<http_plan::Header> HeadersOf(const Request& req) {
  std::vector<http_plan::Header> out;
  for (const auto& f : req) out.push_back({View(f.name_string()), View(f.value())});
  return out;
}

// A deadline for one read that cancels the read and leaves the socket open. Beast's own
// (expires_after) closes the socket when it passes, after which no 408 can be sent.
template <typename Stream>
class Connection<Stream>::ReadDeadline {
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

template <typename Stream>
Connection<Stream>::Connection(std::shared_ptr<HttpServer::Impl> server, Stream stream)
    : server_(std::move(server)), stream_(std::move(stream)) {}

template <typename Stream>
Connection<Stream>::~Connection() {
  server_->Unregister(this);
}

template <typename Stream>
void Connection<Stream>::Close() {
  asio::post(stream_.get_executor(), [w = this->weak_from_this()] {
    if (auto self = w.lock()) {
      error_code ec;
      self->socket().close(ec);
    }
  });
}

template <typename Stream>
Peer& Connection<Stream>::peer() {
  return server_->peer();
}

template <typename Stream>
const HttpServerOptions& Connection<Stream>::opt() const {
  return server_->options();
}

template <typename Stream>
MetricsRegistry& Connection<Stream>::metrics() {
  return server_->metrics();
}

template <typename Stream>
GroupRegistry* Connection<Stream>::groups() {
  return server_->options().groups.get();
}

template <typename Stream>
CasStore* Connection<Stream>::cas() {
  return server_->options().cas.get();
}

template <typename Stream>
LocalPeer* Connection<Stream>::action_cache() {
  return server_->options().action_cache.get();
}

template <typename Stream>
KvStore* Connection<Stream>::kv() {
  return server_->options().kv.get();
}

template <typename Stream>
const std::shared_ptr<Queue>& Connection<Stream>::queue() {
  return server_->options().queue;
}

template <typename Stream>
const std::shared_ptr<std::atomic<uint64_t>>& Connection<Stream>::queue_turn() {
  return server_->queue_turn();
}

template <typename Stream>
Task<typename Connection<Stream>::QueueAnswer> Connection<Stream>::QueueRun(
    wire::QueueRequest req) {
  QueueCalls* calls = server_->queue_calls();
  const auto here = co_await asio::this_coro::executor;
  // The answer comes on a pool thread, the queue's (an append) or the timers' executor; the
  // coroutine resumes here.
  // The lambdas hold pointers only (GCC 12 destroys a coroutine's temporaries twice: an
  // executor copied into one lost a reference): `here` lives in this frame until resumed.
  const auto* at = &here;
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(QueueAnswer)>(
      [calls, at](auto handler, wire::QueueRequest r) {
        // The handler goes whole to the io thread: no copy of it stays on the pool thread,
        // where its last owner would destroy the coroutine's state while the io thread runs it.
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        calls->Run(
            std::move(r), [h = std::move(h), at](Status s, wire::QueueResponse resp) mutable {
              asio::post(*at, [h = std::move(h),
                               answer = QueueAnswer{std::move(s), std::move(resp)}]() mutable {
                (*h)(std::move(answer));
              });
            });
      },
      asio::use_awaitable, std::move(req));
}

template <typename Stream>
asio::thread_pool& Connection<Stream>::blocking_pool() {
  return server_->blocking();
}

template <typename Stream>
asio::thread_pool& Connection<Stream>::group_pool() {
  return server_->groups_pool();
}

template <typename Stream>
asio::thread_pool& Connection<Stream>::kv_pool() {
  return server_->kv_pool();
}

template <typename Stream>
void Connection<Stream>::Cork(bool on) {
  if constexpr (!kTls) {
    int v = on ? 1 : 0;
    (void)::setsockopt(socket().native_handle(), IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
  }
}

template <typename Stream>
void Connection<Stream>::MaybeRenew(const LeaseRef& lease, Clock::time_point& last) {
  auto now = Clock::now();
  if (now - last >= lease.ttl / 3) {
    (void)(lease.peer != nullptr ? *lease.peer : peer()).Renew(lease.id);
    last = now;
  }
}

template <typename Stream>
std::vector<char>& Connection<Stream>::chunk() {
  if (chunk_.empty()) chunk_.resize(kChunk);
  return chunk_;
}

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

// A request whose headers could not be read: 431, 400 or 408 when there is something to
// answer (nothing when the client just went away); the connection closes.
template <typename Stream>
Task<bool> Connection<Stream>::AnswerUnreadable(error_code ec) {
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
  if (x.status != 0) server_->Record(x.route, "-", x.status, {});
  co_return false;
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
  if (ec) co_return co_await AnswerUnreadable(ec);
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
  auto [path, query] = http_request::SplitTarget(View(req.target()));
  for (const Route& route : AllRoutes()) {
    if (!route.matches(path)) continue;
    x.route = route.label;
    if (route.needs_token && !Authorized(req)) {
      TextResponse res = ErrorResponse(req.version(), bhttp::status::unauthorized,
                                       PermissionDenied("missing or wrong bearer token"));
      res.set(bhttp::field::www_authenticate, "Bearer realm=\"packice\"");
      co_return co_await Send(std::move(res), x, keep);
    }
    co_return co_await route.handler<Stream>()(*this, parser, x, path, query);
  }
  co_return co_await SendError(
      req, x,
      NotFound("no route for '" + std::string(path.substr(0, 256)) +
               "': the API is under /v1/objects, /v1/groups, /v1/cas and /v1/kv"),
      keep);
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
Task<bool> Connection<Stream>::SendHeaders(HeadResponse res, Exchange& x, bool keep_alive) {
  res.keep_alive(keep_alive);
  x.status = res.result_int();
  bhttp::serializer<false, bhttp::empty_body> sr{res};
  lowest().expires_after(opt().io_timeout);
  error_code ec;
  co_await bhttp::async_write(stream_, sr, asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec && keep_alive;
}

template <typename Stream>
Task<bool> Connection<Stream>::SendObject(HeadResponse res, Exchange& x, bool keep_alive, bool head,
                                          Blob& blob, uint64_t first, uint64_t length,
                                          LeaseRef lease) {
  res.content_length(length);
  res.keep_alive(keep_alive);
  x.status = res.result_int();
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
      co_return keep_alive;
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
    sent = co_await SendBody(blob, first, length, lease);
  }
  Cork(false);
  if (!sent.ok()) {
    spdlog::debug("event=http_send_failed error=\"{}\"", sent.ToString());
    co_return false;  // the length was promised: only closing tells the client
  }
  co_return keep_alive;
}

template <typename Stream>
Task<bool> Connection<Stream>::SendBytes(HeadResponse res, Exchange& x, bool keep_alive,
                                         std::span<const std::byte> bytes) {
  res.content_length(bytes.size());
  res.keep_alive(keep_alive);
  x.status = res.result_int();
  Cork(true);  // the headers share a segment with the first bytes
  bhttp::serializer<false, bhttp::empty_body> sr{res};
  lowest().expires_after(opt().io_timeout);
  error_code ec;
  co_await bhttp::async_write_header(stream_, sr, asio::redirect_error(asio::use_awaitable, ec));
  Status sent;
  if (ec) {
    sent = Unavailable("send: " + ec.message());
  } else if (!bytes.empty()) {
    sent = co_await WriteAll(bytes.data(), bytes.size());
  }
  Cork(false);
  if (!sent.ok()) {
    spdlog::debug("event=http_send_failed error=\"{}\"", sent.ToString());
    co_return false;  // the length was promised: only closing tells the client
  }
  co_return keep_alive;
}

template <typename Stream>
Task<Status> Connection<Stream>::SendBody(Blob& blob, uint64_t first, uint64_t length,
                                          LeaseRef lease) {
  auto last_renew = Clock::now();
  if constexpr (!kTls) {
    // Straight from the object's file: sendfile(2), no copy in the node. Not from a memory
    // segment: sendfile queues references to its pages, not copies, and once the lease ends
    // (when the last byte is queued, not delivered) the segment is zeroed and reused by the
    // pool while the socket's send queue still holds up to a few MiB of its pages.
    auto exported = IsMappedInProcess(blob) ? Result<BlobExport>(Unimplemented("mapped"))
                                            : blob.Export(LeaseMode::kRead);
    if (exported.ok() && exported->kind == BlobExport::Kind::kFd) {
      co_return co_await SendFile(exported->fd.get(), exported->offset + first, length, lease);
    }
  }
  if (IsMappedInProcess(blob)) {
    co_return co_await SendMapped(blob, first, length, lease);
  }
  // TLS and a file: through a bounce buffer.
  std::vector<char>& buf = chunk();
  uint64_t done = 0;
  while (done < length) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(length - done, buf.size()));
    auto out = std::as_writable_bytes(std::span<char>(buf.data(), n));
    Status read = co_await Blocking([&blob, out, at = first + done] { return blob.Read(at, out); });
    if (!read.ok()) co_return read;
    if (Status sent = co_await WriteAll(buf.data(), n); !sent.ok()) co_return sent;
    done += n;
    MaybeRenew(lease, last_renew);
  }
  co_return Status();
}

// From the node's own mapping of the object (TLS, or no descriptor).
template <typename Stream>
Task<Status> Connection<Stream>::SendMapped(Blob& blob, uint64_t first, uint64_t length,
                                            LeaseRef lease) {
  auto last_renew = Clock::now();
  auto opened = blob.OpenView(LeaseMode::kRead);
  if (!opened.ok()) co_return opened.status();
  std::shared_ptr<BlobView> view = *opened;
  std::span<std::byte> bytes = view->bytes();
  if (first + length > bytes.size()) co_return Internal("object view shorter than its size");
  uint64_t done = 0;
  while (done < length) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(length - done, kViewStep));
    if (Status sent = co_await WriteAll(bytes.data() + first + done, n); !sent.ok()) co_return sent;
    done += n;
    MaybeRenew(lease, last_renew);
  }
  co_return Status();
}

// write_some with a deadline each: io_timeout bounds a stall, not a whole large write.
template <typename Stream>
Task<Status> Connection<Stream>::WriteAll(const void* data, size_t n) {
  error_code ec;
  const auto* p = static_cast<const char*>(data);
  for (size_t sent = 0; sent < n;) {
    lowest().expires_after(opt().io_timeout);
    const size_t wrote = co_await stream_.async_write_some(
        asio::buffer(p + sent, n - sent), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Unavailable("send: " + ec.message());
    sent += wrote;
    server_->CountSent(wrote);
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
Task<Status> Connection<Stream>::SendFile(int fd, uint64_t offset, uint64_t length,
                                          LeaseRef lease) {
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
      MaybeRenew(lease, last_renew);
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
Task<bool> Connection<Stream>::StartStream(HeadResponse res, Exchange& x) {
  stream_chunked_ = res.version() >= 11;
  res.keep_alive(false);
  if (stream_chunked_) res.chunked(true);
  x.status = res.result_int();
  woken_ = false;
  client_gone_ = false;
  wake_timer_.emplace(stream_.get_executor());
  // The client's going away shows as the socket turning readable (EOF, a reset; over TLS its
  // close_notify): a wait, not a read, so that no byte is taken from the stream and a write may
  // run meanwhile. It holds the connection weakly; closing the socket ends it.
  socket().async_wait(tcp::socket::wait_read, [w = this->weak_from_this()](const error_code&) {
    if (auto self = w.lock()) self->WakeUp(/*client_gone=*/true);
  });
  bhttp::serializer<false, bhttp::empty_body> sr{res};
  lowest().expires_after(opt().io_timeout);
  error_code ec;
  co_await bhttp::async_write_header(stream_, sr, asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

template <typename Stream>
Task<Status> Connection<Stream>::SendChunk(std::string_view data) {
  if (data.empty()) co_return Status();
  if (!stream_chunked_) co_return co_await WriteAll(data.data(), data.size());
  char size[24];
  const int n = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string framed;
  framed.reserve(static_cast<size_t>(n) + data.size() + 2);
  framed.append(size, static_cast<size_t>(n));
  framed.append(data);
  framed.append("\r\n");
  co_return co_await WriteAll(framed.data(), framed.size());
}

template <typename Stream>
Task<Status> Connection<Stream>::EndStream() {
  if (!stream_chunked_) co_return Status();
  static constexpr std::string_view kLast = "0\r\n\r\n";
  co_return co_await WriteAll(kLast.data(), kLast.size());
}

template <typename Stream>
void Connection<Stream>::WakeUp(bool client_gone) {
  if (client_gone) {
    client_gone_ = true;
  } else {
    woken_ = true;
  }
  if (wake_timer_) wake_timer_->cancel();
}

template <typename Stream>
std::function<void()> Connection<Stream>::Waker() {
  return [w = this->weak_from_this(), ex = stream_.get_executor()] {
    asio::post(ex, [w] {
      if (auto self = w.lock()) self->WakeUp(/*client_gone=*/false);
    });
  };
}

template <typename Stream>
Task<typename Connection<Stream>::Wake> Connection<Stream>::WaitForWake(
    std::chrono::milliseconds timeout) {
  if (!client_gone_ && !woken_ && wake_timer_) {
    wake_timer_->expires_after(timeout);
    error_code ec;
    co_await wake_timer_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (client_gone_ || !wake_timer_) co_return Wake::kClientGone;
  if (woken_) {
    woken_ = false;
    co_return Wake::kWoken;
  }
  co_return Wake::kTimeout;
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
Task<bool> Connection<Stream>::AbortBody(const Request& req, Exchange& x, std::string_view what,
                                         const Status& read) {
  spdlog::debug("event=http_body_aborted what=\"{}\" error=\"{}\"", what, read.ToString());
  if (read.code() == StatusCode::kTimeout) {
    co_await SendError(req, x, bhttp::status::request_timeout, read, false);
  } else if (read.code() != StatusCode::kUnavailable) {
    co_await SendError(req, x, read, false);
  }
  co_return false;
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
    MaybeRenew({nullptr, upload.grant().lease, upload.grant().lease_ttl}, last_renew);
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
Task<bool> Connection<Stream>::Refuse(Parser& parser, Exchange& x, TextResponse res) {
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
Task<Status> Connection<Stream>::ReadBody(Parser& parser, Blob& blob, LeaseRef lease) {
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
    MaybeRenew(lease, last_renew);
  }
  body_read_ = true;
  co_return Status();
}

template <typename Stream>
Task<Status> Connection<Stream>::ReadBodyInto(uint64_t size, std::string* out) {
  out->resize(static_cast<size_t>(size));
  char* dst = out->data();
  // First the body bytes that arrived with the headers, then the socket.
  size_t got = std::min(static_cast<size_t>(size), buffer_.size());
  if (got > 0) {
    asio::buffer_copy(asio::buffer(dst, got), buffer_.data());
    buffer_.consume(got);
  }
  while (got < size) {
    error_code ec;
    size_t n;
    {
      ReadDeadline deadline(*this, opt().io_timeout);
      n = co_await stream_.async_read_some(asio::buffer(dst + got, size - got),
                                           asio::redirect_error(asio::use_awaitable, ec));
      ec = deadline.Map(ec);
    }
    got += n;
    if (ec) {
      server_->CountReceived(got);
      if (ec == beast::error::timeout) {
        co_return Timeout("the body stalled for " + std::to_string(opt().io_timeout.count()) +
                          " ms after " + std::to_string(got) + " of " + std::to_string(size) +
                          " bytes");
      }
      co_return Unavailable("receive: " + ec.message());
    }
  }
  server_->CountReceived(got);
  body_read_ = true;
  co_return Status();
}

template class Connection<PlainStream>;
template class Connection<TlsStream>;

}  // namespace packice::http_server
