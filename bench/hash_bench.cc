// hash_bench: Packice's HashFile (include/packice/cas.h) as a command, so that bench/hash_run.sh
// times it exactly as it times b3sum and sha256sum: one process per run, from start to exit.
//
//   hash_bench blake3|sha256 FILE...
//
// Prints "<64 hex digits>  FILE" per file (the format of b3sum and sha256sum, which the script
// compares), and on stderr the time HashFile itself took. Exits 1 on the first error.
#include <chrono>
#include <cstdio>
#include <string>

#include "packice/cas.h"

namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "hash_bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Fail("usage: hash_bench blake3|sha256 FILE...");
  auto algorithm = packice::ParseDigestAlgorithm(argv[1]);
  if (!algorithm.ok()) return Fail(algorithm.status().ToString());
  for (int i = 2; i < argc; ++i) {
    const auto begin = std::chrono::steady_clock::now();
    auto digest = packice::HashFile(argv[i], *algorithm);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - begin;
    if (!digest.ok()) return Fail(digest.status().ToString());
    std::printf("%s  %s\n", digest->hex().c_str(), argv[i]);
    std::fprintf(stderr, "hash_bench: %s %s: %llu bytes in %.4f s, %.3f GB/s\n", argv[1], argv[i],
                 static_cast<unsigned long long>(digest->size), took.count(),
                 static_cast<double>(digest->size) / 1e9 / took.count());
  }
  return 0;
}
