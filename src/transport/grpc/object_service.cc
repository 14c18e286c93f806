#include "transport/grpc/object_service.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <charconv>
#include <functional>

#include "transport/grpc/chunk_codec.h"
#include "transport/grpc/grpc_common.h"
#include "transport/uds/wire_convert.h"

namespace packice::rpc {
namespace {

std::span<const std::byte> AsBytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

template <typename R>
std::optional<Duration> LeaseTtl(const R& r) {
  if (!r.has_lease_ttl_ms()) return std::nullopt;
  return Duration(r.lease_ttl_ms());
}

// Writes the bytes of consecutive messages into a blob from offset 0, refusing any past `limit`.
class BlobFiller {
 public:
  BlobFiller(Blob& blob, uint64_t limit) : blob_(blob), limit_(limit) {}
  Status Add(const std::string& data) {
    if (data.size() > limit_ - offset_) {
      return InvalidArgument("the stream carries more than the object's " + std::to_string(limit_) +
                             " bytes");
    }
    PACKICE_RETURN_IF_ERROR(blob_.Write(offset_, AsBytes(data)));
    offset_ += data.size();
    return Status::Ok();
  }
  uint64_t written() const { return offset_; }

 private:
  Blob& blob_;
  uint64_t limit_;
  uint64_t offset_ = 0;
};

}  // namespace

// The Session stream: opens a session at once, sends its id, and closes it when the stream ends
// however it ends (half-close, cancellation, a dead connection).
class ObjectService::SessionReactor final
    : public ::grpc::ServerBidiReactor<SessionRequest, SessionInfo> {
 public:
  SessionReactor(ObjectService* service, ::grpc::CallbackServerContext* context)
      : service_(service) {
    if (Status auth = CheckBearer(*context, service->options_.bearer_token); !auth.ok()) {
      Finish(Unauthenticated(auth, context));
      return;
    }
    session_ = service_->OpenSession();
    info_.set_session(session_);
    info_.set_inline_max_bytes(service_->options_.inline_max_bytes);
    info_.set_chunk_bytes(kChunkBytes);
    StartWrite(&info_);
    StartRead(&request_);
  }

  void OnWriteDone(bool) override {}
  void OnReadDone(bool ok) override {
    if (ok) {
      StartRead(&request_);  // the client has nothing to say; read until the stream ends
      return;
    }
    End();
    Finish(::grpc::Status::OK);
  }
  void OnDone() override {
    End();
    delete this;
  }

 private:
  void End() {
    if (session_ != 0) service_->CloseSession(std::exchange(session_, 0));
  }

  ObjectService* service_;
  SessionId session_ = 0;
  SessionInfo info_;
  SessionRequest request_;
};

// What a Get or Read sends: [offset, end) of `blob`, in messages of at most kChunkBytes of
// field `field`, the first one with the other fields `first` (serialized). At least one message
// when `first` is not empty.
struct ObjectService::StreamPlan {
  std::shared_ptr<Blob> blob;
  uint64_t offset = 0;
  uint64_t end = 0;
  uint32_t field = 0;
  std::string first;
  std::function<void()> failed;  // the client did not get it all (may be empty)
  std::function<void()> done;    // after the last message or the failure (may be empty)
};

// A Get or Read stream. Its plan runs on the service's pool; each message is ChunkPrefix and a
// slice of the blob's mapped bytes, which holds the view (and so the bytes) until gRPC is done
// with it. One message is in flight at a time, so a stream holds at most two chunks' slices.
class ObjectService::BlobStream final : public ::grpc::ServerWriteReactor<::grpc::ByteBuffer> {
 public:
  BlobStream(ObjectService* service, ::grpc::CallbackServerContext* context,
             std::function<Result<StreamPlan>()> plan)
      : context_(context) {
    if (Status auth = CheckBearer(*context, service->options_.bearer_token); !auth.ok()) {
      Finish(Unauthenticated(auth, context));
      return;
    }
    boost::asio::post(service->pool_, [this, plan = std::move(plan)] {
      Result<StreamPlan> planned = CatchAsStatus(plan);
      if (!planned.ok()) return End(planned.status());
      plan_ = *std::move(planned);
      if (plan_.offset < plan_.end) {
        Result<std::shared_ptr<BlobView>> view = plan_.blob->OpenView(LeaseMode::kRead);
        if (view.ok()) view_ = *std::move(view);  // else each chunk is copied out
      }
      Next();
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return End(Aborted("the client cancelled the stream"));
    if (plan_.offset == plan_.end) return End(Status::Ok());
    Next();
  }

  void OnDone() override {
    if (!ok_ && plan_.failed) plan_.failed();
    if (plan_.done) plan_.done();
    delete this;
  }

 private:
  // Sends the next message. Runs on gRPC's threads (after the first): an exception there
  // (bad_alloc of a copied chunk, say) would terminate the node, so it ends the stream instead.
  void Next() {
    const Status s = CatchAsStatus([this] {
      NextMessage();
      return Status::Ok();
    });
    if (!s.ok()) End(s);  // it threw before writing: no write is in flight
  }

  void NextMessage() {
    const uint64_t n = std::min<uint64_t>(kChunkBytes, plan_.end - plan_.offset);
    if (n == 0 && plan_.first.empty()) return End(Status::Ok());
    ::grpc::Slice slices[2];
    size_t count = 1;
    if (n == 0) {
      slices[0] = ::grpc::Slice(plan_.first);
    } else {
      slices[0] = ::grpc::Slice(ChunkPrefix(std::move(plan_.first), plan_.field, n));
      Result<::grpc::Slice> data = Data(plan_.offset, n);
      if (!data.ok()) return End(data.status());
      slices[count++] = *std::move(data);
    }
    plan_.first.clear();
    plan_.offset += n;
    message_ = ::grpc::ByteBuffer(slices, count);
    StartWrite(&message_);
  }

  // Bytes [offset, offset + n) of the blob as one slice: of its view, or a copy.
  Result<::grpc::Slice> Data(uint64_t offset, uint64_t n) {
    if (view_ != nullptr) return SharedSlice(view_->bytes().subspan(offset, n), view_);
    auto copy = std::make_shared<std::string>(n, '\0');
    PACKICE_RETURN_IF_ERROR(
        plan_.blob->Read(offset, std::as_writable_bytes(std::span(copy->data(), n))));
    return SharedSlice(std::as_bytes(std::span(copy->data(), n)), copy);
  }

  void End(const Status& status) {
    ok_ = status.ok();
    Finish(ToGrpc(status, context_));
  }

  ::grpc::CallbackServerContext* context_;
  StreamPlan plan_;
  std::shared_ptr<BlobView> view_;
  ::grpc::ByteBuffer message_;
  bool ok_ = false;
};

ObjectService::ObjectService(std::shared_ptr<Peer> peer, ObjectServiceOptions options)
    : peer_(std::move(peer)),
      options_(std::move(options)),
      pool_(static_cast<size_t>(std::max(1, options_.threads))) {}

ObjectService::~ObjectService() {
  pool_.join();
  std::vector<SessionId> open;
  {
    MutexLock lock(&mu_);
    for (const auto& [id, leases] : sessions_) open.push_back(id);
  }
  for (SessionId id : open) CloseSession(id);
}

Peer& ObjectService::PeerFor(const ::grpc::ServerContextBase& context) const {
  if (options_.forwarded_peer != nullptr && !ClientMetadata(context, kForwardedKey).empty()) {
    return *options_.forwarded_peer;
  }
  return *peer_;
}

size_t ObjectService::session_count() const {
  MutexLock lock(&mu_);
  return sessions_.size();
}

SessionId ObjectService::OpenSession() {
  const SessionId id = peer_->OpenSession();
  MutexLock lock(&mu_);
  sessions_[id];
  return id;
}

void ObjectService::CloseSession(SessionId session) {
  {
    MutexLock lock(&mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return;
    for (LeaseId lease : it->second) leases_.erase(lease);
    sessions_.erase(it);
  }
  peer_->CloseSession(session);
}

Result<SessionId> ObjectService::CallSession(const ::grpc::ServerContextBase& context) const {
  std::string_view text = ClientMetadata(context, kSessionKey);
  if (text.empty()) {
    return InvalidArgument(
        "this call needs a session: open one with the Session stream and "
        "name it in the packice-session metadata");
  }
  SessionId id = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || p != text.data() + text.size() || id == 0) {
    return InvalidArgument("malformed packice-session metadata");
  }
  MutexLock lock(&mu_);
  if (!sessions_.contains(id)) {
    return LeaseExpired("session " + std::to_string(id) + " is not open (its stream ended)");
  }
  return id;
}

Result<ObjectService::HeldLease> ObjectService::Held(const ::grpc::ServerContextBase& context,
                                                     LeaseId lease) const {
  PACKICE_ASSIGN_OR_RETURN(SessionId session, CallSession(context));
  MutexLock lock(&mu_);
  auto it = leases_.find(lease);
  if (it == leases_.end() || it->second.session != session) {
    return LeaseExpired("lease " + std::to_string(lease) + " is not held by this session");
  }
  return it->second;
}

Status ObjectService::Hold(LeaseId lease, HeldLease held) {
  MutexLock lock(&mu_);
  auto it = sessions_.find(held.session);
  if (it == sessions_.end()) return LeaseExpired("the session closed");
  if (it->second.size() >= options_.max_leases_per_session) {
    return OutOfCapacity("a session may hold at most " +
                         std::to_string(options_.max_leases_per_session) + " leases");
  }
  it->second.insert(lease);
  leases_[lease] = std::move(held);
  return Status::Ok();
}

void ObjectService::Forget(LeaseId lease) {
  MutexLock lock(&mu_);
  auto it = leases_.find(lease);
  if (it == leases_.end()) return;
  if (auto s = sessions_.find(it->second.session); s != sessions_.end()) s->second.erase(lease);
  leases_.erase(it);
}

Status ObjectService::Grant(Result<packice::Grant> grant, LeaseMode mode, SessionId session,
                            LeaseReply* reply) {
  PACKICE_RETURN_IF_ERROR(grant.status());
  HeldLease held{session, mode, grant->info.size, grant->blob};
  if (Status s = Hold(grant->lease, std::move(held)); !s.ok()) {
    // The client never learns of the lease: end it now.
    (mode == LeaseMode::kCreate ? peer_->Discard(grant->lease) : peer_->Release(grant->lease))
        .IgnoreError();
    return s;
  }
  reply->set_lease(grant->lease);
  reply->set_lease_ttl_ms(grant->lease_ttl.count());
  ToWire(grant->info, reply->mutable_info());
  return Status::Ok();
}

::grpc::Status ObjectService::Create(::grpc::ServerContext* context,
                                     const wire::CreateRequest* request, LeaseReply* reply) {
  return Serve(context, options_.bearer_token, [&]() -> Status {
    PACKICE_ASSIGN_OR_RETURN(SessionId session, CallSession(*context));
    PACKICE_ASSIGN_OR_RETURN(CreateOptions create, FromWire(request->options()));
    AcquireRequest acq{request->key(), LeaseMode::kCreate, request->size(), std::move(create),
                       session,        LeaseTtl(*request)};
    return Grant(peer_->Acquire(acq), LeaseMode::kCreate, session, reply);
  });
}

::grpc::Status ObjectService::Open(::grpc::ServerContext* context, const wire::OpenRequest* request,
                                   LeaseReply* reply) {
  return Serve(context, options_.bearer_token, [&]() -> Status {
    PACKICE_ASSIGN_OR_RETURN(SessionId session, CallSession(*context));
    AcquireRequest acq{request->key(), LeaseMode::kRead, 0, {}, session, LeaseTtl(*request)};
    return Grant(peer_->Acquire(acq), LeaseMode::kRead, session, reply);
  });
}

::grpc::Status ObjectService::Seal(::grpc::ServerContext* context,
                                   ::grpc::ServerReader<SealChunk>* reader,
                                   wire::ObjectInfo* reply) {
  return Serve(context, options_.bearer_token, [&]() -> Status {
    SealChunk chunk;
    if (!reader->Read(&chunk)) return InvalidArgument("a seal stream names its lease first");
    const LeaseId lease = chunk.lease();
    PACKICE_ASSIGN_OR_RETURN(HeldLease held, Held(*context, lease));
    if (held.mode != LeaseMode::kCreate) return PermissionDenied("seal of a read lease");
    std::optional<uint64_t> size;
    if (chunk.has_size()) size = chunk.size();
    BlobFiller filler(*held.blob, held.blob->size());
    do {
      PACKICE_RETURN_IF_ERROR(filler.Add(chunk.data()));
    } while (reader->Read(&chunk));
    if (context->IsCancelled()) return Aborted("the client cancelled the seal");
    auto info = peer_->Seal(lease, size);
    if (SealEndedLease(info.status())) Forget(lease);
    PACKICE_RETURN_IF_ERROR(info.status());
    ToWire(*info, reply);
    return Status::Ok();
  });
}

Status ObjectService::EndLease(::grpc::ServerContext* context, LeaseId lease, bool discard) {
  PACKICE_ASSIGN_OR_RETURN(HeldLease held, Held(*context, lease));
  Status s = discard ? peer_->Discard(lease) : peer_->Release(lease);
  // A refused call (discard of a read lease) leaves the lease live and still the session's.
  if (s.ok() || s.code() == StatusCode::kLeaseExpired) Forget(lease);
  return s;
}

::grpc::Status ObjectService::Release(::grpc::ServerContext* context,
                                      const wire::LeaseIdRequest* request, Empty*) {
  return Serve(context, options_.bearer_token,
               [&] { return EndLease(context, request->lease(), /*discard=*/false); });
}

::grpc::Status ObjectService::Discard(::grpc::ServerContext* context,
                                      const wire::LeaseIdRequest* request, Empty*) {
  return Serve(context, options_.bearer_token,
               [&] { return EndLease(context, request->lease(), /*discard=*/true); });
}

::grpc::Status ObjectService::Renew(::grpc::ServerContext* context,
                                    const wire::RenewRequest* request, wire::RenewResponse* reply) {
  return Serve(context, options_.bearer_token, [&]() -> Status {
    PACKICE_RETURN_IF_ERROR(CallSession(*context).status());
    for (uint64_t id : request->leases()) {
      if (!Held(*context, id).ok()) {
        reply->add_expired(id);  // not this session's: nothing of another's is touched
      } else if (!peer_->Renew(id).ok()) {
        reply->add_expired(id);
        Forget(id);
      }
    }
    return Status::Ok();
  });
}

Result<ObjectService::StreamPlan> ObjectService::PlanRead(
    const ::grpc::CallbackServerContext& context, const ReadRequest& request) {
  PACKICE_ASSIGN_OR_RETURN(HeldLease held, Held(context, request.lease()));
  if (held.mode != LeaseMode::kRead) return PermissionDenied("read of a create lease");
  if (request.offset() > held.size) {
    return InvalidArgument("offset " + std::to_string(request.offset()) + " is past the object's " +
                           std::to_string(held.size) + " bytes");
  }
  const uint64_t left = held.size - request.offset();
  const uint64_t length = request.length() == 0 ? left : std::min(left, request.length());
  StreamPlan plan;
  plan.blob = std::move(held.blob);
  plan.offset = request.offset();
  plan.end = request.offset() + length;
  plan.field = Chunk::kDataFieldNumber;
  return plan;
}

::grpc::ServerWriteReactor<::grpc::ByteBuffer>* ObjectService::Read(
    ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* request) {
  auto req = std::make_shared<ReadRequest>();
  Status parsed = ParseSmallMessage(*request, req.get());
  return new BlobStream(this, context, [this, context, req, parsed]() -> Result<StreamPlan> {
    PACKICE_RETURN_IF_ERROR(parsed);
    return PlanRead(*context, *req);
  });
}

::grpc::Status ObjectService::Put(::grpc::ServerContext* context,
                                  ::grpc::ServerReader<PutChunk>* reader, wire::ObjectInfo* reply) {
  return Serve(context, options_.bearer_token, [&]() -> Status {
    PutChunk chunk;
    if (!reader->Read(&chunk)) return InvalidArgument("a put stream names its key first");
    PACKICE_ASSIGN_OR_RETURN(CreateOptions create, FromWire(chunk.options()));
    AcquireRequest acq{chunk.key(), LeaseMode::kCreate, chunk.size(), std::move(create)};
    Peer& peer = PeerFor(*context);
    PACKICE_ASSIGN_OR_RETURN(packice::Grant grant, peer.Acquire(acq));
    const auto fail = [&](Status s) {
      peer.Discard(grant.lease).IgnoreError();
      return s;
    };
    BlobFiller filler(*grant.blob, chunk.size());
    do {
      if (Status s = filler.Add(chunk.data()); !s.ok()) return fail(std::move(s));
      chunk.Clear();
    } while (reader->Read(&chunk));
    if (context->IsCancelled()) return fail(Aborted("the client cancelled the put"));
    if (filler.written() != grant.info.size) {
      return fail(InvalidArgument("the put announced " + std::to_string(grant.info.size) +
                                  " bytes and sent " + std::to_string(filler.written())));
    }
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, peer.Seal(grant.lease, std::nullopt));
    ToWire(info, reply);
    return Status::Ok();
  });
}

Result<ObjectService::StreamPlan> ObjectService::PlanGet(
    const ::grpc::CallbackServerContext& context, const wire::GetRequest& request) {
  SessionId session = 0;
  if (!ClientMetadata(context, kSessionKey).empty()) {
    PACKICE_ASSIGN_OR_RETURN(session, CallSession(context));
  }
  // A session's lease is the service's peer's; a forwarded get holds none past the call.
  Peer& peer = session != 0 ? *peer_ : PeerFor(context);
  AcquireRequest acq{request.key(), LeaseMode::kRead, 0, {}, session, LeaseTtl(request)};
  PACKICE_ASSIGN_OR_RETURN(packice::Grant grant, peer.Acquire(acq));
  GetChunk first;
  const LeaseId lease = grant.lease;
  // The lease covers the stream only, unless the session keeps it (a large object).
  bool held = false;
  if (session != 0 && grant.info.size > options_.inline_max_bytes) {
    if (Status s = Hold(lease, HeldLease{session, LeaseMode::kRead, grant.info.size, grant.blob});
        !s.ok()) {
      peer.Release(lease).IgnoreError();
      return s;
    }
    first.set_lease(lease);
    first.set_lease_ttl_ms(grant.lease_ttl.count());
    held = true;
  }
  ToWire(grant.info, first.mutable_info());
  StreamPlan plan;
  plan.blob = std::move(grant.blob);
  plan.end = grant.info.size;
  plan.field = GetChunk::kDataFieldNumber;
  plan.first = first.SerializeAsString();
  if (held) {
    // The client's get failed, and with it the reader that would have released the lease.
    plan.failed = [this, &peer, lease] {
      Forget(lease);
      peer.Release(lease).IgnoreError();
    };
  } else {
    plan.done = [&peer, lease] { peer.Release(lease).IgnoreError(); };
  }
  return plan;
}

::grpc::ServerWriteReactor<::grpc::ByteBuffer>* ObjectService::Get(
    ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* request) {
  auto req = std::make_shared<wire::GetRequest>();
  Status parsed = ParseSmallMessage(*request, req.get());
  return new BlobStream(this, context, [this, context, req, parsed]() -> Result<StreamPlan> {
    PACKICE_RETURN_IF_ERROR(parsed);
    return PlanGet(*context, *req);
  });
}

::grpc::Status ObjectService::Stat(::grpc::ServerContext* context, const wire::KeyRequest* request,
                                   wire::ObjectInfo* reply) {
  return Serve(context, options_.bearer_token, [&]() -> Status {
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, PeerFor(*context).Stat(request->key()));
    ToWire(info, reply);
    return Status::Ok();
  });
}

::grpc::Status ObjectService::List(::grpc::ServerContext* context, const wire::ListRequest* request,
                                   wire::ListResponse* reply) {
  return Serve(context, options_.bearer_token, [&]() -> Status {
    ListOptions options{request->prefix(), request->start_after(),
                        request->limit() == 0 ? 1000 : request->limit()};
    PACKICE_ASSIGN_OR_RETURN(ListPage page, PeerFor(*context).List(options));
    for (const ObjectInfo& info : page.objects) ToWire(info, reply->add_objects());
    reply->set_truncated(page.truncated);
    return Status::Ok();
  });
}

::grpc::Status ObjectService::Delete(::grpc::ServerContext* context,
                                     const wire::KeyRequest* request, Empty*) {
  return Serve(context, options_.bearer_token,
               [&] { return PeerFor(*context).Delete(request->key()); });
}

::grpc::ServerBidiReactor<SessionRequest, SessionInfo>* ObjectService::Session(
    ::grpc::CallbackServerContext* context) {
  return new SessionReactor(this, context);
}

}  // namespace packice::rpc
