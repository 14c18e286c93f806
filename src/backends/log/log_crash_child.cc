// log_crash_child: the process that log_recovery_test.cc kills with SIGKILL.
//
//   log_crash_child DIR THREADS
//
// Opens the log in DIR with SyncPolicy::kAlways (small segments, so that it rolls) and appends
// from THREADS threads until killed. After each Append returns it prints "<seq> <thread> <i>"
// on stdout with one write(2), so every line the test reads is an acknowledged record whose
// payload is log_testing::CrashPayload(thread, i).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "backends/log/crash_payload.h"
#include "backends/log/log.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: log_crash_child DIR THREADS\n");
    return 2;
  }
  packice::LogOptions options;
  options.dir = argv[1];
  options.sync = packice::SyncPolicy::kAlways;
  options.segment_bytes = 256 << 10;
  options.max_record_bytes = 16 << 10;
  options.max_batch_bytes = 64 << 10;
  auto log = packice::Log::Open(options);
  if (!log.ok()) {
    std::fprintf(stderr, "log_crash_child: %s\n", log.status().ToString().c_str());
    return 1;
  }
  const int threads = std::atoi(argv[2]);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        const std::string p = packice::log_testing::CrashPayload(t, i);
        auto seq = (*log)->Append(std::as_bytes(std::span(p)));
        if (!seq.ok()) {
          std::fprintf(stderr, "log_crash_child: %s\n", seq.status().ToString().c_str());
          std::_Exit(1);
        }
        const std::string line =
            std::to_string(*seq) + " " + std::to_string(t) + " " + std::to_string(i) + "\n";
        if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          std::_Exit(1);
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  return 0;
}
