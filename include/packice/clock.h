// Clock: the time seam. Leases and TTLs read time only through a Clock, so tests can move
// time by hand (FakeClock in tests/testing.h) instead of sleeping.
#ifndef PACKICE_CLOCK_H_
#define PACKICE_CLOCK_H_

#include <chrono>
#include <cstdint>
#include <memory>

namespace packice {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Monotonic time for deadlines.
  virtual TimePoint Now() = 0;
  // Wall-clock milliseconds since the Unix epoch, for reporting.
  virtual int64_t UnixMillis() = 0;

  // The process-wide system clock. Thread-safe.
  static std::shared_ptr<Clock> System();
};

}  // namespace packice

#endif  // PACKICE_CLOCK_H_
