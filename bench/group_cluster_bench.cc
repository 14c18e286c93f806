// group_cluster_bench: Packice's cache groups in the setting bench/groupcache/main.go puts
// groupcache in (bench/groupcache_run.sh runs both, side by side): three nodes on loopback, one
// group, values loaded from one HTTP origin, the group used in-process by the application as
// groupcache's is.
//
//   group_cluster_bench --self HOST:PORT --peers A,B,C --origin http://O/{key}
//                       [--bench --keys K --clients C --seconds S] [--mirror-min-rate R]
//
// Each node serves its group to the others on a gRPC port (GroupService, as packiced does) and
// reaches theirs with NewGrpcGroupLoader; RingPeers picks owners on the same ring packiced
// uses. A benchmarking node first loads every key once (the misses, each loaded by its owner),
// then reads keys it owns and keys others own from C threads for S seconds each, and prints
// one JSON line per case (ops per second, p50 and p99 in microseconds), as the Go side does.
// Every node sets glibc malloc as packiced does (core/malloc_tuning.h).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cluster/ring.h"
#include "core/malloc_tuning.h"
#include "packice/cache.h"
#include "services/cache/group_registry.h"
#include "services/cache/http_origin.h"
#include "services/cache/ring_peers.h"
#include "transport/grpc/group_channel.h"
#include "transport/grpc/group_service.h"
#include "transport/grpc/grpc_server.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string self, peers, origin;
  bool bench = false;
  int keys = 1000, clients = 8;
  double seconds = 3;
  size_t size = 1024;  // for the report only: the origin decides
  double mirror_min_rate = packice::GroupOptions{}.mirror_min_rate;
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

void Die(const std::string& what) {
  std::fprintf(stderr, "group_cluster_bench: %s\n", what.c_str());
  std::exit(1);
}

void Report(const char* name, const Args& a, int clients, double ops, double p50, double p99,
            const std::string& extra = "") {
  std::printf(
      "{\"system\":\"packice\",\"case\":\"%s\",\"size\":%zu,\"clients\":%d,\"ops_per_s\":%.1f,"
      "\"p50_us\":%.2f,\"p99_us\":%.2f%s}\n",
      name, a.size, clients, ops, p50, p99, extra.c_str());
  std::fflush(stdout);
}

// Reads `keys` round robin from a.clients threads for a.seconds; reports the case, with how
// many of its reads were mirror hits and fetches from the owner.
void Run(packice::Group& group, const char* name, const std::vector<std::string>& keys,
         const Args& a) {
  const packice::GroupStats before = group.Stats();
  std::vector<std::vector<double>> lat(a.clients);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int c = 0; c < a.clients; ++c) {
    threads.emplace_back([&, c] {
      lat[c].reserve(1 << 20);
      for (size_t i = c; !stop.load(std::memory_order_relaxed); ++i) {
        const auto t = Clock::now();
        auto v = group.Get(keys[i % keys.size()]);
        if (!v.ok()) Die("get: " + v.status().ToString());
        lat[c].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto q = [&](double p) { return all[static_cast<size_t>(p * (all.size() - 1))]; };
  const packice::GroupStats after = group.Stats();
  const std::string extra =
      ",\"mirror_hits\":" + std::to_string(after.mirror_hits - before.mirror_hits) +
      ",\"peer_fetches\":" + std::to_string(after.peer_fetches - before.peer_fetches);
  Report(name, a, a.clients, all.size() / elapsed, q(0.5), q(0.99), extra);
}

}  // namespace

int main(int argc, char** argv) {
  packice::TuneMallocForLargeBlocks();  // as packiced does
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value after " + arg);
      return argv[++i];
    };
    // clang-format off
    if (arg == "--self") a.self = next();
    else if (arg == "--peers") a.peers = next();
    else if (arg == "--origin") a.origin = next();
    else if (arg == "--bench") a.bench = true;
    else if (arg == "--keys") a.keys = std::stoi(next());
    else if (arg == "--clients") a.clients = std::stoi(next());
    else if (arg == "--seconds") a.seconds = std::stod(next());
    else if (arg == "--size") a.size = std::stoul(next());
    else if (arg == "--mirror-min-rate") a.mirror_min_rate = std::stod(next());
    else Die("unknown argument " + arg);
    // clang-format on
  }
  if (a.self.empty() || a.peers.empty() || a.origin.empty()) {
    Die("usage: --self HOST:PORT --peers A,B,C --origin URL [--bench ...]");
  }

  auto registry = std::make_shared<packice::GroupRegistry>();
  packice::GroupConfig config;
  config.name = "bench";
  config.capacity_bytes = 1ull << 30;
  config.origin = a.origin;
  config.max_value_bytes = 2u << 20;
  if (a.mirror_min_rate == packice::GroupOptions{}.mirror_min_rate) {
    if (auto s = registry->Add(config); !s.ok()) Die(s.ToString());
  } else {
    // Another mirror threshold (a very high one: no mirror, every remote read a fetch).
    auto origin = packice::HttpOrigin::Create(config.origin, {});
    if (!origin.ok()) Die(origin.status().ToString());
    packice::GroupOptions options;
    options.max_value_bytes = config.max_value_bytes;
    options.mirror_min_rate = a.mirror_min_rate;
    auto g = std::make_shared<packice::Group>(config.name, config.capacity_bytes,
                                              (*origin)->Getter(), options);
    if (auto s = registry->Add(std::move(g), config); !s.ok()) Die(s.ToString());
  }
  auto group = *registry->Find("bench");

  // The ring of every node, and a loader for each of the others.
  const std::vector<std::string> members = Split(a.peers);
  packice::RingPeers::Loaders loaders;
  for (const std::string& m : members) {
    if (m == a.self) continue;
    auto loader = packice::NewGrpcGroupLoader(m, {});
    if (!loader.ok()) Die(loader.status().ToString());
    loaders.emplace(m, *loader);
  }
  auto peers = std::make_shared<packice::RingPeers>(a.self);
  peers->Update(packice::Ring(members), loaders);
  registry->SetPeers(peers);

  packice::GrpcServer server(packice::GrpcServerOptions{.listen = a.self});
  server.AddService(
      std::make_shared<packice::rpc::GroupService>(registry, packice::rpc::GroupServiceOptions{}));
  if (auto s = server.Start(); !s.ok()) Die(s.ToString());
  if (!a.bench) {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  }

  const packice::Ring ring(members);
  std::vector<std::string> local, remote, all;
  for (int i = 0; i < a.keys; ++i) {
    std::string key = "key-" + std::to_string(i);
    (ring.Owner(key) == a.self ? local : remote).push_back(key);
    all.push_back(std::move(key));
  }
  // The misses: every key once (a peer that is still starting is retried).
  const auto t = Clock::now();
  for (const std::string& key : all) {
    for (int attempt = 0;; ++attempt) {
      auto v = group->Get(key);
      if (v.ok()) break;
      if (attempt == 100) Die("get: " + v.status().ToString());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  Report("miss", a, 1, a.keys / std::chrono::duration<double>(Clock::now() - t).count(), 0, 0);
  Run(*group, "hit_local_owner", local, a);
  Run(*group, "hit_remote_owner", remote, a);
  server.Stop();
  std::_Exit(0);
}
