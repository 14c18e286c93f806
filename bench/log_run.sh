#!/usr/bin/env bash
# The log's append speed (bench/log_bench.cc: 8 appenders, group commit, 1 KiB and 64 KiB
# records, each sync policy) against dd writing to the same file system in the same run:
# `dd if=/dev/zero of=X bs=1M count=N conv=fdatasync`, N MiB and one fdatasync at the end.
# Prints a markdown table with MB/s (wall clock, from the first Append until everything is
# durable) and the ratio of the log to dd (docs/benchmarks.md); the queue's
# target is >= 80% of dd for 64 KiB records.
#
#   bench/log_run.sh [BUILD_DIR]           (default: build next to this script's repository)
#   LOG_BENCH=path/to/log_bench bench/log_run.sh   (a given binary; builds nothing)
#   DIR=/srv/disk bench/log_run.sh         (the file system to test; default /var/tmp)
#
# dd runs before and after the benchmark (DD_MIB, default 1024); the faster of the two counts,
# so the ratio errs against the log. Everything is written under a fresh directory in DIR and
# removed when the script exits. Needs Google Benchmark (scripts/install-deps.sh --bench).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
DD_MIB=${DD_MIB:-1024}
BASE=${DIR:-/var/tmp}

if [[ -z ${LOG_BENCH:-} ]]; then
  if [[ ! -f $BUILD/build.ninja ]]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPACKICE_BENCH=ON \
      >/dev/null
  fi
  cmake --build "$BUILD" --target log_bench >/dev/null
  LOG_BENCH=$BUILD/log_bench
fi

TMP=$(mktemp -d "$BASE/packice-log.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# MB/s (10^6 bytes) of one dd run, timed from start to exit (its fdatasync included).
dd_mbps() {
  local start end
  start=$(date +%s.%N)
  dd if=/dev/zero of="$TMP/dd.bin" bs=1M count="$DD_MIB" conv=fdatasync status=none
  end=$(date +%s.%N)
  rm -f "$TMP/dd.bin"
  python3 -c "print(f'{$DD_MIB * 1048576 / 1e6 / ($end - $start):.1f}')"
}

dd1=$(dd_mbps)
LOG_BENCH_DIR=$TMP "$LOG_BENCH" --benchmark_format=json --benchmark_out="$TMP/log.json" \
  --benchmark_out_format=json >/dev/null 2>"$TMP/wall.txt"
dd2=$(dd_mbps)

python3 - "$TMP/log.json" "$dd1" "$dd2" "$DD_MIB" "$(df -T "$TMP" | awk 'NR==2 {print $2}')" \
  "$TMP/wall.txt" <<'PY'
import json, sys
path, dd1, dd2, mib, fs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
# Wall-clock MB/s per (record bytes, policy), from the first Append to durable.
wall = {}
for line in open(sys.argv[6]):
    if line.startswith("log_bench_wall "):
        _, size, policy, mbps = line.split()
        wall[(int(size), int(policy))] = float(mbps)
dd = max(dd1, dd2)
policies = {0: "always", 1: "every 10 ms", 2: "never"}
print(f"dd bs=1M count={mib} conv=fdatasync on {fs}: {dd1:.0f} MB/s before, {dd2:.0f} MB/s after "
      f"(the ratio uses {dd:.0f})\n")
print("| record | sync policy | log MB/s | records/s | records per group commit | per fdatasync | log / dd |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for b in json.load(open(path))["benchmarks"]:
    if b.get("run_type") == "aggregate" or "bytes_per_second" not in b:
        continue
    args = dict(kv.split(":") for kv in b["name"].split("/")[1:] if ":" in kv)
    size, policy = int(args["bytes"]), int(args["policy"])
    mbps = wall[(size, policy)]
    print(f"| {size // 1024} KiB | {policies[policy]} | {mbps:.0f} | {mbps * 1e6 / size:,.0f} | "
          f"{b.get('per_batch', 0):.1f} | {b.get('per_sync', 0):.1f} | {100 * mbps / dd:.0f}% |")
PY
