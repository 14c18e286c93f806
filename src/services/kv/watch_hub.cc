#include "services/kv/watch_hub.h"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

namespace packice::kv {

uint64_t EventBytes(const KvEvent& e, bool with_prev) {
  uint64_t n = 64 + e.kv.key.size() + e.kv.value.size();
  if (with_prev && e.prev) n += e.prev->key.size() + e.prev->value.size();
  return n;
}

// One watcher's buffer and end, shared by the hub and the KvWatcher handle.
struct WatchState {
  WatchOptions options;
  uint64_t buffer_events = 0;
  uint64_t buffer_bytes = 0;  // the bound

  std::mutex mu;  // plain: Next waits on cv with it
  std::condition_variable cv;
  std::deque<KvEvent> buffer;
  uint64_t bytes = 0;  // EventBytes of what is buffered
  Status end;          // OK while the watch goes on
  bool ended = false;
  int64_t resume = 0;  // first revision not delivered
  std::function<void()> notify;

  bool Matches(const std::string& key) const {
    if (options.prefix) return key.starts_with(options.key);
    return key == options.key;
  }

  // Ends the watch if it has not ended; returns the callback to run.
  std::function<void()> EndLocked(Status why) {
    if (ended) return nullptr;
    ended = true;
    end = std::move(why);
    cv.notify_all();
    return notify;
  }

  // Offers one revision. Returns the callback to run (null: nothing new).
  std::function<void()> Offer(int64_t revision, const std::vector<KvEvent>& events) {
    std::lock_guard<std::mutex> lock(mu);
    if (ended) return nullptr;
    size_t n = 0;
    uint64_t b = 0;
    for (const KvEvent& e : events) {
      if (!Matches(e.kv.key)) continue;
      ++n;
      b += EventBytes(e, options.prev_kv);
    }
    if (n == 0) {
      resume = revision + 1;
      return nullptr;
    }
    // A revision always fits an empty buffer, however big: else it could never be delivered.
    if (!buffer.empty() && (buffer.size() + n > buffer_events || bytes + b > buffer_bytes)) {
      resume = revision;
      return EndLocked(
          OutOfCapacity("watcher too slow, resume from revision " + std::to_string(revision)));
    }
    for (const KvEvent& e : events) {
      if (!Matches(e.kv.key)) continue;
      KvEvent copy = e;
      if (!options.prev_kv) copy.prev.reset();
      buffer.push_back(std::move(copy));
    }
    bytes += b;
    resume = revision + 1;
    cv.notify_all();
    return notify;
  }
};

namespace {

class HubWatcher final : public KvWatcher {
 public:
  explicit HubWatcher(std::shared_ptr<WatchState> s) : s_(std::move(s)) {}
  ~HubWatcher() override { Cancel(); }

  Result<std::vector<KvEvent>> Next(std::chrono::steady_clock::time_point deadline,
                                    size_t max_events) override {
    std::unique_lock<std::mutex> lock(s_->mu);
    s_->cv.wait_until(lock, deadline, [&] { return !s_->buffer.empty() || s_->ended; });
    std::vector<KvEvent> out;
    while (!s_->buffer.empty()) {
      const int64_t rev = s_->buffer.front().kv.mod_revision;
      // Whole revisions only, but at least one.
      size_t same = 0;
      while (same < s_->buffer.size() && s_->buffer[same].kv.mod_revision == rev) ++same;
      if (!out.empty() && out.size() + same > max_events) break;
      for (size_t i = 0; i < same; ++i) {
        s_->bytes -= EventBytes(s_->buffer.front(), s_->options.prev_kv);
        out.push_back(std::move(s_->buffer.front()));
        s_->buffer.pop_front();
      }
      if (out.size() >= max_events) break;
    }
    Status end = s_->end;
    const bool ended = s_->ended;
    lock.unlock();
    if (!out.empty()) return out;
    if (ended) return end;
    return Timeout("no watch event before the deadline");
  }

  void SetNotify(std::function<void()> notify) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->notify = std::move(notify);
  }

  void Cancel() override {
    std::function<void()> fn;
    {
      std::lock_guard<std::mutex> lock(s_->mu);
      fn = s_->EndLocked(Aborted("watch cancelled"));
    }
    if (fn) fn();
  }

  int64_t resume_revision() const override {
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->resume;
  }

 private:
  std::shared_ptr<WatchState> s_;
};

}  // namespace

WatchHub::WatchHub(uint64_t history_events, uint64_t history_bytes, int64_t next_revision,
                   OlderHistory older)
    : history_events_(history_events),
      history_bytes_(history_bytes),
      older_(std::move(older)),
      next_revision_(next_revision),
      history_start_(next_revision) {}

WatchHub::~WatchHub() { EndAll(Aborted("namespace closed")); }

void WatchHub::AddHistory(int64_t revision, std::vector<KvEvent> events) {
  MutexLock lock(&mu_);
  if (history_.empty()) history_start_ = revision;
  next_revision_ = revision + 1;
  Keep(revision, std::move(events));
  Trim();
}

void WatchHub::Keep(int64_t revision, std::vector<KvEvent> events) {
  for (const KvEvent& e : events) history_bytes_used_ += EventBytes(e, true);
  history_count_ += events.size();
  history_.emplace_back(revision, std::move(events));
}

void WatchHub::Trim() {
  while ((history_count_ > history_events_ || history_bytes_used_ > history_bytes_) &&
         !history_.empty()) {
    history_count_ -= history_.front().second.size();
    for (const KvEvent& e : history_.front().second) history_bytes_used_ -= EventBytes(e, true);
    history_.pop_front();
    history_start_ = history_.empty() ? next_revision_ : history_.front().first;
  }
}

void WatchHub::Deliver(int64_t revision, const std::vector<KvEvent>& events) {
  std::vector<std::function<void()>> wake;
  for (auto& w : watchers_) {
    if (auto fn = w->Offer(revision, events)) wake.push_back(std::move(fn));
  }
  std::erase_if(watchers_, [](const std::shared_ptr<WatchState>& w) {
    std::lock_guard<std::mutex> lock(w->mu);
    return w->ended;
  });
  for (auto& fn : wake) fn();
}

void WatchHub::Publish(int64_t revision, std::vector<KvEvent> events) {
  MutexLock lock(&mu_);
  if (revision != next_revision_) {
    pending_.emplace(revision, std::move(events));
    return;
  }
  while (true) {
    Deliver(revision, events);
    next_revision_ = revision + 1;
    Keep(revision, std::move(events));
    auto it = pending_.find(next_revision_);
    if (it == pending_.end()) break;
    revision = it->first;
    events = std::move(it->second);
    pending_.erase(it);
  }
  Trim();
}

Result<std::unique_ptr<KvWatcher>> WatchHub::Watch(const WatchOptions& options,
                                                   uint64_t buffer_events, uint64_t buffer_bytes) {
  auto state = std::make_shared<WatchState>();
  state->options = options;
  state->buffer_events = std::max<uint64_t>(buffer_events, 1);
  state->buffer_bytes = buffer_bytes;
  MutexLock lock(&mu_);
  if (!ended_.ok()) return ended_;
  const int64_t start = options.start_revision == 0 ? next_revision_ : options.start_revision;
  if (start < 0 || start > next_revision_) {
    return InvalidArgument("watch from revision " + std::to_string(start) +
                           ": in the future (the next revision is " +
                           std::to_string(next_revision_) + ")");
  }
  auto compacted = [&](int64_t oldest) {
    return OutOfRange("watch from revision " + std::to_string(start) + ": compacted, oldest is " +
                      std::to_string(oldest));
  };
  // Older than memory: from the log, without previous values (a record does not hold them).
  if (start < history_start_ && (!older_ || options.prev_kv)) return compacted(history_start_);
  {
    std::lock_guard<std::mutex> slock(state->mu);
    state->resume = start;
  }
  if (start < history_start_) {
    // Publishers of this bucket wait meanwhile; the read stops once the buffer is full.
    PACKICE_RETURN_IF_ERROR(
        older_(start, history_start_, [&](int64_t rev, const std::vector<KvEvent>& events) {
          state->Offer(rev, events);
          std::lock_guard<std::mutex> slock(state->mu);
          return !state->ended;
        }));
  }
  for (const auto& [rev, events] : history_) {
    if (rev >= start) state->Offer(rev, events);
  }
  watchers_.push_back(state);
  return std::unique_ptr<KvWatcher>(std::make_unique<HubWatcher>(std::move(state)));
}

void WatchHub::EndAll(const Status& reason) {
  std::vector<std::function<void()>> wake;
  {
    MutexLock lock(&mu_);
    if (ended_.ok()) ended_ = reason;
    for (auto& w : watchers_) {
      std::lock_guard<std::mutex> slock(w->mu);
      if (auto fn = w->EndLocked(reason)) wake.push_back(std::move(fn));
    }
    watchers_.clear();
  }
  for (auto& fn : wake) fn();
}

int64_t WatchHub::oldest_revision() const {
  MutexLock lock(&mu_);
  return history_start_;
}

}  // namespace packice::kv
