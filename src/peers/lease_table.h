// LeaseTable: the lease and session bookkeeping every peer shares — lease ids, each lease's
// TTL deadline, which session a lease belongs to — over a per-lease payload of the peer's own
// (what the lease covers: an object record, an open file, a lease in an inner peer).
//
// The table only keeps books: it never frees, discards or closes anything. Whatever ends a
// lease (End, an expiry sweep, closing a session) hands the lease back, payload and all, and
// the caller finishes it — abandons an unsealed object, drops its reference outside its lock.
//
// Deadlines sit in an ordered index with exactly one entry per live lease, removed when the
// lease ends, so the index never outgrows the table and a sweep costs O(expired · log n).
//
// Thread safety: none of its own — a LeaseTable is externally locked. Its owner declares it
// `LeaseTable<...> leases_ ABSL_GUARDED_BY(mu_);`, so the compiler checks (-Wthread-safety)
// that every call holds the owner's mutex.
#ifndef PACKICE_PEERS_LEASE_TABLE_H_
#define PACKICE_PEERS_LEASE_TABLE_H_

#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "packice/clock.h"
#include "packice/types.h"

namespace packice {

// `Payload`: what one lease holds (movable). `SessionData`: what one session holds besides its
// leases (tiered: the inner peers' sessions).
template <typename Payload, typename SessionData = std::monostate>
class LeaseTable {
 public:
  using TimePoint = Clock::TimePoint;

  struct Lease {
    Payload payload;
    Duration ttl;          // what a renewal extends it by
    TimePoint expires_at;  // it is expired at and after this time
    SessionId session;     // 0: none
  };
  // A lease the table no longer holds, handed back to be finished.
  struct Ended {
    LeaseId id;
    Lease lease;
  };
  struct ClosedSession {
    SessionData data;
    std::vector<Ended> leases;  // the session's leases, ended
  };

  LeaseTable() = default;
  LeaseTable(const LeaseTable&) = delete;
  LeaseTable& operator=(const LeaseTable&) = delete;

  // --- sessions ----------------------------------------------------------------------------

  // A new session (ids start at 1 and never repeat).
  SessionId OpenSession(SessionData data = {}) {
    const SessionId id = ++last_session_;
    sessions_.emplace(id, Session{std::move(data), {}});
    return id;
  }

  // Whether a lease may name `session`: 0 (none) or an open session.
  bool SessionIsOpen(SessionId session) const {
    return session == 0 || sessions_.contains(session);
  }

  // The data of an open session; nullptr if it is not open.
  SessionData* FindSession(SessionId session) {
    auto it = sessions_.find(session);
    return it == sessions_.end() ? nullptr : &it->second.data;
  }

  // Forgets `session` and ends its leases, returning them. nullopt: it was not open.
  std::optional<ClosedSession> CloseSession(SessionId session) {
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return std::nullopt;
    ClosedSession closed{std::move(it->second.data), {}};
    const absl::flat_hash_set<LeaseId> ids = std::move(it->second.leases);
    sessions_.erase(it);
    closed.leases.reserve(ids.size());
    for (LeaseId id : ids) {
      if (leases_.contains(id)) closed.leases.push_back(Ended{id, End(id)});
    }
    return closed;
  }

  // --- leases ------------------------------------------------------------------------------

  // Records a new lease expiring at now + ttl. A lease naming a session that is not open
  // belongs to none (callers check SessionIsOpen first; a race with CloseSession lands here).
  LeaseId Grant(Payload payload, Duration ttl, TimePoint now, SessionId session) {
    const LeaseId id = ++last_lease_;
    const TimePoint expires = now + ttl;
    leases_.emplace(id, Lease{std::move(payload), ttl, expires, session});
    deadlines_.insert({expires, id});
    if (session != 0) {
      auto s = sessions_.find(session);
      if (s != sessions_.end()) s->second.leases.insert(id);
    }
    return id;
  }

  // The lease `id`, expired or not; nullptr if the table does not hold it.
  Lease* Find(LeaseId id) {
    auto it = leases_.find(id);
    return it == leases_.end() ? nullptr : &it->second;
  }

  static bool Expired(const Lease& lease, TimePoint now) { return lease.expires_at <= now; }

  // Moves the deadline of lease `id` to now + its TTL. REQUIRES: Find(id) != nullptr.
  void Renew(LeaseId id, TimePoint now) {
    Lease& lease = leases_.at(id);
    deadlines_.erase({lease.expires_at, id});
    lease.expires_at = now + lease.ttl;
    deadlines_.insert({lease.expires_at, id});
  }

  // Ends lease `id` and returns it. REQUIRES: Find(id) != nullptr.
  Lease End(LeaseId id) {
    auto it = leases_.find(id);
    Lease lease = std::move(it->second);
    leases_.erase(it);
    deadlines_.erase({lease.expires_at, id});
    if (lease.session != 0) {
      auto s = sessions_.find(lease.session);
      if (s != sessions_.end()) s->second.leases.erase(id);
    }
    return lease;
  }

  // Ends every lease whose deadline is at or before `now` and returns them, earliest first.
  std::vector<Ended> ExpireUntil(TimePoint now) {
    std::vector<Ended> expired;
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      const LeaseId id = deadlines_.begin()->second;
      expired.push_back(Ended{id, End(id)});
    }
    return expired;
  }

  // Ends every lease (the owner is going away) and returns them.
  std::vector<Ended> EndAll() {
    std::vector<Ended> all;
    all.reserve(leases_.size());
    while (!deadlines_.empty()) {
      const LeaseId id = deadlines_.begin()->second;
      all.push_back(Ended{id, End(id)});
    }
    return all;
  }

  // Live leases held (expired ones count until they are swept or found).
  size_t size() const { return leases_.size(); }

 private:
  struct Session {
    SessionData data;
    absl::flat_hash_set<LeaseId> leases;
  };

  absl::flat_hash_map<LeaseId, Lease> leases_;
  absl::flat_hash_map<SessionId, Session> sessions_;
  absl::btree_set<std::pair<TimePoint, LeaseId>> deadlines_;  // one entry per lease
  LeaseId last_lease_ = 0;
  SessionId last_session_ = 0;
};

}  // namespace packice

#endif  // PACKICE_PEERS_LEASE_TABLE_H_
