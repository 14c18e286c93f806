// group_bench: hit speed of a cache group (include/packice/cache.h).
//
// Every key is loaded once, then each thread Gets keys drawn uniformly from the set, all hits,
// for a fixed number of operations. A hit hands out a shared reference to the cached bytes, so
// its cost should not depend on the value size; the table shows whether it does. Latency is
// timed per Get (steady_clock, about 20 ns of it is the clock itself); each row is the best of
// 3 runs by throughput, since the machine is shared. Prints one Markdown table.
#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "packice/cache.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kOpsPerThread = 1'000'000;

struct RunResult {
  double ops_per_sec = 0;
  double p50_ns = 0;
  double p99_ns = 0;
};

RunResult Run(packice::Group& group, const std::vector<std::string>& keys, int threads) {
  std::vector<std::vector<uint32_t>> latencies(threads);
  std::barrier start(threads + 1);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(t + 1);
      std::uniform_int_distribution<size_t> pick(0, keys.size() - 1);
      std::vector<uint32_t>& lat = latencies[t];
      lat.reserve(kOpsPerThread);
      start.arrive_and_wait();
      for (int i = 0; i < kOpsPerThread; ++i) {
        const std::string& key = keys[pick(rng)];
        const auto begin = Clock::now();
        packice::Result<packice::CacheValue> v = group.Get(key);
        const auto end = Clock::now();
        if (!v.ok() || (*v)->empty()) std::abort();  // every Get is a hit of a non-empty value
        lat.push_back(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count()));
      }
    });
  }
  start.arrive_and_wait();
  const auto begin = Clock::now();
  for (std::thread& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  std::vector<uint32_t> all;
  for (const auto& lat : latencies) all.insert(all.end(), lat.begin(), lat.end());
  std::sort(all.begin(), all.end());
  RunResult r;
  r.ops_per_sec = all.size() / seconds;
  r.p50_ns = all[all.size() / 2];
  r.p99_ns = all[all.size() * 99 / 100];
  return r;
}

}  // namespace

int main() {
  std::printf("Hits only, keys drawn uniformly; %d Gets per thread; best of 3.\n\n", kOpsPerThread);
  std::printf("| value | keys | policy | threads | hits/s | p50 | p99 |\n");
  std::printf("|---:|---:|---|---:|---:|---:|---:|\n");
  for (size_t size : {size_t{1} << 10, size_t{64} << 10, size_t{1} << 20}) {
    const size_t nkeys = std::min<size_t>(1024, (size_t{64} << 20) / size);
    std::vector<std::string> keys;
    for (size_t i = 0; i < nkeys; ++i) keys.push_back("users/" + std::to_string(i));
    for (packice::CachePolicy policy : {packice::CachePolicy::kLru, packice::CachePolicy::kLru2}) {
      // Room for all keys four times over, so that the uneven spread over shards evicts
      // nothing.
      packice::Group group("bench", 4 * nkeys * (size + 32),
                           [size](std::string_view) -> packice::Result<std::string> {
                             return std::string(size, 'x');
                           },
                           {.policy = policy, .max_value_bytes = size});
      for (const std::string& k : keys) {
        if (!group.Get(k).ok()) std::abort();
      }
      for (int threads : {1, 2}) {
        RunResult best;
        for (int i = 0; i < 3; ++i) {
          RunResult r = Run(group, keys, threads);
          if (r.ops_per_sec > best.ops_per_sec) best = r;
        }
        if (group.Stats().loads != nkeys) std::abort();  // a miss would skew the numbers
        std::printf("| %zu KiB | %zu | %s | %d | %.2fM | %.0f ns | %.0f ns |\n", size >> 10, nkeys,
                    policy == packice::CachePolicy::kLru ? "lru" : "lru2", threads,
                    best.ops_per_sec / 1e6, best.p50_ns, best.p99_ns);
      }
    }
  }
  return 0;
}
