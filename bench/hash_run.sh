#!/usr/bin/env bash
# HashFile (include/packice/cas.h) against the usual command-line hashers, on one file, in one
# run: `b3sum --num-threads 1` (BLAKE3, Rust, one thread as HashFile is) and `sha256sum`
# (coreutils), against bench/hash_bench (HashFile with blake3, then sha256). Prints a markdown
# table with GB/s and the ratios Packice / baseline (docs/benchmarks.md).
#
#   bench/hash_run.sh [BUILD_DIR]           (default: build next to this script's repository)
#   HASH_BENCH=path/to/hash_bench bench/hash_run.sh   (a given binary; builds nothing)
#
# BUILD_DIR is configured (RelWithDebInfo, the build the tests use) if it is not, and
# hash_bench built in it. The file (SIZE_MIB of random bytes, default 1024) is made in a fresh
# directory under /tmp, read once so that every run hashes the page cache and not the disk, and
# removed when the script exits. Each command runs RUNS times (default 3), round robin, one
# process per run timed from start to exit; the best run counts. Every run's digest is checked
# against the baseline's. Installs nothing: b3sum (Debian's b3sum) must be on PATH.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}

for tool in b3sum sha256sum; do
  if ! command -v "$tool" >/dev/null; then
    echo "hash_run.sh: $tool not found; install Debian's ${tool/sha256sum/coreutils}" \
      "(scripts/install-deps.sh --bench) and run again" >&2
    exit 1
  fi
done

if [[ -z ${HASH_BENCH:-} ]]; then
  if [[ ! -f $BUILD/build.ninja ]]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build "$BUILD" --target hash_bench >/dev/null
  HASH_BENCH=$BUILD/hash_bench
fi

TMP=$(mktemp -d /tmp/packice-hash.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
FILE=$TMP/blob
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$FILE"
BYTES=$((SIZE_MIB << 20))
cat "$FILE" >/dev/null

# The commands, by name; BASELINE_OF names the command whose digest (and speed) each is held to.
declare -A COMMAND=(
  [b3sum]="b3sum --num-threads 1"
  [sha256sum]="sha256sum"
  [packice_blake3]="$HASH_BENCH blake3"
  [packice_sha256]="$HASH_BENCH sha256"
)
ORDER=(b3sum packice_blake3 sha256sum packice_sha256)
declare -A BASELINE_OF=([packice_blake3]=b3sum [packice_sha256]=sha256sum)
declare -A BEST_NS=()
declare -A DIGEST=()

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for run in $(seq "$RUNS"); do
  for name in "${ORDER[@]}"; do
    echo "hash_run.sh: run $run/$RUNS: ${COMMAND[$name]} ($SIZE_MIB MiB)" >&2
    read -r -a argv <<<"${COMMAND[$name]}"
    start=$(date +%s%N)
    "${argv[@]}" "$FILE" >"$TMP/out" 2>/dev/null
    ns=$(($(date +%s%N) - start))
    read -r digest _ <"$TMP/out"
    DIGEST[$name]=$digest
    if [[ -z ${BEST_NS[$name]:-} || $ns -lt ${BEST_NS[$name]} ]]; then BEST_NS[$name]=$ns; fi
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

for name in "${!BASELINE_OF[@]}"; do
  base=${BASELINE_OF[$name]}
  if [[ ${DIGEST[$name]} != "${DIGEST[$base]}" ]]; then
    echo "hash_run.sh: $name printed ${DIGEST[$name]}, $base ${DIGEST[$base]}" >&2
    exit 1
  fi
done

gbps() { awk -v b="$BYTES" -v ns="$1" 'BEGIN { printf "%.2f", b / ns }'; }  # bytes/ns = GB/s
secs() { awk -v ns="$1" 'BEGIN { printf "%.3f s", ns / 1e9 }'; }
echo
echo "$SIZE_MIB MiB of random bytes in the page cache, best of $RUNS; load $LOAD_BEFORE before," \
  "$LOAD_AFTER after; $(nproc) CPUs: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo
echo "| hash | command | best time | GB/s | Packice / baseline |"
echo "| --- | --- | ---: | ---: | ---: |"
for name in "${ORDER[@]}"; do
  hash=BLAKE3
  [[ $name == *sha256* ]] && hash=SHA-256
  ratio=""
  if [[ -n ${BASELINE_OF[$name]:-} ]]; then
    ratio=$(awk -v p="${BEST_NS[$name]}" -v b="${BEST_NS[${BASELINE_OF[$name]}]}" \
      'BEGIN { printf "%.2fx", b / p }')
  fi
  shown=${COMMAND[$name]/$HASH_BENCH/hash_bench}
  echo "| $hash | \`$shown\` | $(secs "${BEST_NS[$name]}") | $(gbps "${BEST_NS[$name]}") | $ratio |"
done
echo
for name in packice_blake3 packice_sha256; do
  base=${BASELINE_OF[$name]}
  awk -v n="$name" -v base="$base" -v p="${BEST_NS[$name]}" -v b="${BEST_NS[$base]}" 'BEGIN {
    r = b / p
    verdict = (r >= 0.95) ? "met" : sprintf("missed by %.0f%%", (0.95 - r) / 0.95 * 100)
    printf "%s: %.2fx %s (target 0.95x): %s\n", n, r, base, verdict
  }'
done
