// queue_bench: appends to the queue (include/packice/queue.h) in-process, for bench/queue_run.sh
// (docs/benchmarks.md, "Queue").
//
//   queue_bench append --dir D | --url U [--size 1K] [--threads 8] [--batch 1] [--seconds 3]
//                      [--fsync always|interval|never] [--interval-ms 100] [--buckets 1]
//                      [--topic bench] [--inflight 1]
//       THREADS writers append to one topic (created in D, or on the node at U) for SECONDS:
//       one record at a time (--batch 1) or PutBatch of --batch records, records of --size
//       bytes. With fsync always the bucket's log group-commits the appends that wait together
//       (one pwrite, one fdatasync). --inflight N: each writer keeps N PutBatchAsync calls in
//       flight instead of waiting for each (with --batch 1 too). Prints records/s, MB/s of
//       record values, p50/p99 per append.
//   queue_bench range --url U [--size 128] [--count 100] [--fill 10000] [--threads 8]
//                     [--seconds 3] [--topic range]
//       Fills a topic on the node with --fill records, then THREADS readers each read --count
//       records from offset 0 again and again (as XRANGE s - + COUNT n does). Prints reads/s
//       and records/s.
//   queue_bench read --dir D [--size 1K] [--mb 512] [--cold] [--store log|memory|disk]
//       Fills a topic with --mb of records (fsync never), then reads it sequentially from
//       offset 0 with one reader; --cold drops the pages of D's files from the page cache
//       first (POSIX_FADV_DONTNEED). --store memory / disk: a tiered topic (docs/queue.md)
//       whose full 64 MiB segments are sealed into a memory store (hot) or a disk store in
//       D/objects, waited for before the read, so that the read takes them from the objects.
//       Prints MB/s.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "packice/file_peer.h"
#include "packice/memory_peer.h"
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

// The queue in D, in-process (tiered topics sealing into `store`); or the node's at `url`
// when it is given.
std::shared_ptr<packice::Queue> Open(const std::string& dir, const std::string& url = "",
                                     std::shared_ptr<packice::Peer> store = nullptr) {
  auto q = url.empty() ? packice::OpenQueue({.dir = dir,
                                             .retention_interval = std::chrono::milliseconds(0),
                                             .object_store = std::move(store)})
                       : packice::ConnectQueue(url);
  if (!q.ok()) Die("open " + (url.empty() ? dir : url), q.status());
  return *q;
}

struct AppendOptions {
  std::string dir;
  std::string url;
  std::string topic = "bench";
  uint64_t size = 1024;
  int threads = 8;
  int batch = 1;
  double seconds = 3;
  std::string fsync = "always";
  int interval_ms = 100;
  uint32_t buckets = 1;
  int inflight = 1;
};

// One writer thread's loop with up to `inflight` PutBatchAsync calls in flight: the
// records appended (and the latencies, each from its call to its `done`).
uint64_t Pipelined(packice::QueueWriter& w, const std::vector<packice::QueueRecord>& batch,
                   int inflight, Clock::time_point deadline, std::vector<double>& lat,
                   uint64_t& errors) {
  std::mutex mu;
  std::condition_variable cv;
  int pending = 0;
  uint64_t done = 0;
  while (Clock::now() < deadline) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return pending < inflight; });
      ++pending;
    }
    const auto a = Clock::now();
    w.PutBatchAsync(batch, [&, a](packice::Result<std::vector<packice::AppendResult>> r) {
      const double us = Micros(Clock::now() - a);
      std::lock_guard<std::mutex> lock(mu);
      lat.push_back(us);
      if (r.ok()) {
        done += batch.size();
      } else {
        ++errors;
      }
      --pending;
      cv.notify_one();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return pending == 0; });
  return done;
}

void Append(const AppendOptions& o) {
  auto q = Open(o.dir, o.url);
  packice::TopicOptions t;
  t.buckets = o.buckets;
  t.fsync = *packice::ParseQueueFsync(o.fsync);
  t.fsync_interval = std::chrono::milliseconds(o.interval_ms);
  if (Status s = q->CreateTopic(o.topic, t); !s.ok()) Die("create", s);
  auto w = packice::QueueWriter::Open(q, o.topic);
  if (!w.ok()) Die("writer", w.status());
  packice::QueueRecord rec;
  rec.value.assign(o.size, 'q');
  const std::vector<packice::QueueRecord> batch(static_cast<size_t>(o.batch), rec);
  char label[200];
  std::snprintf(label, sizeof label,
                "bench=queue op=append where=%s fsync=%s size=%llu batch=%d buckets=%u inflight=%d",
                o.url.empty() ? "local" : "node", o.fsync.c_str(),
                static_cast<unsigned long long>(o.size), o.batch, o.buckets, o.inflight);
  const auto t0 = Clock::now();
  RunThreads(label, o.threads, o.seconds,
             [&](int, Clock::time_point deadline, std::vector<double>& lat, uint64_t& errors) {
               uint64_t done = 0;
               if (o.inflight > 1) return Pipelined(*w, batch, o.inflight, deadline, lat, errors);
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
  auto buckets = q->Buckets(o.topic);
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
  std::string store = "log";
};

void Read(const ReadOptions& o) {
  std::shared_ptr<packice::Peer> store;
  if (o.store == "memory") {
    store = packice::MemoryPeer::Create({.capacity_bytes = (o.mb << 20) * 2 + (256u << 20)});
  } else if (o.store == "disk") {
    auto disk = packice::FilePeer::Open({.dir = o.dir + "/objects", .sync = false});
    if (!disk.ok()) Die("open the disk store", disk.status());
    store = *disk;
  }
  uint64_t encoded = 0;
  {
    auto q = Open(o.dir, "", store);
    packice::TopicOptions t;
    t.fsync = packice::QueueFsync::kNever;
    if (store) t.storage = packice::QueueStorage::kTiered;
    if (Status s = q->CreateTopic("bench", t); !s.ok()) Die("create", s);
    packice::QueueRecord rec;
    rec.value.assign(o.size, 'r');
    const size_t per = std::max<size_t>(1, (4u << 20) / (o.size + 64));
    const std::vector<packice::QueueRecord> batch(per, rec);
    for (uint64_t bytes = 0; bytes < (o.mb << 20); bytes += per * o.size) {
      if (auto r = q->Append("bench", 0, batch); !r.ok()) Die("fill", r.status());
      encoded += per * (o.size + 18);  // the record encoding's 18 bytes of a keyless record
    }
    // Every full segment sealed (the background pass), before the read starts.
    const uint64_t want = store ? encoded / t.segment_bytes : 0;
    const auto until = Clock::now() + std::chrono::minutes(2);
    size_t have = 0;
    while (store && Clock::now() < until) {
      auto page = store->List({.prefix = "queue/"});
      have = page.ok() ? page->objects.size() : 0;
      if (have >= want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (have < want) {
      Die("seal", packice::Timeout(std::to_string(have) + " of " + std::to_string(want) +
                                   " segments sealed after 2 minutes"));
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
  auto q = Open(o.dir, "", store);
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
      "bench=queue op=read store=%s cache=%s size=%llu records=%llu value_bytes=%llu "
      "seconds=%.3f mb_per_s=%.0f\n",
      o.store.c_str(), o.cold ? "cold" : "warm", static_cast<unsigned long long>(o.size),
      static_cast<unsigned long long>(records), static_cast<unsigned long long>(bytes), secs,
      static_cast<double>(bytes) / secs / 1e6);
}

struct RangeOptions {
  std::string url;
  std::string topic = "range";
  uint64_t size = 128;
  int count = 100;
  int fill = 10000;
  int threads = 8;
  double seconds = 3;
};

void Range(const RangeOptions& o) {
  if (o.fill < o.count) {
    std::fprintf(stderr, "queue_bench range: --fill must be at least --count\n");
    std::exit(2);
  }
  auto q = Open("", o.url);
  packice::TopicOptions t;
  t.fsync = packice::QueueFsync::kNever;
  if (Status s = q->CreateTopic(o.topic, t); !s.ok()) Die("create", s);
  packice::QueueRecord rec;
  rec.value.assign(o.size, 'r');
  const std::vector<packice::QueueRecord> batch(1000, rec);
  for (int n = 0; n < o.fill; n += 1000) {
    const size_t k = std::min<size_t>(1000, static_cast<size_t>(o.fill - n));
    if (auto r = q->Append(o.topic, 0, std::span(batch).first(k)); !r.ok()) Die("fill", r.status());
  }
  char label[200];
  std::snprintf(label, sizeof label, "bench=queue op=range size=%llu count=%d",
                static_cast<unsigned long long>(o.size), o.count);
  const packice::QueuePosition from[] = {{0, 0}};
  RunThreads(label, o.threads, o.seconds,
             [&](int, Clock::time_point deadline, std::vector<double>& lat, uint64_t& errors) {
               uint64_t done = 0;
               while (Clock::now() < deadline) {
                 const auto a = Clock::now();
                 auto got = q->Read(o.topic, from, static_cast<size_t>(o.count),
                                    std::chrono::milliseconds(0));
                 lat.push_back(Micros(Clock::now() - a));
                 if (got.ok() && got->size() == 1 &&
                     (*got)[0].records.size() == static_cast<size_t>(o.count)) {
                   ++done;
                 } else {
                   ++errors;
                 }
               }
               return done;
             });
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
  a->add_option("--dir", append.dir, "the queue's directory, in-process");
  a->add_option("--url", append.url, "a node's queue (uds://..., grpc://...)");
  a->add_option("--topic", append.topic);
  size_option(a, &append.size, "--size");
  a->add_option("--threads", append.threads)->check(CLI::Range(1, 256));
  a->add_option("--batch", append.batch)->check(CLI::Range(1, 4096));
  a->add_option("--inflight", append.inflight, "PutBatchAsync calls in flight per writer")
      ->check(CLI::Range(1, 64));
  a->add_option("--seconds", append.seconds);
  a->add_option("--fsync", append.fsync)->check(CLI::IsMember({"always", "interval", "never"}));
  a->add_option("--interval-ms", append.interval_ms, "fsync interval: every so many ms")
      ->check(CLI::Range(1, 60000));
  a->add_option("--buckets", append.buckets)->check(CLI::Range(1, 1024));
  ReadOptions read;
  CLI::App* r = app.add_subcommand("read", "a sequential read of a filled topic");
  r->add_option("--dir", read.dir)->required();
  size_option(r, &read.size, "--size");
  r->add_option("--mb", read.mb)->check(CLI::Range(1, 65536));
  r->add_flag("--cold", read.cold, "drop the files' pages from the page cache first");
  r->add_option("--store", read.store, "log, or a tiered topic over a memory or disk store")
      ->check(CLI::IsMember({"log", "memory", "disk"}));
  RangeOptions range;
  CLI::App* g = app.add_subcommand("range", "readers of the same records again and again");
  g->add_option("--url", range.url, "a node's queue (uds://..., grpc://...)")->required();
  g->add_option("--topic", range.topic);
  size_option(g, &range.size, "--size");
  g->add_option("--count", range.count)->check(CLI::Range(1, 100000));
  g->add_option("--fill", range.fill)->check(CLI::Range(1, 10000000));
  g->add_option("--threads", range.threads)->check(CLI::Range(1, 256));
  g->add_option("--seconds", range.seconds);
  CLI11_PARSE(app, argc, argv);
  if (a->parsed() && append.dir.empty() == append.url.empty()) {
    std::fprintf(stderr, "queue_bench append: give one of --dir and --url\n");
    return 2;
  }
  if (a->parsed()) Append(append);
  if (g->parsed()) Range(range);
  if (r->parsed()) Read(read);
  return 0;
}
