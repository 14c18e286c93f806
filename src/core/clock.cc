#include "packice/clock.h"

namespace packice {
namespace {
class SystemClock final : public Clock {
 public:
  TimePoint Now() override { return std::chrono::steady_clock::now(); }
  int64_t UnixMillis() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};
}  // namespace

std::shared_ptr<Clock> Clock::System() {
  static const auto clock = std::make_shared<SystemClock>();
  return clock;
}

}  // namespace packice
