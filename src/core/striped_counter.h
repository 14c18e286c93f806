// A count that many threads bump at once, on a hot path: one cache line per stripe, each thread
// always on the same stripe, so increments from different cores rarely touch the same line
// (a single atomic's line moves between cores on every increment). value() sums the stripes:
// it is exact once the increments it should see have happened, and never goes down.
#ifndef PACKICE_CORE_STRIPED_COUNTER_H_
#define PACKICE_CORE_STRIPED_COUNTER_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace packice {

class StripedCounter {
 public:
  void Inc() { stripes_[Stripe()].value.fetch_add(1, std::memory_order_relaxed); }

  uint64_t value() const {
    uint64_t sum = 0;
    for (const Slot& s : stripes_) sum += s.value.load(std::memory_order_relaxed);
    return sum;
  }

 private:
  static constexpr size_t kStripes = 16;
  struct alignas(64) Slot {
    std::atomic<uint64_t> value{0};
  };

  // Threads take stripes round robin, once each.
  static size_t Stripe() {
    static std::atomic<size_t> next{0};
    thread_local const size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kStripes;
    return mine;
  }

  std::array<Slot, kStripes> stripes_;
};

}  // namespace packice

#endif  // PACKICE_CORE_STRIPED_COUNTER_H_
