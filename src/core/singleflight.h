// SingleFlight<T>: concurrent requests for one key share one load.
//
// The first caller of Do(key, fn) for a key that has no load running starts fn on a thread of
// its own; every caller for that key until fn returns (the first included) waits for that one
// result. A result, value or error, is handed to the waiters and forgotten: an error is not
// remembered, the next Do after it starts a new load, and once every waiter has its copy the
// SingleFlight keeps none (so a value that owns something goes with its last holder). Caching
// a value is the caller's job, in fn (Group fills its cache there, before the waiters wake).
//
// Why fn runs on its own thread rather than on the first caller's: so the first caller can stop
// waiting too. A load that outlasts `timeout` makes every waiter return kTimeout, the first
// included, while fn keeps running to its end (a thread cannot be cancelled safely); its value
// still reaches fn's own side effects (the cache) and any caller that joined later and is still
// waiting. Such abandoned loads are bounded two ways: a key has at most one load running (a
// caller for a key whose load timed out waits on that load, it does not start another), and
// at most `max_running` loads run at once in the whole SingleFlight: past that, a caller for a
// key without a load gets kUnavailable at once instead of a new thread. So a getter that hangs
// costs one thread per distinct key, up to max_running, and no more.
//
// A load may call Do on the same SingleFlight for other keys (a getter that reads another
// entry of its group): that load runs on a thread of its own, so nothing deadlocks. A load that
// asks, directly or through other loads, for a key whose load it is part of would wait for
// itself; Do detects that chain and returns kInvalidArgument.
//
// The destructor waits for every running load (abandoned ones included) to return: fn may use
// whatever its owner owns until then.
//
// Thread safety: every method is safe for concurrent use.
#ifndef PACKICE_CORE_SINGLEFLIGHT_H_
#define PACKICE_CORE_SINGLEFLIGHT_H_

#include <absl/container/flat_hash_map.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "packice/status.h"

namespace packice {
namespace singleflight_internal {

// The loads (SingleFlight, key) the current thread is part of: set on a loader thread to its
// parent's chain plus its own load.
struct Link {
  const void* flight;
  std::string key;
};
inline thread_local std::vector<Link> tls_chain;

// Hash and equality that look std::string keys up by std::string_view. absl's own string
// hash takes absl::string_view, which Debian's build does not alias to std::string_view.
struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct KeyEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

}  // namespace singleflight_internal

template <typename T>
class SingleFlight {
 public:
  struct Options {
    // Loads running at once (abandoned ones included); a new key past this gets kUnavailable.
    size_t max_running = 64;
  };

  explicit SingleFlight(Options options) : options_(options) {}
  SingleFlight() : SingleFlight(Options{}) {}
  SingleFlight(const SingleFlight&) = delete;
  SingleFlight& operator=(const SingleFlight&) = delete;
  ~SingleFlight() { WaitIdle(); }

  // Runs fn once for all concurrent callers of `key` and waits at most `timeout` for its
  // result (timeout <= 0: without bound). Returns what fn returned, or
  //  - kTimeout if the timeout passed first (fn goes on running, see above);
  //  - kUnavailable if no load of `key` was running and max_running loads are, or no thread
  //    could be started;
  //  - kInvalidArgument if the calling thread is itself part of a load of `key` here;
  //  - kInternal if fn threw.
  // `*shared` (if given) is set to whether this caller joined a load another caller started.
  Result<T> Do(std::string_view key, std::function<Result<T>()> fn,
               std::chrono::nanoseconds timeout, bool* shared = nullptr);

  // Loads running now.
  size_t running() const {
    std::lock_guard<std::mutex> lock(mu_);
    return running_;
  }

  // Callers that have joined the running load of `key` (its starter included); 0 if none runs.
  // For tests that need every caller to be waiting before a load ends.
  size_t Waiters(std::string_view key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(key);
    return it == calls_.end() ? 0 : it->second->waiters;
  }

  // Waits until no load is running.
  void WaitIdle() {
    std::unique_lock<std::mutex> lock(mu_);
    idle_cv_.wait(lock, [this] { return running_ == 0; });
  }

 private:
  struct Call {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<T>> result;  // set once, when fn returns
    size_t waiters = 0;               // guarded by SingleFlight::mu_
    size_t gone = 0;                  // callers that took the result or gave up; guarded by mu
  };

  bool InChain(std::string_view key) const {
    for (const auto& link : singleflight_internal::tls_chain) {
      if (link.flight == this && link.key == key) return true;
    }
    return false;
  }
  void Run(std::string key, std::shared_ptr<Call> call, std::function<Result<T>()> fn,
           std::vector<singleflight_internal::Link> chain);
  void Finish(const std::string& key, const std::shared_ptr<Call>& call, Result<T> result);

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;  // running_ reached 0
  absl::flat_hash_map<std::string, std::shared_ptr<Call>, singleflight_internal::KeyHash,
                      singleflight_internal::KeyEq>
      calls_;           // guarded by mu_
  size_t running_ = 0;  // guarded by mu_
};

// ---- implementation -------------------------------------------------------------------------

template <typename T>
Result<T> SingleFlight<T>::Do(std::string_view key, std::function<Result<T>()> fn,
                              std::chrono::nanoseconds timeout, bool* shared) {
  if (InChain(key)) {
    return InvalidArgument("the load of '" + std::string(key) + "' waits for itself");
  }
  std::shared_ptr<Call> call;
  bool start = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(key);
    if (it != calls_.end()) {
      call = it->second;
    } else {
      if (running_ >= options_.max_running) {
        return Unavailable("too many loads in flight (" + std::to_string(running_) + ")");
      }
      call = std::make_shared<Call>();
      calls_.emplace(std::string(key), call);
      ++running_;
      start = true;
    }
    ++call->waiters;
  }
  if (shared) *shared = !start;
  if (start) {
    std::vector<singleflight_internal::Link> chain = singleflight_internal::tls_chain;
    chain.push_back({this, std::string(key)});
    try {
      std::thread(&SingleFlight::Run, this, std::string(key), call, std::move(fn), std::move(chain))
          .detach();
    } catch (const std::system_error& e) {
      Finish(std::string(key), call, Unavailable(std::string("cannot start a load: ") + e.what()));
    }
  }
  std::unique_lock<std::mutex> lock(call->mu);
  auto done = [&] { return call->result.has_value(); };
  if (timeout <= std::chrono::nanoseconds::zero()) {
    call->cv.wait(lock, done);
  } else if (!call->cv.wait_for(lock, timeout, done)) {
    ++call->gone;
    return Timeout(
        "the load of '" + std::string(key) + "' took longer than " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) +
        " ms");
  }
  Result<T> out = *call->result;
  const size_t gone = ++call->gone;
  lock.unlock();
  size_t waiters = 0;
  {
    // With the result set the call has left the table: no caller joins it any more.
    std::lock_guard<std::mutex> table(mu_);
    waiters = call->waiters;
  }
  if (gone == waiters) {
    // Every caller has its copy: the call keeps none, so that a value which owns something
    // (ClusterPeer's fetched copy) goes with the last caller that holds it, not whenever the
    // loader's thread happens to end.
    std::lock_guard<std::mutex> relock(call->mu);
    call->result.emplace(Aborted("the result was handed to every caller"));
  }
  return out;
}

template <typename T>
void SingleFlight<T>::Run(std::string key, std::shared_ptr<Call> call,
                          std::function<Result<T>()> fn,
                          std::vector<singleflight_internal::Link> chain) {
  singleflight_internal::tls_chain = std::move(chain);
  std::optional<Result<T>> result;
  try {
    result.emplace(fn());
  } catch (const std::exception& e) {
    result.emplace(Internal(std::string("the load threw: ") + e.what()));
  } catch (...) {
    result.emplace(Internal("the load threw"));
  }
  // fn's captures (the owner's state) go before the owner may be destroyed.
  fn = nullptr;
  Finish(key, call, std::move(*result));
}

template <typename T>
void SingleFlight<T>::Finish(const std::string& key, const std::shared_ptr<Call>& call,
                             Result<T> result) {
  {
    // Out of the table first: a caller that sees the result and asks again starts afresh, so
    // an error is not remembered.
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(key);
    if (it != calls_.end() && it->second == call) calls_.erase(it);
  }
  {
    std::lock_guard<std::mutex> lock(call->mu);
    call->result.emplace(std::move(result));
  }
  call->cv.notify_all();
  // Last touch of `this`: notified under the lock, so ~SingleFlight (waiting for running_ == 0)
  // cannot return before this thread is done with mu_ and idle_cv_.
  std::lock_guard<std::mutex> lock(mu_);
  if (--running_ == 0) idle_cv_.notify_all();
}

}  // namespace packice

#endif  // PACKICE_CORE_SINGLEFLIGHT_H_
