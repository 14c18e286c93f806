// The direct transport: a Channel over an in-process Peer. No serialisation, no copies: views
// point at the blob's memory and keep the blob alive.
#include <algorithm>
#include <cstring>

#include "transport/channel.h"

namespace packice {
namespace {

// The first `size` bytes of a blob's view: a seal may have truncated the object below its
// allocated size, and a reader must see only the content.
class SizedView final : public BlobView {
 public:
  SizedView(std::shared_ptr<BlobView> view, uint64_t size) : view_(std::move(view)), size_(size) {}
  std::span<std::byte> bytes() override {
    std::span<std::byte> all = view_->bytes();
    return all.first(std::min<uint64_t>(size_, all.size()));
  }

 private:
  std::shared_ptr<BlobView> view_;
  uint64_t size_;
};

class DirectChannel final : public Channel {
 public:
  explicit DirectChannel(std::shared_ptr<Peer> peer) : peer_(std::move(peer)) {}

  Result<OpenedObject> Create(std::string_view key, uint64_t size,
                              const CreateOptions& options) override {
    AcquireRequest req{std::string(key), LeaseMode::kCreate, size, options};
    PACKICE_ASSIGN_OR_RETURN(Grant grant, peer_->Acquire(req));
    return FromGrant(std::move(grant), LeaseMode::kCreate);
  }
  Result<ObjectInfo> Seal(LeaseId lease, BlobView&, std::optional<uint64_t> size) override {
    return peer_->Seal(lease, size);
  }
  Status Release(LeaseId lease) override { return peer_->Release(lease); }
  Status Discard(LeaseId lease) override { return peer_->Discard(lease); }
  Status Renew(std::span<const LeaseId> leases, std::vector<LeaseId>* expired) override {
    for (LeaseId id : leases) {
      if (!peer_->Renew(id).ok()) expired->push_back(id);
    }
    return Status::Ok();
  }
  Result<OpenedObject> Open(std::string_view key) override {
    AcquireRequest req{std::string(key), LeaseMode::kRead};
    PACKICE_ASSIGN_OR_RETURN(Grant grant, peer_->Acquire(req));
    return FromGrant(std::move(grant), LeaseMode::kRead);
  }
  Result<ObjectInfo> Put(std::string_view key, std::span<const std::byte> data,
                         const CreateOptions& options) override {
    PACKICE_ASSIGN_OR_RETURN(OpenedObject obj, Create(key, data.size(), options));
    if (!data.empty()) std::memcpy(obj.view->bytes().data(), data.data(), data.size());
    return peer_->Seal(obj.lease, std::nullopt);
  }
  Result<OpenedObject> Get(std::string_view key) override { return Open(key); }
  Result<ObjectInfo> Stat(std::string_view key) override { return peer_->Stat(key); }
  Result<ListPage> List(const ListOptions& options) override { return peer_->List(options); }
  Status Delete(std::string_view key) override { return peer_->Delete(key); }

 private:
  // The grant as the client holds it; the lease ends if the bytes cannot be reached.
  Result<OpenedObject> FromGrant(Grant grant, LeaseMode mode) {
    auto view = grant.blob->OpenView(mode);
    if (!view.ok()) {
      (mode == LeaseMode::kCreate ? peer_->Discard(grant.lease) : peer_->Release(grant.lease))
          .IgnoreError();
      return view.status();
    }
    const uint64_t size = grant.info.size;
    return OpenedObject{grant.lease, grant.lease_ttl, std::move(grant.info),
                        std::make_shared<SizedView>(std::move(view).value(), size)};
  }

  std::shared_ptr<Peer> peer_;
};

}  // namespace

std::shared_ptr<Channel> NewDirectChannel(std::shared_ptr<Peer> peer) {
  return std::make_shared<DirectChannel>(std::move(peer));
}

}  // namespace packice
