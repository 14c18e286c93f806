#!/usr/bin/env bash
# The queue (docs/queue.md) against the disk it writes to, in one run (issue 13;
# docs/benchmarks.md, "Queue"). Prints markdown tables:
#   1. the disk's sequential write speed: dd of 1 GiB with conv=fdatasync, in the same dir;
#   2. appends with fsync always (group commit), 8 writer threads, one bucket: 1 KiB and 64 KiB
#      records, one record per append and PutBatch batches; MB/s of record values, and as a
#      fraction of dd (target: >= 80% with batching);
#   3. a sequential read of 512 MiB of 1 KiB and 64 KiB records, warm and cold.
#
#   bench/queue_run.sh [BUILD_DIR]      DIR=/srv/disk bench/queue_run.sh   (default /var/tmp)
# Knobs: SECONDS_PER_PHASE (3), THREADS (8), DD_MB (1024), READ_MB (512).
# Not in this run yet: Redis Streams (XADD / XRANGE), the next step of issue 13.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
BASE=${DIR:-/var/tmp}
SECS=${SECONDS_PER_PHASE:-3}
THREADS=${THREADS:-8}
DD_MB=${DD_MB:-1024}
READ_MB=${READ_MB:-512}

if [[ ! -f $BUILD/build.ninja ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPACKICE_BENCH=ON >&2
fi
cmake --build "$BUILD" --target queue_bench >&2
QB=$BUILD/queue_bench
TMP=$(mktemp -d "$BASE/packice-queue.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
dd_out=$(dd if=/dev/zero of="$TMP/dd" bs=1M count="$DD_MB" conv=fdatasync 2>&1 | tail -1)
rm -f "$TMP/dd"
dd_bytes=$(awk '{print $1}' <<<"$dd_out")
dd_secs=$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) print $(i-1)}' <<<"$dd_out" | tr -d ,)
dd_mbs=$(python3 -c "print(f'{$dd_bytes / $dd_secs / 1e6:.0f}')")

field() { grep -o "$1=[0-9.]*" | head -1 | cut -d= -f2; }

echo "| append (fsync always, $THREADS writers, 1 bucket) | records/s | value MB/s | / dd ($dd_mbs MB/s) | target | p50 / p99 µs per append |"
echo "| --- | ---: | ---: | ---: | --- | --- |"
n=0
for spec in "1K 1" "1K 64" "64K 1" "64K 16"; do
  read -r size batch <<<"$spec"
  n=$((n + 1))
  out=$("$QB" append --dir "$TMP/a$n" --size "$size" --batch "$batch" --threads "$THREADS" \
    --seconds "$SECS")
  rps=$(field ops_per_s <<<"$out")
  mbs=$(grep append_total <<<"$out" | field value_mb_per_s)
  p50=$(field p50_us <<<"$out")
  p99=$(field p99_us <<<"$out")
  ratio=$(python3 -c "print(f'{$mbs / $dd_mbs * 100:.0f}%')")
  target=$([[ $batch != 1 ]] && echo "≥ 80%" || echo "")
  label=$([[ $batch == 1 ]] && echo "$size records, one per append" || echo "$size records, PutBatch of $batch")
  printf '| %s | %s | %s | %s | %s | %s / %s |\n' "$label" "$rps" "$mbs" "$ratio" "$target" "$p50" "$p99"
  rm -rf "$TMP/a$n"
done
echo
echo "| sequential read, $READ_MB MiB | page cache | MB/s |"
echo "| --- | --- | ---: |"
for size in 1K 64K; do
  for cold in "" --cold; do
    out=$("$QB" read --dir "$TMP/r" --size "$size" --mb "$READ_MB" $cold)
    printf '| %s records | %s | %s |\n' "$size" "$([[ -n $cold ]] && echo "dropped (cold)" || echo "warm")" "$(field mb_per_s <<<"$out")"
    rm -rf "$TMP/r"
  done
done
echo
echo "Packice $(git -C "$ROOT" rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ), $(uname -sr), $(nproc) cores, dd: $dd_out; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
