#include "transport/uds/request_handler.h"

#include <cstring>

#include "transport/uds/wire.pb.h"
#include "transport/uds/wire_convert.h"

namespace packice {
namespace {

std::span<const std::byte> AsBytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

}  // namespace

// One request's worth of work; split out so each case reads as a small function.
class ServerSession::Dispatch {
 public:
  Dispatch(ServerSession* s, const wire::Request& req, wire::Response* resp, Outgoing* out)
      : s_(*s), req_(req), resp_(*resp), out_(*out) {}

  Status Run() {
    switch (req_.body_case()) {
      case wire::Request::kHello:
        return Hello();
      case wire::Request::kCreate:
        return Create();
      case wire::Request::kSeal:
        return Seal();
      case wire::Request::kRelease:
        return EndLease(req_.release().lease(), /*discard=*/false);
      case wire::Request::kDiscard:
        return EndLease(req_.discard().lease(), /*discard=*/true);
      case wire::Request::kRenew:
        return Renew();
      case wire::Request::kOpen:
        return Open(req_.open().key(), LeaseTtl(req_.open()), false);
      case wire::Request::kGet:
        return Open(req_.get().key(), LeaseTtl(req_.get()), true);
      case wire::Request::kPut:
        return Put();
      case wire::Request::kStat:
        return Stat();
      case wire::Request::kList:
        return List();
      case wire::Request::kDelete:
        return s_.peer_->Delete(req_.delete_().key());
      case wire::Request::kKv:
        return Unimplemented("this node serves no KV on this connection");
      case wire::Request::kQueue:
        return Unimplemented("this node serves no queue");
      case wire::Request::BODY_NOT_SET:
        break;
    }
    return ProtocolError("request has no known body");
  }

 private:
  template <typename R>
  static std::optional<Duration> LeaseTtl(const R& r) {
    if (!r.has_lease_ttl_ms()) return std::nullopt;
    return Duration(r.lease_ttl_ms());
  }

  Status Hello() {
    auto* h = resp_.mutable_hello();
    h->set_protocol_version(kProtocolVersion);
    h->set_max_frame_bytes(s_.limits_.max_frame_bytes);
    h->set_inline_max_bytes(s_.limits_.inline_max_bytes);
    return Status::Ok();
  }

  Status Create() {
    const auto& c = req_.create();
    PACKICE_ASSIGN_OR_RETURN(CreateOptions options, FromWire(c.options()));
    AcquireRequest acq{c.key(),     LeaseMode::kCreate, c.size(), std::move(options),
                       s_.session_, LeaseTtl(c)};
    PACKICE_ASSIGN_OR_RETURN(Grant grant, s_.peer_->Acquire(acq));
    const LeaseId lease = grant.lease;
    Status s = Lease(std::move(grant), LeaseMode::kCreate, false);
    if (!s.ok()) s_.peer_->Discard(lease).IgnoreError();  // the client never learnt of it
    return s;
  }

  Status Seal() {
    const auto& r = req_.seal();
    PACKICE_RETURN_IF_ERROR(Owned(r.lease()));
    std::optional<uint64_t> size;
    if (r.has_size()) size = r.size();
    auto it = s_.inline_creates_.find(r.lease());
    if (it != s_.inline_creates_.end()) {
      if (r.data().size() > it->second->size()) {
        return InvalidArgument("seal carries " + std::to_string(r.data().size()) +
                               " bytes for an object of " + std::to_string(it->second->size()));
      }
      PACKICE_RETURN_IF_ERROR(it->second->Write(0, AsBytes(r.data())));
    } else if (!r.data().empty()) {
      return InvalidArgument("seal carries bytes for an object written through a mapping");
    }
    auto info = s_.peer_->Seal(r.lease(), size);
    if (SealEndedLease(info.status())) Forget(r.lease());
    PACKICE_RETURN_IF_ERROR(info.status());
    ToWire(*info, resp_.mutable_info());
    return Status::Ok();
  }

  Status EndLease(LeaseId lease, bool discard) {
    PACKICE_RETURN_IF_ERROR(Owned(lease));
    Status s = discard ? s_.peer_->Discard(lease) : s_.peer_->Release(lease);
    // A refused call (discard of a read lease) leaves the lease live and still this
    // connection's to release.
    if (s.ok() || s.code() == StatusCode::kLeaseExpired) Forget(lease);
    return s;
  }

  Status Renew() {
    auto* r = resp_.mutable_renew();
    for (uint64_t id : req_.renew().leases()) {
      if (!Owned(id).ok() || !s_.peer_->Renew(id).ok()) {
        r->add_expired(id);
        Forget(id);
      }
    }
    return Status::Ok();
  }

  Status Open(const std::string& key, std::optional<Duration> lease_ttl, bool allow_inline) {
    AcquireRequest acq{key, LeaseMode::kRead, 0, {}, s_.session_, lease_ttl};
    PACKICE_ASSIGN_OR_RETURN(Grant grant, s_.peer_->Acquire(acq));
    const bool inline_read = allow_inline && grant.info.size <= s_.limits_.inline_max_bytes;
    const LeaseId lease = grant.lease;
    Status s = Lease(std::move(grant), LeaseMode::kRead, inline_read);
    if (!s.ok()) s_.peer_->Release(lease).IgnoreError();  // the client never learnt of it
    return s;
  }

  // Fills the lease response for `grant`. With `inline_read`, the bytes travel in the response
  // and the lease is released at once.
  Status Lease(Grant grant, LeaseMode mode, bool inline_read) {
    auto* l = resp_.mutable_lease();
    ToWire(grant.info, l->mutable_info());
    auto* blob = l->mutable_blob();
    BlobExport ex;
    if (!inline_read) {
      PACKICE_ASSIGN_OR_RETURN(ex, grant.blob->Export(mode));
    }
    if (mode == LeaseMode::kRead && (inline_read || ex.kind == BlobExport::Kind::kInline)) {
      blob->set_kind(wire::Blob::INLINE);
      std::string* data = blob->mutable_data();
      data->resize(grant.info.size);
      PACKICE_RETURN_IF_ERROR(grant.blob->Read(0, std::as_writable_bytes(std::span(*data))));
      if (inline_read) {
        s_.peer_->Release(grant.lease).IgnoreError();  // nothing to do if it already expired
        return Status::Ok();
      }
    } else if (ex.kind == BlobExport::Kind::kFd) {
      blob->set_kind(wire::Blob::FD);
      blob->set_map_size(ex.map_size);
      blob->set_offset(ex.offset);
      blob->set_huge_pages(ex.huge_pages);
      out_.fds.push_back(std::move(ex.fd));
      resp_.set_fd_count(1);
    } else {
      blob->set_kind(wire::Blob::INLINE);  // an inline create: the seal carries the bytes
      s_.inline_creates_[grant.lease] = grant.blob;
    }
    s_.leases_.insert(grant.lease);
    l->set_lease(grant.lease);
    l->set_lease_ttl_ms(grant.lease_ttl.count());
    return Status::Ok();
  }

  // Only the connection that was granted a lease may use it.
  Status Owned(LeaseId lease) const {
    if (!s_.leases_.contains(lease)) {
      return LeaseExpired("lease " + std::to_string(lease) + " is not held by this connection");
    }
    return Status::Ok();
  }

  void Forget(LeaseId lease) {
    s_.leases_.erase(lease);
    s_.inline_creates_.erase(lease);
  }

  Status Put() {
    const auto& p = req_.put();
    PACKICE_ASSIGN_OR_RETURN(CreateOptions options, FromWire(p.options()));
    AcquireRequest acq{p.key(), LeaseMode::kCreate, p.data().size(), std::move(options),
                       s_.session_};
    PACKICE_ASSIGN_OR_RETURN(Grant grant, s_.peer_->Acquire(acq));
    if (Status s = grant.blob->Write(0, AsBytes(p.data())); !s.ok()) {
      s_.peer_->Discard(grant.lease).IgnoreError();
      return s;
    }
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, s_.peer_->Seal(grant.lease, std::nullopt));
    ToWire(info, resp_.mutable_info());
    return Status::Ok();
  }

  Status Stat() {
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, s_.peer_->Stat(req_.stat().key()));
    ToWire(info, resp_.mutable_info());
    return Status::Ok();
  }

  Status List() {
    const auto& r = req_.list();
    ListOptions options{r.prefix(), r.start_after(), r.limit() == 0 ? 1000 : r.limit()};
    PACKICE_ASSIGN_OR_RETURN(ListPage page, s_.peer_->List(options));
    auto* l = resp_.mutable_list();
    for (const ObjectInfo& info : page.objects) ToWire(info, l->add_objects());
    l->set_truncated(page.truncated);
    return Status::Ok();
  }

  ServerSession& s_;
  const wire::Request& req_;
  wire::Response& resp_;
  Outgoing& out_;
};

ServerSession::ServerSession(std::shared_ptr<Peer> peer, ServerLimits limits)
    : peer_(std::move(peer)), limits_(limits), session_(peer_->OpenSession()) {}

ServerSession::~ServerSession() { peer_->CloseSession(session_); }

void ServerSession::Handle(std::string_view payload, Outgoing* out) {
  wire::Request req;
  wire::Response resp;
  const size_t fds_before = out->fds.size();
  Status status;
  if (!req.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    status = ProtocolError("request does not parse");
  } else if (req.body_case() == wire::Request::kKv && kv_handler_) {
    kv_handler_(req.id(), std::move(*req.mutable_kv()), payload.size());
    return;  // answered later, by the handler
  } else if (req.body_case() == wire::Request::kQueue && queue_handler_) {
    queue_handler_(req.id(), std::move(*req.mutable_queue()));
    return;
  } else {
    resp.set_id(req.id());
    status = Dispatch(this, req, &resp, out).Run();
  }
  if (!status.ok()) {
    // A failed request carries no body and no descriptors.
    resp.clear_body();
    resp.set_fd_count(0);
    out->fds.resize(fds_before);
  }
  ToWire(status, &resp);
  AppendFrame(resp, &out->frame);
}

}  // namespace packice
