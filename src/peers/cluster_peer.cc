#include "peers/cluster_peer.h"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <thread>

#include "core/eviction.h"
#include "core/hot_keys.h"
#include "core/mutex.h"
#include "core/singleflight.h"
#include "core/validate.h"
#include "peers/evicting_create.h"

namespace packice {
namespace {

// Leases on copies carry this bit, so that one lease id names which peer granted it (the local
// peer's ids are counters that never reach it).
constexpr LeaseId kCopyBit = LeaseId{1} << 63;

// The membership as one immutable value, swapped whole on a change.
struct View {
  std::string self;  // this node's id
  Ring ring;
  // The other members' connections (nullptr: the member's address could not be used).
  absl::flat_hash_map<std::string, std::shared_ptr<ClusterNode>> nodes;
  std::vector<ClusterMember> members;  // the other members
};

// Where copies are bound in the copy memory: a mirror under "m" + its key, a fetched copy under
// "f" + a counter, so that no user key can name another's copy. A key of the longest length has
// no room for the prefix: it is never mirrored.
std::string MirrorKey(std::string_view key) { return "m" + std::string(key); }
bool Mirrorable(std::string_view key) { return key.size() < kMaxKeyBytes; }

// A copy fetched for the readers of one fetch, and where it is bound. A copy that is no mirror
// is unbound when the fetch's result is dropped: every reader holds it until it has opened the
// copy, and its bytes live on with the leases.
struct FetchedCopy {
  FetchedCopy(std::shared_ptr<MemoryPeer> copies, std::string bound_key, bool mirror)
      : copies(std::move(copies)), bound_key(std::move(bound_key)), mirror(mirror) {}
  ~FetchedCopy() {
    if (!mirror) copies->Delete(bound_key).IgnoreError();
  }
  std::shared_ptr<MemoryPeer> copies;
  std::string bound_key;
  bool mirror;
};

// A create of another node's key, written here until Seal streams it to the owner.
// The blob is held weakly: the local peer owns it, and frees it (capacity included) when the
// lease ends without a seal (its session closed, its TTL passed); the record is dropped then.
struct Staged {
  std::shared_ptr<ClusterNode> owner;
  std::string key;
  CreateOptions options;
  std::weak_ptr<Blob> blob;
  SessionId session = 0;
  bool sealing = false;  // a Seal is streaming it to the owner; a second Seal is refused
};

class ClusterPeerImpl final : public ClusterPeer {
 public:
  ClusterPeerImpl(std::shared_ptr<LocalPeer> local, ClusterConnector connect,
                  ClusterPeerOptions options)
      : local_(std::move(local)),
        connect_(std::move(connect)),
        options_(std::move(options)),
        clock_(options_.clock ? options_.clock : Clock::System()),
        copies_(MakeCopies(options_, clock_)),
        copy_index_(NewEvictor(EvictionKind::kLru, EvictionOptions{})),
        hot_(clock_, options_.rate_window),
        view_(std::make_shared<View>(
            View{options_.self_id, Ring({options_.self_id}, options_.vnodes), {}, {}})) {
    invalidator_ = std::thread([this] { InvalidateLoop(); });
  }

  ~ClusterPeerImpl() override {
    {
      std::lock_guard<std::mutex> lock(inval_mu_.native());
      stopping_ = true;
    }
    inval_cv_.notify_all();
    invalidator_.join();
  }

  // --- membership ----------------------------------------------------------------------------

  void SetMembers(const std::vector<ClusterMember>& members) override {
    MutexLock change(&change_mu_);  // one change at a time: each builds on the last
    Rebuild(CurrentView()->self, members);
  }

  void SetSelf(const std::string& id) override {
    MutexLock change(&change_mu_);
    std::shared_ptr<const View> old = CurrentView();
    Rebuild(id, old->members);
  }

  // The view of `members` with this node as `self`, reusing the connections of the last view.
  void Rebuild(const std::string& self, const std::vector<ClusterMember>& members)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(change_mu_) {
    std::shared_ptr<const View> old = CurrentView();
    auto next = std::make_shared<View>();
    next->self = self;
    std::vector<std::string> ids{self};
    for (const ClusterMember& m : members) {
      if (m.id == self || next->nodes.contains(m.id)) continue;
      ids.push_back(m.id);
      next->members.push_back(m);
      std::shared_ptr<ClusterNode> node;
      auto same = std::find(old->members.begin(), old->members.end(), m);
      if (same != old->members.end()) {
        node = old->nodes.at(m.id);
      } else if (auto made = connect_(m); made.ok()) {
        node = *std::move(made);
      }
      next->nodes.emplace(m.id, std::move(node));
    }
    next->ring = Ring(std::move(ids), options_.vnodes);
    MutexLock lock(&view_mu_);
    view_ = std::move(next);
  }

  std::string OwnerOf(std::string_view key) override {
    std::shared_ptr<const View> view = CurrentView();
    return std::string(view->ring.Owner(key).value_or(view->self));
  }

  uint64_t ring_epoch() override { return CurrentView()->ring.fingerprint(); }

  // --- Peer ----------------------------------------------------------------------------------

  Result<Grant> Acquire(const AcquireRequest& req) override {
    if (req.mode == LeaseMode::kCreate) return AcquireCreate(req);
    std::shared_ptr<const View> view = CurrentView();
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<ClusterNode> owner, Route(*view, req.key));
    if (owner == nullptr) return local_->Acquire(req);
    return ReadRemote(req, std::move(owner));
  }

  Result<ObjectInfo> Seal(LeaseId lease, std::optional<uint64_t> size) override {
    if (lease & kCopyBit) return PermissionDenied("seal of a read lease");
    PACKICE_ASSIGN_OR_RETURN(std::optional<Staged> staged, BeginSeal(lease));
    if (!staged) {
      Result<ObjectInfo> info = local_->Seal(lease, size);
      if (info.ok()) QueueInvalidation(info->key);  // a rebind: copies elsewhere are stale
      return info;
    }
    // The owner's seal is the one that counts: stream the bytes there, then drop them here.
    std::shared_ptr<Blob> blob = staged->blob.lock();
    if (blob == nullptr) {
      EndSeal(lease, /*forget=*/true);
      return LeaseExpired("lease " + std::to_string(lease) + " ended");
    }
    if (size && *size > blob->size()) {  // refused: the lease stays live
      Status refused =
          InvalidArgument("seal size " + std::to_string(*size) + " exceeds the allocated " +
                          std::to_string(blob->size()) + " bytes");
      EndSeal(lease, /*forget=*/false);
      return refused;
    }
    if (Status live = local_->Renew(lease); !live.ok()) {
      EndSeal(lease, /*forget=*/true);
      return live;
    }
    Result<std::shared_ptr<BlobView>> view = blob->OpenView(LeaseMode::kCreate);
    Result<ObjectInfo> info = view.status();
    if (view.ok()) {
      std::span<std::byte> bytes = (*view)->bytes();
      bytes = bytes.first(std::min<uint64_t>(size.value_or(bytes.size()), bytes.size()));
      info = staged->owner->Put(staged->key, bytes, staged->options);
    }
    local_->Discard(lease).IgnoreError();
    EndSeal(lease, /*forget=*/true);
    forwarded_writes_.fetch_add(1, std::memory_order_relaxed);
    if (info.ok()) QueueInvalidation(staged->key);
    if (!info.ok() && !SealEndedLease(info.status())) {
      // The lease has ended here whatever the owner said: say so with a code that means it.
      return Aborted("the owner refused the object: " + info.status().ToString());
    }
    return info;
  }

  Status Release(LeaseId lease) override {
    if (lease & kCopyBit) return copies_->Release(lease & ~kCopyBit);
    ForgetStaged(lease);
    return local_->Release(lease);
  }

  Status Discard(LeaseId lease) override {
    if (lease & kCopyBit) return copies_->Discard(lease & ~kCopyBit);
    Status s = local_->Discard(lease);
    if (s.code() != StatusCode::kPermissionDenied) ForgetStaged(lease);
    return s;
  }

  Status Renew(LeaseId lease) override {
    if (lease & kCopyBit) return copies_->Renew(lease & ~kCopyBit);
    return local_->Renew(lease);
  }

  Result<ObjectInfo> Stat(std::string_view key) override {
    std::shared_ptr<const View> view = CurrentView();
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<ClusterNode> owner, Route(*view, key));
    if (owner == nullptr) return local_->Stat(key);
    return owner->Stat(key);
  }

  // Every node's own keys, merged. A source whose page was truncated at key K bounds the merged
  // page to keys up to K (what lies past K there is unknown).
  Result<ListPage> List(const ListOptions& options) override {
    std::shared_ptr<const View> view = CurrentView();
    std::vector<ListPage> pages;
    PACKICE_ASSIGN_OR_RETURN(ListPage own, local_->List(options));
    pages.push_back(std::move(own));
    for (const ClusterMember& m : view->members) {
      const std::shared_ptr<ClusterNode>& node = view->nodes.at(m.id);
      if (node == nullptr) return Unavailable("cluster member " + m.id + " cannot be reached");
      Result<ListPage> page = node->List(options);
      if (!page.ok()) {
        return Status(page.status().code(),
                      "listing member " + m.id + ": " + std::string(page.status().message()));
      }
      pages.push_back(*std::move(page));
    }
    std::optional<std::string> cutoff;
    for (const ListPage& p : pages) {
      if (p.truncated && !p.objects.empty() && (!cutoff || p.objects.back().key < *cutoff)) {
        cutoff = p.objects.back().key;
      }
    }
    ListPage out;
    for (ListPage& p : pages) {
      for (ObjectInfo& o : p.objects) {
        if (!cutoff || o.key <= *cutoff) out.objects.push_back(std::move(o));
      }
    }
    std::sort(out.objects.begin(), out.objects.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    out.objects.erase(
        std::unique(out.objects.begin(), out.objects.end(),
                    [](const ObjectInfo& a, const ObjectInfo& b) { return a.key == b.key; }),
        out.objects.end());
    const size_t limit =
        std::min<uint32_t>(options.limit == 0 ? 1000 : options.limit, kMaxListLimit);
    out.truncated = cutoff.has_value() || out.objects.size() > limit;
    if (out.objects.size() > limit) out.objects.resize(limit);
    return out;
  }

  Status Delete(std::string_view key) override {
    std::shared_ptr<const View> view = CurrentView();
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<ClusterNode> owner, Route(*view, key));
    Status s;
    if (owner == nullptr) {
      s = local_->Delete(key);
    } else {
      s = owner->Delete(key);
      forwarded_writes_.fetch_add(1, std::memory_order_relaxed);
    }
    if (s.ok()) QueueInvalidation(std::string(key));
    return s;
  }

  SessionId OpenSession() override {
    const SessionId session = local_->OpenSession();
    MutexLock lock(&mu_);
    copy_sessions_[session] = 0;  // its copies' session opens at its first remote read
    return session;
  }

  void CloseSession(SessionId session) override {
    local_->CloseSession(session);
    SessionId copy_session = 0;
    {
      MutexLock lock(&mu_);
      absl::erase_if(staged_, [&](const auto& entry) { return entry.second.session == session; });
      auto it = copy_sessions_.find(session);
      if (it == copy_sessions_.end()) return;
      copy_session = it->second;
      copy_sessions_.erase(it);
    }
    if (copy_session != 0) copies_->CloseSession(copy_session);
  }

  // --- LocalPeer -----------------------------------------------------------------------------

  Stats GetStats() override {
    Stats s = local_->GetStats();
    const Stats c = copies_->GetStats();
    // Copies count as memory the node uses (mirrors, and what readers of copies hold); they
    // are not this node's objects.
    s.creating += c.creating;
    s.leases += c.leases;
    s.used_bytes += c.used_bytes;
    s.hits += remote_hits_.load(std::memory_order_relaxed);
    s.misses += remote_misses_.load(std::memory_order_relaxed);
    s.evictions += copy_evictions_.load(std::memory_order_relaxed);
    return s;
  }
  std::string_view tier_name() const override { return local_->tier_name(); }
  void ReapExpired() override {
    local_->ReapExpired();
    copies_->ReapExpired();
    ForgetExpiredMirrors();
    MutexLock lock(&mu_);
    absl::erase_if(staged_, [](const auto& entry) { return entry.second.blob.expired(); });
  }
  void DrainCleaner() override {
    local_->DrainCleaner();
    copies_->DrainCleaner();
  }
  PersistReport Persist(const std::function<bool()>& cancelled,
                        const std::function<void(const PersistReport&)>& progress) override {
    return local_->Persist(cancelled, progress);  // copies are caches of other nodes' objects
  }

  // --- ClusterPeer ---------------------------------------------------------------------------

  void DropCopies(std::span<const std::string> keys) override {
    for (const std::string& key : keys) DropMirror(key);
    invalidations_received_.fetch_add(keys.size(), std::memory_order_relaxed);
  }

  void FlushInvalidations() override {
    std::unique_lock<std::mutex> lock(inval_mu_.native());
    flushed_cv_.wait(lock, [&] { return pending_.empty() && !sending_; });
  }

  ClusterStats GetClusterStats() override {
    std::shared_ptr<const View> view = CurrentView();
    ClusterStats s;
    s.members = view->ring.nodes().size();
    s.ring_epoch = view->ring.fingerprint();
    s.remote_reads = remote_reads_.load(std::memory_order_relaxed);
    s.fetches = fetches_.load(std::memory_order_relaxed);
    s.fetched_bytes = fetched_bytes_.load(std::memory_order_relaxed);
    s.fetch_errors = fetch_errors_.load(std::memory_order_relaxed);
    s.mirror_hits = mirror_hits_.load(std::memory_order_relaxed);
    s.mirrored = mirrored_.load(std::memory_order_relaxed);
    s.copy_evictions = copy_evictions_.load(std::memory_order_relaxed);
    s.forwarded_writes = forwarded_writes_.load(std::memory_order_relaxed);
    s.invalidations_sent = invalidations_sent_.load(std::memory_order_relaxed);
    s.invalidations_dropped = invalidations_dropped_.load(std::memory_order_relaxed);
    s.invalidations_received = invalidations_received_.load(std::memory_order_relaxed);
    const Stats c = copies_->GetStats();
    s.copy_bytes = c.used_bytes;
    s.copy_objects = c.objects;
    s.mirrors = copy_index_->GetStats().entries;
    return s;
  }

  LocalPeer& local() override { return *local_; }

 private:
  static std::shared_ptr<MemoryPeer> MakeCopies(const ClusterPeerOptions& options,
                                                const std::shared_ptr<Clock>& clock) {
    MemoryPeerOptions m = options.copies;
    if (!m.clock) m.clock = clock;
    return MemoryPeer::Create(std::move(m));
  }

  std::shared_ptr<const View> CurrentView() {
    MutexLock lock(&view_mu_);
    return view_;
  }

  // The owner of `key` when it is another node; nullptr when it is this one.
  Result<std::shared_ptr<ClusterNode>> Route(const View& view, std::string_view key) const {
    std::optional<std::string_view> owner = view.ring.Owner(key);
    if (!owner || *owner == view.self) return std::shared_ptr<ClusterNode>();
    auto it = view.nodes.find(std::string(*owner));
    if (it == view.nodes.end() || it->second == nullptr) {
      return Unavailable("the owner of '" + std::string(key) + "', cluster member " +
                         std::string(*owner) + ", cannot be reached");
    }
    return it->second;
  }

  Result<Grant> AcquireCreate(const AcquireRequest& req) {
    AcquireRequest r = req;
    if (r.key.empty()) r.key = GenerateObjectId();  // routed by the id it will have
    std::shared_ptr<const View> view = CurrentView();
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<ClusterNode> owner, Route(*view, r.key));
    if (owner == nullptr) return local_->Acquire(r);
    PACKICE_ASSIGN_OR_RETURN(Grant grant, local_->Acquire(r));
    MutexLock lock(&mu_);
    staged_[grant.lease] = Staged{std::move(owner), r.key, r.create, grant.blob, r.session};
    return grant;
  }

  // A copy of the staged create of `lease`, now marked as sealing; nullopt when the lease is
  // not a staged create. Errors: kWrongState (another Seal of it is under way).
  Result<std::optional<Staged>> BeginSeal(LeaseId lease) {
    MutexLock lock(&mu_);
    auto it = staged_.find(lease);
    if (it == staged_.end()) return std::optional<Staged>();
    if (it->second.sealing) {
      return WrongState("lease " + std::to_string(lease) + " is being sealed");
    }
    it->second.sealing = true;
    return std::optional<Staged>(it->second);
  }
  // Ends the Seal that BeginSeal began: the record goes (`forget`) or is live again.
  void EndSeal(LeaseId lease, bool forget) {
    MutexLock lock(&mu_);
    auto it = staged_.find(lease);
    if (it == staged_.end()) return;
    if (forget) {
      staged_.erase(it);
    } else {
      it->second.sealing = false;
    }
  }
  void ForgetStaged(LeaseId lease) {
    MutexLock lock(&mu_);
    staged_.erase(lease);
  }

  // The copies' session of `session`. Errors: kInvalidArgument (not an open session).
  Result<SessionId> CopySession(SessionId session) {
    if (session == 0) return SessionId{0};
    MutexLock lock(&mu_);
    auto it = copy_sessions_.find(session);
    if (it == copy_sessions_.end()) {
      return InvalidArgument("unknown session " + std::to_string(session));
    }
    if (it->second == 0) it->second = copies_->OpenSession();
    return it->second;
  }

  static Result<Grant> Tagged(Result<Grant> grant) {
    if (grant.ok()) grant->lease |= kCopyBit;
    return grant;
  }

  Result<Grant> ReadRemote(const AcquireRequest& req, std::shared_ptr<ClusterNode> owner) {
    remote_reads_.fetch_add(1, std::memory_order_relaxed);
    AcquireRequest r;  // (not brace-initialised: GCC 12 misreads `{}` for the options)
    r.key = req.key;
    PACKICE_ASSIGN_OR_RETURN(r.session, CopySession(req.session));
    r.lease_ttl = req.lease_ttl;
    const bool hot = Mirrorable(req.key) && hot_.Record(req.key) >= options_.mirror_min_rate;
    Result<Grant> copy = NotFound("no mirror");
    if (Mirrorable(req.key)) {
      r.key = MirrorKey(req.key);
      copy = copies_->Acquire(r);
      if (copy.ok()) {
        mirror_hits_.fetch_add(1, std::memory_order_relaxed);
        remote_hits_.fetch_add(1, std::memory_order_relaxed);
        copy_index_->Touch(r.key);
        copy->info.key = req.key;
        return Tagged(std::move(copy));
      }
      if (copy.status().code() != StatusCode::kNotFound) return copy.status();
      ForgetMirror(r.key);  // expired, if there was one
    }
    // Fetch (once for every concurrent reader of the key), then read the copy. A mirror can go
    // between the two (evicted, invalidated): fetch once more.
    std::shared_ptr<FetchedCopy> fetched;
    for (int attempt = 0; attempt < 2; ++attempt) {
      Result<std::shared_ptr<FetchedCopy>> filled = flight_.Do(
          req.key, [this, key = req.key, owner, hot] { return FillCopy(key, owner, hot); },
          options_.fetch_timeout);
      if (!filled.ok()) {
        if (filled.status().code() == StatusCode::kNotFound) {
          remote_misses_.fetch_add(1, std::memory_order_relaxed);
        } else {
          fetch_errors_.fetch_add(1, std::memory_order_relaxed);
        }
        return filled.status();
      }
      fetched = *std::move(filled);
      r.key = fetched->bound_key;
      copy = copies_->Acquire(r);
      if (copy.ok() || copy.status().code() != StatusCode::kNotFound) break;
    }
    fetched.reset();  // this reader has its lease: the copy may be unbound
    if (!copy.ok()) return copy.status();
    remote_hits_.fetch_add(1, std::memory_order_relaxed);
    copy->info.key = req.key;  // a fetched copy is bound under a key of its own
    return Tagged(std::move(copy));
  }

  // Streams `key` from its owner into a copy here. A hot key's copy is a mirror, bound under
  // the key for mirror_ttl; any other is bound under a key of its own until the readers that
  // waited for it have their leases.
  Result<std::shared_ptr<FetchedCopy>> FillCopy(const std::string& key,
                                                const std::shared_ptr<ClusterNode>& owner,
                                                bool hot) {
    const std::string bound_key =
        hot ? MirrorKey(key)
            : "f" + std::to_string(next_fetch_.fetch_add(1, std::memory_order_relaxed));
    std::optional<Grant> staging;
    std::shared_ptr<BlobView> view;
    auto allocate = [&](const ObjectInfo& info) -> Result<std::span<std::byte>> {
      CreateOptions c;
      c.meta = info.meta;
      Duration ttl = hot ? options_.mirror_ttl : options_.copy_ttl;
      if (info.expires_unix_ms != 0) {
        const int64_t left = info.expires_unix_ms - clock_->UnixMillis();
        if (left <= 0) return NotFound("object '" + key + "' expired");
        ttl = std::min(ttl, Duration(left));
      }
      c.ttl = ttl;
      c.copy_of_version = info.version;
      c.copy_created_unix_ms = info.created_unix_ms;
      PACKICE_ASSIGN_OR_RETURN(Grant g,
                               AcquireCopy(key, {bound_key, LeaseMode::kCreate, info.size, c}));
      staging = std::move(g);
      PACKICE_ASSIGN_OR_RETURN(view, staging->blob->OpenView(LeaseMode::kCreate));
      return view->bytes().first(info.size);
    };
    // An invalidation while the fetch runs may name what it is fetching: such a copy serves the
    // readers that asked before it, and is not kept as a mirror.
    const uint64_t drops_before = drops_.load(std::memory_order_acquire);
    Result<ObjectInfo> fetched = owner->FetchInto(key, allocate);
    view.reset();
    if (!fetched.ok()) {
      if (staging) copies_->Discard(staging->lease).IgnoreError();
      return fetched.status();
    }
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, copies_->Seal(staging->lease, fetched->size));
    fetches_.fetch_add(1, std::memory_order_relaxed);
    fetched_bytes_.fetch_add(info.size, std::memory_order_relaxed);
    if (hot && drops_.load(std::memory_order_acquire) != drops_before) {
      hot = false;  // unbound once its readers hold their leases, as any other fetched copy
    }
    if (hot) {
      // The index has no capacity of its own.
      copy_index_->Insert(bound_key, info.size).evicted.clear();
      {
        MutexLock lock(&mu_);
        mirror_expiry_[bound_key] = info.expires_unix_ms;
      }
      mirrored_.fetch_add(1, std::memory_order_relaxed);
    }
    return std::make_shared<FetchedCopy>(copies_, bound_key, hot);
  }

  // A create in the copy memory; when it is full, the least recently used copies make room.
  Result<Grant> AcquireCopy(const std::string& key, const AcquireRequest& req) {
    Result<Grant> g = CreateEvicting(*copies_, *copy_index_, req, 3, [&](const std::string& k) {
      ForgetMirror(k);
      copy_evictions_.fetch_add(1, std::memory_order_relaxed);
    });
    if (!g.ok() && g.status().code() == StatusCode::kOutOfCapacity) {
      return OutOfCapacity("no room for a copy of '" + key + "' (" + std::to_string(req.size) +
                           " bytes) from its owner: " + std::string(g.status().message()));
    }
    return g;
  }

  // --- invalidation --------------------------------------------------------------------------

  void DropMirror(std::string_view key) {
    if (!Mirrorable(key)) return;
    drops_.fetch_add(1, std::memory_order_acq_rel);  // a fetch running now may be stale
    const std::string bound = MirrorKey(key);
    copies_->Delete(bound).IgnoreError();
    ForgetMirror(bound);
  }

  // Drops the mirror bound as `bound` from the index (the copy itself is gone or going).
  void ForgetMirror(const std::string& bound) {
    copy_index_->Erase(bound);
    MutexLock lock(&mu_);
    mirror_expiry_.erase(bound);
  }

  // Forgets the mirrors whose TTL has passed (the copies' reaper frees their bytes), so that
  // the index counts only live ones.
  void ForgetExpiredMirrors() {
    const int64_t now = clock_->UnixMillis();
    std::vector<std::string> expired;
    {
      MutexLock lock(&mu_);
      for (const auto& [bound, expires] : mirror_expiry_) {
        if (expires != 0 && expires <= now) expired.push_back(bound);
      }
      for (const std::string& bound : expired) mirror_expiry_.erase(bound);
    }
    for (const std::string& bound : expired) copy_index_->Erase(bound);
  }

  void QueueInvalidation(std::string key) {
    DropMirror(key);  // the writer's own copy is stale at once
    if (CurrentView()->members.empty()) return;
    {
      std::lock_guard<std::mutex> lock(inval_mu_.native());
      if (pending_.size() >= options_.max_pending_invalidations) {
        invalidations_dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      pending_.push_back(std::move(key));
    }
    inval_cv_.notify_one();
  }

  // Sends pending invalidations in batches to every other member. A member that cannot be
  // reached keeps its copies until their TTL.
  void InvalidateLoop() {
    constexpr size_t kBatch = 1024;
    std::unique_lock<std::mutex> lock(inval_mu_.native());
    while (true) {
      inval_cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (stopping_) return;
      std::vector<std::string> batch;
      while (!pending_.empty() && batch.size() < kBatch) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
      sending_ = true;
      lock.unlock();
      std::shared_ptr<const View> view = CurrentView();
      for (const auto& [id, node] : view->nodes) {
        if (node != nullptr && node->Invalidate(batch).ok()) {
          invalidations_sent_.fetch_add(batch.size(), std::memory_order_relaxed);
        }
      }
      lock.lock();
      sending_ = false;
      if (pending_.empty()) flushed_cv_.notify_all();
    }
  }

  const std::shared_ptr<LocalPeer> local_;
  const ClusterConnector connect_;
  const ClusterPeerOptions options_;
  const std::shared_ptr<Clock> clock_;
  const std::shared_ptr<MemoryPeer> copies_;
  // The bound copies, least recently used first (for making room in copies_).
  const std::unique_ptr<Evictor> copy_index_;
  HotKeyTracker hot_;
  SingleFlight<std::shared_ptr<FetchedCopy>> flight_;
  std::atomic<uint64_t> next_fetch_{1};
  std::atomic<uint64_t> drops_{0};  // mirrors dropped (invalidations and local writes) so far

  Mutex change_mu_;  // serialises membership changes
  Mutex view_mu_;
  std::shared_ptr<const View> view_ ABSL_GUARDED_BY(view_mu_);

  Mutex mu_;
  absl::flat_hash_map<LeaseId, Staged> staged_ ABSL_GUARDED_BY(mu_);
  // The mirrors in copy_index_, by bound key: when each expires (unix ms; 0: never).
  absl::flat_hash_map<std::string, int64_t> mirror_expiry_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<SessionId, SessionId> copy_sessions_ ABSL_GUARDED_BY(mu_);

  Mutex inval_mu_;
  std::condition_variable inval_cv_;
  std::condition_variable flushed_cv_;
  std::deque<std::string> pending_;  // guarded by inval_mu_
  bool sending_ = false;             // guarded by inval_mu_
  bool stopping_ = false;            // guarded by inval_mu_
  std::thread invalidator_;

  std::atomic<uint64_t> remote_reads_{0}, remote_hits_{0}, remote_misses_{0}, fetches_{0},
      fetched_bytes_{0}, fetch_errors_{0}, mirror_hits_{0}, mirrored_{0}, copy_evictions_{0},
      forwarded_writes_{0}, invalidations_sent_{0}, invalidations_dropped_{0},
      invalidations_received_{0};
};

// Another node's local peer in this process.
class InProcessClusterNode final : public ClusterNode {
 public:
  InProcessClusterNode(std::shared_ptr<Peer> local, std::weak_ptr<ClusterPeer> cluster)
      : local_(std::move(local)), cluster_(std::move(cluster)) {}

  Result<ObjectInfo> FetchInto(
      std::string_view key,
      const std::function<Result<std::span<std::byte>>(const ObjectInfo&)>& allocate) override {
    PACKICE_ASSIGN_OR_RETURN(Grant grant, local_->Acquire({std::string(key), LeaseMode::kRead}));
    Result<std::span<std::byte>> out = allocate(grant.info);
    Status s = out.status();
    if (out.ok()) s = grant.blob->Read(0, *out);
    local_->Release(grant.lease).IgnoreError();
    PACKICE_RETURN_IF_ERROR(s);
    return grant.info;
  }

  Result<ObjectInfo> Put(std::string_view key, std::span<const std::byte> data,
                         const CreateOptions& options) override {
    PACKICE_ASSIGN_OR_RETURN(
        Grant grant, local_->Acquire({std::string(key), LeaseMode::kCreate, data.size(), options}));
    if (Status s = grant.blob->Write(0, data); !s.ok()) {
      local_->Discard(grant.lease).IgnoreError();
      return s;
    }
    return local_->Seal(grant.lease, std::nullopt);
  }

  Result<ObjectInfo> Stat(std::string_view key) override { return local_->Stat(key); }
  Result<ListPage> List(const ListOptions& options) override { return local_->List(options); }
  Status Delete(std::string_view key) override { return local_->Delete(key); }
  Status Invalidate(std::span<const std::string> keys) override {
    std::shared_ptr<ClusterPeer> cluster = cluster_.lock();
    if (cluster == nullptr) return Unavailable("the node is gone");
    cluster->DropCopies(keys);
    return Status::Ok();
  }

 private:
  std::shared_ptr<Peer> local_;
  std::weak_ptr<ClusterPeer> cluster_;
};

}  // namespace

std::shared_ptr<ClusterPeer> ClusterPeer::Create(std::shared_ptr<LocalPeer> local,
                                                 ClusterConnector connect,
                                                 ClusterPeerOptions options) {
  return std::make_shared<ClusterPeerImpl>(std::move(local), std::move(connect),
                                           std::move(options));
}

std::shared_ptr<ClusterNode> NewInProcessClusterNode(std::shared_ptr<Peer> local,
                                                     std::weak_ptr<ClusterPeer> cluster) {
  return std::make_shared<InProcessClusterNode>(std::move(local), std::move(cluster));
}

}  // namespace packice
