// Tier benchmarks (issue: tiers): recovery time of a large data directory, demotion throughput
// against the disk's own sequential write speed, and get latency of hot against cold objects.
//
//   tier_bench [--dir DIR] [--objects 100000] [--demote-mib 512]
//
// Prints one `key=value` line per result. DIR (default: a fresh directory under /var/tmp)
// must be on the disk to measure.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "packice/client.h"
#include "packice/file_peer.h"
#include "packice/memory_peer.h"
#include "packice/tiered_peer.h"

namespace {

using Clock = std::chrono::steady_clock;
using packice::Status;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

std::shared_ptr<packice::FilePeer> OpenFilePeer(const std::string& dir, bool sync) {
  packice::FilePeerOptions o;
  o.dir = dir;
  o.capacity_bytes = 64ull << 30;
  o.sync = sync;
  o.background_threads = false;
  auto peer = packice::FilePeer::Open(o);
  Check(peer.status(), "open file peer");
  return *peer;
}

// Time to open a directory of `n` small objects (recovery), and to list them after.
void Recovery(const std::string& dir, int n) {
  {
    auto peer = OpenFilePeer(dir, /*sync=*/false);
    auto client = packice::Connect(peer);
    std::string value(1024, 'r');
    for (int i = 0; i < n; ++i) Check(client.Put("rec/" + std::to_string(i), value).status(), "put");
  }
  // Drop what the page cache holds of the directory so recovery reads from disk, when allowed.
  sync();
  if (FILE* f = std::fopen("/proc/sys/vm/drop_caches", "w")) {
    std::fputs("3\n", f);
    std::fclose(f);
  }
  auto t0 = Clock::now();
  auto peer = OpenFilePeer(dir, false);
  auto t1 = Clock::now();
  std::printf("recovery_objects=%d\nrecovery_seconds=%.3f\nrecovery_objects_per_s=%.0f\n",
              static_cast<int>(peer->GetStats().objects), Seconds(t1 - t0),
              peer->GetStats().objects / Seconds(t1 - t0));
}

// Sequential write of `bytes` to one file, then fdatasync: the disk's own speed.
double DiskWriteBytesPerSecond(const std::string& dir, uint64_t bytes) {
  const std::string path = dir + "/seqwrite.bin";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char> buf(8 << 20, 'w');
  auto t0 = Clock::now();
  for (uint64_t done = 0; done < bytes; done += buf.size()) {
    if (write(fd, buf.data(), buf.size()) < 0) std::exit(1);
  }
  fdatasync(fd);
  auto t1 = Clock::now();
  close(fd);
  unlink(path.c_str());
  return bytes / Seconds(t1 - t0);
}

void Demotion(const std::string& dir, uint64_t mib) {
  const uint64_t object = 4 << 20;
  const uint64_t total = mib << 20;
  packice::MemoryPeerOptions hot;
  hot.capacity_bytes = total + (64 << 20);
  hot.background_threads = false;
  packice::TieredPeerOptions options;
  options.background_threads = false;
  options.high_watermark = 0.99;
  options.low_watermark = 0.0;
  auto tiered = packice::TieredPeer::Create(packice::MemoryPeer::Create(hot),
                                            OpenFilePeer(dir + "/cold", /*sync=*/true), options);
  Check(tiered.status(), "tiered");
  auto client = packice::Connect(*tiered);
  std::vector<std::byte> data(object, std::byte{'d'});
  for (uint64_t i = 0; i < total / object; ++i) {
    Check(client.Put("d/" + std::to_string(i), data).status(), "put");
  }
  auto t0 = Clock::now();
  auto moved = (*tiered)->Demote(/*force=*/true);
  Check(moved.status(), "demote");
  // Demote(force) moves down to the low watermark (0): everything.
  auto t1 = Clock::now();
  const double demote = *moved / Seconds(t1 - t0);
  const double disk = DiskWriteBytesPerSecond(dir, total);
  std::printf("demote_bytes=%llu\ndemote_bytes_per_s=%.0f\ndisk_seq_write_bytes_per_s=%.0f\n"
              "demote_vs_disk=%.2f\n",
              static_cast<unsigned long long>(*moved), demote, disk, demote / disk);

  // Get latency: a hot and a cold 1 MiB object, open + touch one byte + release.
  std::vector<std::byte> one_mib(1 << 20, std::byte{'g'});
  Check(client.Put("lat/cold", one_mib).status(), "put");
  Check((*tiered)->Demote(true).status(), "demote");
  Check(client.Put("lat/hot", one_mib).status(), "put");
  for (const char* key : {"lat/hot", "lat/cold"}) {
    std::vector<double> us;
    for (int i = 0; i < 2000; ++i) {
      auto t = Clock::now();
      auto r = client.Get(key);
      Check(r.status(), "get");
      volatile std::byte b = r->data()[r->data().size() / 2];
      (void)b;
      r->Release().IgnoreError();
      us.push_back(Seconds(Clock::now() - t) * 1e6);
    }
    std::sort(us.begin(), us.end());
    std::printf("get_%s_p50_us=%.1f\nget_%s_p99_us=%.1f\n", key + 4, us[us.size() / 2], key + 4,
                us[us.size() * 99 / 100]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int objects = 100000;
  uint64_t demote_mib = 512;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--dir") dir = argv[i + 1];
    if (a == "--objects") objects = std::stoi(argv[i + 1]);
    if (a == "--demote-mib") demote_mib = std::stoull(argv[i + 1]);
  }
  if (dir.empty()) {
    char tmpl[] = "/var/tmp/packice-tier-bench-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  Recovery(dir + "/recovery", objects);
  Demotion(dir + "/demotion", demote_mib);
  std::filesystem::remove_all(dir);
  return 0;
}
