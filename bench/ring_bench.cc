// ring_bench: lookup speed of the consistent-hash ring (src/cluster/ring.h) and the share of
// keys that move when a node joins or leaves.
//
// Lookups hash a pre-built key (XXH3) and binary-search the sorted points; each speed is the
// best of 3 runs, since the machine is shared. Movement is measured over 100k keys: ideal is
// 1/(N+1) for a join and 1/N for a leave. Prints one Markdown table. Runs in a few seconds.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cluster/ring.h"

namespace {

constexpr int kKeys = 100'000;
constexpr int kLookups = 2'000'000;

std::vector<std::string> NodeIds(int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back("10.0.0." + std::to_string(i) + ":7070");
  return ids;
}

double LookupNs(const packice::Ring& ring, const std::vector<std::string>& keys) {
  double best = 1e18;
  for (int run = 0; run < 3; ++run) {
    size_t sink = 0;  // keeps the lookups from being optimized away
    const auto begin = std::chrono::steady_clock::now();
    for (int i = 0; i < kLookups; ++i) sink += ring.Owner(keys[i % keys.size()])->size();
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - begin).count();
    if (sink == 0) std::printf("impossible\n");
    best = std::min(best, ns / kLookups);
  }
  return best;
}

double Moved(const packice::Ring& a, const packice::Ring& b, const std::vector<std::string>& keys) {
  int moved = 0;
  for (const std::string& k : keys) moved += *a.Owner(k) != *b.Owner(k);
  return static_cast<double>(moved) / keys.size();
}

}  // namespace

int main() {
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back("users/" + std::to_string(i));

  std::printf("%u vnodes per node, %d keys (\"users/<i>\"), %d lookups per run.\n\n",
              packice::Ring::kDefaultVnodes, kKeys, kLookups);
  std::printf(
      "| nodes | points | lookup ns/op | moved on join (ideal) | moved on leave (ideal) |\n");
  std::printf("|---:|---:|---:|---:|---:|\n");
  for (int n : {3, 5, 10, 50}) {
    const packice::Ring ring(NodeIds(n));
    std::vector<std::string> joined = NodeIds(n);
    joined.push_back("10.0.1.1:7070");
    std::vector<std::string> left = NodeIds(n);
    left.pop_back();
    std::printf("| %d | %u | %.1f | %.1f%% (%.1f%%) | %.1f%% (%.1f%%) |\n", n,
                n * packice::Ring::kDefaultVnodes, LookupNs(ring, keys),
                100 * Moved(ring, packice::Ring(joined), keys), 100.0 / (n + 1),
                100 * Moved(ring, packice::Ring(left), keys), 100.0 / n);
  }
  return 0;
}
