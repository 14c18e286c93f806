#include "services/cas/action_cache.h"

#include <span>

namespace packice {

ActionCache::ActionCache(std::shared_ptr<LocalPeer> peer, ActionCacheOptions options)
    : peer_(std::move(peer)), options_(std::move(options)) {}

std::string ActionCache::KeyOf(const Digest& action) { return "ac/" + action.ToString(); }

Status ActionCache::Put(const Digest& action, std::string_view result) {
  if (result.size() > options_.max_entry_bytes) {
    return InvalidArgument("an action result of " + std::to_string(result.size()) +
                           " bytes exceeds the action cache's limit of " +
                           std::to_string(options_.max_entry_bytes));
  }
  AcquireRequest req;
  req.key = KeyOf(action);
  req.mode = LeaseMode::kCreate;
  req.size = result.size();
  req.create.ttl = options_.entry_ttl;
  PACKICE_ASSIGN_OR_RETURN(Grant grant, peer_->Acquire(req));
  Status written = grant.blob->Write(0, std::as_bytes(std::span(result.data(), result.size())));
  if (!written.ok()) {
    peer_->Discard(grant.lease).IgnoreError();  // the write's error is the one to report
    return written;
  }
  Result<ObjectInfo> sealed = peer_->Seal(grant.lease, result.size());
  if (!sealed.ok() && !SealEndedLease(sealed.status())) {
    peer_->Discard(grant.lease).IgnoreError();  // as above: the seal's error is reported
  }
  return sealed.status();
}

Result<std::string> ActionCache::Get(const Digest& action) {
  AcquireRequest req;
  req.key = KeyOf(action);
  req.mode = LeaseMode::kRead;
  PACKICE_ASSIGN_OR_RETURN(Grant grant, peer_->Acquire(req));
  std::string out(grant.info.size, '\0');
  Status read = grant.blob->Read(0, std::as_writable_bytes(std::span(out)));
  // A read lease that ended on its own (it expired) changes nothing about bytes already read.
  peer_->Release(grant.lease).IgnoreError();
  PACKICE_RETURN_IF_ERROR(read);
  return out;
}

}  // namespace packice
