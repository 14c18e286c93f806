// The client side of the gRPC transport; see grpc_channel.h.
#include "transport/grpc/grpc_channel.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>

#include "core/io.h"
#include "core/mutex.h"
#include "transport/grpc/chunk_codec.h"
#include "transport/grpc/grpc_common.h"
#include "transport/grpc/objects.grpc.pb.h"
#include "transport/uds/wire_convert.h"

namespace packice {
namespace {

// One Session stream: the id the node gave it, and a thread that waits for its end.
struct SessionStream {
  ::grpc::ClientContext context;
  std::unique_ptr<::grpc::ClientReaderWriter<rpc::SessionRequest, rpc::SessionInfo>> stream;
  SessionId id = 0;
  std::atomic<bool> alive{true};
  ::grpc::Status finished;  // the stream's end, set by the watcher before it returns
  std::thread watcher;

  ~SessionStream() {
    context.TryCancel();
    if (watcher.joinable()) watcher.join();
  }
};

// A server-streaming call made on the generic stub and driven on a completion queue of its own,
// so that each response arrives as gRPC's received slices (read by ReceivedChunk) instead of
// a message protobuf copied the bytes into.
class RawServerStream {
 public:
  RawServerStream(::grpc::GenericStub& stub, ::grpc::ClientContext* ctx, const std::string& method,
                  const google::protobuf::MessageLite& request)
      : ctx_(ctx), call_(stub.PrepareCall(ctx, method, &cq_)) {
    call_->StartCall(this);
    open_ = Wait();
    if (!open_) return;
    const std::string bytes = request.SerializeAsString();
    ::grpc::Slice slice(bytes);
    call_->WriteLast(::grpc::ByteBuffer(&slice, 1), ::grpc::WriteOptions(), this);
    open_ = Wait();
  }
  RawServerStream(const RawServerStream&) = delete;
  RawServerStream& operator=(const RawServerStream&) = delete;

  // Ends a call not read to its end (cancelled), then drains the queue.
  ~RawServerStream() {
    if (!finished_) {
      ctx_->TryCancel();
      Finish();
    }
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  // The next response; false at the stream's end (Finish says how it ended).
  bool Read(::grpc::ByteBuffer* out) {
    if (!open_) return false;
    call_->Read(out, this);
    open_ = Wait();
    return open_;
  }

  ::grpc::Status Finish() {
    if (!finished_) {
      call_->Finish(&status_, this);
      Wait();
      finished_ = true;
    }
    return status_;
  }

 private:
  bool Wait() {
    void* tag;
    bool ok = false;
    return cq_.Next(&tag, &ok) && ok;
  }

  ::grpc::ClientContext* ctx_;
  ::grpc::CompletionQueue cq_;
  std::unique_ptr<::grpc::GenericClientAsyncReaderWriter> call_;
  bool open_ = false;
  bool finished_ = false;
  ::grpc::Status status_;
};

// One received chunk message (GetChunk, Chunk): its other fields parsed into `fields`, its
// bytes field as spans of the received slices, copied out once by CopyTo.
class ReceivedChunk {
 public:
  Status Parse(const ::grpc::ByteBuffer& buffer, uint32_t field,
               google::protobuf::MessageLite* fields) {
    slices_.clear();
    pieces_.clear();
    data_.clear();
    rest_.clear();
    if (!buffer.Dump(&slices_).ok()) return ProtocolError("an unreadable message from the node");
    for (const auto& s : slices_) {
      pieces_.push_back(std::as_bytes(std::span(s.begin(), s.size())));
    }
    data_bytes_ = 0;
    PACKICE_RETURN_IF_ERROR(
        rpc::SplitBytesField(pieces_, field, &rest_, [this](std::span<const std::byte> d) {
          data_.push_back(d);
          data_bytes_ += d.size();
          return Status::Ok();
        }));
    if (!fields->ParseFromString(rest_)) {
      return ProtocolError("a malformed " + fields->GetTypeName() + " message from the node");
    }
    return Status::Ok();
  }

  // Copies the bytes to the end of what `out` has received so far.
  Status CopyTo(std::span<std::byte> out, uint64_t* received) const {
    if (data_bytes_ > out.size() - *received) {
      return ProtocolError("the node sent more bytes than the object's " +
                           std::to_string(out.size()));
    }
    for (std::span<const std::byte> d : data_) {
      std::memcpy(out.data() + *received, d.data(), d.size());
      *received += d.size();
    }
    return Status::Ok();
  }

 private:
  std::vector<::grpc::Slice> slices_;
  std::vector<std::span<const std::byte>> pieces_;
  std::vector<std::span<const std::byte>> data_;
  uint64_t data_bytes_ = 0;
  std::string rest_;
};

std::string MethodName(const char* name) {
  return "/" + std::string(rpc::Objects::service_full_name()) + "/" + name;
}

class GrpcChannelImpl final : public GrpcChannel {
 public:
  inline static const std::string kGetMethod = MethodName("Get");
  inline static const std::string kReadMethod = MethodName("Read");

  GrpcChannelImpl(std::shared_ptr<::grpc::Channel> channel, GrpcChannelOptions options)
      : channel_(std::move(channel)),
        stub_(rpc::Objects::NewStub(channel_)),
        generic_(channel_),
        options_(std::move(options)) {}

  Result<OpenedObject> Create(std::string_view key, uint64_t size,
                              const CreateOptions& options) override {
    PACKICE_ASSIGN_OR_RETURN(SessionId session, EnsureSession());
    ::grpc::ClientContext ctx;
    Prepare(&ctx, /*unary=*/true, session);
    wire::CreateRequest req;
    req.set_key(std::string(key));
    req.set_size(size);
    ToWire(options, req.mutable_options());
    rpc::LeaseReply reply;
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(stub_->Create(&ctx, req, &reply), ctx));
    OpenedObject out = Opened(reply);
    try {
      out.view = std::make_shared<OwnedView>(size, /*carried_on_seal=*/true);
    } catch (const std::bad_alloc&) {
      Discard(out.lease).IgnoreError();
      return OutOfCapacity("no memory for a buffer of " + std::to_string(size) + " bytes");
    }
    return out;
  }

  Result<ObjectInfo> Seal(LeaseId lease, BlobView& view, std::optional<uint64_t> size) override {
    const SessionId session = CurrentSession();
    if (session == 0) return LeaseExpired("the session with the node ended");
    ::grpc::ClientContext ctx;
    Prepare(&ctx, /*unary=*/false, session);
    wire::ObjectInfo reply;
    auto writer = stub_->Seal(&ctx, &reply);
    std::span<const std::byte> bytes;
    if (view.carried_on_seal()) {
      bytes = view.bytes();
      if (size) bytes = bytes.first(std::min<uint64_t>(*size, bytes.size()));
    }
    rpc::SealChunk chunk;
    chunk.set_lease(lease);
    if (size) chunk.set_size(*size);
    SendChunks(bytes, &chunk, writer.get());
    return Finish(writer.get(), ctx, reply);
  }

  Status Release(LeaseId lease) override { return EndLease(lease, /*discard=*/false); }
  Status Discard(LeaseId lease) override { return EndLease(lease, /*discard=*/true); }

  Status Renew(std::span<const LeaseId> leases, std::vector<LeaseId>* expired) override {
    const SessionId session = CurrentSession();
    if (session == 0) {  // the session ended: so did its leases
      expired->insert(expired->end(), leases.begin(), leases.end());
      return Status::Ok();
    }
    ::grpc::ClientContext ctx;
    Prepare(&ctx, /*unary=*/true, session);
    wire::RenewRequest req;
    for (LeaseId l : leases) req.add_leases(l);
    wire::RenewResponse reply;
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(stub_->Renew(&ctx, req, &reply), ctx));
    expired->insert(expired->end(), reply.expired().begin(), reply.expired().end());
    return Status::Ok();
  }

  Result<OpenedObject> Open(std::string_view key) override {
    PACKICE_ASSIGN_OR_RETURN(SessionId session, EnsureSession());
    ::grpc::ClientContext ctx;
    Prepare(&ctx, /*unary=*/true, session);
    wire::OpenRequest req;
    req.set_key(std::string(key));
    rpc::LeaseReply reply;
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(stub_->Open(&ctx, req, &reply), ctx));
    OpenedObject out = Opened(reply);
    Result<std::shared_ptr<OwnedView>> view = ReadLeased(session, out.lease, out.info.size);
    if (!view.ok()) {
      Release(out.lease).IgnoreError();
      return view.status();
    }
    out.view = *std::move(view);
    return out;
  }

  Result<ObjectInfo> Put(std::string_view key, std::span<const std::byte> data,
                         const CreateOptions& options) override {
    ::grpc::ClientContext ctx;
    Prepare(&ctx, /*unary=*/false, 0);
    wire::ObjectInfo reply;
    auto writer = stub_->Put(&ctx, &reply);
    rpc::PutChunk chunk;
    chunk.set_key(std::string(key));
    chunk.set_size(data.size());
    ToWire(options, chunk.mutable_options());
    SendChunks(data, &chunk, writer.get());
    return Finish(writer.get(), ctx, reply);
  }

  Result<OpenedObject> Get(std::string_view key) override {
    std::shared_ptr<OwnedView> view;
    auto allocate = [&](const ObjectInfo& info) -> Result<std::span<std::byte>> {
      try {
        view = std::make_shared<OwnedView>(info.size, false);
      } catch (const std::bad_alloc&) {
        return OutOfCapacity("no memory for the " + std::to_string(info.size) + " bytes of '" +
                             info.key + "'");
      }
      return view->bytes();
    };
    PACKICE_ASSIGN_OR_RETURN(SessionId session, EnsureSession());
    OpenedObject out;
    PACKICE_ASSIGN_OR_RETURN(out.info, GetStream(key, session, allocate, &out));
    out.view = std::move(view);
    return out;
  }

  Result<ObjectInfo> GetInto(
      std::string_view key,
      const std::function<Result<std::span<std::byte>>(const ObjectInfo&)>& allocate) override {
    return GetStream(key, 0, allocate, nullptr);
  }

  Result<ObjectInfo> Stat(std::string_view key) override {
    ::grpc::ClientContext ctx;
    Prepare(&ctx, /*unary=*/true, 0);
    wire::KeyRequest req;
    req.set_key(std::string(key));
    wire::ObjectInfo reply;
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(stub_->Stat(&ctx, req, &reply), ctx));
    return FromWire(reply);
  }

  Result<ListPage> List(const ListOptions& options) override {
    ::grpc::ClientContext ctx;
    Prepare(&ctx, /*unary=*/true, 0);
    wire::ListRequest req;
    req.set_prefix(options.prefix);
    req.set_start_after(options.start_after);
    req.set_limit(options.limit);
    wire::ListResponse reply;
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(stub_->List(&ctx, req, &reply), ctx));
    ListPage page;
    for (const auto& o : reply.objects()) page.objects.push_back(FromWire(o));
    page.truncated = reply.truncated();
    return page;
  }

  Status Delete(std::string_view key) override {
    ::grpc::ClientContext ctx;
    Prepare(&ctx, /*unary=*/true, 0);
    wire::KeyRequest req;
    req.set_key(std::string(key));
    rpc::Empty reply;
    return rpc::FromGrpc(stub_->Delete(&ctx, req, &reply), ctx);
  }

 private:
  // A streamed Get. With a session, the node may keep a read lease on a large object in it:
  // `leased` gets it (a failed get leaves none held).
  Result<ObjectInfo> GetStream(
      std::string_view key, SessionId session,
      const std::function<Result<std::span<std::byte>>(const ObjectInfo&)>& allocate,
      OpenedObject* leased) {
    ::grpc::ClientContext ctx;
    Prepare(&ctx, /*unary=*/false, session);
    wire::GetRequest req;
    req.set_key(std::string(key));
    RawServerStream stream(generic_, &ctx, kGetMethod, req);
    ::grpc::ByteBuffer buffer;
    ReceivedChunk chunk;
    rpc::GetChunk msg;
    std::optional<ObjectInfo> info;
    std::span<std::byte> out;
    uint64_t received = 0;
    Status status;
    while (status.ok() && stream.Read(&buffer)) {
      status = chunk.Parse(buffer, rpc::GetChunk::kDataFieldNumber, &msg);
      buffer.Clear();
      if (!status.ok()) break;
      if (!info) {
        if (!msg.has_info()) {
          status = ProtocolError("the node's first message carries no object info");
          break;
        }
        info = FromWire(msg.info());
        if (leased != nullptr) {
          leased->lease = msg.lease();
          leased->lease_ttl = Duration(msg.lease_ttl_ms());
        }
        Result<std::span<std::byte>> span = allocate(*info);
        if (!span.ok()) {
          status = span.status();
          break;
        }
        out = *span;
      }
      status = chunk.CopyTo(out, &received);
    }
    Status finished = status.ok() ? rpc::FromGrpc(stream.Finish(), ctx) : status;
    if (finished.ok() && !info) {
      finished = ProtocolError("the node ended the get without the object's info");
    }
    if (finished.ok() && received != info->size) finished = ShortStream(received, info->size);
    if (!finished.ok()) {
      if (!status.ok()) {
        ctx.TryCancel();
        stream.Finish().IgnoreError();
      }
      // The node releases a lease it kept for a get that failed on its side; one that failed
      // here is released here.
      if (leased != nullptr && leased->lease != 0) {
        Release(std::exchange(leased->lease, 0)).IgnoreError();
      }
      return finished;
    }
    return *std::move(info);
  }

  void Prepare(::grpc::ClientContext* ctx, bool unary, SessionId session) const {
    if (!options_.bearer_token.empty()) {
      ctx->AddMetadata(rpc::kAuthorizationKey, "Bearer " + options_.bearer_token);
    }
    if (session != 0) ctx->AddMetadata(rpc::kSessionKey, std::to_string(session));
    if (options_.forwarded) ctx->AddMetadata(rpc::kForwardedKey, "1");
    if (unary) ctx->set_deadline(std::chrono::system_clock::now() + options_.call_timeout);
  }

  static OpenedObject Opened(const rpc::LeaseReply& reply) {
    OpenedObject out;
    out.lease = reply.lease();
    out.lease_ttl = Duration(reply.lease_ttl_ms());
    out.info = FromWire(reply.info());
    return out;
  }

  static Status ShortStream(uint64_t received, uint64_t size) {
    return ProtocolError("the node sent " + std::to_string(received) + " bytes of an object of " +
                         std::to_string(size));
  }

  // Writes `bytes` in chunks, the first in `first` (whose other fields are set), and
  // half-closes. A failed write means the call is over: Finish says why.
  template <typename Message, typename Writer>
  static void SendChunks(std::span<const std::byte> bytes, Message* first, Writer* writer) {
    Message* msg = first;
    size_t offset = 0;
    do {
      const size_t n = std::min<size_t>(rpc::kChunkBytes, bytes.size() - offset);
      msg->set_data(reinterpret_cast<const char*>(bytes.data()) + offset, n);
      offset += n;
      if (!writer->Write(*msg)) return;
      msg->Clear();
    } while (offset < bytes.size());
    writer->WritesDone();
  }

  template <typename Writer>
  static Result<ObjectInfo> Finish(Writer* writer, const ::grpc::ClientContext& ctx,
                                   const wire::ObjectInfo& reply) {
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(writer->Finish(), ctx));
    return FromWire(reply);
  }

  Result<std::shared_ptr<OwnedView>> ReadLeased(SessionId session, LeaseId lease, uint64_t size) {
    std::shared_ptr<OwnedView> view;
    try {
      view = std::make_shared<OwnedView>(size, false);
    } catch (const std::bad_alloc&) {
      return OutOfCapacity("no memory for a buffer of " + std::to_string(size) + " bytes");
    }
    ::grpc::ClientContext ctx;
    Prepare(&ctx, /*unary=*/false, session);
    rpc::ReadRequest req;
    req.set_lease(lease);
    RawServerStream stream(generic_, &ctx, kReadMethod, req);
    ::grpc::ByteBuffer buffer;
    ReceivedChunk chunk;
    rpc::Chunk msg;
    uint64_t received = 0;
    Status status;
    while (status.ok() && stream.Read(&buffer)) {
      status = chunk.Parse(buffer, rpc::Chunk::kDataFieldNumber, &msg);
      buffer.Clear();
      if (status.ok()) status = chunk.CopyTo(view->bytes(), &received);
    }
    if (!status.ok()) {
      ctx.TryCancel();
      stream.Finish().IgnoreError();
      return status;
    }
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(stream.Finish(), ctx));
    if (received != size) return ShortStream(received, size);
    return view;
  }

  Status EndLease(LeaseId lease, bool discard) {
    const SessionId session = CurrentSession();
    if (session == 0) return LeaseExpired("the session with the node ended");
    ::grpc::ClientContext ctx;
    Prepare(&ctx, /*unary=*/true, session);
    wire::LeaseIdRequest req;
    req.set_lease(lease);
    rpc::Empty reply;
    return rpc::FromGrpc(
        discard ? stub_->Discard(&ctx, req, &reply) : stub_->Release(&ctx, req, &reply), ctx);
  }

  // The live session's id, or 0.
  SessionId CurrentSession() {
    MutexLock lock(&mu_);
    return session_ != nullptr && session_->alive ? session_->id : 0;
  }

  // The live session, opened when there is none. One caller opens it while the others wait
  // (at most call_timeout: a node that does not name the session in time is cancelled);
  // CurrentSession never waits behind an opening.
  Result<SessionId> EnsureSession() ABSL_LOCKS_EXCLUDED(open_mu_, mu_) {
    MutexLock open(&open_mu_);
    std::unique_ptr<SessionStream> ended;
    {
      MutexLock lock(&mu_);
      if (session_ != nullptr && session_->alive) return session_->id;
      ended = std::move(session_);
    }
    ended.reset();  // joins the watcher of the ended one
    auto s = std::make_unique<SessionStream>();
    Prepare(&s->context, /*unary=*/false, 0);
    s->stream = stub_->Session(&s->context);
    std::promise<bool> named;
    std::future<bool> first = named.get_future();
    SessionStream* raw = s.get();
    s->watcher = std::thread([raw, named = std::move(named)]() mutable {
      rpc::SessionInfo info;
      const bool ok = raw->stream->Read(&info);
      if (ok) raw->id = info.session();
      named.set_value(ok);
      while (ok && raw->stream->Read(&info)) {
      }
      raw->alive = false;
      raw->finished = raw->stream->Finish();
    });
    bool late = false;
    if (first.wait_for(options_.call_timeout) != std::future_status::ready) {
      late = true;
      s->context.TryCancel();
    }
    if (!first.get()) {
      s->watcher.join();
      if (late) {
        return Timeout("the node did not open a session within " +
                       std::to_string(options_.call_timeout.count()) + " ms");
      }
      Status st = rpc::FromGrpc(s->finished, s->context);
      return st.ok() ? Unavailable("the node ended the session stream at once") : st;
    }
    MutexLock lock(&mu_);
    session_ = std::move(s);
    return session_->id;
  }

  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<rpc::Objects::Stub> stub_;
  ::grpc::GenericStub generic_;  // Get and Read (RawServerStream)
  GrpcChannelOptions options_;
  Mutex open_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // held by the caller opening a session
  Mutex mu_;
  std::unique_ptr<SessionStream> session_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

Result<std::shared_ptr<::grpc::Channel>> NewGrpcConnection(const std::string& target, bool tls,
                                                           const std::string& ca_file,
                                                           const std::string& bearer_token) {
  if (target.empty() || target.find_first_of("/?# ") != std::string::npos ||
      target.rfind(':') == std::string::npos) {
    return InvalidArgument("bad gRPC target '" + target + "': expected host:port");
  }
  for (unsigned char c : bearer_token) {
    if (c < 0x21 || c > 0x7e) {
      return InvalidArgument("a token is printable ASCII without spaces or control characters");
    }
  }
  std::shared_ptr<::grpc::ChannelCredentials> creds;
  if (tls) {
    ::grpc::SslCredentialsOptions ssl;
    if (!ca_file.empty()) {
      PACKICE_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadSmallFile(ca_file));
    }
    creds = ::grpc::SslCredentials(ssl);
  } else {
    creds = ::grpc::InsecureChannelCredentials();
  }
  ::grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(rpc::kMaxMessageBytes);
  args.SetMaxSendMessageSize(rpc::kMaxMessageBytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // A node that went away is retried soon after it is back, not after gRPC's default backoff of
  // up to two minutes: the ring may still route its keys here.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2'000);
  return ::grpc::CreateCustomChannel(target, creds, args);
}

Result<std::shared_ptr<::grpc::Channel>> DialGrpc(const std::string& target,
                                                  const GrpcChannelOptions& options) {
  PACKICE_ASSIGN_OR_RETURN(
      std::shared_ptr<::grpc::Channel> channel,
      NewGrpcConnection(target, options.tls, options.ca_file, options.bearer_token));
  const auto deadline = std::chrono::system_clock::now() + options.connect_timeout;
  for (grpc_connectivity_state state = channel->GetState(true); state != GRPC_CHANNEL_READY;
       state = channel->GetState(true)) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      return Unavailable("no gRPC node answers at " + target +
                         (options.tls ? " (or its TLS certificate is not trusted)" : ""));
    }
    if (!channel->WaitForStateChange(state, deadline)) {
      return Unavailable("timed out connecting to " + target);
    }
  }
  return channel;
}

std::shared_ptr<GrpcChannel> NewGrpcChannel(std::shared_ptr<::grpc::Channel> channel,
                                            const GrpcChannelOptions& options) {
  return std::make_shared<GrpcChannelImpl>(std::move(channel), options);
}

Result<std::shared_ptr<GrpcChannel>> NewGrpcChannel(const std::string& target,
                                                    const GrpcChannelOptions& options) {
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<::grpc::Channel> channel, DialGrpc(target, options));
  return NewGrpcChannel(std::move(channel), options);
}

}  // namespace packice
