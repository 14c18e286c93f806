#include "transport/http/growing_upload.h"

#include <algorithm>
#include <string>
#include <utility>

namespace packice {
namespace {

constexpr size_t kCopyStep = 1 << 20;  // bytes per step when copying through a bounce buffer

bool IsMappedInProcess(const Blob& blob) {
  return blob.kind() == "memory" || blob.kind() == "heap";
}

}  // namespace

Result<std::unique_ptr<GrowingUpload>> GrowingUpload::Start(Peer& peer, AcquireRequest req,
                                                            uint64_t limit) {
  req.mode = LeaseMode::kCreate;
  req.size = std::min(limit, kFirstAllocation);
  PACKICE_ASSIGN_OR_RETURN(Grant first, peer.Acquire(req));
  req.key = first.info.key;  // a generated id stays the object's key as it grows
  return std::unique_ptr<GrowingUpload>(
      new GrowingUpload(peer, std::move(req), limit, std::move(first)));
}

GrowingUpload::GrowingUpload(Peer& peer, AcquireRequest req, uint64_t limit, Grant first)
    : peer_(peer),
      req_(std::move(req)),
      limit_(limit),
      exclusive_(req_.create.exclusive),
      grant_(std::move(first)) {
  req_.create.exclusive = false;  // see the header: only the first allocation can be
}

GrowingUpload::~GrowingUpload() {
  if (grant_.lease != 0) (void)peer_.Release(grant_.lease);
}

bool GrowingUpload::MayBlock(uint64_t n) const {
  return !Fits(n) || !IsMappedInProcess(*grant_.blob);
}

Status GrowingUpload::Append(std::span<const std::byte> data) {
  if (data.size() > limit_ - written_) {
    return InvalidArgument("body over the limit of " + std::to_string(limit_) + " bytes");
  }
  if (!Fits(data.size())) PACKICE_RETURN_IF_ERROR(Grow(written_ + data.size()));
  PACKICE_RETURN_IF_ERROR(grant_.blob->Write(written_, data));
  written_ += data.size();
  return Status::Ok();
}

Status GrowingUpload::Grow(uint64_t needed) {
  const uint64_t doubled = grant_.blob->size() > limit_ / 2 ? limit_ : 2 * grant_.blob->size();
  AcquireRequest next = req_;
  next.size = std::max(needed, doubled);
  Result<Grant> bigger = peer_.Acquire(next);
  if (!bigger.ok() && bigger.status().code() == StatusCode::kAlreadyExists) {
    return GrowThroughScratch(next);
  }
  PACKICE_RETURN_IF_ERROR(bigger.status());
  if (Status copied = Copy(*grant_.blob, *bigger->blob); !copied.ok()) {
    (void)peer_.Release(bigger->lease);
    return copied;
  }
  Replace(std::move(*bigger));
  return Status::Ok();
}

Status GrowingUpload::GrowThroughScratch(const AcquireRequest& next) {
  // A store with one writer per key (sharedfs) refuses a second allocation under the key while
  // ours is live: the bytes wait in an unsealed object under a generated id meanwhile.
  AcquireRequest scratch_req = next;
  scratch_req.key.clear();
  scratch_req.size = written_;
  PACKICE_ASSIGN_OR_RETURN(Grant scratch, peer_.Acquire(scratch_req));
  Status s = Copy(*grant_.blob, *scratch.blob);
  if (s.ok()) {
    (void)peer_.Release(std::exchange(grant_.lease, 0));
    Result<Grant> bigger = peer_.Acquire(next);
    s = bigger.ok() ? Copy(*scratch.blob, *bigger->blob) : bigger.status();
    if (bigger.ok()) Replace(std::move(*bigger));
  }
  (void)peer_.Release(scratch.lease);
  return s;
}

void GrowingUpload::Replace(Grant bigger) {
  if (grant_.lease != 0) (void)peer_.Release(grant_.lease);  // discards the smaller allocation
  grant_ = std::move(bigger);
  ++allocations_;
}

Status GrowingUpload::Copy(Blob& src, Blob& dst) {
  if (IsMappedInProcess(src)) {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<BlobView> view, src.OpenView(LeaseMode::kRead));
    if (view->bytes().size() < written_) return Internal("object view shorter than its size");
    return dst.Write(0, view->bytes().first(written_));
  }
  bounce_.resize(kCopyStep);
  for (uint64_t at = 0; at < written_;) {
    auto piece = std::span(bounce_).first(std::min<uint64_t>(kCopyStep, written_ - at));
    PACKICE_RETURN_IF_ERROR(src.Read(at, piece));
    PACKICE_RETURN_IF_ERROR(dst.Write(at, piece));
    at += piece.size();
  }
  return Status::Ok();
}

Result<ObjectInfo> GrowingUpload::Seal() {
  const LeaseId lease = std::exchange(grant_.lease, 0);
  if (exclusive_ && allocations_ > 1 && peer_.Stat(req_.key).ok()) {
    (void)peer_.Release(lease);
    return AlreadyExists("key '" + req_.key + "' was bound while this object was uploaded");
  }
  Result<ObjectInfo> sealed = peer_.Seal(lease, written_);
  if (!SealEndedLease(sealed.status())) (void)peer_.Release(lease);
  return sealed;
}

}  // namespace packice
