// HotKeyTracker: approximate read rates of keys in bounded memory.
//
// Two count-min sketches (depth 4, `width` counters per row): one counts the current window,
// the other holds the previous one. The count of a key over the last window is estimated as
// current + previous * (the part of the previous window still inside the sliding window), the
// usual sliding-window approximation. A sketch only over-counts (collisions add, never
// subtract), so a key may be taken for hot a little early, never late; with the default width
// of 1024 the tracker takes 2 * 4 * 1024 * 4 bytes = 32 KiB whatever the number of keys.
//
// Counters are relaxed atomics; a window change clears the old sketch under a mutex while other
// threads may still add to it, which at worst loses or keeps a few counts at the boundary.
//
// Thread safety: every method is safe for concurrent use.
#ifndef PACKICE_CORE_HOT_KEYS_H_
#define PACKICE_CORE_HOT_KEYS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/mutex.h"
#include "packice/clock.h"
#include "packice/types.h"

namespace packice {

class HotKeyTracker {
 public:
  // `width` is rounded up to a power of two. REQUIRES: window > 0.
  HotKeyTracker(std::shared_ptr<Clock> clock, Duration window, uint32_t width = 1024);

  // Counts `reads` reads of `key` (a caller that samples one read in N counts N); returns its
  // estimated reads per second over the last window, these included.
  double Record(std::string_view key, uint32_t reads = 1);
  // The estimated reads per second of `key` over the last window.
  double Rate(std::string_view key);

 private:
  static constexpr int kDepth = 4;

  // Moves to the window `now` falls in; returns the part (0..1) of the current window passed.
  double Advance(Clock::TimePoint now);
  double Estimate(std::string_view key, uint32_t add);
  std::atomic<uint32_t>* Sketch(int which) { return sketches_[which].get(); }

  const std::shared_ptr<Clock> clock_;
  const int64_t window_ns_;
  const uint32_t mask_;  // width - 1
  std::unique_ptr<std::atomic<uint32_t>[]> sketches_[2];
  std::atomic<int> current_{0};              // index of the current window's sketch
  std::atomic<int64_t> window_start_ns_{0};  // steady-clock ns at which it began
  Mutex advance_mu_;                         // one thread moves the window at a time
};

}  // namespace packice

#endif  // PACKICE_CORE_HOT_KEYS_H_
