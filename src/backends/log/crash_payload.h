// The payloads log_crash_child appends and log_recovery_test.cc checks after the kill.
#ifndef PACKICE_BACKENDS_LOG_CRASH_PAYLOAD_H_
#define PACKICE_BACKENDS_LOG_CRASH_PAYLOAD_H_

#include <cstddef>
#include <string>

namespace packice::log_testing {

// Record `i` of appender `thread`: 16 to 3015 bytes that depend on both.
inline std::string CrashPayload(int thread, int i) {
  const size_t n = 16 + static_cast<size_t>((i * 7919 + thread) % 3000);
  std::string s = std::to_string(thread) + ":" + std::to_string(i) + ":";
  for (size_t k = 0; k < n; ++k) s.push_back(static_cast<char>('a' + (k + thread + i) % 26));
  return s;
}

}  // namespace packice::log_testing

#endif  // PACKICE_BACKENDS_LOG_CRASH_PAYLOAD_H_
