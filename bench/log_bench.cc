// log_bench: appends to the segmented log (src/backends/log/log.h) from 8 threads at once, with
// group commit, for 1 KiB and 64 KiB records, under each sync policy. Google Benchmark. Each
// benchmark appends a fixed amount (64 MiB of 1 KiB records, 1 GiB of 64 KiB ones) and, under
// the policies that do not sync each Append, ends with a Sync() inside the timed loop: the time
// is until everything is durable, as dd's conv=fdatasync is. It reports bytes_per_second
// (payload bytes per second of wall time) and the records per group commit ("per_batch") and
// per fdatasync ("per_sync").
//
//   LOG_BENCH_DIR=/path/on/the/disk/to/test log_bench [--benchmark_filter=...]
//
// The log lives in $LOG_BENCH_DIR/log-bench (default: $TMPDIR or /tmp), is made fresh for each
// benchmark and removed after it. No retention while it runs: the kernel never writes the dirty
// pages of a segment unlinked before they were synced, which would flatter the log against dd.
// bench/log_run.sh runs it beside dd.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "backends/log/log.h"

namespace {

std::unique_ptr<packice::Log> g_log;
// Wall time from before the first Append to after the last thread's Sync: Google Benchmark
// averages the threads' times, which would spread the final Sync over eight threads.
std::chrono::steady_clock::time_point g_start;

std::string BenchDir() {
  const char* dir = std::getenv("LOG_BENCH_DIR");
  if (dir == nullptr || *dir == '\0') dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/log-bench";
}

void OpenLog(const benchmark::State& state) {
  std::filesystem::remove_all(BenchDir());
  packice::LogOptions options;
  options.dir = BenchDir();
  options.sync = static_cast<packice::SyncPolicy>(state.range(1));
  options.sync_interval = std::chrono::milliseconds(10);
  options.segment_bytes = 64ull << 20;
  options.max_record_bytes = 1ull << 20;
  options.max_batch_bytes = 8ull << 20;
  auto log = packice::Log::Open(options);
  if (!log.ok()) {
    std::fprintf(stderr, "log_bench: %s\n", log.status().ToString().c_str());
    std::exit(1);
  }
  g_log = std::move(*log);
  g_start = std::chrono::steady_clock::now();
}

void CloseLog(const benchmark::State& state) {
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - g_start;
  const double bytes = static_cast<double>(state.range(2)) * (1 << 20);
  // One line per benchmark for bench/log_run.sh: record bytes, policy, MB/s of wall time.
  std::fprintf(stderr, "log_bench_wall %lld %lld %.1f\n", static_cast<long long>(state.range(0)),
               static_cast<long long>(state.range(1)), bytes / 1e6 / took.count());
  g_log.reset();
  std::filesystem::remove_all(BenchDir());
}

constexpr int kThreads = 8;

// range(0): record bytes; range(1): SyncPolicy; range(2): MiB appended in all.
void BM_Append(benchmark::State& state) {
  const std::string payload(static_cast<size_t>(state.range(0)), 'x');
  const auto bytes = std::as_bytes(std::span(payload));
  const auto policy = static_cast<packice::SyncPolicy>(state.range(1));
  const packice::LogStats before = g_log->stats();
  int64_t left = static_cast<int64_t>(state.max_iterations);
  for (auto _ : state) {
    auto seq = g_log->Append(bytes);
    if (!seq.ok()) {
      state.SkipWithError(seq.status().ToString().c_str());
      break;
    }
    // Durable before the clock stops: the last thread's Sync covers every thread's records.
    if (--left == 0 && policy != packice::SyncPolicy::kAlways) {
      if (packice::Status s = g_log->Sync(); !s.ok()) state.SkipWithError(s.ToString().c_str());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
  if (state.thread_index() == 0) {
    const packice::LogStats after = g_log->stats();
    const double records = static_cast<double>(after.records - before.records);
    state.counters["per_batch"] =
        benchmark::Counter(records / std::max<double>(1, after.batches - before.batches));
    state.counters["per_sync"] =
        benchmark::Counter(records / std::max<double>(1, after.syncs - before.syncs));
  }
}

void Register() {
  for (int64_t size : {1024, 64 << 10}) {
    const int64_t mib = size == 1024 ? 64 : 1024;
    for (packice::SyncPolicy policy : {packice::SyncPolicy::kAlways, packice::SyncPolicy::kInterval,
                                       packice::SyncPolicy::kNever}) {
      benchmark::RegisterBenchmark("BM_Append", BM_Append)
          ->Args({size, static_cast<int64_t>(policy), mib})
          ->ArgNames({"bytes", "policy", "mib"})
          ->Threads(kThreads)
          ->Iterations((mib << 20) / size / kThreads)  // per thread
          ->UseRealTime()
          ->Setup(OpenLog)
          ->Teardown(CloseLog);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Register();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
