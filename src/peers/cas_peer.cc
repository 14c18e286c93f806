#include "peers/cas_peer.h"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/mutex.h"

namespace packice {
namespace {

// A create under way: what its seal verifies.
struct PendingBlob {
  Digest digest;
  std::weak_ptr<Blob> blob;  // the inner peer owns it
  SessionId session = 0;
};

class CasPeerImpl final : public LocalPeer {
 public:
  explicit CasPeerImpl(std::shared_ptr<LocalPeer> inner) : inner_(std::move(inner)) {}

  Result<Grant> Acquire(const AcquireRequest& req) override {
    PACKICE_ASSIGN_OR_RETURN(Digest digest, Digest::ParseCanonical(req.key));
    if (req.mode == LeaseMode::kCreate) return AcquireCreate(req, digest);
    Result<Grant> read = inner_->Acquire(req);
    if (read.ok() || read.status().code() != StatusCode::kNotFound || !digest.empty_blob()) {
      return read;
    }
    // The empty blob always exists: stored on its first read (it may have been evicted).
    PACKICE_RETURN_IF_ERROR(StoreEmpty(digest));
    return inner_->Acquire(req);
  }

  Result<ObjectInfo> Seal(LeaseId lease, std::optional<uint64_t> size) override {
    std::optional<PendingBlob> pending = Pending(lease);
    if (!pending) return inner_->Seal(lease, size);  // unknown, expired or a read lease
    std::shared_ptr<Blob> blob = pending->blob.lock();
    if (blob == nullptr) {
      Forget(lease);
      return LeaseExpired("lease " + std::to_string(lease) + " ended");
    }
    const uint64_t sealed_size = size.value_or(pending->digest.size);
    Status verified = sealed_size == pending->digest.size
                          ? Verify(*blob, pending->digest)
                          : DigestMismatch("a seal of " + std::to_string(sealed_size) +
                                           " bytes cannot be " + pending->digest.ToString());
    if (!verified.ok()) {
      if (Status d = inner_->Discard(lease); d.code() == StatusCode::kLeaseExpired) return d;
      Forget(lease);
      return verified;
    }
    Result<ObjectInfo> info = inner_->Seal(lease, size);
    if (info.status().code() != StatusCode::kPermissionDenied) Forget(lease);
    if (info.status().code() == StatusCode::kAlreadyExists) return Stored(pending->digest);
    return info;
  }

  Status Release(LeaseId lease) override {
    Status s = inner_->Release(lease);
    if (s.ok()) Forget(lease);
    return s;
  }
  Status Discard(LeaseId lease) override {
    Status s = inner_->Discard(lease);
    if (s.code() != StatusCode::kPermissionDenied) Forget(lease);
    return s;
  }
  Status Renew(LeaseId lease) override { return inner_->Renew(lease); }

  Result<ObjectInfo> Stat(std::string_view key) override {
    PACKICE_ASSIGN_OR_RETURN(Digest digest, Digest::ParseCanonical(key));
    Result<ObjectInfo> info = inner_->Stat(key);
    if (!info.ok() && info.status().code() == StatusCode::kNotFound && digest.empty_blob()) {
      PACKICE_RETURN_IF_ERROR(StoreEmpty(digest));
      return inner_->Stat(key);
    }
    return info;
  }
  Result<ListPage> List(const ListOptions& options) override { return inner_->List(options); }
  Status Delete(std::string_view key) override {
    PACKICE_RETURN_IF_ERROR(Digest::ParseCanonical(key).status());
    return inner_->Delete(key);
  }
  SessionId OpenSession() override { return inner_->OpenSession(); }
  void CloseSession(SessionId session) override {
    inner_->CloseSession(session);
    MutexLock lock(&mu_);
    absl::erase_if(pending_, [&](const auto& e) { return e.second.session == session; });
  }

  Stats GetStats() override { return inner_->GetStats(); }
  std::string_view tier_name() const override { return inner_->tier_name(); }
  void ReapExpired() override {
    inner_->ReapExpired();
    MutexLock lock(&mu_);
    absl::erase_if(pending_, [](const auto& e) { return e.second.blob.expired(); });
  }
  void DrainCleaner() override { inner_->DrainCleaner(); }
  PersistReport Persist(const std::function<bool()>& cancelled,
                        const std::function<void(const PersistReport&)>& progress) override {
    return inner_->Persist(cancelled, progress);
  }

 private:
  Result<Grant> AcquireCreate(const AcquireRequest& req, const Digest& digest) {
    if (req.size != digest.size) {
      return InvalidArgument("a create of " + std::to_string(req.size) + " bytes cannot be " +
                             req.key);
    }
    if (!req.create.meta.empty()) return InvalidArgument("a CAS blob has no metadata");
    if (req.create.ttl && req.create.ttl->count() != 0) {
      return InvalidArgument("a CAS blob has no TTL: it stays until evicted");
    }
    PACKICE_ASSIGN_OR_RETURN(Grant grant, inner_->Acquire(req));
    MutexLock lock(&mu_);
    pending_[grant.lease] = PendingBlob{digest, grant.blob, req.session};
    return grant;
  }

  // Hashes the blob's first digest.size bytes. Errors: kDigestMismatch, those of the view.
  static Status Verify(Blob& blob, const Digest& digest) {
    Hasher hasher(digest.algorithm);
    if (digest.size > 0) {
      PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<BlobView> view, blob.OpenView(LeaseMode::kCreate));
      std::span<std::byte> bytes = view->bytes();
      if (bytes.size() < digest.size) return Internal("the blob is smaller than its allocation");
      hasher.Update(bytes.first(digest.size));
    }
    const Digest got = hasher.Finish();
    return got == digest ? Status::Ok() : ContentIsNot(got, digest);
  }

  // The info of a blob another writer stored while this one wrote the same bytes. Its seal may
  // still be making it durable (the file is in place before the key is bound): wait for it,
  // a few seconds at most. Errors: kAborted (that seal failed: store again).
  Result<ObjectInfo> Stored(const Digest& digest) {
    const std::string key = digest.ToString();
    auto pause = std::chrono::microseconds(100);
    for (auto waited = std::chrono::microseconds(0); waited < std::chrono::seconds(5);
         waited += pause, pause = std::min(pause * 2, std::chrono::microseconds(50'000))) {
      Result<ObjectInfo> info = inner_->Stat(key);
      if (info.ok() || info.status().code() != StatusCode::kNotFound) return info;
      std::this_thread::sleep_for(pause);
    }
    return Aborted("a concurrent store of " + key + " did not complete; store it again");
  }

  // Stores the empty blob `digest`. When another caller stores it at the same time, waits
  // until that one's seal has bound the key (Stored), so the caller's next read finds it.
  Status StoreEmpty(const Digest& digest) {
    AcquireRequest req;
    req.key = digest.ToString();
    req.mode = LeaseMode::kCreate;
    PACKICE_ASSIGN_OR_RETURN(Grant grant, inner_->Acquire(req));
    Result<ObjectInfo> sealed = inner_->Seal(grant.lease, 0);
    if (sealed.status().code() == StatusCode::kAlreadyExists) return Stored(digest).status();
    return sealed.status();
  }

  std::optional<PendingBlob> Pending(LeaseId lease) {
    MutexLock lock(&mu_);
    auto it = pending_.find(lease);
    if (it == pending_.end()) return std::nullopt;
    return it->second;
  }
  void Forget(LeaseId lease) {
    MutexLock lock(&mu_);
    pending_.erase(lease);
  }

  const std::shared_ptr<LocalPeer> inner_;
  Mutex mu_;
  absl::flat_hash_map<LeaseId, PendingBlob> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::shared_ptr<LocalPeer> NewCasPeer(std::shared_ptr<LocalPeer> inner) {
  return std::make_shared<CasPeerImpl>(std::move(inner));
}

Result<std::shared_ptr<LocalPeer>> OpenLocalCasPeer(LocalCasStoreOptions store, LeasePolicy policy,
                                                    LocalCasStore** store_out) {
  if (!store.clock) store.clock = policy.clock;
  PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<LocalCasStore> opened,
                           LocalCasStore::Open(std::move(store)));
  if (store_out != nullptr) *store_out = opened.get();
  auto peer = std::make_shared<StorePeer<LocalPeer>>(std::move(opened), std::move(policy));
  PACKICE_RETURN_IF_ERROR(peer->Start());
  return std::shared_ptr<LocalPeer>(std::move(peer));
}

}  // namespace packice
