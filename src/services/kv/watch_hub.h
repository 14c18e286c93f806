// WatchHub: a bucket's watchers and its recent history of events.
//
// The bucket publishes each revision's events once, after applying them (Publish). Writers of
// a NoLinear bucket may publish out of order; the hub holds a revision back until every
// earlier one has arrived, so watchers always see revision order. Revisions are dense: each
// acknowledged log record is one revision, and each is published.
//
// History: the last `history_events` events (and at most `history_bytes` of them) are kept in
// memory (after a restart, the last ones replayed from the log), so a watch may start in the
// past. Older revisions come from `older`, which reads them back from the log (without previous
// values: a watch with prev_kv from there is refused); older than the log is refused
// ("compacted, oldest is R").
//
// A watcher's buffer holds at most `buffer_events` and `buffer_bytes` (a revision always fits
// an empty buffer); a revision that does not fit ends the
// watcher with kOutOfCapacity "watcher too slow, resume from revision R", R being that
// revision: the consumer reads what was buffered, then resumes from R on a new watch.
//
// Thread safety: safe for concurrent use. Lock order: hub, then a watcher's state.
#ifndef PACKICE_SERVICES_KV_WATCH_HUB_H_
#define PACKICE_SERVICES_KV_WATCH_HUB_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "core/mutex.h"
#include "packice/kv.h"

namespace packice::kv {

struct WatchState;

// The bytes an event holds in a buffer or the history (with or without its previous value).
uint64_t EventBytes(const KvEvent& e, bool with_prev);

class WatchHub {
 public:
  // Calls `fn(revision, events)` for each revision in [from, to), oldest first, until it
  // returns false. Errors: kOutOfRange "compacted, oldest is R", those of reading the log.
  using OlderHistory =
      std::function<Status(int64_t from, int64_t to,
                           const std::function<bool(int64_t, const std::vector<KvEvent>&)>& fn)>;

  // `next_revision`: the revision the next Publish carries; history starts there. `older`
  // may be null (no history beyond memory).
  WatchHub(uint64_t history_events, uint64_t history_bytes, int64_t next_revision,
           OlderHistory older);
  ~WatchHub();

  // Records replayed at recovery: appended to history (no watchers exist yet).
  void AddHistory(int64_t revision, std::vector<KvEvent> events);
  // The events of `revision` (non-empty).
  void Publish(int64_t revision, std::vector<KvEvent> events);
  // Errors: kOutOfRange (compacted), kInvalidArgument (a future revision).
  Result<std::unique_ptr<KvWatcher>> Watch(const WatchOptions& options, uint64_t buffer_events,
                                           uint64_t buffer_bytes);
  // Ends every watcher with `reason` (the namespace was deleted or closed).
  void EndAll(const Status& reason);
  // The oldest revision a watch may start from.
  int64_t oldest_revision() const;

 private:
  void Deliver(int64_t revision, const std::vector<KvEvent>& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Keep(int64_t revision, std::vector<KvEvent> events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Trim() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint64_t history_events_;
  const uint64_t history_bytes_;
  const OlderHistory older_;
  mutable Mutex mu_;
  int64_t next_revision_ ABSL_GUARDED_BY(mu_);            // the next revision to deliver
  int64_t history_start_ ABSL_GUARDED_BY(mu_);            // history covers [history_start_, next_)
  uint64_t history_count_ ABSL_GUARDED_BY(mu_) = 0;       // events in history_
  uint64_t history_bytes_used_ ABSL_GUARDED_BY(mu_) = 0;  // their EventBytes
  std::deque<std::pair<int64_t, std::vector<KvEvent>>> history_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::vector<KvEvent>> pending_ ABSL_GUARDED_BY(mu_);  // out of order
  std::vector<std::shared_ptr<WatchState>> watchers_ ABSL_GUARDED_BY(mu_);
  Status ended_ ABSL_GUARDED_BY(mu_);
};

}  // namespace packice::kv

#endif  // PACKICE_SERVICES_KV_WATCH_HUB_H_
