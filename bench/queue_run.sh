#!/usr/bin/env bash
# The queue (docs/queue.md) against the disk it writes to, in one run (issue 13;
# docs/benchmarks.md, "Queue"). Prints markdown tables:
#   1. the disk's sequential write speed: dd of 1 GiB with conv=fdatasync, in the same dir;
#   2. appends with fsync always (group commit), 8 writer threads, one bucket: 1 KiB and 64 KiB
#      records, one record per append, PutBatch batches, and PutBatchAsync with 4 batches in
#      flight per writer; MB/s of record values, and as a fraction of dd (target: >= 80% with
#      batching);
#   3. a sequential read of 512 MiB of 1 KiB and 64 KiB records: from the log, warm and cold,
#      and from a tiered topic's sealed objects in a memory store (hot) and a disk store
#      (warm and cold);
#   4. small (128 B) records against Redis Streams, both over a Unix socket, 8 clients:
#      redis-benchmark XADD (-P 1 and -P 64) next to queue_bench append against packiced (one
#      record per append, and PutBatch of 64), Redis without AOF next to fsync never and
#      AOF everysec next to fsync every 1000 ms; XRANGE s - + COUNT 100 next to a Read of 100
#      records (target: >= 1.5x Redis with batching).
#
#   bench/queue_run.sh [BUILD_DIR]      DIR=/srv/disk bench/queue_run.sh   (default /var/tmp)
# Knobs: SECONDS_PER_PHASE (3), THREADS (8), DD_MB (1024), READ_MB (512), XADD_N (200000:
# redis-benchmark -n for -P 1; 10x that with -P 64), XRANGE_N (50000).
# Needs redis-server and redis-benchmark (scripts/install-deps.sh --bench).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
BASE=${DIR:-/var/tmp}
SECS=${SECONDS_PER_PHASE:-3}
THREADS=${THREADS:-8}
DD_MB=${DD_MB:-1024}
READ_MB=${READ_MB:-512}
XADD_N=${XADD_N:-200000}
XRANGE_N=${XRANGE_N:-50000}
source "$ROOT/bench/lib.sh"
need_tools redis-server redis-benchmark python3

if [[ ! -f $BUILD/build.ninja ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPACKICE_BENCH=ON >&2
fi
cmake --build "$BUILD" --target queue_bench packiced >&2
QB=$BUILD/queue_bench
TMP=$(mktemp -d "$BASE/packice-queue.XXXXXX")
PIDS=()
CHILD=
cleanup() {
  if [[ -n $CHILD ]]; then kill "$CHILD" 2>/dev/null || true; fi
  for pid in "${PIDS[@]}"; do stop "$pid"; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
for spec in "1K 1 1" "1K 64 1" "1K 64 4" "64K 1 1" "64K 16 1" "64K 16 4"; do
  read -r size batch inflight <<<"$spec"
  n=$((n + 1))
  out=$("$QB" append --dir "$TMP/a$n" --size "$size" --batch "$batch" --threads "$THREADS" \
    --inflight "$inflight" --seconds "$SECS")
  rps=$(field ops_per_s <<<"$out")
  mbs=$(grep append_total <<<"$out" | field value_mb_per_s)
  p50=$(field p50_us <<<"$out")
  p99=$(field p99_us <<<"$out")
  ratio=$(python3 -c "print(f'{$mbs / $dd_mbs * 100:.0f}%')")
  target=$([[ $batch != 1 ]] && echo "≥ 80%" || echo "")
  label=$([[ $batch == 1 ]] && echo "$size records, one per append" || echo "$size records, PutBatch of $batch")
  if [[ $inflight != 1 ]]; then label="$label, $inflight in flight (PutBatchAsync)"; fi
  printf '| %s | %s | %s | %s | %s | %s / %s |\n' "$label" "$rps" "$mbs" "$ratio" "$target" "$p50" "$p99"
  rm -rf "$TMP/a$n"
done
echo
echo "| sequential read, $READ_MB MiB | read from | page cache | MB/s |"
echo "| --- | --- | --- | ---: |"
for size in 1K 64K; do
  for spec in "log " "log --cold" "memory " "disk " "disk --cold"; do
    read -r store cold <<<"$spec"
    out=$("$QB" read --dir "$TMP/r" --size "$size" --mb "$READ_MB" --store "$store" $cold)
    case $store in
      log) from="the log" ;;
      memory) from="tiered: sealed objects in memory (hot)" ;;
      disk) from="tiered: sealed objects on disk" ;;
    esac
    cache=$([[ $store == memory ]] && echo "-" || { [[ -n $cold ]] && echo "dropped (cold)" || echo "warm"; })
    printf '| %s records | %s | %s | %s |\n' "$size" "$from" "$cache" "$(field mb_per_s <<<"$out")"
    rm -rf "$TMP/r"
  done
done
echo

# --- 4. small records against Redis Streams ----------------------------------------------------
PSOCK=$TMP/packice.sock
RSOCK=$TMP/redis.sock
VALUE=$(head -c 128 /dev/zero | tr '\0' v)
rps() { sed 1d | head -1 | cut -d, -f2 | tr -d '"'; }  # redis-benchmark --csv: requests/s
ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }
echo
echo "| 128 B records, 8 clients, Unix socket | Redis Streams records/s | Packice records/s | Packice / Redis | target |"
echo "| --- | ---: | ---: | ---: | --- |"
for mode in none everysec; do
  case $mode in
    none) persist=(--appendonly no) fsync=(--fsync never) what="no AOF / fsync never" ;;
    everysec) persist=(--appendonly yes --appendfsync everysec)
      fsync=(--fsync interval --interval-ms 1000) what="AOF everysec / fsync every 1 s" ;;
  esac
  mkdir -p "$TMP/redis-$mode"
  redis-server --port 0 --unixsocket "$RSOCK" --unixsocketperm 700 --save '' "${persist[@]}" \
    --dir "$TMP/redis-$mode" --logfile "$TMP/redis-$mode.log" &
  redis_pid=$!
  PIDS+=($redis_pid)
  wait_socket "$RSOCK" "$TMP/redis-$mode.log"
  "$BUILD/packiced" --socket "$PSOCK" --data-dir "$TMP/data-$mode" --store memory \
    --queue-dir "$TMP/queue-$mode" --log-level warn >"$TMP/packiced-$mode.log" 2>&1 &
  packiced_pid=$!
  PIDS+=($packiced_pid)
  wait_socket "$PSOCK" "$TMP/packiced-$mode.log"
  for batch in 1 64; do
    n=$XADD_N
    [[ $batch == 1 ]] || n=$((XADD_N * 10))
    step "$mode: XADD -P $batch, append batch $batch"
    r=$(redis-benchmark -s "$RSOCK" -c "$THREADS" -n "$n" -P "$batch" --csv \
      XADD "s$batch" '*' v "$VALUE" | rps)
    out=$("$QB" append --url "uds://$PSOCK" --topic "a$batch" --size 128 --batch "$batch" \
      --threads "$THREADS" --seconds "$SECS" "${fsync[@]}")
    p=$(field ops_per_s <<<"$out")
    label=$([[ $batch == 1 ]] && echo "XADD -P 1 / one record per append" ||
      echo "XADD -P 64 / PutBatch of 64")
    target=$([[ $batch != 1 ]] && echo "≥ 1.5x" || echo "")
    printf '| %s, %s | %.0f | %s | %s | %s |\n' "$label" "$what" "$r" "$p" "$(ratio "$p" "$r")" "$target"
  done
  if [[ $mode == none ]]; then
    step "XRANGE COUNT 100, Read of 100"
    r=$(redis-benchmark -s "$RSOCK" -c "$THREADS" -n "$XRANGE_N" --csv XRANGE s1 - + COUNT 100 | rps)
    out=$("$QB" range --url "uds://$PSOCK" --size 128 --count 100 --threads "$THREADS" \
      --seconds "$SECS")
    p=$(python3 -c "print(f'{$(field ops_per_s <<<"$out") * 100:.0f}')")
    r=$(python3 -c "print(f'{$r * 100:.0f}')")
    printf '| XRANGE COUNT 100 / Read of 100, from the start | %s | %s | %s | |\n' "$r" "$p" "$(ratio "$p" "$r")"
  fi
  stop "$packiced_pid"
  stop "$redis_pid"
  PIDS=()
done

echo
echo "Packice $(git -C "$ROOT" rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ), $(uname -sr), $(nproc) cores, dd: $dd_out; $(redis-server --version | awk '{print $1, $2, $3}'); load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
