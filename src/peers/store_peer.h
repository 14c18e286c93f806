// StorePeer: a Peer over one BlobStore — the object table shared by MemoryPeer and FilePeer.
//
// Lifetime: an object record is shared by the key index (while bound) and by each lease on it;
// when the last of them lets go, the record and its blob are freed. So "nothing a live lease
// covers is freed" holds by construction. When an object becomes unreachable (unbound, or
// discarded unsealed) the store is told, so a durable store removes its file once the blob goes.
#ifndef PACKICE_PEERS_STORE_PEER_H_
#define PACKICE_PEERS_STORE_PEER_H_

#include <absl/container/btree_map.h>
#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "backends/blob_store.h"
#include "core/mutex.h"
#include "core/periodic_thread.h"
#include "core/validate.h"
#include "packice/clock.h"
#include "packice/local_peer.h"
#include "packice/version_sequence.h"
#include "peers/lease_table.h"

namespace packice {

// The policy knobs every store-backed peer shares.
struct LeasePolicy {
  Duration default_lease_ttl = std::chrono::seconds(30);
  Duration default_object_ttl{0};
  Duration max_lease_ttl = std::chrono::hours(1);
  bool background_threads = true;
  std::shared_ptr<Clock> clock;
  // Where versions come from; nullptr = a sequence of this peer's own, in memory. The tiers of
  // a TieredPeer share one, so an object keeps its version when it moves.
  std::shared_ptr<VersionSequence> versions;
};

namespace store_peer_internal {

using TimePoint = Clock::TimePoint;
inline constexpr TimePoint kNever = TimePoint::max();

struct ObjectRecord {
  ObjectInfo info;
  TimePoint expires_at = kNever;
  bool exclusive = false;
  std::shared_ptr<Blob> blob;
};
using ObjectPtr = std::shared_ptr<ObjectRecord>;

// What one lease covers (its id, TTL and session are the LeaseTable's).
struct LeasedObject {
  ObjectPtr object;
  LeaseMode mode;
};
using Leases = LeaseTable<LeasedObject>;

using KeyIndex = absl::btree_map<std::string, ObjectPtr, std::less<>>;
// Object deadlines in time order. Each bound object with a TTL has exactly one entry, removed
// when it is unbound, so the index never outgrows the table.
template <typename Id>
using DeadlineIndex = absl::btree_set<std::pair<TimePoint, Id>>;

}  // namespace store_peer_internal

// `Base` is the public class implemented (MemoryPeer, FilePeer), derived from LocalPeer.
// Thread safety: one mutex guards the table; store calls that may block (allocation, durable
// commit, freeing) run outside it.
template <typename Base>
class StorePeer final : public Base {
  using TimePoint = store_peer_internal::TimePoint;
  using ObjectRecord = store_peer_internal::ObjectRecord;
  using ObjectPtr = store_peer_internal::ObjectPtr;
  using Leases = store_peer_internal::Leases;
  using LeaseRecord = Leases::Lease;
  using KeyIndex = store_peer_internal::KeyIndex;
  template <typename Id>
  using DeadlineIndex = store_peer_internal::DeadlineIndex<Id>;
  static constexpr TimePoint kNever = store_peer_internal::kNever;
  using Stats = LocalPeer::Stats;

 public:
  StorePeer(std::unique_ptr<BlobStore> store, LeasePolicy policy)
      : policy_(std::move(policy)),
        clock_(policy_.clock ? policy_.clock : Clock::System()),
        versions_(policy_.versions ? policy_.versions : std::make_shared<VersionSequence>()),
        store_(std::move(store)) {}

  // Loads what the store recovered, then starts the reaper. Call once, before use.
  Status Start() {
    PACKICE_ASSIGN_OR_RETURN(std::vector<StoredObject> recovered, store_->Recover());
    {
      MutexLock lock(&mu_);
      const TimePoint now = clock_->Now();
      const int64_t now_ms = clock_->UnixMillis();
      for (StoredObject& s : recovered) {
        auto obj = std::make_shared<ObjectRecord>();
        obj->info = std::move(s.info);
        obj->blob = std::move(s.blob);
        if (obj->info.expires_unix_ms != 0) {
          // What a store recovered is not trusted to be in range: a steady-clock deadline
          // overflows long before int64 milliseconds do.
          const int64_t expires_ms = obj->info.expires_unix_ms;
          const int64_t left_ms =
              expires_ms <= now_ms ? 0
                                   : std::min<int64_t>(expires_ms - now_ms, kMaxObjectTtl.count());
          obj->expires_at = now + Duration(left_ms);
          object_deadlines_.insert({obj->expires_at, obj.get()});
        }
        versions_->Observe(obj->info.version);
        bound_.emplace(obj->info.key, std::move(obj));
      }
    }
    if (policy_.background_threads) {
      reaper_.emplace(std::chrono::milliseconds(100), [this] { ReapExpired(); });
    }
    return Status::Ok();
  }

  ~StorePeer() override {
    if (reaper_) reaper_->Stop();
  }

  Result<Grant> Acquire(const AcquireRequest& req) override {
    return req.mode == LeaseMode::kCreate ? AcquireCreate(req) : AcquireRead(req);
  }

  Result<ObjectInfo> Seal(LeaseId lease_id, std::optional<uint64_t> size) override {
    ObjectPtr object;
    ObjectInfo sealed;
    {
      std::vector<ObjectPtr> drop;  // freed outside the lock
      MutexLock lock(&mu_);
      PACKICE_ASSIGN_OR_RETURN(LeaseRecord * lease, LiveLeaseLocked(lease_id, &drop));
      if (lease->payload.mode != LeaseMode::kCreate) {
        return PermissionDenied("seal needs a create lease");
      }
      object = lease->payload.object;
      const uint64_t allocated = object->info.size;
      if (size && *size > allocated) {
        return InvalidArgument("seal size " + std::to_string(*size) + " exceeds allocated " +
                               std::to_string(allocated));
      }
      // The lease ends here: a second seal, or a discard, now finds nothing.
      EndLeaseLocked(lease_id, &drop);
      if (Status s = CheckExclusiveAtSealLocked(*object); !s.ok()) {
        AbandonLocked(object);
        return s;
      }
      sealed = object->info;
      sealed.state = ObjectState::kSealed;
      if (size) sealed.size = *size;
      if (sealed.ttl.count() > 0)
        sealed.expires_unix_ms = clock_->UnixMillis() + sealed.ttl.count();
    }
    // Durable stores write and sync here, with the table unlocked.
    Status committed = store_->Commit(*object->blob, sealed);
    std::vector<ObjectPtr> drop;
    MutexLock lock(&mu_);
    if (Status s = committed.ok() ? CheckExclusiveAtSealLocked(*object) : committed; !s.ok()) {
      AbandonLocked(object);
      drop.push_back(std::move(object));
      return s;
    }
    DecrementCreatingLocked(object->info.key);
    object->info = sealed;
    if (sealed.ttl.count() > 0) {
      object->expires_at = clock_->Now() + sealed.ttl;
      object_deadlines_.insert({object->expires_at, object.get()});
    }
    auto bound = bound_.find(object->info.key);
    if (bound != bound_.end()) UnbindLocked(bound, &drop);
    bound_.emplace(object->info.key, object);
    return sealed;
  }

  Status Release(LeaseId lease_id) override {
    std::vector<ObjectPtr> drop;
    MutexLock lock(&mu_);
    PACKICE_ASSIGN_OR_RETURN(LeaseRecord * lease, LiveLeaseLocked(lease_id, &drop));
    if (lease->payload.mode == LeaseMode::kCreate) AbandonLocked(lease->payload.object);
    EndLeaseLocked(lease_id, &drop);
    return Status::Ok();
  }

  Status Discard(LeaseId lease_id) override {
    std::vector<ObjectPtr> drop;
    MutexLock lock(&mu_);
    PACKICE_ASSIGN_OR_RETURN(LeaseRecord * lease, LiveLeaseLocked(lease_id, &drop));
    if (lease->payload.mode != LeaseMode::kCreate) {
      return PermissionDenied("discard needs a create lease");
    }
    AbandonLocked(lease->payload.object);
    EndLeaseLocked(lease_id, &drop);
    return Status::Ok();
  }

  Status Renew(LeaseId lease_id) override {
    std::vector<ObjectPtr> drop;
    MutexLock lock(&mu_);
    PACKICE_RETURN_IF_ERROR(LiveLeaseLocked(lease_id, &drop).status());
    leases_.Renew(lease_id, clock_->Now());
    return Status::Ok();
  }

  Result<ObjectInfo> Stat(std::string_view key) override {
    std::vector<ObjectPtr> drop;
    MutexLock lock(&mu_);
    PACKICE_ASSIGN_OR_RETURN(ObjectRecord * obj, BoundLocked(key, &drop));
    return obj->info;
  }

  Result<ListPage> List(const ListOptions& options) override {
    ListPage page;
    const uint32_t limit = std::min(std::max(options.limit, 1u), kMaxListLimit);
    MutexLock lock(&mu_);
    auto it = options.start_after.empty() || options.start_after < options.prefix
                  ? bound_.lower_bound(options.prefix)
                  : bound_.upper_bound(options.start_after);
    for (; it != bound_.end(); ++it) {
      if (it->first.compare(0, options.prefix.size(), options.prefix) != 0) break;
      if (ExpiredLocked(*it->second)) continue;
      if (page.objects.size() == limit) {
        page.truncated = true;
        break;
      }
      page.objects.push_back(it->second->info);
    }
    return page;
  }

  Status Delete(std::string_view key) override {
    std::vector<ObjectPtr> drop;
    MutexLock lock(&mu_);
    PACKICE_RETURN_IF_ERROR(BoundLocked(key, &drop).status());
    UnbindLocked(bound_.find(key), &drop);
    return Status::Ok();
  }

  SessionId OpenSession() override {
    MutexLock lock(&mu_);
    return leases_.OpenSession();
  }

  void CloseSession(SessionId session) override {
    std::vector<ObjectPtr> drop;
    MutexLock lock(&mu_);
    std::optional<Leases::ClosedSession> closed = leases_.CloseSession(session);
    if (!closed) return;
    // The client went away without letting go: whatever it mapped must not be recycled.
    for (Leases::Ended& ended : closed->leases) AbandonedLocked(std::move(ended.lease), &drop);
  }

  Stats GetStats() override {
    StoreStats s = store_->GetStats();
    MutexLock lock(&mu_);
    uint64_t creating = 0;
    for (const auto& [key, n] : creating_) creating += n;
    Stats stats{bound_.size(), creating,       leases_.size(),
                s.used_bytes,  s.pooled_bytes, s.capacity_bytes};
    stats.hits = hits_.load(std::memory_order_relaxed);
    stats.misses = misses_.load(std::memory_order_relaxed);
    // evictions stays 0: this table never removes an object for room (a create that does not
    // fit is out_of_capacity; the store gives up only pooled memory, which holds no object).
    return stats;
  }

  std::string_view tier_name() const override { return store_->tier(); }

  void ReapExpired() override {
    std::vector<ObjectPtr> drop;
    MutexLock lock(&mu_);
    const TimePoint now = clock_->Now();
    for (Leases::Ended& ended : leases_.ExpireUntil(now)) {
      AbandonedLocked(std::move(ended.lease), &drop);
    }
    while (!object_deadlines_.empty() && object_deadlines_.begin()->first <= now) {
      UnbindLocked(bound_.find(object_deadlines_.begin()->second->info.key), &drop);
    }
  }

  void DrainCleaner() override { store_->Quiesce(); }

 private:
  Result<Grant> AcquireCreate(const AcquireRequest& req) {
    PACKICE_ASSIGN_OR_RETURN(CheckedCreate checked, CheckCreate(req, policy_.default_object_ttl));
    PACKICE_ASSIGN_OR_RETURN(Duration lease_ttl, LeaseTtl(req));
    std::string& key = checked.key;
    const Duration ttl = checked.ttl;
    if (store_->ChargeFor(req.size) > store_->capacity_bytes()) {
      return OutOfCapacity("object of " + std::to_string(req.size) +
                           " bytes exceeds the capacity of " +
                           std::to_string(store_->capacity_bytes()));
    }
    if (req.create.exclusive) {
      MutexLock lock(&mu_);
      PACKICE_RETURN_IF_ERROR(CheckExclusiveLocked(key));
    }
    auto obj = std::make_shared<ObjectRecord>();
    obj->info.key = std::move(key);
    if (req.create.copy_of_version != 0) {  // a copy moved between tiers keeps who it is
      versions_->Observe(req.create.copy_of_version);
      obj->info.version = req.create.copy_of_version;
      obj->info.created_unix_ms = req.create.copy_created_unix_ms;
    } else {
      PACKICE_ASSIGN_OR_RETURN(obj->info.version, versions_->Next());
      obj->info.created_unix_ms = clock_->UnixMillis();
    }
    obj->info.size = req.size;
    obj->info.state = ObjectState::kCreating;
    obj->info.meta = req.create.meta;
    obj->info.ttl = ttl;
    obj->info.tier = std::string(store_->tier());
    obj->exclusive = req.create.exclusive;
    // Allocation may zero pooled memory or create a file: done outside the table lock.
    PACKICE_ASSIGN_OR_RETURN(obj->blob, store_->Allocate(obj->info));

    MutexLock lock(&mu_);
    Status s = req.create.exclusive ? CheckExclusiveLocked(obj->info.key) : Status::Ok();
    if (s.ok() && !leases_.SessionIsOpen(req.session)) {
      s = InvalidArgument("unknown session");
    }
    if (!s.ok()) {
      store_->Remove(*obj->blob);
      return s;
    }
    ++creating_[obj->info.key];
    return GrantLocked(obj, LeaseMode::kCreate, lease_ttl, req.session);
  }

  Result<Grant> AcquireRead(const AcquireRequest& req) {
    PACKICE_RETURN_IF_ERROR(ValidateKey(req.key));
    PACKICE_ASSIGN_OR_RETURN(Duration lease_ttl, LeaseTtl(req));
    MutexLock lock(&mu_);
    if (!leases_.SessionIsOpen(req.session)) {
      return InvalidArgument("unknown session");
    }
    auto it = bound_.find(req.key);
    if (it == bound_.end() || ExpiredLocked(*it->second)) {
      misses_.fetch_add(1, std::memory_order_relaxed);
      return NotFound(PendingLocked(req.key) ? "object '" + req.key + "' is not sealed yet"
                                             : "no object '" + req.key + "'");
    }
    hits_.fetch_add(1, std::memory_order_relaxed);
    return GrantLocked(it->second, LeaseMode::kRead, lease_ttl, req.session);
  }

  Grant GrantLocked(const ObjectPtr& obj, LeaseMode mode, Duration ttl, SessionId session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const LeaseId id = leases_.Grant({obj, mode}, ttl, clock_->Now(), session);
    return Grant{id, ttl, obj->info, obj->blob};
  }

  Result<Duration> LeaseTtl(const AcquireRequest& req) const {
    return CheckLeaseTtl(req, policy_.default_lease_ttl, policy_.max_lease_ttl);
  }

  Status CheckExclusiveLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = bound_.find(key);
    if ((it != bound_.end() && !ExpiredLocked(*it->second)) || PendingLocked(key)) {
      return AlreadyExists("key '" + key + "' exists");
    }
    return Status::Ok();
  }

  // An exclusive object may be sealed only while its key is still free.
  Status CheckExclusiveAtSealLocked(const ObjectRecord& obj) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!obj.exclusive) return Status::Ok();
    auto bound = bound_.find(obj.info.key);
    if (bound != bound_.end() && !ExpiredLocked(*bound->second)) {
      return AlreadyExists("key '" + bound->first + "' was bound while this object was created");
    }
    return Status::Ok();
  }

  bool PendingLocked(const std::string& key) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = creating_.find(key);
    return it != creating_.end() && it->second > 0;
  }

  void DecrementCreatingLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = creating_.find(key);
    if (it != creating_.end() && --it->second == 0) creating_.erase(it);
  }

  // An unsealed object will never be sealed: it stops counting as pending, and the store may
  // drop it.
  void AbandonLocked(const ObjectPtr& obj) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    DecrementCreatingLocked(obj->info.key);
    store_->Remove(*obj->blob);
  }

  bool ExpiredLocked(const ObjectRecord& obj) const {
    return obj.expires_at != kNever && obj.expires_at <= clock_->Now();
  }

  // The live sealed object bound to `key`; an expired one is unbound on the way.
  Result<ObjectRecord*> BoundLocked(std::string_view key, std::vector<ObjectPtr>* drop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = bound_.find(key);
    if (it == bound_.end()) return NotFound("no object '" + std::string(key) + "'");
    if (ExpiredLocked(*it->second)) {
      UnbindLocked(it, drop);
      return NotFound("object '" + std::string(key) + "' expired");
    }
    return it->second.get();
  }

  // The lease if it is live; an expired one is ended on the way.
  Result<LeaseRecord*> LiveLeaseLocked(LeaseId id, std::vector<ObjectPtr>* drop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    LeaseRecord* lease = leases_.Find(id);
    if (lease == nullptr) return LeaseExpired("lease " + std::to_string(id) + " is not live");
    if (Leases::Expired(*lease, clock_->Now())) {
      AbandonedLocked(leases_.End(id), drop);
      return LeaseExpired("lease " + std::to_string(id) + " expired");
    }
    return lease;
  }

  // Finishes a lease that ended without its holder letting go (it expired, or its session
  // closed): the holder may still map the bytes, so they are never recycled, and an unsealed
  // object is abandoned.
  void AbandonedLocked(LeaseRecord lease, std::vector<ObjectPtr>* drop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    lease.payload.object->blob->Retire();
    if (lease.payload.mode == LeaseMode::kCreate) AbandonLocked(lease.payload.object);
    drop->push_back(std::move(lease.payload.object));
  }

  // Ends lease `id` (REQUIRES: in the table); its object reference goes to `drop`.
  void EndLeaseLocked(LeaseId id, std::vector<ObjectPtr>* drop) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    drop->push_back(std::move(leases_.End(id).payload.object));
  }

  // Removes the binding at `it` (REQUIRES: valid); readers holding leases keep the object.
  void UnbindLocked(typename KeyIndex::iterator it, std::vector<ObjectPtr>* drop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ObjectRecord& obj = *it->second;
    if (obj.expires_at != kNever) object_deadlines_.erase({obj.expires_at, &obj});
    store_->Remove(*obj.blob);
    drop->push_back(std::move(it->second));
    bound_.erase(it);
  }

  const LeasePolicy policy_;
  const std::shared_ptr<Clock> clock_;
  const std::shared_ptr<VersionSequence> versions_;
  const std::unique_ptr<BlobStore> store_;
  // Read acquires that found a live sealed object / found none (LocalPeer::Stats).
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};

  Mutex mu_;
  KeyIndex bound_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> creating_ ABSL_GUARDED_BY(mu_);
  Leases leases_ ABSL_GUARDED_BY(mu_);  // leases, their deadlines, sessions
  DeadlineIndex<const ObjectRecord*> object_deadlines_ ABSL_GUARDED_BY(mu_);

  std::optional<PeriodicThread> reaper_;  // expires leases and objects; last, so it stops first
};

}  // namespace packice

#endif  // PACKICE_PEERS_STORE_PEER_H_
