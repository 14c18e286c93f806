// WatchHub: a bucket's watchers and its recent history of events.
//
// The bucket publishes each revision's events once, after applying them (Publish). Writers of
// a NoLinear bucket may publish out of order; the hub holds a revision back until every
// earlier one has arrived, so watchers always see revision order. Revisions are dense: each
// acknowledged log record is one revision, and each is published.
//
// History: the last `history_events` events are kept in memory (after a restart, the last
// ones replayed from the log), so a watch may start in the past; older than that is refused
// ("compacted, oldest is R").
//
// A watcher's buffer holds at most `buffer_events`; a revision that does not fit ends the
// watcher with kOutOfCapacity "watcher too slow, resume from revision R", R being that
// revision: the consumer reads what was buffered, then resumes from R on a new watch.
//
// Thread safety: safe for concurrent use. Lock order: hub, then a watcher's state.
#ifndef PACKICE_SERVICES_KV_WATCH_HUB_H_
#define PACKICE_SERVICES_KV_WATCH_HUB_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "core/mutex.h"
#include "packice/kv.h"

namespace packice::kv {

struct WatchState;

class WatchHub {
 public:
  // `next_revision`: the revision the next Publish carries; history starts there.
  WatchHub(uint64_t history_events, int64_t next_revision);
  ~WatchHub();

  // Records replayed at recovery: appended to history (no watchers exist yet).
  void AddHistory(int64_t revision, std::vector<KvEvent> events);
  // The events of `revision` (non-empty).
  void Publish(int64_t revision, std::vector<KvEvent> events);
  // Errors: kOutOfRange (compacted), kInvalidArgument (a future revision).
  Result<std::unique_ptr<KvWatcher>> Watch(const WatchOptions& options, uint64_t buffer_events);
  // Ends every watcher with `reason` (the namespace was deleted or closed).
  void EndAll(const Status& reason);
  // The oldest revision a watch may start from.
  int64_t oldest_revision() const;

 private:
  void Deliver(int64_t revision, const std::vector<KvEvent>& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Trim() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint64_t history_events_;
  mutable Mutex mu_;
  int64_t next_revision_ ABSL_GUARDED_BY(mu_);       // the next revision to deliver
  int64_t history_start_ ABSL_GUARDED_BY(mu_);       // history covers [history_start_, next_)
  uint64_t history_count_ ABSL_GUARDED_BY(mu_) = 0;  // events in history_
  std::deque<std::pair<int64_t, std::vector<KvEvent>>> history_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::vector<KvEvent>> pending_ ABSL_GUARDED_BY(mu_);  // out of order
  std::vector<std::shared_ptr<WatchState>> watchers_ ABSL_GUARDED_BY(mu_);
  Status ended_ ABSL_GUARDED_BY(mu_);
};

}  // namespace packice::kv

#endif  // PACKICE_SERVICES_KV_WATCH_HUB_H_
