// Backoff: capped exponential delays with jitter, for retrying a service that went away.
//
// Each Next() doubles the base delay up to `max` and returns a random delay in [base/2, base]:
// the jitter keeps the nodes of a cluster from retrying in lockstep when etcd comes back.
//
// Thread safety: not thread-safe; one per retry loop.
#ifndef PACKICE_CLUSTER_BACKOFF_H_
#define PACKICE_CLUSTER_BACKOFF_H_

#include <algorithm>
#include <chrono>
#include <random>

namespace packice::cluster {

class Backoff {
 public:
  // REQUIRES: 0 < initial <= max.
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max), base_(initial), rng_(std::random_device{}()) {}

  // The delay before the next attempt.
  std::chrono::milliseconds Next() {
    const auto base = base_;
    base_ = std::min(max_, base_ * 2);
    std::uniform_int_distribution<int64_t> dist(base.count() / 2, base.count());
    return std::chrono::milliseconds(dist(rng_));
  }

  // After a success: the next failure waits `initial` again.
  void Reset() { base_ = initial_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds base_;
  std::mt19937_64 rng_;
};

}  // namespace packice::cluster

#endif  // PACKICE_CLUSTER_BACKOFF_H_
