// The client side of the Unix-socket transport: one connection, one request in flight at a time
// (callers on other threads wait their turn), blocking I/O with a receive timeout.
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>

#include "core/mapped_view.h"
#include "transport/channel.h"
#include "transport/uds/fd_socket.h"
#include "transport/uds/frame.h"
#include "transport/uds/request_handler.h"
#include "transport/uds/uds_call.h"
#include "transport/uds/wire.pb.h"
#include "transport/uds/wire_convert.h"

namespace packice {
namespace {

constexpr int kReplyTimeoutSeconds = 60;

struct Reply {
  wire::Response response;
  std::vector<UniqueFd> fds;
};

class UdsChannel final : public Channel {
 public:
  static Result<std::shared_ptr<Channel>> Connect(const std::string& path) {
    PACKICE_ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnixSocket(path));
    timeval tv{kReplyTimeoutSeconds, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    auto channel = std::shared_ptr<UdsChannel>(new UdsChannel(std::move(fd)));
    wire::Request req;
    req.mutable_hello()->set_protocol_version(kProtocolVersion);
    PACKICE_ASSIGN_OR_RETURN(Reply reply, channel->Call(req));
    channel->inline_max_ = reply.response.hello().inline_max_bytes();
    channel->max_frame_ = reply.response.hello().max_frame_bytes();
    return std::shared_ptr<Channel>(std::move(channel));
  }

  Result<OpenedObject> Create(std::string_view key, uint64_t size,
                              const CreateOptions& options) override {
    wire::Request req;
    auto* c = req.mutable_create();
    c->set_key(std::string(key));
    c->set_size(size);
    ToWire(options, c->mutable_options());
    PACKICE_ASSIGN_OR_RETURN(Reply reply, Call(req));
    return Opened(std::move(reply), /*writable=*/true);
  }

  Result<ObjectInfo> Seal(LeaseId lease, BlobView& view, std::optional<uint64_t> size) override {
    wire::Request req;
    auto* s = req.mutable_seal();
    s->set_lease(lease);
    if (size) s->set_size(*size);
    if (view.carried_on_seal()) {
      std::span<std::byte> bytes = view.bytes();
      s->set_data(bytes.data(), size ? std::min<uint64_t>(*size, bytes.size()) : bytes.size());
    }
    PACKICE_ASSIGN_OR_RETURN(Reply reply, Call(req));
    return FromWire(reply.response.info());
  }

  Status Release(LeaseId lease) override {
    wire::Request req;
    req.mutable_release()->set_lease(lease);
    return Call(req).status();
  }

  Status Discard(LeaseId lease) override {
    wire::Request req;
    req.mutable_discard()->set_lease(lease);
    return Call(req).status();
  }

  Status Renew(std::span<const LeaseId> leases, std::vector<LeaseId>* expired) override {
    wire::Request req;
    for (LeaseId id : leases) req.mutable_renew()->add_leases(id);
    PACKICE_ASSIGN_OR_RETURN(Reply reply, Call(req));
    for (uint64_t id : reply.response.renew().expired()) expired->push_back(id);
    return Status::Ok();
  }

  Result<OpenedObject> Open(std::string_view key) override {
    wire::Request req;
    req.mutable_open()->set_key(std::string(key));
    PACKICE_ASSIGN_OR_RETURN(Reply reply, Call(req));
    return Opened(std::move(reply), /*writable=*/false);
  }

  Result<ObjectInfo> Put(std::string_view key, std::span<const std::byte> data,
                         const CreateOptions& options) override {
    if (data.size() > inline_max_) {
      // Large: write straight into the node's memory.
      PACKICE_ASSIGN_OR_RETURN(OpenedObject obj, Create(key, data.size(), options));
      if (!data.empty()) std::memcpy(obj.view->bytes().data(), data.data(), data.size());
      auto info = Seal(obj.lease, *obj.view, std::nullopt);
      if (!info.ok() && info.status().code() != StatusCode::kLeaseExpired) {
        Discard(obj.lease).IgnoreError();  // best effort; the session ends it otherwise
      }
      return info;
    }
    wire::Request req;
    auto* p = req.mutable_put();
    p->set_key(std::string(key));
    p->set_data(data.data(), data.size());
    ToWire(options, p->mutable_options());
    PACKICE_ASSIGN_OR_RETURN(Reply reply, Call(req));
    return FromWire(reply.response.info());
  }

  Result<OpenedObject> Get(std::string_view key) override {
    wire::Request req;
    req.mutable_get()->set_key(std::string(key));
    PACKICE_ASSIGN_OR_RETURN(Reply reply, Call(req));
    return Opened(std::move(reply), /*writable=*/false);
  }

  Result<ObjectInfo> Stat(std::string_view key) override {
    wire::Request req;
    req.mutable_stat()->set_key(std::string(key));
    PACKICE_ASSIGN_OR_RETURN(Reply reply, Call(req));
    return FromWire(reply.response.info());
  }

  Result<ListPage> List(const ListOptions& options) override {
    wire::Request req;
    auto* l = req.mutable_list();
    l->set_prefix(options.prefix);
    l->set_start_after(options.start_after);
    l->set_limit(options.limit);
    PACKICE_ASSIGN_OR_RETURN(Reply reply, Call(req));
    ListPage page;
    for (const auto& o : reply.response.list().objects()) page.objects.push_back(FromWire(o));
    page.truncated = reply.response.list().truncated();
    return page;
  }

  Status Delete(std::string_view key) override {
    wire::Request req;
    req.mutable_delete_()->set_key(std::string(key));
    return Call(req).status();
  }

  // Sends `req` and waits for its reply (UdsCall: calls that carry no descriptors).
  Result<wire::Response> CallPlain(wire::Request& req) {
    PACKICE_ASSIGN_OR_RETURN(Reply reply, Call(req));
    if (!reply.fds.empty()) return ProtocolError("a reply with descriptors to a plain call");
    return std::move(reply.response);
  }
  bool broken() {
    std::lock_guard<std::mutex> lock(mu_);
    return !broken_.ok();
  }

 private:
  explicit UdsChannel(UniqueFd fd) : fd_(std::move(fd)) {}

  Result<OpenedObject> Opened(Reply reply, bool writable) {
    const auto& l = reply.response.lease();
    OpenedObject o;
    o.lease = l.lease();
    o.lease_ttl = Duration(l.lease_ttl_ms());
    o.info = FromWire(l.info());
    if (l.blob().kind() == wire::Blob::FD) {
      if (reply.fds.size() != 1) return ProtocolError("mapped blob without a descriptor");
      // Writers touch every page, so fault them in with one call. Readers of 4 KiB pages map
      // lazily, so that opening an object costs the same whatever its size; 2 MiB pages are
      // few enough (32 for 64 MiB) to map at once.
      const bool huge = l.blob().huge_pages();
      PACKICE_ASSIGN_OR_RETURN(o.view, MapView(reply.fds[0].get(), l.blob().offset(),
                                               l.blob().map_size(), o.info.size, writable,
                                               /*populate=*/writable || huge, huge));
    } else if (writable) {
      o.view = std::make_shared<OwnedView>(o.info.size, /*carried_on_seal=*/true);
    } else {
      if (l.blob().data().size() != o.info.size) return ProtocolError("inline blob size mismatch");
      const auto* p = reinterpret_cast<const std::byte*>(l.blob().data().data());
      o.view = std::make_shared<OwnedView>(std::vector<std::byte>(p, p + o.info.size));
    }
    return o;
  }

  // Sends `req` and waits for its reply. A non-OK reply becomes its Status. Transport failures
  // break the channel: every later call fails with kUnavailable.
  Result<Reply> Call(wire::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!broken_.ok()) return broken_;
    req.set_id(++last_id_);
    out_.clear();
    AppendFrame(req, &out_);
    if (out_.size() - kFrameHeaderBytes > max_frame_) {
      return InvalidArgument("request of " + std::to_string(out_.size()) +
                             " bytes exceeds the node's frame limit");
    }
    auto reply = Exchange();
    if (!reply.ok()) {
      broken_ = reply.status().code() == StatusCode::kUnavailable
                    ? reply.status()
                    : Unavailable("connection broken: " + reply.status().ToString());
      fd_ = UniqueFd();
      pending_fds_.clear();
      return reply.status();
    }
    PACKICE_RETURN_IF_ERROR(StatusFromWire(reply->response));
    return reply;
  }

  Result<Reply> Exchange() {
    PACKICE_RETURN_IF_ERROR(SendAll(fd_.get(), out_, {}));
    while (true) {
      PACKICE_ASSIGN_OR_RETURN(std::optional<std::string_view> frame, reader_.Next());
      if (frame) {
        Reply reply;
        if (!reply.response.ParseFromArray(frame->data(), static_cast<int>(frame->size()))) {
          return ProtocolError("reply does not parse");
        }
        if (reply.response.fd_count() > pending_fds_.size()) {
          return ProtocolError("reply announces descriptors that did not arrive");
        }
        for (uint32_t i = 0; i < reply.response.fd_count(); ++i) {
          reply.fds.push_back(std::move(pending_fds_.front()));
          pending_fds_.pop_front();
        }
        if (reply.response.id() != last_id_) {
          // A connection-level error (id 0) or a stray reply: either way the stream is off.
          if (reply.response.id() == 0 && reply.response.code() != 0) {
            return Unavailable("node closed the connection: " + reply.response.message());
          }
          return ProtocolError("reply for request " + std::to_string(reply.response.id()) +
                               ", expected " + std::to_string(last_id_));
        }
        return reply;
      }
      // Wait in poll, not in recvmsg: a thread blocked in recv on a Unix socket is also woken
      // when the node reads the request, a wasted context switch on every call.
      pollfd pfd{fd_.get(), POLLIN, 0};
      int ready;
      do {
        ready = poll(&pfd, 1, kReplyTimeoutSeconds * 1000);
      } while (ready < 0 && errno == EINTR);
      if (ready == 0) return Timeout("no reply from the node in time");
      std::span<char> tail = reader_.WritableTail(64 * 1024);
      std::vector<int> fds;
      auto n = RecvWithFds(fd_.get(), tail, &fds);
      for (int fd : fds) pending_fds_.emplace_back(fd);
      if (!n.ok()) return n.status();
      if (*n == 0) return Unavailable("node closed the connection");
      reader_.Commit(*n);
    }
  }

  std::mutex mu_;
  UniqueFd fd_;
  Status broken_;
  uint64_t last_id_ = 0;
  std::string out_;
  FrameReader reader_{1u << 30};  // the node is trusted to respect its own frame limit
  std::deque<UniqueFd> pending_fds_;
  uint64_t inline_max_ = 0;
  uint64_t max_frame_ = kDefaultMaxFrameBytes;
};

}  // namespace

Result<std::shared_ptr<Channel>> NewUdsChannel(const std::string& path) {
  return UdsChannel::Connect(path);
}

Result<std::unique_ptr<UdsCall>> UdsCall::Connect(const std::string& path) {
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Channel> channel, UdsChannel::Connect(path));
  return std::unique_ptr<UdsCall>(new UdsCall(std::move(channel)));
}

Result<wire::Response> UdsCall::Call(wire::Request& req) {
  return static_cast<UdsChannel&>(*channel_).CallPlain(req);
}

bool UdsCall::broken() const { return static_cast<UdsChannel&>(*channel_).broken(); }

}  // namespace packice
