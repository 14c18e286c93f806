#include "transport/kv_channel.h"

#include <algorithm>

#include "transport/uds/kv_wire_convert.h"

namespace packice {
namespace {

size_t EventBytes(const KvEvent& e) {
  size_t n = 64 + e.kv.key.size() + e.kv.value.size();
  if (e.prev) n += e.prev->key.size() + e.prev->value.size();
  return n;
}

}  // namespace

namespace {

// Start's answer through Send: set by the transport's thread, waited for under a mutex.
class SentAnswer final : public internal::KvAnswer<wire::KvResponse> {
 public:
  void Set(Result<wire::KvResponse> r) {
    std::lock_guard<std::mutex> lock(mu_);
    r_.emplace(std::move(r));
    cv_.notify_all();
  }
  bool WaitUntil(std::optional<std::chrono::steady_clock::time_point> deadline) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!deadline) {
      cv_.wait(lock, [&] { return r_.has_value(); });
      return true;
    }
    return cv_.wait_until(lock, *deadline, [&] { return r_.has_value(); });
  }
  Result<wire::KvResponse> Take() override {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(*r_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Result<wire::KvResponse>> r_;
};

}  // namespace

std::shared_ptr<internal::KvAnswer<wire::KvResponse>> KvChannel::Start(wire::KvRequest req) {
  auto answer = std::make_shared<SentAnswer>();
  // The channel answers every call: a broken connection fails it.
  Send(std::move(req), [answer](Result<wire::KvResponse> resp) { answer->Set(std::move(resp)); });
  return answer;
}

Result<wire::KvResponse> KvChannel::Call(wire::KvRequest req) {
  auto answer = Start(std::move(req));
  answer->WaitUntil(std::nullopt);
  return answer->Take();
}

KvEventQueue::KvEventQueue(int64_t start_revision, size_t max_events, size_t max_bytes,
                           std::function<void()> cancel)
    : max_events_(max_events),
      max_bytes_(max_bytes),
      cancel_(std::move(cancel)),
      resume_(start_revision) {}

KvEventQueue::~KvEventQueue() { Cancel(); }

std::function<void()> KvEventQueue::EndLocked(Status why) {
  if (ended_) return nullptr;
  ended_ = true;
  end_ = std::move(why);
  cv_.notify_all();
  return notify_;
}

bool KvEventQueue::Deliver(const wire::KvWatchEvents& frame) {
  std::vector<KvEvent> events;
  events.reserve(frame.events_size());
  for (const wire::KvEventMsg& m : frame.events()) {
    auto e = FromWire(m);
    if (!e.ok()) {
      End(e.status());
      return false;
    }
    events.push_back(*std::move(e));
  }
  std::function<void()> notify;
  bool cancel = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return false;
    size_t bytes = 0;
    for (const KvEvent& e : events) bytes += EventBytes(e);
    if (!events.empty() &&
        (buffer_.size() + events.size() > max_events_ || bytes_ + bytes > max_bytes_)) {
      // A large revision may span frames: drop the part of it still buffered and resume at
      // its start (the part a reader already took comes again on resuming).
      const int64_t first = events.front().kv.mod_revision;
      while (!buffer_.empty() && buffer_.back().kv.mod_revision == first) {
        bytes_ -= EventBytes(buffer_.back());
        buffer_.pop_back();
      }
      resume_ = std::min(resume_, first);
      notify = EndLocked(
          OutOfCapacity("watcher too slow, resume from revision " + std::to_string(resume_)));
      cancel = !cancel_sent_;
      cancel_sent_ = true;
    } else {
      for (KvEvent& e : events) {
        resume_ = e.kv.mod_revision + 1;
        buffer_.push_back(std::move(e));
      }
      bytes_ += bytes;
      if (frame.end_code() == 0) resume_ = std::max(resume_, frame.resume_revision());
      if (frame.end_code() != 0) {
        auto code = StatusCodeFromInt(frame.end_code());
        if (frame.resume_revision() > 0) resume_ = frame.resume_revision();
        cancel_sent_ = true;  // the node ended it
        notify = EndLocked(code ? Status(*code, frame.end_message())
                                : ProtocolError("unknown status code " +
                                                std::to_string(frame.end_code()) + ": " +
                                                frame.end_message()));
      } else {
        cv_.notify_all();
        notify = notify_;
      }
    }
  }
  if (cancel && cancel_) cancel_();
  if (notify) notify();
  return frame.end_code() == 0 && !cancel;
}

void KvEventQueue::End(Status why, int64_t resume_revision) {
  std::function<void()> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (resume_revision > 0) resume_ = resume_revision;
    cancel_sent_ = true;  // the transport is gone or the node ended it
    notify = EndLocked(std::move(why));
  }
  if (notify) notify();
}

Result<std::vector<KvEvent>> KvEventQueue::Next(std::chrono::steady_clock::time_point deadline,
                                                size_t max_events) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, deadline, [&] { return !buffer_.empty() || ended_; });
  std::vector<KvEvent> out;
  while (!buffer_.empty()) {
    // Whole revisions only, but at least one.
    const int64_t rev = buffer_.front().kv.mod_revision;
    size_t same = 0;
    while (same < buffer_.size() && buffer_[same].kv.mod_revision == rev) ++same;
    if (!out.empty() && out.size() + same > max_events) break;
    for (size_t i = 0; i < same; ++i) {
      bytes_ -= EventBytes(buffer_.front());
      out.push_back(std::move(buffer_.front()));
      buffer_.pop_front();
    }
    if (out.size() >= max_events) break;
  }
  if (!out.empty()) return out;
  if (ended_) return end_;
  return Timeout("no watch event before the deadline");
}

void KvEventQueue::SetNotify(std::function<void()> notify) {
  std::lock_guard<std::mutex> lock(mu_);
  notify_ = std::move(notify);
}

void KvEventQueue::Cancel() {
  std::function<void()> notify;
  bool cancel = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    notify = EndLocked(Aborted("watch cancelled"));
    cancel = !cancel_sent_;
    cancel_sent_ = true;
  }
  if (cancel && cancel_) cancel_();
  if (notify) notify();
}

int64_t KvEventQueue::resume_revision() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resume_;
}

}  // namespace packice
