// eviction_bench: hit ratio and speed of the eviction policies (src/core/eviction.h).
//
// A simulated cache: each access Touches its key, and on a miss Inserts it (charge 1), dropping
// whatever is evicted. Keys are drawn from a Zipf distribution (s = 0.99) over 100k keys, the
// cache holds 10% of them, and every 100k accesses a scan reads 20k keys never seen before (a
// backup, a batch job): the workload LRU2 is for. Seeds are fixed, so hit ratios are
// deterministic; speeds depend on the machine (each is the best of 3 runs).
//
// Prints two Markdown tables (docs/benchmarks.md, "Eviction policies"). Runs in under 30 s.
#include <time.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/eviction.h"

namespace {

using packice::EvictionOptions;
using packice::EvictionResult;

constexpr uint32_t kKeys = 100'000;
constexpr uint64_t kCacheEntries = kKeys / 10;
constexpr double kZipfS = 0.99;
constexpr int kAccesses = 2'000'000;  // Zipf accesses per thread
constexpr int kScanEvery = 100'000;   // Zipf accesses between scans
constexpr int kScanKeys = 20'000;     // new keys read by each scan

// One thread's accesses: indexes into `keys`, of which the first kKeys are the Zipf keys.
struct Trace {
  std::vector<std::string> keys;
  std::vector<uint32_t> accesses;
};

// Zipf ranks by inverse CDF: rank r (0-based) has weight 1 / (r + 1)^s.
class Zipf {
 public:
  Zipf(uint32_t n, double s) : cdf_(n) {
    double sum = 0;
    for (uint32_t r = 0; r < n; ++r) cdf_[r] = sum += 1.0 / std::pow(r + 1.0, s);
    for (double& c : cdf_) c /= sum;
  }
  uint32_t operator()(std::mt19937_64& rng) const {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
    return static_cast<uint32_t>(std::min<size_t>(it - cdf_.begin(), cdf_.size() - 1));
  }

 private:
  std::vector<double> cdf_;
};

Trace MakeTrace(const Zipf& zipf, uint64_t seed, bool scans) {
  Trace trace;
  for (uint32_t k = 0; k < kKeys; ++k) trace.keys.push_back("k" + std::to_string(k));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < kAccesses; ++i) {
    trace.accesses.push_back(zipf(rng));
    if (!scans || (i + 1) % kScanEvery != 0) continue;
    for (int j = 0; j < kScanKeys; ++j) {
      trace.accesses.push_back(static_cast<uint32_t>(trace.keys.size()));
      trace.keys.push_back("s" + std::to_string(seed) + "-" + std::to_string(trace.keys.size()));
    }
  }
  return trace;
}

struct Counts {
  uint64_t accesses = 0;
  uint64_t hits = 0;
  uint64_t zipf_accesses = 0;
  uint64_t zipf_hits = 0;
};

Counts Replay(packice::Evictor& cache, const Trace& trace) {
  Counts c;
  for (uint32_t a : trace.accesses) {
    const std::string& key = trace.keys[a];
    const bool hit = cache.Touch(key);
    if (!hit) {
      const EvictionResult dropped = cache.Insert(key, 1);  // a simulation: no data to free
    }
    ++c.accesses;
    c.hits += hit;
    if (a < kKeys) {
      ++c.zipf_accesses;
      c.zipf_hits += hit;
    }
  }
  return c;
}

struct RunResult {
  Counts counts;
  double ops_per_sec = 0;
  double cores = 0;  // CPU time of the threads / wall time: below `threads` on a busy machine
};

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Replays one trace per thread against one shared cache.
RunResult Run(packice::EvictionKind kind, uint32_t shards,
              const std::vector<const Trace*>& traces) {
  auto cache = packice::NewEvictor(
      kind, EvictionOptions{.capacity_entries = kCacheEntries, .shards = shards});
  std::vector<Counts> counts(traces.size());
  std::vector<double> cpu_seconds(traces.size());
  std::barrier start(static_cast<std::ptrdiff_t>(traces.size() + 1));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < traces.size(); ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      const double cpu_begin = ThreadCpuSeconds();
      counts[t] = Replay(*cache, *traces[t]);
      cpu_seconds[t] = ThreadCpuSeconds() - cpu_begin;
    });
  }
  start.arrive_and_wait();
  const auto begin = std::chrono::steady_clock::now();
  for (std::thread& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  RunResult r;
  for (const Counts& c : counts) {
    r.counts.accesses += c.accesses;
    r.counts.hits += c.hits;
    r.counts.zipf_accesses += c.zipf_accesses;
    r.counts.zipf_hits += c.zipf_hits;
  }
  r.ops_per_sec = r.counts.accesses / seconds;
  for (double cpu : cpu_seconds) r.cores += cpu / seconds;
  return r;
}

double Ratio(uint64_t part, uint64_t whole) { return whole ? 100.0 * part / whole : 0; }

}  // namespace

int main() {
  using packice::EvictionKind;
  const Zipf zipf(kKeys, kZipfS);
  const Trace plain = MakeTrace(zipf, 1, /*scans=*/false);
  const std::vector<Trace> scan_traces = {MakeTrace(zipf, 1, true), MakeTrace(zipf, 2, true)};
  const EvictionKind kinds[] = {EvictionKind::kLru, EvictionKind::kLru2};

  std::printf("Zipf s=%.2f over %u keys, cache of %llu entries (16 shards), %d Zipf accesses;\n",
              kZipfS, kKeys, static_cast<unsigned long long>(kCacheEntries), kAccesses);
  std::printf("scans: every %d accesses, %d keys never seen before.\n\n", kScanEvery, kScanKeys);

  std::printf("| workload | policy | hit ratio | hit ratio of Zipf accesses |\n");
  std::printf("|---|---|---:|---:|\n");
  for (bool scans : {false, true}) {
    for (EvictionKind kind : kinds) {
      const RunResult r = Run(kind, 16, {scans ? &scan_traces[0] : &plain});
      std::printf("| %s | %s | %.1f%% | %.1f%% |\n", scans ? "Zipf + scans" : "Zipf",
                  std::string(packice::EvictionKindName(kind)).c_str(),
                  Ratio(r.counts.hits, r.counts.accesses),
                  Ratio(r.counts.zipf_hits, r.counts.zipf_accesses));
    }
  }

  std::printf(
      "\n| policy | threads | shards | accesses/s (Touch, Insert on miss) | cores used |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  for (EvictionKind kind : kinds) {
    for (auto [threads, shards] : {std::pair{1, 16u}, std::pair{2, 16u}, std::pair{2, 1u}}) {
      std::vector<const Trace*> traces;
      for (int t = 0; t < threads; ++t) traces.push_back(&scan_traces[t]);
      RunResult best;  // best of 3: the machine is shared
      for (int i = 0; i < 3; ++i) {
        RunResult r = Run(kind, shards, traces);
        if (r.ops_per_sec > best.ops_per_sec) best = r;
      }
      std::printf("| %s | %d | %u | %.2fM | %.2f |\n",
                  std::string(packice::EvictionKindName(kind)).c_str(), threads, shards,
                  best.ops_per_sec / 1e6, best.cores);
    }
  }
  return 0;
}
