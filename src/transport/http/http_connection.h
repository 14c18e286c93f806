// The HTTP server's connection core, shared by every resource's routes: one Connection per
// accepted socket reads requests in order, finds their route (http_routes.h), checks the bearer
// token, and gives the routes what they answer with — responses, errors, bodies read into and
// sent from blobs (sendfile), streamed responses of unknown length (chunked: a KV watch's
// server-sent events) with a wake-up from other threads, timeouts, lease renewal, metrics. Not API:
// only the HTTP server and its routes files include it.
//
// The Beast-heavy member templates are defined once, in http_connection.cc, and instantiated
// there for plain TCP and TLS (the extern templates below), so a routes file compiles only its
// own handlers.
//
// Thread safety: a Connection runs on its own strand; its methods are called from it only.
#ifndef PACKICE_TRANSPORT_HTTP_HTTP_CONNECTION_H_
#define PACKICE_TRANSPORT_HTTP_HTTP_CONNECTION_H_

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
//
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "packice/peer.h"
#include "packice/status.h"
#include "transport/http/http_server.h"
#include "transport/http/object_plan.h"
#include "transport/uds/queue_wire.pb.h"

namespace packice {

class CasStore;
class GroupRegistry;
class GrowingUpload;
class KvStore;
class MetricsRegistry;
class Queue;

namespace http_server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
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

inline std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

// The JSON error body and X-Packice-Error header every error carries, with the HTTP status
// `st`, or the one the error's code maps to, or a plan's refusal.
TextResponse ErrorResponse(unsigned version, bhttp::status st, const Status& s);
TextResponse ErrorResponse(unsigned version, const Status& s);
TextResponse RefusalResponse(unsigned version, const http_plan::Refusal& r);

// The request's headers as the planning functions (object_plan.h) take them; they point into
// `req`.
std::vector<http_plan::Header> HeadersOf(const Request& req);

// Whether the node maps the blob's bytes itself (memory segments, small heap objects).
inline bool IsMappedInProcess(const Blob& blob) {
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

// A lease a long transfer keeps alive, and the peer that granted it (the node's object peer, or
// a service's own: the CAS tiers, the action cache).
struct LeaseRef {
  Peer* peer = nullptr;
  LeaseId id = 0;
  Duration ttl{0};
};

// One request and its answer, as metrics and the log record them.
struct Exchange {
  std::string_view route = "other";  // the route's label: a template, never a key
  unsigned status = 0;               // 0 until an answer was sent
};

class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  virtual void Close() = 0;
};

template <typename Stream>
class Connection : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Connection(std::shared_ptr<HttpServer::Impl> server, Stream stream);
  ~Connection() override;

  // Serves the connection until it closes; `self` keeps it alive meanwhile (a coroutine frame
  // holds its parameters, not `this`'s owner).
  static Task<void> Run(std::shared_ptr<Connection> self) { co_await self->Serve(); }
  void Close() override;

  // --- for routes ------------------------------------------------------------------------
  // Every Task<bool> returns whether the connection stays open for another request.

  Peer& peer();
  const HttpServerOptions& opt() const;
  MetricsRegistry& metrics();
  // The node's cache groups; null when it serves none.
  GroupRegistry* groups();
  // The node's content-addressed store and action cache; null when it serves none.
  CasStore* cas();
  LocalPeer* action_cache();
  // The node's KV; null when it serves none.
  KvStore* kv();
  // The node's queue; null when it serves none. Keyless appends take its buckets in the turn
  // of queue_turn(), one for the whole server.
  const std::shared_ptr<Queue>& queue();
  const std::shared_ptr<std::atomic<uint64_t>>& queue_turn();

  // Sends `res` (its status recorded in `x`).
  Task<bool> Send(TextResponse res, Exchange& x, bool keep_alive);
  Task<bool> SendError(const Request& req, Exchange& x, const Status& s, bool keep_alive) {
    return Send(ErrorResponse(req.version(), s), x, keep_alive);
  }
  Task<bool> SendError(const Request& req, Exchange& x, bhttp::status st, const Status& s,
                       bool keep_alive) {
    return Send(ErrorResponse(req.version(), st, s), x, keep_alive);
  }
  // Refuses a request whose body was not read: a small one the client is sending anyway (no
  // Expect: 100-continue) is read and dropped so that the connection carries the next request.
  Task<bool> Refuse(Parser& parser, Exchange& x, TextResponse res);
  // The 100 Continue of Expect: 100-continue.
  Task<bool> SendContinue(const Request& req);
  // Answers a body that could not be read (`read`): 408 on a timeout, nothing when the client
  // is gone, else the error; the connection closes.
  Task<bool> AbortBody(const Request& req, Exchange& x, std::string_view what, const Status& read);

  // Reads a Content-Length body into `blob` from offset 0, renewing `lease`.
  // Errors: kTimeout (stalled), kUnavailable (the client went away), the blob's write errors.
  Task<Status> ReadBody(Parser& parser, Blob& blob, LeaseRef lease);
  // Reads a Content-Length body of `size` bytes into `*out` (the caller bounds `size`).
  // Errors: kTimeout (stalled), kUnavailable (the client went away).
  Task<Status> ReadBodyInto(uint64_t size, std::string* out);
  // Reads a chunked body into `upload`. On a refusal (over its limit: 413, no room) sets
  // `refused` and returns its error; other errors: kTimeout, kProtocolError (malformed
  // framing), kUnavailable (the client went away).
  Task<Status> ReadChunkedBody(Parser& parser, GrowingUpload& upload, http_plan::Refusal* refused);
  // After a refusal mid-body: reads and drops a bounded part of the rest of a chunked body.
  Task<void> DrainChunked(Parser& parser);

  // Sends headers only (HEAD, 304).
  Task<bool> SendHeaders(HeadResponse res, Exchange& x, bool keep_alive);
  // Sends `res` (its Content-Length set to `length`) and, unless `head`, bytes
  // [first, first + length) of `blob`, renewing `lease`.
  Task<bool> SendObject(HeadResponse res, Exchange& x, bool keep_alive, bool head, Blob& blob,
                        uint64_t first, uint64_t length, LeaseRef lease);

  // Sends `res` (its Content-Length set to bytes.size()) and `bytes`, which the caller keeps
  // valid until the task ends (a mapped view under a lease: no copy in the node).
  Task<bool> SendBytes(HeadResponse res, Exchange& x, bool keep_alive,
                       std::span<const std::byte> bytes);

  // --- a streamed response of unknown length (a KV watch as server-sent events) ---------------
  // The core carries bytes; the route decides what they say. After a stream the connection
  // closes (a client that wants more opens another), so nothing is left to read after it.

  // Sends `res`'s headers with Transfer-Encoding: chunked (to an HTTP/1.0 client: no framing,
  // the close ends the body) and Connection: close, and starts watching for the client to go
  // away (or to send anything: a stream takes no further request). Returns whether they went.
  Task<bool> StartStream(HeadResponse res, Exchange& x);
  // Sends `data` as one chunk; returns once the socket took all of it, so that a route that
  // sends only after the previous send returned never holds more than one chunk for a client
  // that does not read. Errors: kUnavailable (the client went away, or the write made no
  // progress for io_timeout).
  Task<Status> SendChunk(std::string_view data);
  // The last chunk.
  Task<Status> EndStream();
  enum class Wake { kWoken, kTimeout, kClientGone };
  // Waits until a function from Waker() ran (since the last wait), `timeout` passed, or the
  // client closed the connection (or sent something); the client's going away wins. Between
  // StartStream and the end of the stream only.
  Task<Wake> WaitForWake(std::chrono::milliseconds timeout);
  // A function any thread may call to wake WaitForWake: it never blocks (it posts to the
  // connection's strand) and holds the connection weakly, so it may outlive it.
  std::function<void()> Waker();

  // Runs `f` on the blocking pool (peer calls that may wait on a disk) and resumes here with its
  // result.
  template <typename F>
  Task<std::invoke_result_t<F>> Blocking(F f) {
    return RunOn(blocking_pool(), std::move(f));
  }
  // Runs `f` on the pool of cache-group calls (HttpServerOptions::group_threads) and resumes
  // here with its result.
  template <typename F>
  Task<std::invoke_result_t<F>> GroupCall(F f) {
    return RunOn(group_pool(), std::move(f));
  }
  // Runs `f` on the pool of KV calls (HttpServerOptions::kv_threads) and resumes here with its
  // result.
  template <typename F>
  Task<std::invoke_result_t<F>> KvCall(F f) {
    return RunOn(kv_pool(), std::move(f));
  }
  // Runs `f` on the pool of queue calls (the KV's) and resumes here with its result.
  template <typename F>
  Task<std::invoke_result_t<F>> QueueCall(F f) {
    return RunOn(kv_pool(), std::move(f));
  }
  // Runs one queue_wire.proto call on the server's QueueCalls (queue_calls.h): a read that
  // finds nothing waits parked, holding no thread; resumes here with its answer.
  struct QueueAnswer {
    Status status;
    wire::QueueResponse response;
  };
  Task<QueueAnswer> QueueRun(wire::QueueRequest req);

 private:
  class ReadDeadline;

  template <typename F>
  Task<std::invoke_result_t<F>> RunOn(asio::thread_pool& pool, F f) {
    using R = std::invoke_result_t<F>;
    // co_spawn's result must be default-constructible; Result<T> is not.
    std::optional<R> r = co_await asio::co_spawn(
        pool, [f = std::move(f)]() mutable -> Task<std::optional<R>> { co_return f(); },
        asio::use_awaitable);
    co_return std::move(*r);
  }

  Task<void> Serve();
  Task<bool> ServeOne();
  Task<bool> AnswerUnreadable(error_code ec);
  Task<bool> Dispatch(Parser& parser, Exchange& x);
  bool Authorized(const Request& req) const;
  Task<Status> SendBody(Blob& blob, uint64_t first, uint64_t length, LeaseRef lease);
  Task<Status> SendMapped(Blob& blob, uint64_t first, uint64_t length, LeaseRef lease);
  Task<Status> SendFile(int fd, uint64_t offset, uint64_t length, LeaseRef lease);
  // Writes all `n` bytes, each write under io_timeout; counts them as sent.
  Task<Status> WriteAll(const void* data, size_t n);
  Task<error_code> WaitWritable();
  Task<Status> AppendChunk(GrowingUpload& upload, std::span<const char> data);
  Status BodyReadError(error_code ec, uint64_t received) const;
  // TCP_CORK on a plain socket: holds partial segments until uncorked.
  void Cork(bool on);
  // Keeps a long transfer's lease alive.
  void MaybeRenew(const LeaseRef& lease, Clock::time_point& last);
  asio::thread_pool& blocking_pool();
  asio::thread_pool& group_pool();
  asio::thread_pool& kv_pool();
  // Wakes WaitForWake (on the strand): `client_gone` says why.
  void WakeUp(bool client_gone);
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  asio::ip::tcp::socket& socket() { return lowest().socket(); }
  std::vector<char>& chunk();

  std::shared_ptr<HttpServer::Impl> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::vector<char> chunk_;
  bool body_read_ = false;  // this request's body was read past the parser (ReadBody)
  // A streamed response (StartStream): its framing, and what WaitForWake waits for.
  bool stream_chunked_ = false;
  bool woken_ = false;
  bool client_gone_ = false;
  std::optional<asio::steady_timer> wake_timer_;
};

extern template class Connection<PlainStream>;
extern template class Connection<TlsStream>;

}  // namespace http_server
}  // namespace packice

#endif  // PACKICE_TRANSPORT_HTTP_HTTP_CONNECTION_H_
