// What the bench programs share: sizes on the command line and latency quantiles.
#ifndef PACKICE_BENCH_BENCH_UTIL_H_
#define PACKICE_BENCH_BENCH_UTIL_H_

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace packice::bench {

// "1048576", "1024K", "64M", "1G" (binary multiples).
inline uint64_t ParseSize(const std::string& text) {
  size_t used = 0;
  const uint64_t n = std::stoull(text, &used);
  std::string suffix = text.substr(used);
  if (!suffix.empty() && (suffix.back() == 'B' || suffix.back() == 'b')) suffix.pop_back();
  if (suffix.size() == 2 && suffix[1] == 'i') suffix.pop_back();
  if (suffix.empty()) return n;
  switch (suffix[0]) {
    case 'k':
    case 'K':
      return n << 10;
    case 'm':
    case 'M':
      return n << 20;
    case 'g':
    case 'G':
      return n << 30;
  }
  throw CLI::ValidationError("size", "bad size '" + text + "'");
}

// Value at quantile q of `v` (sorted in place).
inline double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

using BenchClock = std::chrono::steady_clock;
inline double Micros(BenchClock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}
inline double Seconds(BenchClock::duration d) { return std::chrono::duration<double>(d).count(); }

// Runs `clients` threads of `body(thread index, deadline, latencies)` together for `seconds`,
// and prints one result line: `label`, ops/s (ops = the sum of what the bodies return), the
// p50/p99 of every latency recorded.
template <typename Body>
inline void RunThreads(const std::string& label, int clients, double seconds, Body body) {
  std::vector<std::vector<double>> lat(static_cast<size_t>(clients));
  std::vector<uint64_t> ops(static_cast<size_t>(clients), 0);
  std::vector<uint64_t> errors(static_cast<size_t>(clients), 0);
  std::barrier start(clients + 1);
  std::vector<std::thread> threads;
  BenchClock::time_point deadline;
  std::atomic<bool> go{false};
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();  // connected and ready
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      lat[t].reserve(1 << 20);
      ops[t] = body(t, deadline, lat[t], errors[t]);
    });
  }
  start.arrive_and_wait();
  const BenchClock::time_point t0 = BenchClock::now();
  deadline =
      t0 + std::chrono::duration_cast<BenchClock::duration>(std::chrono::duration<double>(seconds));
  go.store(true, std::memory_order_release);
  for (auto& th : threads) th.join();
  const double took = Seconds(BenchClock::now() - t0);
  std::vector<double> all;
  uint64_t total = 0, errs = 0;
  for (int t = 0; t < clients; ++t) {
    all.insert(all.end(), lat[t].begin(), lat[t].end());
    total += ops[t];
    errs += errors[t];
  }
  const double p50 = Quantile(all, 0.50), p99 = Quantile(all, 0.99);
  std::printf(
      "%s clients=%d seconds=%.2f ops=%llu ops_per_s=%.0f p50_us=%.1f p99_us=%.1f errors=%llu\n",
      label.c_str(), clients, took, static_cast<unsigned long long>(total),
      static_cast<double>(total) / took, p50, p99, static_cast<unsigned long long>(errs));
  std::fflush(stdout);
}

}  // namespace packice::bench

#endif  // PACKICE_BENCH_BENCH_UTIL_H_
