// SharedFSPeer: the Peer interface over SharedFSStore. The directory holds every object and its
// state; this peer holds only its own leases and sessions (docs/sharedfs.md).
#include "packice/sharedfs_peer.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <vector>

#include "backends/sharedfs/sharedfs_store.h"
#include "core/mutex.h"
#include "core/periodic_thread.h"
#include "core/validate.h"
#include "packice/clock.h"
#include "peers/lease_table.h"

namespace packice {
namespace {

using TimePoint = Clock::TimePoint;
constexpr char kTier[] = "sharedfs";

// What one lease covers (its id, TTL and session are the LeaseTable's).
struct LeasedFile {
  LeaseMode mode;
  std::shared_ptr<CreatingObjectFile> creating;  // kCreate
  std::shared_ptr<SealedObjectFile> sealed;      // kRead
};
using Leases = LeaseTable<LeasedFile>;
using LeaseRecord = Leases::Lease;

// What ending leases leaves to do once the table lock is released (declare it before the
// MutexLock): discard unsealed objects, and close the files of read leases.
class EndedLeases {
 public:
  explicit EndedLeases(SharedFSStore* store) : store_(store) {}
  ~EndedLeases() {
    for (const auto& object : abandon_) store_->Abandon(*object);
  }
  EndedLeases(const EndedLeases&) = delete;
  EndedLeases& operator=(const EndedLeases&) = delete;
  void Add(LeasedFile&& lease) {
    if (lease.creating) abandon_.push_back(std::move(lease.creating));
    if (lease.sealed) close_.push_back(std::move(lease.sealed));
  }

 private:
  SharedFSStore* store_;
  std::vector<std::shared_ptr<CreatingObjectFile>> abandon_;
  std::vector<std::shared_ptr<SealedObjectFile>> close_;
};

class SharedFSPeerImpl final : public SharedFSPeer {
 public:
  SharedFSPeerImpl(std::unique_ptr<SharedFSStore> store, SharedFSPeerOptions options)
      : options_(std::move(options)),
        clock_(options_.clock ? options_.clock : Clock::System()),
        store_(std::move(store)) {}

  void Start() {
    if (!options_.background_threads) return;
    reaper_ = std::make_unique<PeriodicThread>(std::chrono::milliseconds(100),
                                               [this] { ExpireLeases(); });
    // CollectGarbage logs its own failures.
    collector_ = std::make_unique<PeriodicThread>(options_.gc_interval,
                                                  [this] { CollectGarbage().IgnoreError(); });
    collector_->Wake();  // a first pass at start: leftovers of earlier runs go at once
  }

  ~SharedFSPeerImpl() override {
    reaper_.reset();  // stops and joins
    collector_.reset();
    // Objects this process was writing will never be sealed: their files go now rather than
    // after the abandoned_after of another process's garbage collector.
    EndedLeases ended(store_.get());
    MutexLock lock(&mu_);
    for (Leases::Ended& lease : leases_.EndAll()) ended.Add(std::move(lease.lease.payload));
  }

  Result<Grant> Acquire(const AcquireRequest& req) override {
    return req.mode == LeaseMode::kCreate ? AcquireCreate(req) : AcquireRead(req);
  }

  Result<ObjectInfo> Seal(LeaseId id, std::optional<uint64_t> size) override {
    std::shared_ptr<CreatingObjectFile> object;
    {
      EndedLeases ended(store_.get());
      MutexLock lock(&mu_);
      PACKICE_ASSIGN_OR_RETURN(LeaseRecord * lease, LiveLeaseLocked(id, &ended));
      if (lease->payload.mode != LeaseMode::kCreate) {
        return PermissionDenied("seal needs a create lease");
      }
      const uint64_t allocated = lease->payload.creating->size();
      if (size && *size > allocated) {
        return InvalidArgument("seal size " + std::to_string(*size) + " exceeds allocated " +
                               std::to_string(allocated));
      }
      // The lease ends here: a second seal, or a discard, now finds nothing.
      object = std::move(lease->payload.creating);
      EndLeaseLocked(id, &ended);
    }
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, store_->Seal(*object, size.value_or(object->size())));
    info.tier = kTier;
    return info;
  }

  Status Release(LeaseId id) override {
    EndedLeases ended(store_.get());
    MutexLock lock(&mu_);
    PACKICE_RETURN_IF_ERROR(LiveLeaseLocked(id, &ended).status());
    EndLeaseLocked(id, &ended);
    return Status::Ok();
  }

  Status Discard(LeaseId id) override {
    EndedLeases ended(store_.get());
    MutexLock lock(&mu_);
    PACKICE_ASSIGN_OR_RETURN(LeaseRecord * lease, LiveLeaseLocked(id, &ended));
    if (lease->payload.mode != LeaseMode::kCreate) {
      return PermissionDenied("discard needs a create lease");
    }
    EndLeaseLocked(id, &ended);
    return Status::Ok();
  }

  Status Renew(LeaseId id) override {
    std::shared_ptr<CreatingObjectFile> creating;
    {
      EndedLeases ended(store_.get());
      MutexLock lock(&mu_);
      PACKICE_ASSIGN_OR_RETURN(LeaseRecord * lease, LiveLeaseLocked(id, &ended));
      leases_.Renew(id, clock_->Now());
      creating = lease->payload.creating;
    }
    if (!creating) return Status::Ok();
    // The writer's heartbeat in the directory: the file's mtime.
    Status touched = store_->Touch(*creating);
    if (touched.code() != StatusCode::kAborted) return Status::Ok();
    EndedLeases ended(store_.get());
    MutexLock lock(&mu_);
    LeaseRecord* lease = leases_.Find(id);
    if (lease != nullptr && lease->payload.creating == creating) EndLeaseLocked(id, &ended);
    return LeaseExpired("lease " + std::to_string(id) +
                        " lost its object: " + std::string(touched.message()));
  }

  Result<ObjectInfo> Stat(std::string_view key) override {
    PACKICE_RETURN_IF_ERROR(ValidateKey(key));
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, store_->Stat(key));
    info.tier = kTier;
    return info;
  }

  Result<ListPage> List(const ListOptions& options) override {
    PACKICE_ASSIGN_OR_RETURN(ListPage page, store_->List(options));
    for (ObjectInfo& info : page.objects) info.tier = kTier;
    return page;
  }

  Status Delete(std::string_view key) override {
    PACKICE_RETURN_IF_ERROR(ValidateKey(key));
    return store_->Delete(key);
  }

  SessionId OpenSession() override {
    MutexLock lock(&mu_);
    return leases_.OpenSession();
  }

  void CloseSession(SessionId session) override {
    EndedLeases ended(store_.get());
    MutexLock lock(&mu_);
    std::optional<Leases::ClosedSession> closed = leases_.CloseSession(session);
    if (!closed) return;
    for (Leases::Ended& lease : closed->leases) ended.Add(std::move(lease.lease.payload));
  }

  Stats GetStats() override {
    const auto [total, available] = store_->FilesystemBytes();
    MutexLock lock(&mu_);
    Stats s;
    s.objects = last_gc_.objects;
    s.creating = last_gc_.creating;
    s.leases = leases_.size();
    s.used_bytes = last_gc_.object_bytes;
    s.capacity_bytes = total;
    s.hits = hits_.load(std::memory_order_relaxed);
    s.misses = misses_.load(std::memory_order_relaxed);
    // evictions stays 0: nothing is removed for room (the collector removes expired and
    // abandoned objects only; a full filesystem fails creates with out_of_capacity).
    return s;
  }

  std::string_view tier_name() const override { return kTier; }

  void ReapExpired() override {
    ExpireLeases();
    CollectGarbage().IgnoreError();  // logged there
  }

  void DrainCleaner() override {}

  Result<SharedFSGcStats> CollectGarbage() override {
    Result<SharedFSGcStats> stats = store_->CollectGarbage();
    if (!stats.ok()) {
      spdlog::warn("event=sharedfs_gc_failed error=\"{}\"", stats.status().ToString());
      return stats;
    }
    if (stats->expired + stats->abandoned + stats->unlinked + stats->corrupt > 0) {
      spdlog::info(
          "event=sharedfs_gc objects={} creating={} expired={} abandoned={} unlinked={} "
          "in_use={} corrupt={}",
          stats->objects, stats->creating, stats->expired, stats->abandoned, stats->unlinked,
          stats->in_use, stats->corrupt);
    }
    MutexLock lock(&mu_);
    last_gc_ = *stats;
    return stats;
  }

 private:
  Result<Grant> AcquireCreate(const AcquireRequest& req) {
    PACKICE_ASSIGN_OR_RETURN(CheckedCreate checked, CheckCreate(req, options_.default_object_ttl));
    PACKICE_ASSIGN_OR_RETURN(Duration lease_ttl, LeaseTtl(req));
    std::string& key = checked.key;
    const Duration ttl = checked.ttl;
    if (req.size > options_.max_object_bytes) {
      return OutOfCapacity("object of " + std::to_string(req.size) +
                           " bytes exceeds the largest allowed, " +
                           std::to_string(options_.max_object_bytes));
    }
    PACKICE_RETURN_IF_ERROR(CheckSession(req.session));
    ObjectInfo info;
    info.key = std::move(key);
    info.size = req.size;
    info.meta = req.create.meta;
    info.ttl = ttl;
    // The file is created outside the table lock: it is I/O, maybe over the network.
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<CreatingObjectFile> object,
                             store_->Create(std::move(info), req.create.exclusive));
    EndedLeases ended(store_.get());
    MutexLock lock(&mu_);
    if (!leases_.SessionIsOpen(req.session)) {
      ended.Add(LeasedFile{LeaseMode::kCreate, std::move(object), nullptr});
      return InvalidArgument("unknown session");
    }
    ObjectInfo granted = object->info();
    granted.tier = kTier;
    std::shared_ptr<Blob> blob = object;
    const LeaseId id = leases_.Grant(LeasedFile{LeaseMode::kCreate, std::move(object), nullptr},
                                     lease_ttl, clock_->Now(), req.session);
    return Grant{id, lease_ttl, std::move(granted), std::move(blob)};
  }

  Result<Grant> AcquireRead(const AcquireRequest& req) {
    PACKICE_RETURN_IF_ERROR(ValidateKey(req.key));
    PACKICE_ASSIGN_OR_RETURN(Duration lease_ttl, LeaseTtl(req));
    PACKICE_RETURN_IF_ERROR(CheckSession(req.session));
    Result<std::shared_ptr<SealedObjectFile>> opened = store_->OpenSealed(req.key);
    if (!opened.ok()) {
      if (opened.status().code() == StatusCode::kNotFound) {
        misses_.fetch_add(1, std::memory_order_relaxed);
      }
      return opened.status();
    }
    std::shared_ptr<SealedObjectFile> file = std::move(*opened);
    MutexLock lock(&mu_);
    if (!leases_.SessionIsOpen(req.session)) return InvalidArgument("unknown session");
    hits_.fetch_add(1, std::memory_order_relaxed);
    ObjectInfo granted = file->info();
    granted.tier = kTier;
    std::shared_ptr<Blob> blob = file;
    const LeaseId id = leases_.Grant(LeasedFile{LeaseMode::kRead, nullptr, std::move(file)},
                                     lease_ttl, clock_->Now(), req.session);
    return Grant{id, lease_ttl, std::move(granted), std::move(blob)};
  }

  Result<Duration> LeaseTtl(const AcquireRequest& req) const {
    return CheckLeaseTtl(req, options_.default_lease_ttl, options_.max_lease_ttl);
  }

  Status CheckSession(SessionId session) {
    if (session == 0) return Status::Ok();
    MutexLock lock(&mu_);
    if (!leases_.SessionIsOpen(session)) return InvalidArgument("unknown session");
    return Status::Ok();
  }

  // The lease if it is live; an expired one is ended on the way.
  Result<LeaseRecord*> LiveLeaseLocked(LeaseId id, EndedLeases* ended)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    LeaseRecord* lease = leases_.Find(id);
    if (lease == nullptr) return LeaseExpired("lease " + std::to_string(id) + " is not live");
    if (Leases::Expired(*lease, clock_->Now())) {
      EndLeaseLocked(id, ended);
      return LeaseExpired("lease " + std::to_string(id) + " expired");
    }
    return lease;
  }

  // Ends lease `id` (REQUIRES: in the table); a create lease's object is discarded unless
  // the caller took it out of the record.
  void EndLeaseLocked(LeaseId id, EndedLeases* ended) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ended->Add(std::move(leases_.End(id).payload));
  }

  void ExpireLeases() {
    EndedLeases ended(store_.get());
    MutexLock lock(&mu_);
    for (Leases::Ended& lease : leases_.ExpireUntil(clock_->Now())) {
      ended.Add(std::move(lease.lease.payload));
    }
  }

  const SharedFSPeerOptions options_;
  const std::shared_ptr<Clock> clock_;
  const std::unique_ptr<SharedFSStore> store_;
  // Read acquires of this peer that found a sealed object / found none (LocalPeer::Stats).
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};

  Mutex mu_;
  Leases leases_ ABSL_GUARDED_BY(mu_);  // leases, their deadlines, sessions
  SharedFSGcStats last_gc_ ABSL_GUARDED_BY(mu_);

  std::unique_ptr<PeriodicThread> reaper_;     // expires leases every 100 ms
  std::unique_ptr<PeriodicThread> collector_;  // collects garbage every gc_interval
};

}  // namespace

Result<std::shared_ptr<SharedFSPeer>> SharedFSPeer::Open(SharedFSPeerOptions options) {
  if (options.default_lease_ttl.count() <= 0 || options.max_lease_ttl.count() <= 0) {
    return InvalidArgument("lease TTLs must be positive");
  }
  if (options.abandoned_after.count() < 0 || options.gc_interval.count() <= 0) {
    return InvalidArgument("abandoned_after must not be negative, gc_interval must be positive");
  }
  if (!options.clock) options.clock = Clock::System();
  PACKICE_ASSIGN_OR_RETURN(
      std::unique_ptr<SharedFSStore> store,
      SharedFSStore::Open(SharedFSStoreOptions{options.dir, options.sync, options.abandoned_after,
                                               options.clock, options.writer_id, options.env}));
  auto peer = std::make_shared<SharedFSPeerImpl>(std::move(store), std::move(options));
  peer->Start();
  return std::shared_ptr<SharedFSPeer>(std::move(peer));
}

}  // namespace packice
