#include "packice/tiered_peer.h"

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <atomic>
#include <deque>
#include <map>
#include <optional>

#include "core/eviction.h"
#include "core/mutex.h"
#include "core/periodic_thread.h"
#include "packice/clock.h"
#include "peers/lease_table.h"

namespace packice {
namespace {

constexpr size_t kMaxPendingPromotions = 1024;
constexpr size_t kMaxTrackedColdHits = 100000;
constexpr Duration kMoveLeaseTtl = std::chrono::minutes(5);
constexpr auto kProgressEvery = std::chrono::seconds(1);

bool IsCode(const Status& s, StatusCode code) { return s.code() == code; }

class TieredPeerImpl final : public TieredPeer {
 public:
  TieredPeerImpl(std::shared_ptr<LocalPeer> hot, std::shared_ptr<LocalPeer> cold,
                 TieredPeerOptions options, EvictionKind kind)
      : hot_(std::move(hot)),
        cold_(std::move(cold)),
        options_(std::move(options)),
        clock_(options_.clock ? options_.clock : Clock::System()),
        // One shard: demotion order is global (LRU order across shards would be approximate),
        // and the evictor's lock is short next to the copies it orders.
        evictor_(NewEvictor(kind, EvictionOptions{.shards = 1})) {
    if (options_.background_threads) {
      mover_.emplace(std::chrono::milliseconds(20), [this] {
        Demote(/*force=*/false).IgnoreError();
        RunPromotions();
        ForgetExpiredLeases();
      });
    }
  }

  ~TieredPeerImpl() override {
    if (mover_) mover_->Stop();
  }

  // --- Peer ------------------------------------------------------------------------------

  Result<Grant> Acquire(const AcquireRequest& req) override {
    auto [hot_session, cold_session] = InnerSessionsOf(req.session);
    AcquireRequest inner = req;
    if (req.mode == LeaseMode::kCreate) {
      // Each tier checks an exclusive create against its own keys; the other tier's are this
      // peer's to check (here, and again at the seal).
      if (req.create.exclusive && !req.key.empty() && Stat(req.key).ok()) {
        return AlreadyExists("key '" + req.key + "' exists");
      }
      inner.session = hot_session;
      auto grant = hot_->Acquire(inner);
      if (!grant.ok() && IsCode(grant.status(), StatusCode::kOutOfCapacity)) {
        // Make room by demoting now, then try hot once more before falling back to cold.
        Demote(/*force=*/true).IgnoreError();
        grant = hot_->Acquire(inner);
      }
      if (!grant.ok() && IsCode(grant.status(), StatusCode::kOutOfCapacity)) {
        inner.session = cold_session;
        grant = cold_->Acquire(inner);
        if (!grant.ok() && IsCode(grant.status(), StatusCode::kOutOfCapacity)) {
          return OutOfCapacity("both tiers are full: " + std::string(grant.status().message()));
        }
        PACKICE_RETURN_IF_ERROR(grant.status());
        return Register(std::move(*grant), cold_.get(), req);
      }
      PACKICE_RETURN_IF_ERROR(grant.status());
      return Register(std::move(*grant), hot_.get(), req);
    }
    // A read counts once: a hot hit, a cold hit, or (neither tier has it) one miss. A hot
    // miss followed by a cold hit is a cold hit only.
    inner.session = hot_session;
    auto grant = hot_->Acquire(inner);
    if (grant.ok()) {
      evictor_->Touch(req.key);
      hot_hits_.fetch_add(1, std::memory_order_relaxed);
      return Register(std::move(*grant), hot_.get(), req);
    }
    if (!IsCode(grant.status(), StatusCode::kNotFound)) return grant.status();
    inner.session = cold_session;
    grant = cold_->Acquire(inner);
    if (!grant.ok()) {
      if (IsCode(grant.status(), StatusCode::kNotFound)) {
        misses_.fetch_add(1, std::memory_order_relaxed);
      }
      return grant.status();
    }
    cold_hits_.fetch_add(1, std::memory_order_relaxed);
    NoteColdHit(req.key);
    return Register(std::move(*grant), cold_.get(), req);
  }

  Result<ObjectInfo> Seal(LeaseId lease, std::optional<uint64_t> size) override {
    PACKICE_ASSIGN_OR_RETURN(TierLease l, Find(lease));
    if (l.mode != LeaseMode::kCreate) return PermissionDenied("seal needs a create lease");
    // Seals of one key run one at a time: each leaves both tiers consistent before the next.
    MutexLock key_lock(&KeyMutex(l.info.key));
    if (l.exclusive) {
      Peer* other = l.tier == hot_.get() ? static_cast<Peer*>(cold_.get()) : hot_.get();
      if (other->Stat(l.info.key).ok()) {
        l.tier->Discard(l.inner).IgnoreError();
        Forget(lease);
        return AlreadyExists("key '" + l.info.key + "' was bound while this object was created");
      }
    }
    if (l.tier == hot_.get() && options_.write_through) {
      PACKICE_RETURN_IF_ERROR(WriteThrough(lease, l, size));
    }
    Result<ObjectInfo> info = Status();
    {
      // Sealing rebinds the key; demotion's check-and-drop must not interleave with it.
      MutexLock lock(&move_mu_);
      info = l.tier->Seal(l.inner, size);
      if (info.ok() && l.tier == hot_.get() && options_.write_through) {
        MutexLock t(&mu_);
        clean_[info->key] = info->version;  // cold holds this very object (WriteThrough)
      } else if (info.ok()) {
        // The other tier's copy (an older version) must never resurface, nor shadow this one.
        Peer* other = l.tier == hot_.get() ? static_cast<Peer*>(cold_.get()) : hot_.get();
        other->Delete(info->key).IgnoreError();
        MutexLock t(&mu_);
        clean_.erase(info->key);
      } else if (options_.write_through && l.tier == hot_.get()) {
        DeleteIfVersion(*cold_, l.info.key, l.info.version);  // the copy of what never was
      }
    }
    if (SealEndedLease(info.status())) Forget(lease);
    PACKICE_RETURN_IF_ERROR(info.status());
    if (l.tier == hot_.get()) {
      evictor_->Insert(info->key, info->size).evicted.clear();  // unbounded: evicts nothing
    } else {
      evictor_->Erase(info->key);
    }
    return info;
  }

  Status Release(LeaseId lease) override { return End(lease, /*discard=*/false); }
  Status Discard(LeaseId lease) override { return End(lease, /*discard=*/true); }

  Status Renew(LeaseId lease) override {
    PACKICE_ASSIGN_OR_RETURN(TierLease l, Find(lease));
    Status s = l.tier->Renew(l.inner);
    if (IsCode(s, StatusCode::kLeaseExpired)) Forget(lease);
    if (s.ok()) Renewed(lease);
    return s;
  }

  Result<ObjectInfo> Stat(std::string_view key) override {
    auto info = hot_->Stat(key);
    if (info.ok() || !IsCode(info.status(), StatusCode::kNotFound)) return info;
    return cold_->Stat(key);
  }

  Result<ListPage> List(const ListOptions& options) override {
    PACKICE_ASSIGN_OR_RETURN(ListPage hot, hot_->List(options));
    PACKICE_ASSIGN_OR_RETURN(ListPage cold, cold_->List(options));
    // Merge by key; hot wins when both hold a key (mid-move, or promoted).
    std::map<std::string_view, const ObjectInfo*> merged;
    for (const ObjectInfo& o : cold.objects) merged[o.key] = &o;
    for (const ObjectInfo& o : hot.objects) merged[o.key] = &o;
    // Past the first page boundary of either list, keys may be missing: stop there.
    std::string_view end;
    if (hot.truncated && !hot.objects.empty()) end = hot.objects.back().key;
    if (cold.truncated && !cold.objects.empty() && (end.empty() || cold.objects.back().key < end)) {
      end = cold.objects.back().key;
    }
    const uint32_t limit = std::min(std::max(options.limit, 1u), kMaxListLimit);
    ListPage page;
    for (const auto& [key, info] : merged) {
      if (!end.empty() && key > end) {
        page.truncated = true;
        break;
      }
      if (page.objects.size() == limit) {
        page.truncated = true;
        break;
      }
      page.objects.push_back(*info);
    }
    if (hot.truncated || cold.truncated) page.truncated = true;
    return page;
  }

  Status Delete(std::string_view key) override {
    MutexLock key_lock(&KeyMutex(key));
    MutexLock lock(&move_mu_);
    Status h = hot_->Delete(key);
    Status c = cold_->Delete(key);
    evictor_->Erase(key);
    {
      MutexLock t(&mu_);
      clean_.erase(std::string(key));
    }
    if (h.ok() || c.ok()) return Status::Ok();
    return IsCode(h, StatusCode::kNotFound) ? c : h;
  }

  SessionId OpenSession() override {
    const SessionId hot = hot_->OpenSession();
    const SessionId cold = cold_->OpenSession();
    MutexLock lock(&mu_);
    return leases_.OpenSession(InnerSessions{hot, cold});
  }

  void CloseSession(SessionId session) override {
    std::optional<Leases::ClosedSession> closed;
    {
      MutexLock lock(&mu_);
      closed = leases_.CloseSession(session);
    }
    if (!closed) return;
    // Closing the inner sessions ends the inner leases of the outer ones just forgotten.
    hot_->CloseSession(closed->data.hot);
    cold_->CloseSession(closed->data.cold);
  }

  // --- LocalPeer ---------------------------------------------------------------------------

  Stats GetStats() override {
    Stats h = hot_->GetStats();
    Stats c = cold_->GetStats();
    Stats s{h.objects + c.objects,
            h.creating + c.creating,
            h.leases + c.leases,
            h.used_bytes + c.used_bytes,
            h.pooled_bytes + c.pooled_bytes,
            h.capacity_bytes + c.capacity_bytes};
    // Hits and misses are this peer's own, one per client read (see Acquire), never the sum
    // of the tiers' counters: those also count this peer's probes (every cold hit is a hot
    // miss first) and its demotion and promotion reads.
    s.hits = hot_hits_.load(std::memory_order_relaxed) + cold_hits_.load(std::memory_order_relaxed);
    s.misses = misses_.load(std::memory_order_relaxed);
    // A demotion pushes an object out of memory for room: an eviction from the memory tier.
    MutexLock lock(&mu_);
    s.evictions = tier_stats_.demoted_objects + h.evictions + c.evictions;
    return s;
  }

  std::string_view tier_name() const override { return "tiered"; }

  void ReapExpired() override {
    hot_->ReapExpired();
    cold_->ReapExpired();
    ForgetExpiredLeases();
  }

  void DrainCleaner() override {
    hot_->DrainCleaner();
    cold_->DrainCleaner();
  }

  PersistReport Persist(const std::function<bool()>& cancelled,
                        const std::function<void(const PersistReport&)>& progress) override {
    PersistReport report;
    auto last_report = std::chrono::steady_clock::now();
    ListOptions page_options;
    page_options.limit = kMaxListLimit;
    while (true) {
      auto page = hot_->List(page_options);
      if (!page.ok()) break;
      for (const ObjectInfo& info : page->objects) {
        if (report.full || report.cancelled || (cancelled && cancelled())) {
          report.cancelled = !report.full;
          ++report.left;
          continue;
        }
        PersistOne(info, cancelled, &report);
        if (progress && std::chrono::steady_clock::now() - last_report >= kProgressEvery) {
          progress(report);
          last_report = std::chrono::steady_clock::now();
        }
      }
      if (!page->truncated || page->objects.empty()) break;
      page_options.start_after = page->objects.back().key;
    }
    return report;
  }

  // --- TieredPeer --------------------------------------------------------------------------

  TierStats GetTierStats() override {
    MutexLock lock(&mu_);
    TierStats s = tier_stats_;
    s.client_leases = leases_.size();
    s.hot_hits = hot_hits_.load();
    s.cold_hits = cold_hits_.load();
    s.misses = misses_.load();
    return s;
  }

  Result<uint64_t> Demote(bool force) override {
    MutexLock serial(&demote_mu_);  // one demotion pass at a time
    const Stats hot = hot_->GetStats();
    const double cap = static_cast<double>(hot.capacity_bytes);
    const double used = static_cast<double>(hot.used_bytes);
    if (!force && used <= options_.high_watermark * cap) return uint64_t{0};
    uint64_t target = used > options_.low_watermark * cap
                          ? static_cast<uint64_t>(used - options_.low_watermark * cap)
                          : 0;
    if (force && target == 0) target = 1;  // at least one object
    uint64_t moved = 0;
    while (moved < target) {
      std::vector<EvictedEntry> victims = evictor_->EvictBytes(target - moved);
      if (victims.empty()) break;
      for (const EvictedEntry& v : victims) {
        auto bytes = DemoteOne(v.key);
        if (!bytes.ok()) {
          if (IsCode(bytes.status(), StatusCode::kOutOfCapacity)) {
            evictor_->Insert(v.key, v.charge).evicted.clear();  // stays hot; cold is full
            return moved > 0 ? Result<uint64_t>(moved) : bytes.status();
          }
          continue;  // gone meanwhile, or unreadable: nothing to move
        }
        moved += *bytes;
      }
    }
    return moved;
  }

  void RunPromotions() override {
    while (true) {
      std::string key;
      {
        MutexLock lock(&mu_);
        if (promotions_.empty()) return;
        key = std::move(promotions_.front());
        promotions_.pop_front();
        queued_.erase(key);
      }
      Promote(key).IgnoreError();  // best effort: the object stays readable from cold
    }
  }

  LocalPeer& hot() override { return *hot_; }
  LocalPeer& cold() override { return *cold_; }

 private:
  // What a client's lease is in the tiers: a lease `inner` of peer `tier`.
  struct TierLease {
    Peer* tier = nullptr;
    LeaseId inner = 0;
    LeaseMode mode = LeaseMode::kRead;
    ObjectInfo info;             // kCreate: what is being created
    bool exclusive = false;      // kCreate: CreateOptions::exclusive
    std::shared_ptr<Blob> blob;  // kCreate in hot with write_through: the bytes to copy
  };
  // A client's session: one session in each tier.
  struct InnerSessions {
    SessionId hot = 0;
    SessionId cold = 0;
  };
  // The table's deadline of an outer lease is never before its inner lease's: it is set (and
  // renewed) from this peer's clock after the inner peer set its own from the same clock
  // (TieredPeerOptions::clock must be the tiers' clock). So a lease past its deadline here has
  // expired in its tier as well, and forgetting it loses nothing.
  using Leases = LeaseTable<TierLease, InnerSessions>;

  std::pair<SessionId, SessionId> InnerSessionsOf(SessionId session) {
    if (session == 0) return {0, 0};
    MutexLock lock(&mu_);
    const InnerSessions* s = leases_.FindSession(session);
    if (s == nullptr) return {~SessionId{0}, ~SessionId{0}};  // inner peers refuse it
    return {s->hot, s->cold};
  }

  Grant Register(Grant grant, Peer* tier, const AcquireRequest& req) {
    TierLease l{tier, grant.lease, req.mode};
    if (req.mode == LeaseMode::kCreate) {
      l.info = grant.info;
      l.exclusive = req.create.exclusive;
      if (tier == hot_.get() && options_.write_through) l.blob = grant.blob;
    }
    MutexLock lock(&mu_);
    grant.lease = leases_.Grant(std::move(l), grant.lease_ttl, clock_->Now(), req.session);
    return grant;
  }

  Result<TierLease> Find(LeaseId lease) {
    MutexLock lock(&mu_);
    const Leases::Lease* l = leases_.Find(lease);
    if (l == nullptr) return LeaseExpired("lease " + std::to_string(lease) + " is not live");
    return l->payload;
  }

  void Forget(LeaseId lease) {
    MutexLock lock(&mu_);
    if (leases_.Find(lease) != nullptr) leases_.End(lease);
  }

  // The inner lease of `lease` was renewed: so is the outer one.
  void Renewed(LeaseId lease) {
    MutexLock lock(&mu_);
    if (leases_.Find(lease) != nullptr) leases_.Renew(lease, clock_->Now());
  }

  // Forgets the leases whose inner lease expired unreleased (see Leases).
  void ForgetExpiredLeases() {
    std::vector<Leases::Ended> expired;  // their blobs go outside the lock
    MutexLock lock(&mu_);
    expired = leases_.ExpireUntil(clock_->Now());
  }

  Status End(LeaseId lease, bool discard) {
    PACKICE_ASSIGN_OR_RETURN(TierLease l, Find(lease));
    Status s = discard ? l.tier->Discard(l.inner) : l.tier->Release(l.inner);
    if (s.ok() || IsCode(s, StatusCode::kLeaseExpired)) Forget(lease);
    return s;
  }

  // Copies `key` from hot to cold, then drops it from hot. Returns the bytes freed in hot.
  Result<uint64_t> DemoteOne(const std::string& key) {
    PACKICE_ASSIGN_OR_RETURN(
        Grant src, hot_->Acquire(AcquireRequest{key, LeaseMode::kRead, 0, {}, 0, kMoveLeaseTtl}));
    const ObjectInfo info = src.info;
    Result<uint64_t> copy = CopyUnlessClean(src, key);
    hot_->Release(src.lease).IgnoreError();
    PACKICE_RETURN_IF_ERROR(copy.status());
    MutexLock lock(&move_mu_);
    auto now = hot_->Stat(key);
    if (!now.ok() || now->version != info.version) {
      // Rewritten or deleted while it was copied: the copy in cold is stale.
      auto in_cold = cold_->Stat(key);
      if (*copy != 0 && in_cold.ok() && in_cold->version == *copy) {
        cold_->Delete(key).IgnoreError();
      }
      return uint64_t{0};
    }
    hot_->Delete(key).IgnoreError();
    MutexLock t(&mu_);
    clean_.erase(key);
    ++tier_stats_.demoted_objects;
    tier_stats_.demoted_bytes += info.size;
    return info.size;
  }

  // Writes the object of `src` (a hot read grant) into cold, unless cold already holds this
  // very content (it was promoted from there). Returns the cold copy's version (0: no copy).
  Result<uint64_t> CopyUnlessClean(const Grant& src, const std::string& key,
                                   const std::function<bool()>& cancelled = nullptr) {
    {
      MutexLock t(&mu_);
      auto it = clean_.find(key);
      if (it != clean_.end() && it->second == src.info.version) return uint64_t{0};
    }
    PACKICE_ASSIGN_OR_RETURN(CreateOptions options, CopyOptions(src.info));
    PACKICE_ASSIGN_OR_RETURN(
        Grant dst, cold_->Acquire(AcquireRequest{key, LeaseMode::kCreate, src.info.size, options, 0,
                                                 kMoveLeaseTtl}));
    Status s = CopyBytes(*src.blob, *dst.blob, src.info.size, cancelled);
    if (!s.ok()) {
      cold_->Discard(dst.lease).IgnoreError();
      return s;
    }
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo sealed, cold_->Seal(dst.lease, std::nullopt));
    return sealed.version;
  }

  // How a copy of `info` is created in the other tier: the same object (version, creation
  // time, meta) expiring when the original does. kNotFound when it has expired already.
  Result<CreateOptions> CopyOptions(const ObjectInfo& info) {
    CreateOptions options;
    options.meta = info.meta;
    options.ttl = Duration(0);
    options.copy_of_version = info.version;
    options.copy_created_unix_ms = info.created_unix_ms;
    if (info.expires_unix_ms != 0) {
      const int64_t left = info.expires_unix_ms - clock_->UnixMillis();
      if (left <= 0) return NotFound("object '" + info.key + "' expired");
      options.ttl = Duration(left);
    } else if (info.state == ObjectState::kCreating) {
      options.ttl = info.ttl;  // not sealed yet: the TTL starts at the seal, in both tiers
    }
    return options;
  }

  // Copies the first `size` bytes, 64 MiB at a time, asking `cancelled` between the chunks.
  static Status CopyBytes(Blob& from, Blob& to, uint64_t size,
                          const std::function<bool()>& cancelled = nullptr) {
    if (size == 0) return Status::Ok();
    constexpr uint64_t kChunk = 64ull << 20;
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<BlobView> view, from.OpenView(LeaseMode::kRead));
    const std::span<const std::byte> bytes = view->bytes().first(size);
    for (uint64_t done = 0; done < size; done += kChunk) {
      if (cancelled && cancelled()) return Aborted("cancelled");
      PACKICE_RETURN_IF_ERROR(to.Write(done, bytes.subspan(done, std::min(kChunk, size - done))));
    }
    return Status::Ok();
  }

  // Write-through, before the hot seal: a durable copy of the object in cold. The copy keeps
  // the object's version, so once the hot seal binds it too, both tiers hold one object.
  // REQUIRES: the key's KeyMutex is held.
  Status WriteThrough(LeaseId lease, const TierLease& l, std::optional<uint64_t> size) {
    if (size && *size > l.info.size) return Status::Ok();  // the hot seal refuses it
    PACKICE_RETURN_IF_ERROR(hot_->Renew(l.inner));         // nothing to copy for a dead lease
    Renewed(lease);
    const uint64_t n = size.value_or(l.info.size);
    PACKICE_ASSIGN_OR_RETURN(CreateOptions options, CopyOptions(l.info));
    options.exclusive = l.exclusive;
    auto dst = cold_->Acquire(
        AcquireRequest{l.info.key, LeaseMode::kCreate, n, options, 0, kMoveLeaseTtl});
    Status s = dst.status();
    if (s.ok()) s = CopyBytes(*l.blob, *dst->blob, n);
    if (s.ok()) s = cold_->Seal(dst->lease, std::nullopt).status();
    if (dst.ok() && !s.ok()) cold_->Discard(dst->lease).IgnoreError();
    if (s.ok()) return s;
    // Nothing is acknowledged that is not durable: the object is dropped.
    hot_->Discard(l.inner).IgnoreError();
    Forget(lease);
    const std::string why = "write-through: no durable copy on disk: " + std::string(s.message());
    return s.code() == StatusCode::kOutOfCapacity ? OutOfCapacity(why) : Status(s.code(), why);
  }

  // Deletes `key` from `tier` if it is still bound to `version`.
  static void DeleteIfVersion(LocalPeer& tier, const std::string& key, uint64_t version) {
    auto now = tier.Stat(key);
    if (now.ok() && now->version == version) tier.Delete(key).IgnoreError();
  }

  Mutex& KeyMutex(std::string_view key) {
    return key_mu_[std::hash<std::string_view>()(key) % kKeyStripes];
  }

  void NoteColdHit(const std::string& key) {
    if (options_.promote_after_hits == 0) return;
    MutexLock lock(&mu_);
    if (cold_hit_counts_.size() >= kMaxTrackedColdHits) cold_hit_counts_.clear();
    if (++cold_hit_counts_[key] < options_.promote_after_hits) return;
    cold_hit_counts_.erase(key);
    if (promotions_.size() < kMaxPendingPromotions && queued_.insert(key).second) {
      promotions_.push_back(key);
      if (mover_) mover_->Wake();
    }
  }

  // Persist's step: writes the hot object `info` to cold unless cold holds it already. The
  // hot copy stays (the node is about to stop; a restart serves the cold one).
  void PersistOne(const ObjectInfo& info, const std::function<bool()>& cancelled,
                  PersistReport* report) {
    {
      MutexLock t(&mu_);
      auto it = clean_.find(info.key);
      if (it != clean_.end() && it->second == info.version) {
        ++report->durable;
        return;
      }
    }
    auto src = hot_->Acquire(AcquireRequest{info.key, LeaseMode::kRead, 0, {}, 0, kMoveLeaseTtl});
    if (!src.ok()) {
      if (!IsCode(src.status(), StatusCode::kNotFound)) ++report->failed;  // gone: nothing to do
      return;
    }
    Result<uint64_t> copied = CopyUnlessClean(*src, info.key, cancelled);
    hot_->Release(src->lease).IgnoreError();
    if (copied.ok()) {
      MutexLock t(&mu_);
      clean_[info.key] = src->info.version;
      ++report->objects;
      report->bytes += src->info.size;
    } else if (IsCode(copied.status(), StatusCode::kOutOfCapacity)) {
      report->full = true;
      ++report->left;
    } else if (IsCode(copied.status(), StatusCode::kAborted)) {
      report->cancelled = true;
      ++report->left;
    } else if (!IsCode(copied.status(), StatusCode::kNotFound)) {  // expired: nothing to keep
      ++report->failed;
    }
  }

  // Copies `key` from cold into hot, keeping the cold copy.
  Status Promote(const std::string& key) {
    PACKICE_ASSIGN_OR_RETURN(
        Grant src, cold_->Acquire(AcquireRequest{key, LeaseMode::kRead, 0, {}, 0, kMoveLeaseTtl}));
    auto options = CopyOptions(src.info);
    if (!options.ok()) {
      cold_->Release(src.lease).IgnoreError();
      return options.status();
    }
    auto dst = hot_->Acquire(
        AcquireRequest{key, LeaseMode::kCreate, src.info.size, *options, 0, kMoveLeaseTtl});
    if (!dst.ok()) {
      cold_->Release(src.lease).IgnoreError();
      return dst.status();
    }
    Status s = CopyBytes(*src.blob, *dst->blob, src.info.size);
    cold_->Release(src.lease).IgnoreError();
    MutexLock lock(&move_mu_);
    // Only if nothing newer was written meanwhile, and cold still has what was copied.
    auto in_hot = hot_->Stat(key);
    auto in_cold = cold_->Stat(key);
    if (!s.ok() || in_hot.ok() || !in_cold.ok() || in_cold->version != src.info.version) {
      hot_->Discard(dst->lease).IgnoreError();
      return s.ok() ? Aborted("object changed while it was promoted") : s;
    }
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, hot_->Seal(dst->lease, std::nullopt));
    evictor_->Insert(key, info.size).evicted.clear();
    MutexLock t(&mu_);
    clean_[key] = info.version;
    ++tier_stats_.promoted_objects;
    return Status::Ok();
  }

  const std::shared_ptr<LocalPeer> hot_;
  const std::shared_ptr<LocalPeer> cold_;
  const TieredPeerOptions options_;
  const std::shared_ptr<Clock> clock_;
  const std::unique_ptr<Evictor> evictor_;  // hot objects, in demotion order

  static constexpr size_t kKeyStripes = 64;
  Mutex key_mu_[kKeyStripes];  // per key (striped): its seals and deletes, one at a time

  Mutex demote_mu_;
  Mutex move_mu_;                       // orders rebinding seals against demotion's check-and-drop
  Mutex mu_;                            // the tables below
  Leases leases_ ABSL_GUARDED_BY(mu_);  // clients' leases and sessions
  // Hot objects whose cold copy is identical (promoted): key -> hot version.
  absl::flat_hash_map<std::string, uint64_t> clean_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> cold_hit_counts_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> promotions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> queued_ ABSL_GUARDED_BY(mu_);
  TierStats tier_stats_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> hot_hits_{0};
  std::atomic<uint64_t> cold_hits_{0};
  std::atomic<uint64_t> misses_{0};

  std::optional<PeriodicThread> mover_;  // demotes and promotes; last, so it stops first
};

}  // namespace

Result<std::shared_ptr<TieredPeer>> TieredPeer::Create(std::shared_ptr<LocalPeer> hot,
                                                       std::shared_ptr<LocalPeer> cold,
                                                       TieredPeerOptions options) {
  if (!hot || !cold || hot == cold) return InvalidArgument("tiered peer needs two distinct peers");
  if (!(options.low_watermark >= 0 && options.low_watermark < options.high_watermark &&
        options.high_watermark <= 1)) {
    return InvalidArgument("watermarks must satisfy 0 <= low < high <= 1");
  }
  auto kind = EvictionKindFromName(options.policy);
  if (!kind) return InvalidArgument("unknown eviction policy '" + options.policy + "'");
  return std::shared_ptr<TieredPeer>(
      std::make_shared<TieredPeerImpl>(std::move(hot), std::move(cold), std::move(options), *kind));
}

}  // namespace packice
