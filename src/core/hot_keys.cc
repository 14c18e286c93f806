#include "core/hot_keys.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <limits>

namespace packice {
namespace {

int64_t Nanos(Clock::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

HotKeyTracker::HotKeyTracker(std::shared_ptr<Clock> clock, Duration window, uint32_t width)
    : clock_(std::move(clock)),
      window_ns_(std::max<int64_t>(
          1, std::chrono::duration_cast<std::chrono::nanoseconds>(window).count())),
      mask_(std::bit_ceil(std::clamp<uint32_t>(width, 16, 1u << 24)) - 1) {
  const size_t counters = size_t{kDepth} * (mask_ + 1);
  for (auto& sketch : sketches_) {
    sketch = std::make_unique<std::atomic<uint32_t>[]>(counters);
  }
  window_start_ns_.store(Nanos(clock_->Now()), std::memory_order_relaxed);
}

double HotKeyTracker::Advance(Clock::TimePoint now) {
  const int64_t now_ns = Nanos(now);
  int64_t start = window_start_ns_.load(std::memory_order_acquire);
  if (now_ns - start >= window_ns_) {
    MutexLock lock(&advance_mu_);
    start = window_start_ns_.load(std::memory_order_acquire);
    const int64_t windows = (now_ns - start) / window_ns_;
    if (windows >= 1) {
      const int cur = current_.load(std::memory_order_relaxed);
      const size_t counters = size_t{kDepth} * (mask_ + 1);
      // The older sketch becomes the current one, empty; after two windows or more without
      // a read, the previous one holds nothing of the sliding window either.
      std::atomic<uint32_t>* next = Sketch(1 - cur);
      for (size_t i = 0; i < counters; ++i) next[i].store(0, std::memory_order_relaxed);
      if (windows >= 2) {
        std::atomic<uint32_t>* old = Sketch(cur);
        for (size_t i = 0; i < counters; ++i) old[i].store(0, std::memory_order_relaxed);
      }
      current_.store(1 - cur, std::memory_order_release);
      start += windows * window_ns_;
      window_start_ns_.store(start, std::memory_order_release);
    }
  }
  return std::clamp(static_cast<double>(now_ns - start) / window_ns_, 0.0, 1.0);
}

double HotKeyTracker::Estimate(std::string_view key, uint32_t add) {
  const double passed = Advance(clock_->Now());
  const uint64_t h = XXH3_64bits(key.data(), key.size());
  // Four row indexes from one hash (Kirsch–Mitzenmacher): h1 + i * h2, h2 odd.
  const uint32_t h1 = static_cast<uint32_t>(h);
  const uint32_t h2 = static_cast<uint32_t>(h >> 32) | 1;
  const int cur = current_.load(std::memory_order_acquire);
  std::atomic<uint32_t>* now = Sketch(cur);
  std::atomic<uint32_t>* prev = Sketch(1 - cur);
  uint32_t now_min = std::numeric_limits<uint32_t>::max();
  uint32_t prev_min = std::numeric_limits<uint32_t>::max();
  for (uint32_t row = 0; row < kDepth; ++row) {
    const size_t i = size_t{row} * (mask_ + 1) + ((h1 + row * h2) & mask_);
    const uint32_t c = add ? now[i].fetch_add(add, std::memory_order_relaxed) + add
                           : now[i].load(std::memory_order_relaxed);
    now_min = std::min(now_min, c);
    prev_min = std::min(prev_min, prev[i].load(std::memory_order_relaxed));
  }
  const double count = now_min + prev_min * (1.0 - passed);
  return count * 1e9 / static_cast<double>(window_ns_);
}

double HotKeyTracker::Record(std::string_view key, uint32_t reads) { return Estimate(key, reads); }

double HotKeyTracker::Rate(std::string_view key) { return Estimate(key, 0); }

}  // namespace packice
