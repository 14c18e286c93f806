#include "transport/uds/uds_server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "transport/queue_calls.h"
#include "transport/uds/fd_socket.h"
#include "transport/uds/kv_session.h"
#include "transport/uds/wire.pb.h"
#include "transport/uds/wire_convert.h"

namespace packice {
namespace {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;
using boost::system::error_code;

constexpr size_t kReadChunk = 64 * 1024;
// Queued output is gathered into sends of up to this much.
constexpr size_t kCoalesceBytes = 256 * 1024;

class Connection;

}  // namespace

class UdsServer::Impl : public std::enable_shared_from_this<UdsServer::Impl> {
 public:
  Impl(asio::io_context& io, std::shared_ptr<Peer> peer, UdsServerOptions options)
      : io_(io), peer_(std::move(peer)), options_(std::move(options)), acceptor_(io) {
    if (options_.kv != nullptr || options_.queue != nullptr) {
      kv_pool_ = std::make_unique<asio::thread_pool>(std::max(1u, options_.kv_threads));
    }
    if (options_.queue != nullptr) {
      queue_ = std::make_shared<QueueCalls>(options_.queue, kv_pool_.get(), io_.get_executor());
    }
  }
  // Waits for the KV calls under way (those queued run too: a write handed to the pool may be
  // acknowledged by the store even if its answer is never sent).
  void JoinKvPool() {
    if (kv_pool_) kv_pool_->join();
  }

  Status Start();
  void Stop();
  void Accept();

  void Register(Connection* c, std::weak_ptr<Connection> w) {
    std::lock_guard<std::mutex> lock(mu_);
    conns_[c] = std::move(w);
  }
  void Unregister(Connection* c) {
    std::lock_guard<std::mutex> lock(mu_);
    conns_.erase(c);
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return conns_.size();
  }

  const UdsServerOptions& options() const { return options_; }
  const std::shared_ptr<Peer>& peer() const { return peer_; }
  asio::thread_pool* kv_pool() const { return kv_pool_.get(); }
  const std::shared_ptr<QueueCalls>& queue() const { return queue_; }

 private:
  asio::io_context& io_;
  std::shared_ptr<Peer> peer_;
  UdsServerOptions options_;
  Local::acceptor acceptor_;
  std::mutex mu_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> conns_;
  bool started_ = false;
  std::unique_ptr<asio::thread_pool> kv_pool_;  // with options_.kv or options_.queue
  std::shared_ptr<QueueCalls> queue_;           // with options_.queue
};

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Local::socket sock, std::shared_ptr<UdsServer::Impl> server)
      : sock_(std::move(sock)),
        server_(std::move(server)),
        reader_(server_->options().limits.max_frame_bytes),
        session_(server_->peer(), server_->options().limits) {}

  ~Connection() { server_->Unregister(this); }

  void Start() {
    error_code ec;
    sock_.non_blocking(true, ec);
    StartKv();
    StartQueue();
    Read();
  }

  // Closes the socket from the connection's strand.
  void Close() {
    asio::post(sock_.get_executor(), [self = shared_from_this()] { self->Shutdown(); });
  }

 private:
  void StartKv() {
    KvSessionHost host;
    host.strand = sock_.get_executor();
    std::weak_ptr<Connection> weak = weak_from_this();
    host.send = [weak](std::string frames) {
      auto self = weak.lock();
      if (self == nullptr || !self->sock_.is_open()) return;
      self->Queue(Outgoing{std::move(frames), {}});
      self->Flush();
    };
    host.queue = [weak](std::string frames) {
      auto self = weak.lock();
      if (self == nullptr || !self->sock_.is_open()) return;
      self->Queue(Outgoing{std::move(frames), {}});
    };
    host.pending_output = [weak] {
      auto self = weak.lock();
      return self == nullptr ? size_t{0} : self->pending_bytes_;
    };
    host.max_pending_output = server_->options().max_pending_output;
    host.unblocked = [weak] {
      auto self = weak.lock();
      if (self != nullptr) self->Resume();
    };
    kv_ = std::make_shared<KvSession>(server_->options().kv, server_->kv_pool(), std::move(host));
    session_.set_kv_handler([this](uint64_t id, wire::KvRequest&& req, size_t bytes) {
      kv_->Handle(id, std::move(req), bytes);
    });
  }

  // Queue calls run on the server's QueueCalls; their answers come back to the strand. An
  // append that does not wait runs here, its answer sent with the others of the same read.
  void StartQueue() {
    if (server_->queue() == nullptr) return;
    session_.set_queue_handler([this](uint64_t id, wire::QueueRequest&& req) {
      if (server_->queue()->Quick(req)) {
        wire::QueueResponse resp;
        Status s = server_->queue()->RunHere(req, &resp);
        return Answer(id, s, s.ok() ? &resp : nullptr);
      }
      if (queue_calls_ >= server_->options().max_queue_calls) {
        return Answer(id,
                      OutOfCapacity("a connection has at most " +
                                    std::to_string(server_->options().max_queue_calls) +
                                    " queue calls under way"),
                      nullptr);
      }
      ++queue_calls_;
      std::weak_ptr<Connection> weak = weak_from_this();
      server_->queue()->Run(std::move(req), [weak, id](Status s, wire::QueueResponse resp) {
        auto self = weak.lock();
        if (self == nullptr) return;
        asio::post(self->sock_.get_executor(),
                   [self, id, s = std::move(s), resp = std::move(resp)]() mutable {
                     --self->queue_calls_;
                     self->Answer(id, s, s.ok() ? &resp : nullptr);
                     self->Flush();
                   });
      });
    });
  }

  // Queues a queue call's answer; `body` (may be null) is moved into it.
  void Answer(uint64_t id, const Status& s, wire::QueueResponse* body) {
    if (!sock_.is_open()) return;
    wire::Response resp;
    resp.set_id(id);
    ToWire(s, &resp);
    if (body != nullptr) resp.mutable_queue()->Swap(body);
    std::string frame;
    AppendFrame(resp, &frame);
    Queue(Outgoing{std::move(frame), {}});
  }

  // Reading was paused (output over the cap, or KV calls backlogged): handle what is
  // buffered, then read again, unless still blocked.
  void Resume() {
    if (!read_paused_ || !sock_.is_open()) return;
    read_paused_ = false;
    Process();
  }

  void Read() {
    std::span<char> tail = reader_.WritableTail(kReadChunk);
    sock_.async_read_some(
        asio::buffer(tail.data(), tail.size()),
        [self = shared_from_this()](error_code ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(error_code ec, size_t n) {
    if (ec) return Shutdown();
    reader_.Commit(n);
    Process();
  }

  // Handles buffered requests while the unsent output is under the cap (a few bytes of request
  // can ask for a large reply), sends, and then reads more, or leaves the rest of the requests
  // buffered until Flush finds that the client caught up.
  void Process() {
    const size_t cap = server_->options().max_pending_output;
    while (true) {
      Outgoing batch;
      bool more = false;  // stopped at the cap: complete requests may still be buffered
      while (true) {
        if (pending_bytes_ + batch.frame.size() > cap || kv_->backlogged()) {
          more = true;
          break;
        }
        auto next = reader_.Next();
        if (!next.ok()) {
          // The stream cannot be resynchronised: say why, then close.
          kv_->EndOfInput();  // what came before the bad frame still runs
          wire::Response resp;
          ToWire(next.status(), &resp);
          AppendFrame(resp, &batch.frame);
          Queue(std::move(batch));
          closing_ = true;
          Flush();
          return;
        }
        if (!next->has_value()) break;
        if (batch.fds.size() >= kMaxFdsPerSend) {
          Queue(std::move(batch));
          batch = Outgoing();
        }
        session_.Handle(**next, &batch);
      }
      kv_->EndOfInput();
      Queue(std::move(batch));
      Flush();
      if (!sock_.is_open()) return;
      if (pending_bytes_ > cap || kv_->backlogged()) {
        // Flush resumes once the client catches up; the KV session once its calls ran.
        read_paused_ = true;
        return;
      }
      if (!more) break;
    }
    Read();
  }

  void Queue(Outgoing out) {
    if (out.frame.empty()) return;
    pending_bytes_ += out.frame.size();
    // Small answers without descriptors join the one before them: one send for many (a
    // pipeline's KV answers are one frame each).
    if (!outq_.empty() && out.fds.empty() && outq_.back().fds.empty() &&
        outq_.back().frame.size() + out.frame.size() <= kCoalesceBytes) {
      outq_.back().frame += out.frame;
      return;
    }
    outq_.push_back(std::move(out));
  }

  void Flush() {
    while (!outq_.empty()) {
      Outgoing& o = outq_.front();
      std::string_view rest(o.frame.data() + offset_, o.frame.size() - offset_);
      std::vector<int> fds;
      if (offset_ == 0) {
        for (const UniqueFd& fd : o.fds) fds.push_back(fd.get());
      }
      auto sent = SendSome(sock_.native_handle(), rest, fds);
      if (!sent.ok()) return Shutdown();
      if (*sent == 0) {
        WaitWritable();
        return;
      }
      offset_ += *sent;
      pending_bytes_ -= *sent;
      if (offset_ == o.frame.size()) {
        outq_.pop_front();
        offset_ = 0;
      }
    }
    if (closing_) return Shutdown();
    kv_->OutputDrained();
    if (read_paused_ && !kv_->backlogged()) Resume();
  }

  void WaitWritable() {
    if (waiting_write_) return;
    waiting_write_ = true;
    sock_.async_wait(Local::socket::wait_write, [self = shared_from_this()](error_code ec) {
      self->waiting_write_ = false;
      if (!ec) self->Flush();
    });
  }

  void Shutdown() {
    error_code ec;
    sock_.close(ec);
    outq_.clear();
    pending_bytes_ = 0;
    kv_->Close();
  }

  Local::socket sock_;
  std::shared_ptr<UdsServer::Impl> server_;
  FrameReader reader_;
  ServerSession session_;
  std::shared_ptr<KvSession> kv_;  // the connection's KV calls and watches
  size_t queue_calls_ = 0;         // queue calls under way
  std::deque<Outgoing> outq_;
  size_t offset_ = 0;  // into outq_.front().frame
  size_t pending_bytes_ = 0;
  bool waiting_write_ = false;
  bool read_paused_ = false;
  bool closing_ = false;
};

}  // namespace

Status UdsServer::Impl::Start() {
  const std::string& path = options_.path;
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return InvalidArgument("socket path must be 1.." +
                           std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes: " + path);
  }
  Local::endpoint ep(path);
  error_code ec;
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    // Only ever replace a socket: a mistyped --socket must not delete someone's file.
    if (!S_ISSOCK(st.st_mode)) return InvalidArgument(path + " exists and is not a socket");
    Local::socket probe(io_);
    probe.connect(ep, ec);
    if (!ec) return AlreadyExists("a node is already listening on " + path);
    if (unlink(path.c_str()) != 0) return ErrnoError("remove stale socket " + path, errno);
  }
  acceptor_.open(ep.protocol(), ec);
  if (ec) return Internal("socket: " + ec.message());
  const mode_t old_mask = umask(0177);  // no window in which others could connect
  acceptor_.bind(ep, ec);
  umask(old_mask);
  if (ec) return Unavailable("bind " + path + ": " + ec.message());
  if (chmod(path.c_str(), options_.socket_mode) != 0) return ErrnoError("chmod " + path, errno);
  acceptor_.listen(1024, ec);
  if (ec) return Internal("listen " + path + ": " + ec.message());
  started_ = true;
  Accept();
  return Status::Ok();
}

void UdsServer::Impl::Accept() {
  acceptor_.async_accept(asio::make_strand(io_), [self = shared_from_this()](error_code ec,
                                                                             Local::socket sock) {
    if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
    if (ec) {
      spdlog::warn("event=accept_failed error=\"{}\"", ec.message());
      auto timer = std::make_shared<asio::steady_timer>(self->io_, std::chrono::milliseconds(50));
      timer->async_wait([self, timer](error_code) { self->Accept(); });
      return;
    }
    if (self->count() >= self->options_.max_connections) {
      spdlog::warn("event=connection_refused reason=max_connections limit={}",
                   self->options_.max_connections);
      sock.close(ec);
    } else {
      auto conn = std::make_shared<Connection>(std::move(sock), self);
      self->Register(conn.get(), conn);
      conn->Start();
    }
    self->Accept();
  });
}

void UdsServer::Impl::Stop() {
  if (!started_) return;
  started_ = false;
  error_code ec;
  acceptor_.close(ec);
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [ptr, weak] : conns_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) c->Close();
  if (queue_) queue_->Stop();  // parked reads answer now, not at the end of their wait
  unlink(options_.path.c_str());
}

UdsServer::UdsServer(asio::io_context& io, std::shared_ptr<Peer> peer, UdsServerOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(peer), std::move(options))) {}

UdsServer::~UdsServer() {
  impl_->Stop();
  impl_->JoinKvPool();  // while the io_context its answers are posted to still exists
}

Status UdsServer::Start() { return impl_->Start(); }
void UdsServer::Stop() { impl_->Stop(); }
size_t UdsServer::connection_count() const { return impl_->count(); }

}  // namespace packice
