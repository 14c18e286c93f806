// MissingFinder: Cas::FindMissing over many digests, split over a pool of threads so that a
// store whose checks wait on a disk or a network answers a large request in a fraction of the
// time. Requests of at most `min_batch` digests run on the caller's thread; larger ones are cut
// into batches of at least `min_batch` that the pool's threads check at once. At most `threads`
// batches run at a time, whatever the number of callers.
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_SERVICES_CAS_MISSING_FINDER_H_
#define PACKICE_SERVICES_CAS_MISSING_FINDER_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "packice/cas.h"

namespace packice {

class MissingFinder {
 public:
  // `threads` 0: std::thread::hardware_concurrency(). REQUIRES: cas != nullptr, min_batch > 0.
  explicit MissingFinder(std::shared_ptr<Cas> cas, size_t threads = 0, size_t min_batch = 512);
  ~MissingFinder();  // waits for the running batches
  MissingFinder(const MissingFinder&) = delete;
  MissingFinder& operator=(const MissingFinder&) = delete;

  // The digests of `digests` the CAS lacks, in their order. Errors: the CAS's.
  Result<std::vector<Digest>> FindMissing(std::span<const Digest> digests) {
    return FindMissing(*cas_, digests);
  }
  // The same over `cas` instead (a view of the same store: CasStore::local_tiers), on this
  // pool. REQUIRES: `cas` outlives the call.
  Result<std::vector<Digest>> FindMissing(Cas& cas, std::span<const Digest> digests);

  size_t threads() const { return workers_.size(); }

 private:
  void Work();

  const std::shared_ptr<Cas> cas_;
  const size_t min_batch_;
  std::mutex mu_;  // guards queue_ and stop_ (a std::mutex: cv_ waits on it)
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace packice

#endif  // PACKICE_SERVICES_CAS_MISSING_FINDER_H_
