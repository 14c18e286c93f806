// What the bench programs share: sizes on the command line and latency quantiles.
#ifndef PACKICE_BENCH_BENCH_UTIL_H_
#define PACKICE_BENCH_BENCH_UTIL_H_

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace packice::bench {

// "1048576", "1024K", "64M", "1G" (binary multiples).
inline uint64_t ParseSize(const std::string& text) {
  size_t used = 0;
  const uint64_t n = std::stoull(text, &used);
  std::string suffix = text.substr(used);
  if (!suffix.empty() && (suffix.back() == 'B' || suffix.back() == 'b')) suffix.pop_back();
  if (suffix.size() == 2 && suffix[1] == 'i') suffix.pop_back();
  if (suffix.empty()) return n;
  switch (suffix[0]) {
    case 'k':
    case 'K':
      return n << 10;
    case 'm':
    case 'M':
      return n << 20;
    case 'g':
    case 'G':
      return n << 30;
  }
  throw CLI::ValidationError("size", "bad size '" + text + "'");
}

// Value at quantile q of `v` (sorted in place).
inline double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace packice::bench

#endif  // PACKICE_BENCH_BENCH_UTIL_H_
