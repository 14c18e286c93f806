// queue_bench: appends to the queue (include/packice/queue.h) in-process, for bench/queue_run.sh
// (docs/benchmarks.md, "Queue").
//
//   queue_bench append --dir D [--size 1K] [--threads 8] [--batch 1] [--seconds 3]
//                      [--fsync always|interval|never] [--buckets 1]
//       THREADS writers append to one topic (created in D) for SECONDS: one record at a time
//       (--batch 1) or PutBatch of --batch records, records of --size bytes. With fsync
//       always the bucket's log group-commits the appends that wait together (one pwrite, one
//       fdatasync). Prints records/s, MB/s of record values, p50/p99 per append.
//   queue_bench read --dir D [--size 1K] [--mb 512] [--cold]
//       Fills a topic with --mb of records (fsync never), then reads it sequentially from
//       offset 0 with one reader; --cold drops the log's pages from the page cache first
//       (POSIX_FADV_DONTNEED). Prints MB/s.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_util.h"
#include "packice/queue.h"

namespace {

using packice::Status;
using packice::bench::Micros;
using packice::bench::ParseSize;
using packice::bench::RunThreads;
using packice::bench::Seconds;
using Clock = packice::bench::BenchClock;

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "queue_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

packice::QueueFsync ParseFsync(const std::string& s) {
  if (s == "always") return packice::QueueFsync::kAlways;
  if (s == "interval") return packice::QueueFsync::kInterval;
  return packice::QueueFsync::kNever;
}

std::shared_ptr<packice::Queue> Open(const std::string& dir) {
  auto q = packice::OpenQueue({.dir = dir, .retention_interval = std::chrono::milliseconds(0)});
  if (!q.ok()) Die("open " + dir, q.status());
  return *q;
}

struct AppendOptions {
  std::string dir;
  uint64_t size = 1024;
  int threads = 8;
  int batch = 1;
  double seconds = 3;
  std::string fsync = "always";
  uint32_t buckets = 1;
};

void Append(const AppendOptions& o) {
  auto q = Open(o.dir);
  packice::TopicOptions t;
  t.buckets = o.buckets;
  t.fsync = ParseFsync(o.fsync);
  if (Status s = q->CreateTopic("bench", t); !s.ok()) Die("create", s);
  auto w = packice::QueueWriter::Open(q, "bench");
  if (!w.ok()) Die("writer", w.status());
  packice::QueueRecord rec;
  rec.value.assign(o.size, 'q');
  const std::vector<packice::QueueRecord> batch(static_cast<size_t>(o.batch), rec);
  char label[200];
  std::snprintf(label, sizeof label, "bench=queue op=append fsync=%s size=%llu batch=%d buckets=%u",
                o.fsync.c_str(), static_cast<unsigned long long>(o.size), o.batch, o.buckets);
  const auto t0 = Clock::now();
  RunThreads(label, o.threads, o.seconds,
             [&](int, Clock::time_point deadline, std::vector<double>& lat, uint64_t& errors) {
               uint64_t done = 0;
               while (Clock::now() < deadline) {
                 const auto a = Clock::now();
                 const bool ok = o.batch == 1 ? w->Put(rec).ok() : w->PutBatch(batch).ok();
                 lat.push_back(Micros(Clock::now() - a));
                 if (ok) {
                   done += static_cast<uint64_t>(o.batch);
                 } else {
                   ++errors;
                 }
               }
               return done;
             });
  auto buckets = q->Buckets("bench");
  uint64_t records = 0;
  for (const auto& b : *buckets) records += b.end_offset;
  const double secs = Seconds(Clock::now() - t0);
  std::printf("bench=queue op=append_total records=%llu value_mb_per_s=%.1f\n",
              static_cast<unsigned long long>(records),
              static_cast<double>(records * o.size) / secs / 1e6);
}

struct ReadOptions {
  std::string dir;
  uint64_t size = 1024;
  uint64_t mb = 512;
  bool cold = false;
};

void Read(const ReadOptions& o) {
  {
    auto q = Open(o.dir);
    packice::TopicOptions t;
    t.fsync = packice::QueueFsync::kNever;
    if (Status s = q->CreateTopic("bench", t); !s.ok()) Die("create", s);
    packice::QueueRecord rec;
    rec.value.assign(o.size, 'r');
    const size_t per = std::max<size_t>(1, (4u << 20) / (o.size + 64));
    const std::vector<packice::QueueRecord> batch(per, rec);
    for (uint64_t bytes = 0; bytes < (o.mb << 20); bytes += per * o.size) {
      if (auto r = q->Append("bench", 0, batch); !r.ok()) Die("fill", r.status());
    }
  }
  if (o.cold) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(o.dir)) {
      if (!e.is_regular_file()) continue;
      const int fd = ::open(e.path().c_str(), O_RDONLY);
      if (fd < 0) continue;
      (void)fdatasync(fd);
      (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      ::close(fd);
    }
  }
  auto q = Open(o.dir);
  const auto t0 = Clock::now();
  packice::QueuePosition at{0, 0};
  uint64_t bytes = 0, records = 0;
  while (true) {
    auto got = q->Read("bench", std::span(&at, 1), 100000, std::chrono::milliseconds(0), 8u << 20);
    if (!got.ok()) Die("read", got.status());
    if (got->empty()) break;
    for (const auto& r : (*got)[0].records) {
      bytes += r.record.value.size();
      ++records;
    }
    at.offset = (*got)[0].records.back().offset + 1;
  }
  const double secs = Seconds(Clock::now() - t0);
  std::printf(
      "bench=queue op=read cache=%s size=%llu records=%llu value_bytes=%llu seconds=%.3f "
      "mb_per_s=%.0f\n",
      o.cold ? "cold" : "warm", static_cast<unsigned long long>(o.size),
      static_cast<unsigned long long>(records), static_cast<unsigned long long>(bytes), secs,
      static_cast<double>(bytes) / secs / 1e6);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"queue_bench: the queue's append and read benchmarks (docs/benchmarks.md, Queue)"};
  app.require_subcommand(1);
  auto size_option = [](CLI::App* cmd, uint64_t* out, const char* name) {
    cmd->add_option_function<std::string>(
        name, [out](const std::string& v) { *out = ParseSize(v); }, "bytes (1K, 64K, ...)");
  };
  AppendOptions append;
  CLI::App* a = app.add_subcommand("append", "writers appending to one topic");
  a->add_option("--dir", append.dir)->required();
  size_option(a, &append.size, "--size");
  a->add_option("--threads", append.threads)->check(CLI::Range(1, 256));
  a->add_option("--batch", append.batch)->check(CLI::Range(1, 4096));
  a->add_option("--seconds", append.seconds);
  a->add_option("--fsync", append.fsync)->check(CLI::IsMember({"always", "interval", "never"}));
  a->add_option("--buckets", append.buckets)->check(CLI::Range(1, 1024));
  ReadOptions read;
  CLI::App* r = app.add_subcommand("read", "a sequential read of a filled topic");
  r->add_option("--dir", read.dir)->required();
  size_option(r, &read.size, "--size");
  r->add_option("--mb", read.mb)->check(CLI::Range(1, 65536));
  r->add_flag("--cold", read.cold, "drop the log's pages from the page cache first");
  CLI11_PARSE(app, argc, argv);
  if (a->parsed()) Append(append);
  if (r->parsed()) Read(read);
  return 0;
}
