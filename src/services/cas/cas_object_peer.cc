#include "services/cas/cas_object_peer.h"

#include <string>
#include <utility>

namespace packice {
namespace {

class CasObjectPeerImpl final : public LocalPeer {
 public:
  explicit CasObjectPeerImpl(std::shared_ptr<CasStore> store)
      : store_(std::move(store)), local_(store_->local_peer()) {}

  Result<Grant> Acquire(const AcquireRequest& req) override { return store_->AcquireLocal(req); }
  Result<ObjectInfo> Seal(LeaseId lease, std::optional<uint64_t> size) override {
    return store_->SealLocal(lease, size);
  }
  Status Release(LeaseId lease) override { return local_->Release(lease); }
  Status Discard(LeaseId lease) override { return local_->Discard(lease); }
  Status Renew(LeaseId lease) override { return local_->Renew(lease); }

  Result<ObjectInfo> Stat(std::string_view key) override {
    Result<ObjectInfo> info = local_->Stat(key);
    if (info.ok() || info.status().code() != StatusCode::kNotFound) return info;
    // Not local: the memory or remote tier may hold it (a read would fetch it).
    PACKICE_ASSIGN_OR_RETURN(Digest digest, Digest::ParseCanonical(key));
    PACKICE_ASSIGN_OR_RETURN(uint64_t size, store_->Check(digest));
    ObjectInfo remote;
    remote.key = std::string(key);
    remote.size = size;
    remote.state = ObjectState::kSealed;
    remote.tier = "remote";
    return remote;
  }
  Result<ListPage> List(const ListOptions& options) override { return local_->List(options); }
  Status Delete(std::string_view key) override {
    PACKICE_RETURN_IF_ERROR(Digest::ParseCanonical(key).status());
    return PermissionDenied(
        "CAS blobs are not deleted: the local tier evicts the least recently "
        "used ones when it needs room");
  }
  SessionId OpenSession() override { return local_->OpenSession(); }
  void CloseSession(SessionId session) override { local_->CloseSession(session); }

  Stats GetStats() override { return local_->GetStats(); }
  std::string_view tier_name() const override { return local_->tier_name(); }
  void ReapExpired() override { local_->ReapExpired(); }
  void DrainCleaner() override { local_->DrainCleaner(); }

 private:
  const std::shared_ptr<CasStore> store_;
  const std::shared_ptr<LocalPeer> local_;
};

}  // namespace

std::shared_ptr<LocalPeer> NewCasObjectPeer(std::shared_ptr<CasStore> store) {
  return std::make_shared<CasObjectPeerImpl>(std::move(store));
}

}  // namespace packice
