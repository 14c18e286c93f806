// kv_bench: the KV's load generator (bench/kv_run.sh runs it beside redis-benchmark and etcd and
// prints the comparison table; see docs/benchmarks.md, "KV").
//
//   kv_bench load --url U --op put|get [--ns /bench/always] [--fsync always|interval|never]
//                 [--interval-ms 1000] [--write-mode linear|nolinear] [--clients 8]
//                 [--seconds 3] [--size 1024] [--keys 10000] [--depth 1]
//       N threads against a running packiced (ConnectKv), one KvClient (connection) each, random
//       keys of the key space, values of --size bytes. --depth 1: one call at a time per client
//       (Put / Get); --depth P: pipelined as redis-benchmark -P does it, P calls sent at once
//       (PutAsync / GetAsync), then their P futures awaited, then the next P. The namespace is
//       created with --fsync and --write-mode if it is missing. `get` first writes every key of
//       the key space (MultiPut), untimed. Ops/s; p50/p99 latency of each call (--depth 1) or of
//       each window of P calls.
//   kv_bench etcd-put --endpoint http://127.0.0.1:2379 [--clients 8] [--seconds 3] [--size 1024]
//                     [--keys 10000]
//       The same put load against etcd's v3 API (src/cluster/'s EtcdClient, one per thread, a
//       unary Put at a time). etcd syncs every write (its WAL fsync per raft batch).
//   kv_bench watch --url U [--ns /bench/watch] [--fsync always] [--events 1000] [--gap-us 1000]
//   kv_bench etcd-watch --endpoint E [--events 1000] [--gap-us 1000]
//       Event latency: a writer puts one key (a 1 KiB value holding the put's sequence number),
//       one put at a time with --gap-us between them; a watcher on another connection in the same
//       process receives the events. Latency = receive time - the time the put was sent.
//   kv_bench recovery --dir D [--bytes 1G] [--size 64K]
//       In-process (OpenKvStore, no node): fills one namespace with --bytes of puts (fsync never,
//       every key distinct, no snapshot: snapshot_after_bytes past the fill, so all of it is in
//       the log), closes the store, and times OpenKvStore twice: with the log in the page cache
//       (warm) and after dropping the log's pages from it (cold: POSIX_FADV_DONTNEED per file).
//
// Output: one line per result of space-separated key=value pairs (bench=... first), on stdout.
// Latencies in microseconds.
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "cluster/etcd_client.h"
#include "packice/kv.h"

namespace {

using Clock = std::chrono::steady_clock;
using packice::Status;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

using packice::bench::Micros;
using packice::bench::ParseSize;
using packice::bench::Quantile;
using packice::bench::RunThreads;
using packice::bench::Seconds;

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "kv_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

std::unique_ptr<packice::KvClient> MustConnect(const std::string& url) {
  auto c = packice::ConnectKv(url);
  if (!c.ok()) Die("connect " + url, c.status());
  return std::move(c).value();
}

std::unique_ptr<packice::cluster::EtcdClient> MustEtcd(const std::string& endpoint) {
  auto c = packice::cluster::EtcdClient::Create(
      {.endpoints = {endpoint}, .call_timeout = std::chrono::seconds(10)});
  if (!c.ok()) Die("etcd " + endpoint, c.status());
  return std::move(c).value();
}

// xorshift64*: a cheap per-thread key picker.
struct Rng {
  uint64_t s;
  uint64_t Next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ull;
  }
};

// Keys as redis-benchmark -r names them: "key:" and 12 digits.
std::string KeyName(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "key:%012llu", static_cast<unsigned long long>(i));
  return buf;
}

packice::KvFsync ParseFsync(const std::string& s) {
  if (s == "always") return packice::KvFsync::kAlways;
  if (s == "interval") return packice::KvFsync::kInterval;
  if (s == "never") return packice::KvFsync::kNever;
  throw CLI::ValidationError("fsync", "always, interval or never");
}

void EnsureNamespace(packice::KvStore& kv, const std::string& ns, const std::string& fsync,
                     int interval_ms, const std::string& write_mode) {
  packice::NamespaceOptions o;
  o.fsync = ParseFsync(fsync);
  o.fsync_interval = std::chrono::milliseconds(interval_ms);
  o.write_mode =
      write_mode == "nolinear" ? packice::KvWriteMode::kNoLinear : packice::KvWriteMode::kLinear;
  Status s = kv.CreateNamespace(ns, o);
  if (!s.ok() && s.code() != packice::StatusCode::kAlreadyExists) Die("create " + ns, s);
}

// --- load ------------------------------------------------------------------------------------

struct LoadOptions {
  std::string url;
  std::string op = "put";
  std::string ns = "/bench/always";
  std::string fsync = "always";
  int interval_ms = 1000;
  std::string write_mode = "linear";
  int clients = 8;
  double seconds = 3;
  uint64_t size = 1024;
  uint64_t keys = 10000;
  int depth = 1;
  bool batch = false;  // --batch: each window of --depth keys is one MultiGet / MultiPut
};

void Load(const LoadOptions& o) {
  {
    auto admin = MustConnect(o.url);
    EnsureNamespace(*admin, o.ns, o.fsync, o.interval_ms, o.write_mode);
    if (o.op == "get") {  // every key present, untimed
      const std::string value(o.size, 'v');
      for (uint64_t i = 0; i < o.keys;) {
        std::vector<packice::KvPutItem> items;
        for (; i < o.keys && items.size() < 256; ++i) items.push_back({KeyName(i), value, {}});
        auto r = admin->MultiPut(o.ns, items);
        if (!r.ok()) Die("fill", r.status());
        for (auto& one : *r) {
          if (!one.ok()) Die("fill", one.status());
        }
      }
    }
  }
  std::vector<std::unique_ptr<packice::KvClient>> conns;
  for (int t = 0; t < o.clients; ++t) conns.push_back(MustConnect(o.url));
  const bool put = o.op == "put";
  const std::string value(o.size, 'x');
  char label[256];
  std::snprintf(label, sizeof label,
                "bench=kv op=%s fsync=%s write_mode=%s depth=%d batch=%d size=%llu", o.op.c_str(),
                o.fsync.c_str(), o.write_mode.c_str(), o.depth, o.batch ? 1 : 0,
                static_cast<unsigned long long>(o.size));
  RunThreads(label, o.clients, o.seconds,
             [&](int t, Clock::time_point deadline, std::vector<double>& lat, uint64_t& errors) {
               packice::KvClient& kv = *conns[t];
               Rng rng{0x9e3779b97f4a7c15ull * static_cast<uint64_t>(t + 1)};
               uint64_t done = 0;
               std::vector<std::string> keys(static_cast<size_t>(o.depth));
               std::vector<packice::KvFuture<packice::PutResult>> puts;
               std::vector<packice::KvFuture<packice::KeyValue>> gets;
               while (Clock::now() < deadline) {
                 for (auto& k : keys) k = KeyName(rng.Next() % o.keys);
                 const Clock::time_point t0 = Clock::now();
                 if (o.depth == 1) {
                   bool ok = put ? kv.Put(o.ns, keys[0], value).ok() : kv.Get(o.ns, keys[0]).ok();
                   errors += ok ? 0 : 1;
                 } else if (o.batch && put) {
                   std::vector<packice::KvPutItem> items;
                   for (const auto& k : keys) items.push_back({k, value, {}});
                   auto r = kv.MultiPut(o.ns, items);
                   if (!r.ok()) {
                     errors += keys.size();
                   } else {
                     for (auto& one : *r) errors += one.ok() ? 0 : 1;
                   }
                 } else if (o.batch) {
                   auto r = kv.MultiGet(o.ns, keys);
                   if (!r.ok()) {
                     errors += keys.size();
                   } else {
                     for (auto& one : *r) errors += one.ok() ? 0 : 1;
                   }
                 } else if (put) {
                   puts.clear();
                   for (const auto& k : keys) puts.push_back(kv.PutAsync(o.ns, k, value));
                   for (auto& f : puts) errors += f.get().ok() ? 0 : 1;
                 } else {
                   gets.clear();
                   for (const auto& k : keys) gets.push_back(kv.GetAsync(o.ns, k));
                   for (auto& f : gets) errors += f.get().ok() ? 0 : 1;
                 }
                 lat.push_back(Micros(Clock::now() - t0));
                 done += static_cast<uint64_t>(o.depth);
               }
               return done;
             });
}

// --- etcd-put --------------------------------------------------------------------------------

struct EtcdPutOptions {
  std::string endpoint;
  int clients = 8;
  double seconds = 3;
  uint64_t size = 1024;
  uint64_t keys = 10000;
};

void EtcdPut(const EtcdPutOptions& o) {
  std::vector<std::unique_ptr<packice::cluster::EtcdClient>> conns;
  for (int t = 0; t < o.clients; ++t) {
    conns.push_back(MustEtcd(o.endpoint));
    auto first = conns.back()->Put("warmup", "x");  // connects before the clock starts
    if (!first.ok()) Die("etcd put", first.status());
  }
  const std::string value(o.size, 'x');
  char label[128];
  std::snprintf(label, sizeof label, "bench=etcd op=put depth=1 size=%llu",
                static_cast<unsigned long long>(o.size));
  RunThreads(label, o.clients, o.seconds,
             [&](int t, Clock::time_point deadline, std::vector<double>& lat, uint64_t& errors) {
               Rng rng{0x9e3779b97f4a7c15ull * static_cast<uint64_t>(t + 1)};
               uint64_t done = 0;
               while (Clock::now() < deadline) {
                 const std::string key = KeyName(rng.Next() % o.keys);
                 const Clock::time_point t0 = Clock::now();
                 errors += conns[t]->Put(key, value).ok() ? 0 : 1;
                 lat.push_back(Micros(Clock::now() - t0));
                 ++done;
               }
               return done;
             });
}

// --- watch -----------------------------------------------------------------------------------

struct WatchBenchOptions {
  std::string url;
  std::string endpoint;
  std::string ns = "/bench/watch";
  std::string fsync = "always";
  int events = 1000;
  int gap_us = 1000;
  uint64_t size = 1024;
};

// A value of `size` bytes that starts with the decimal sequence number and a space.
std::string SeqValue(int seq, uint64_t size) {
  std::string v = std::to_string(seq) + " ";
  v.resize(std::max<uint64_t>(size, v.size()), 'w');
  return v;
}

int ParseSeq(std::string_view v) { return std::atoi(std::string(v.substr(0, 12)).c_str()); }

// Drives the writer (`put(seq, value)`) for o.events puts, o.gap_us apart, after `warmup` puts
// that are not measured; `sent` gets each put's send time. Prints the latency line once the
// watcher side has filled `received` (or after 10 s).
void WatchRun(const std::string& label, const WatchBenchOptions& o,
              const std::function<bool(int, const std::string&)>& put,
              std::vector<std::atomic<int64_t>>& sent, std::vector<std::atomic<int64_t>>& received,
              std::atomic<int>& got) {
  constexpr int kWarmup = 20;
  for (int seq = 0; seq < o.events + kWarmup; ++seq) {
    const std::string value = SeqValue(seq, o.size);
    sent[seq].store(NowNs(), std::memory_order_release);
    if (!put(seq, value)) Die("watch put", packice::Internal("put failed"));
    std::this_thread::sleep_for(std::chrono::microseconds(o.gap_us));
  }
  const Clock::time_point until = Clock::now() + std::chrono::seconds(10);
  while (got.load() < o.events + kWarmup && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::vector<double> lat;
  for (int seq = kWarmup; seq < o.events + kWarmup; ++seq) {
    const int64_t r = received[seq].load(std::memory_order_acquire);
    if (r != 0) lat.push_back(static_cast<double>(r - sent[seq].load()) / 1e3);
  }
  const size_t n = lat.size();
  const double p50 = Quantile(lat, 0.50), p99 = Quantile(lat, 0.99);
  std::printf("%s events=%d received=%zu gap_us=%d p50_us=%.1f p99_us=%.1f\n", label.c_str(),
              o.events, n, o.gap_us, p50, p99);
  std::fflush(stdout);
}

void Watch(const WatchBenchOptions& o) {
  const size_t total = static_cast<size_t>(o.events) + 100;
  std::vector<std::atomic<int64_t>> sent(total), received(total);
  std::atomic<int> got{0};
  auto record = [&](std::string_view value) {
    const int64_t now = NowNs();
    const int seq = ParseSeq(value);
    if (seq >= 0 && static_cast<size_t>(seq) < total) {
      received[seq].store(now, std::memory_order_release);
      got.fetch_add(1);
    }
  };
  auto writer = MustConnect(o.url);
  EnsureNamespace(*writer, o.ns, o.fsync, 1000, "linear");
  auto watcher_conn = MustConnect(o.url);
  auto w = watcher_conn->Watch(o.ns, {.key = "w"});
  if (!w.ok()) Die("watch", w.status());
  std::unique_ptr<packice::KvWatcher> watcher = std::move(w).value();
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      auto evs = watcher->Next(Clock::now() + std::chrono::milliseconds(100));
      if (!evs.ok()) {
        if (evs.status().code() == packice::StatusCode::kTimeout) continue;
        break;
      }
      for (const packice::KvEvent& e : *evs) record(e.kv.value);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  WatchRun(
      "bench=kv-watch fsync=" + o.fsync, o,
      [&](int, const std::string& v) { return writer->Put(o.ns, "w", v).ok(); }, sent, received,
      got);
  stop = true;
  watcher->Cancel();
  reader.join();
}

void EtcdWatch(const WatchBenchOptions& o) {
  const size_t total = static_cast<size_t>(o.events) + 100;
  std::vector<std::atomic<int64_t>> sent(total), received(total);
  std::atomic<int> got{0};
  auto writer = MustEtcd(o.endpoint);
  auto watcher_client = MustEtcd(o.endpoint);
  auto w = watcher_client->Watch("watch/w", 0, [&](const packice::cluster::EtcdWatchUpdate& u) {
    const int64_t now = NowNs();
    for (const auto& e : u.events) {
      if (e.type != packice::cluster::EtcdEvent::Type::kPut) continue;
      const int seq = ParseSeq(e.kv.value);
      if (seq >= 0 && static_cast<size_t>(seq) < total) {
        received[seq].store(now, std::memory_order_release);
        got.fetch_add(1);
      }
    }
  });
  if (!w.ok()) Die("etcd watch", w.status());
  for (int i = 0; i < 500 && !(*w)->synced(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  WatchRun(
      "bench=etcd-watch", o,
      [&](int, const std::string& v) { return writer->Put("watch/w", v).ok(); }, sent, received,
      got);
  (*w)->Stop();
}

// --- recovery --------------------------------------------------------------------------------

struct RecoveryOptions {
  std::string dir;
  uint64_t bytes = 1ull << 30;
  uint64_t size = 64 << 10;
};

uint64_t DirBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

// Drops every file's pages under `dir` from the page cache (they are clean: the store synced
// them on close, and fdatasync here makes sure).
void DropCache(const std::string& dir) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

packice::KvOptions RecoveryKvOptions(const RecoveryOptions& o) {
  packice::KvOptions kv;
  kv.dir = o.dir;
  kv.snapshot_after_bytes = o.bytes * 4;  // never during the fill: all of it stays in the log
  kv.max_value_bytes = std::max<uint64_t>(kv.max_value_bytes, o.size);
  kv.reap_interval = packice::Duration(0);
  return kv;
}

void Recovery(const RecoveryOptions& o) {
  std::filesystem::remove_all(o.dir);
  const std::string ns = "/bench/recovery";
  const uint64_t count = o.bytes / o.size;
  {
    auto kv = packice::OpenKvStore(RecoveryKvOptions(o));
    if (!kv.ok()) Die("open", kv.status());
    packice::NamespaceOptions no;
    no.fsync = packice::KvFsync::kNever;
    no.write_mode = packice::KvWriteMode::kNoLinear;
    if (Status s = (*kv)->CreateNamespace(ns, no); !s.ok()) Die("create", s);
    const Clock::time_point t0 = Clock::now();
    constexpr int kThreads = 4;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::string value(o.size, static_cast<char>('a' + t));
        for (uint64_t i = static_cast<uint64_t>(t); i < count; i += kThreads) {
          std::memcpy(value.data(), &i, sizeof i);
          auto r = (*kv)->Put(ns, KeyName(i), value);
          if (!r.ok()) Die("fill put", r.status());
        }
      });
    }
    for (auto& th : threads) th.join();
    const double fill = Seconds(Clock::now() - t0);
    std::printf(
        "bench=kv-recovery phase=fill keys=%llu value_bytes=%llu seconds=%.2f mb_per_s=%.0f\n",
        static_cast<unsigned long long>(count), static_cast<unsigned long long>(o.size), fill,
        static_cast<double>(count * o.size) / 1e6 / fill);
  }
  // MB/s of what was logged (keys and values); the files are larger (preallocated segments).
  const uint64_t logged = count * (o.size + KeyName(0).size());
  const uint64_t on_disk = DirBytes(o.dir);
  for (const char* cache : {"warm", "cold"}) {
    if (std::string(cache) == "cold") DropCache(o.dir);
    const Clock::time_point t0 = Clock::now();
    auto kv = packice::OpenKvStore(RecoveryKvOptions(o));
    const double took = Seconds(Clock::now() - t0);
    if (!kv.ok()) Die("reopen", kv.status());
    auto list = (*kv)->ListNamespaces("/bench");
    if (!list.ok() || list->size() != 1) Die("list", list.status());
    const uint64_t keys = (*list)[0].keys;
    if (keys != count) {
      Die("reopen", packice::Internal("recovered " + std::to_string(keys) + " keys of " +
                                      std::to_string(count)));
    }
    std::printf(
        "bench=kv-recovery phase=open cache=%s keys=%llu logged_bytes=%llu dir_bytes=%llu "
        "seconds=%.3f mb_per_s=%.0f\n",
        cache, static_cast<unsigned long long>(keys), static_cast<unsigned long long>(logged),
        static_cast<unsigned long long>(on_disk), took, static_cast<double>(logged) / 1e6 / took);
    std::fflush(stdout);
  }
  std::filesystem::remove_all(o.dir);
}

}  // namespace

int main(int argc, char** argv) {
  // As packiced's main does (src/server/main.cc): blocks up to 32 MiB stay on the heap instead
  // of being mapped afresh (and page-faulted in) each time, so that the in-process recovery
  // runs with the node's allocator settings.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  CLI::App app{"kv_bench: the KV's load generator (docs/benchmarks.md, KV)"};
  app.require_subcommand(1);
  auto size_option = [](CLI::App* sub, uint64_t* target, const std::string& name) {
    sub->add_option_function<std::string>(
        name, [target](const std::string& s) { *target = ParseSize(s); }, "bytes (K, M, G)");
  };

  LoadOptions load;
  CLI::App* l = app.add_subcommand("load", "put or get load against a node");
  l->add_option("--url", load.url)->required();
  l->add_option("--op", load.op)->check(CLI::IsMember({"put", "get"}));
  l->add_option("--ns", load.ns);
  l->add_option("--fsync", load.fsync)->check(CLI::IsMember({"always", "interval", "never"}));
  l->add_option("--interval-ms", load.interval_ms);
  l->add_option("--write-mode", load.write_mode)->check(CLI::IsMember({"linear", "nolinear"}));
  l->add_option("--clients", load.clients)->check(CLI::Range(1, 256));
  l->add_option("--seconds", load.seconds);
  size_option(l, &load.size, "--size");
  l->add_option("--keys", load.keys)->check(CLI::Range(1, 100000000));
  l->add_option("--depth", load.depth)->check(CLI::Range(1, 1024));
  l->add_flag("--batch", load.batch, "each window of --depth keys is one MultiGet / MultiPut");

  EtcdPutOptions eput;
  CLI::App* ep = app.add_subcommand("etcd-put", "put load against etcd");
  ep->add_option("--endpoint", eput.endpoint)->required();
  ep->add_option("--clients", eput.clients)->check(CLI::Range(1, 256));
  ep->add_option("--seconds", eput.seconds);
  size_option(ep, &eput.size, "--size");
  ep->add_option("--keys", eput.keys)->check(CLI::Range(1, 100000000));

  WatchBenchOptions watch;
  CLI::App* w = app.add_subcommand("watch", "watch event latency on a node");
  w->add_option("--url", watch.url)->required();
  w->add_option("--ns", watch.ns);
  w->add_option("--fsync", watch.fsync)->check(CLI::IsMember({"always", "interval", "never"}));
  w->add_option("--events", watch.events)->check(CLI::Range(1, 10000000));
  w->add_option("--gap-us", watch.gap_us)->check(CLI::Range(0, 10000000));
  WatchBenchOptions ewatch;
  CLI::App* ew = app.add_subcommand("etcd-watch", "watch event latency on etcd");
  ew->add_option("--endpoint", ewatch.endpoint)->required();
  ew->add_option("--events", ewatch.events)->check(CLI::Range(1, 10000000));
  ew->add_option("--gap-us", ewatch.gap_us)->check(CLI::Range(0, 10000000));

  RecoveryOptions rec;
  CLI::App* r = app.add_subcommand("recovery", "time OpenKvStore over a large log");
  r->add_option("--dir", rec.dir)->required();
  size_option(r, &rec.bytes, "--bytes");
  size_option(r, &rec.size, "--size");

  CLI11_PARSE(app, argc, argv);
  if (l->parsed()) Load(load);
  if (ep->parsed()) EtcdPut(eput);
  if (w->parsed()) Watch(watch);
  if (ew->parsed()) EtcdWatch(ewatch);
  if (r->parsed()) Recovery(rec);
  return 0;
}
