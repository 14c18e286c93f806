#include "peers/prefix_peer.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "core/mutex.h"
#include "core/validate.h"
#include "peers/lease_table.h"

namespace packice {
namespace {

// One side of a merged list: pages of one inner peer, their keys as the client sees them.
struct ListStream {
  Peer* peer = nullptr;
  ListOptions options;  // the next page's, in the inner peer's keys
  std::string add;      // put before each inner key
  std::string skip;     // keys under it are left out (empty: none)
  std::deque<ObjectInfo> buffered;
  bool more = true;

  // Fetches pages until one key is buffered or the peer has no more.
  Status Fill() {
    while (buffered.empty() && more) {
      PACKICE_ASSIGN_OR_RETURN(ListPage page, peer->List(options));
      more = page.truncated && !page.objects.empty();
      if (!page.objects.empty()) options.start_after = page.objects.back().key;
      for (ObjectInfo& o : page.objects) {
        if (!skip.empty() && o.key.starts_with(skip)) continue;
        o.key.insert(0, add);
        buffered.push_back(std::move(o));
      }
    }
    return Status::Ok();
  }
};

class PrefixPeerImpl final : public LocalPeer {
 public:
  PrefixPeerImpl(std::shared_ptr<LocalPeer> fallback, std::shared_ptr<LocalPeer> routed,
                 PrefixPeerOptions options)
      : fallback_(std::move(fallback)),
        routed_(std::move(routed)),
        prefix_(std::move(options.prefix)),
        clock_(options.clock ? std::move(options.clock) : Clock::System()) {}

  // --- Peer ------------------------------------------------------------------------------

  Result<Grant> Acquire(const AcquireRequest& req) override {
    AcquireRequest inner = req;
    if (req.key.empty() && req.mode == LeaseMode::kCreate) {
      // The fallback peer would generate an id; one under the prefix could never be read back.
      // Ids share a per-process start, so one under the prefix gets a letter before it that is
      // not the prefix's first (no retry: every id of this process would start the same).
      inner.key = GenerateObjectId();
      if (!prefix_.empty() && inner.key.starts_with(prefix_)) {
        inner.key.insert(0, prefix_[0] == 'o' ? "p" : "o");
      }
    }
    PACKICE_ASSIGN_OR_RETURN(const bool routed, Strip(&inner.key));
    inner.session = InnerSession(req.session, routed);
    PACKICE_ASSIGN_OR_RETURN(Grant grant, PeerOf(routed).Acquire(inner));
    if (routed) grant.info.key.insert(0, prefix_);
    const Clock::TimePoint now = clock_->Now();
    MutexLock lock(&mu_);
    // Leases nobody ended go here too (a node need not call ReapExpired): cheap, as the table's
    // deadlines are ordered.
    leases_.ExpireUntil(now);
    grant.lease = leases_.Grant(InnerLease{routed, grant.lease}, grant.lease_ttl, now, req.session);
    return grant;
  }

  Result<ObjectInfo> Seal(LeaseId lease, std::optional<uint64_t> size) override {
    PACKICE_ASSIGN_OR_RETURN(InnerLease l, Find(lease));
    Result<ObjectInfo> info = PeerOf(l.routed).Seal(l.inner, size);
    if (SealEndedLease(info.status())) Forget(lease);
    if (info.ok() && l.routed) info->key.insert(0, prefix_);
    return info;
  }

  Status Release(LeaseId lease) override { return End(lease, /*discard=*/false); }
  Status Discard(LeaseId lease) override { return End(lease, /*discard=*/true); }

  Status Renew(LeaseId lease) override {
    PACKICE_ASSIGN_OR_RETURN(InnerLease l, Find(lease));
    Status s = PeerOf(l.routed).Renew(l.inner);
    MutexLock lock(&mu_);
    if (leases_.Find(lease) == nullptr) return s;
    if (s.ok()) leases_.Renew(lease, clock_->Now());
    if (s.code() == StatusCode::kLeaseExpired) leases_.End(lease);
    return s;
  }

  Result<ObjectInfo> Stat(std::string_view key) override {
    std::string inner(key);
    PACKICE_ASSIGN_OR_RETURN(const bool routed, Strip(&inner));
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, PeerOf(routed).Stat(inner));
    if (routed) info.key.insert(0, prefix_);
    return info;
  }

  Result<ListPage> List(const ListOptions& options) override {
    if (options.prefix.starts_with(prefix_)) return ListRouted(options);
    if (!prefix_.starts_with(options.prefix)) return fallback_->List(options);
    return ListMerged(options);
  }

  Status Delete(std::string_view key) override {
    std::string inner(key);
    PACKICE_ASSIGN_OR_RETURN(const bool routed, Strip(&inner));
    return PeerOf(routed).Delete(inner);
  }

  SessionId OpenSession() override {
    const SessionId fallback = fallback_->OpenSession();
    const SessionId routed = routed_->OpenSession();
    MutexLock lock(&mu_);
    return leases_.OpenSession(InnerSessions{fallback, routed});
  }

  void CloseSession(SessionId session) override {
    std::optional<Leases::ClosedSession> closed;
    {
      MutexLock lock(&mu_);
      closed = leases_.CloseSession(session);
    }
    if (!closed) return;
    // Closing the inner sessions ends the inner leases of the outer ones just forgotten.
    fallback_->CloseSession(closed->data.fallback);
    routed_->CloseSession(closed->data.routed);
  }

  // --- LocalPeer ---------------------------------------------------------------------------

  Stats GetStats() override {
    const Stats f = fallback_->GetStats();
    const Stats r = routed_->GetStats();
    Stats s;
    s.objects = f.objects + r.objects;
    s.creating = f.creating + r.creating;
    s.leases = f.leases + r.leases;
    s.used_bytes = f.used_bytes + r.used_bytes;
    s.pooled_bytes = f.pooled_bytes + r.pooled_bytes;
    s.capacity_bytes = f.capacity_bytes + r.capacity_bytes;
    s.hits = f.hits + r.hits;
    s.misses = f.misses + r.misses;
    s.evictions = f.evictions + r.evictions;
    return s;
  }

  std::string_view tier_name() const override { return fallback_->tier_name(); }

  void ReapExpired() override {
    fallback_->ReapExpired();
    routed_->ReapExpired();
    std::vector<Leases::Ended> expired;
    MutexLock lock(&mu_);
    expired = leases_.ExpireUntil(clock_->Now());
  }

  void DrainCleaner() override {
    fallback_->DrainCleaner();
    routed_->DrainCleaner();
  }

  PersistReport Persist(const std::function<bool()>& cancelled,
                        const std::function<void(const PersistReport&)>& progress) override {
    PersistReport a = fallback_->Persist(cancelled, progress);
    const PersistReport b = routed_->Persist(cancelled, progress);
    a.objects += b.objects;
    a.bytes += b.bytes;
    a.durable += b.durable;
    a.failed += b.failed;
    a.left += b.left;
    a.full = a.full || b.full;
    a.cancelled = a.cancelled || b.cancelled;
    return a;
  }

 private:
  // What a client's lease is: lease `inner` of the routed or the fallback peer.
  struct InnerLease {
    bool routed = false;
    LeaseId inner = 0;
  };
  // A client's session: one in each peer.
  struct InnerSessions {
    SessionId fallback = 0;
    SessionId routed = 0;
  };
  using Leases = LeaseTable<InnerLease, InnerSessions>;

  LocalPeer& PeerOf(bool routed) { return routed ? *routed_ : *fallback_; }

  // Whether `*key` is routed; if so, strips the prefix. Errors: kInvalidArgument (the prefix
  // alone).
  Result<bool> Strip(std::string* key) const {
    if (!key->starts_with(prefix_)) return false;
    if (key->size() == prefix_.size()) {
      return InvalidArgument("key '" + prefix_ + "' names no object: keys under '" + prefix_ +
                             "' go on after it");
    }
    key->erase(0, prefix_.size());
    return true;
  }

  // The inner peer's session of a client's session (an id it refuses when the client's is
  // not open).
  SessionId InnerSession(SessionId session, bool routed) {
    if (session == 0) return 0;
    MutexLock lock(&mu_);
    const InnerSessions* s = leases_.FindSession(session);
    if (s == nullptr) return ~SessionId{0};
    return routed ? s->routed : s->fallback;
  }

  Result<InnerLease> Find(LeaseId lease) {
    MutexLock lock(&mu_);
    const Leases::Lease* l = leases_.Find(lease);
    if (l == nullptr) return LeaseExpired("lease " + std::to_string(lease) + " is not live");
    return l->payload;
  }

  void Forget(LeaseId lease) {
    MutexLock lock(&mu_);
    if (leases_.Find(lease) != nullptr) leases_.End(lease);
  }

  Status End(LeaseId lease, bool discard) {
    PACKICE_ASSIGN_OR_RETURN(InnerLease l, Find(lease));
    LocalPeer& peer = PeerOf(l.routed);
    Status s = discard ? peer.Discard(l.inner) : peer.Release(l.inner);
    if (s.ok() || s.code() == StatusCode::kLeaseExpired) Forget(lease);
    return s;
  }

  // `start_after`, a client's key, as a start in the routed peer's keys; nullopt when it is past
  // every key under the prefix.
  std::optional<std::string> RoutedStart(const std::string& start_after) const {
    if (start_after.starts_with(prefix_)) return start_after.substr(prefix_.size());
    // Not under the prefix: before all of its keys, or after all of them.
    if (start_after < prefix_) return std::string();
    return std::nullopt;
  }

  Result<ListPage> ListRouted(const ListOptions& options) {
    std::optional<std::string> start = RoutedStart(options.start_after);
    if (!start) return ListPage{};
    ListOptions inner = options;
    inner.prefix = options.prefix.substr(prefix_.size());
    inner.start_after = *std::move(start);
    PACKICE_ASSIGN_OR_RETURN(ListPage page, routed_->List(inner));
    for (ObjectInfo& o : page.objects) o.key.insert(0, prefix_);
    return page;
  }

  Result<ListPage> ListMerged(const ListOptions& options) {
    const uint32_t limit = std::min(std::max(options.limit, 1u), kMaxListLimit);
    ListStream fallback{fallback_.get(), options, "", prefix_, {}, true};
    fallback.options.limit = limit;
    ListStream routed{routed_.get(), options, prefix_, "", {}, true};
    routed.options.prefix.clear();  // options.prefix is a prefix of prefix_
    routed.options.limit = limit;
    if (std::optional<std::string> start = RoutedStart(options.start_after)) {
      routed.options.start_after = *std::move(start);
    } else {
      routed.more = false;
    }
    ListPage page;
    while (true) {
      PACKICE_RETURN_IF_ERROR(fallback.Fill());
      PACKICE_RETURN_IF_ERROR(routed.Fill());
      if (fallback.buffered.empty() && routed.buffered.empty()) break;
      if (page.objects.size() == limit) {
        page.truncated = true;
        break;
      }
      ListStream* next = &fallback;
      if (fallback.buffered.empty() ||
          (!routed.buffered.empty() &&
           routed.buffered.front().key < fallback.buffered.front().key)) {
        next = &routed;
      }
      page.objects.push_back(std::move(next->buffered.front()));
      next->buffered.pop_front();
    }
    return page;
  }

  const std::shared_ptr<LocalPeer> fallback_;
  const std::shared_ptr<LocalPeer> routed_;
  const std::string prefix_;
  const std::shared_ptr<Clock> clock_;
  Mutex mu_;
  Leases leases_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::shared_ptr<LocalPeer> NewPrefixPeer(std::shared_ptr<LocalPeer> fallback,
                                         std::shared_ptr<LocalPeer> routed,
                                         PrefixPeerOptions options) {
  return std::make_shared<PrefixPeerImpl>(std::move(fallback), std::move(routed),
                                          std::move(options));
}

}  // namespace packice
