#!/usr/bin/env bash
# Installs the Debian packages Packice builds, tests and benchmarks with; skips what is there.
# Usage: scripts/install-deps.sh [--print] [--bench]
#   --bench  also what bench/ compares against (redis, nginx, wrk, b3sum, Google Benchmark)
#   --print  list the packages instead of installing (scripts/check-deps.py reads it)
set -euo pipefail

packages=(
  cmake ninja-build g++ ccache pkg-config
  clang libclang-rt-14-dev           # fuzzing (libFuzzer) and the clang -Wthread-safety build
  libabsl-dev libboost-dev libprotobuf-dev protobuf-compiler
  libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev
  libssl-dev openssl                 # TLS for the HTTP transport; tests make certificates
  libtomlplusplus-dev nlohmann-json3-dev libcurl4-openssl-dev  # config, JSON, the HTTP client
  libxxhash-dev                      # hashing (eviction shards, sharedfs file names, the ring)
  zlib1g-dev                         # CRC-32 of queue exports; the check of the log's CRC-32
  libisal-dev                        # CRC-32 of the log's records, fast (no CRC32C in Debian 12)
  librust-blake3-dev                 # BLAKE3 C sources (CAS digests), built by CMakeLists.txt
  libgrpc++-dev protobuf-compiler-grpc  # the gRPC transport and the etcd client
  etcd-server etcd-client            # cluster membership; tests start their own etcd
  bazel-bootstrap                    # tests/bazel_test.cc: Bazel with --remote_cache=grpc://
  curl                               # tests read nodes' /metrics
  python3 python3-dev pybind11-dev   # the Python binding (built for Debian's /usr/bin/python3)
  python3-pytest python3-numpy       # its tests (numpy checks zero-copy sharing)
  python3-redis python3-hiredis     # bench/python_bench.py's baseline (redis-py, C parser)
)
print=0
for arg in "$@"; do
  case $arg in
    --bench) packages+=(libbenchmark-dev redis-server redis-tools wrk nginx-light curl git
                        golang-go golang-github-golang-groupcache-dev b3sum bc) ;;
    --print) print=1 ;;
    *) echo "usage: $0 [--print] [--bench]" >&2; exit 2 ;;
  esac
done
if ((print)); then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "installing: ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
