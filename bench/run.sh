#!/usr/bin/env bash
# Runs Packice (packiced + packice_bench) and Redis (redis-server + redis-benchmark) side by side
# on this machine, in one run, and prints a markdown table with the ratios (docs/benchmarks.md).
#
#   bench/run.sh [BUILD_DIR]        (default: build-bench next to this script's repository)
#
# BUILD_DIR is configured (Release) and built if packiced or packice_bench is missing or stale.
# Both servers listen on Unix sockets in a fresh temporary directory only; both are stopped,
# and the directory removed, when the script exits. Installs nothing: redis-server,
# redis-benchmark and redis-cli (Debian's redis-server and redis-tools) must be on PATH.
#
# Knobs (environment): IO_THREADS (packiced --io-threads, default 1: the best on a 2-core machine,
# see docs/benchmarks.md), CLIENTS (8),
# SMALL_SECONDS (5 per phase), SMALL_REQUESTS (redis-benchmark -n for 1 KiB, 200000),
# RAW_DIR (keep the raw outputs there instead of discarding them).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
IO_THREADS=${IO_THREADS:-1}
CLIENTS=${CLIENTS:-8}
SMALL_SECONDS=${SMALL_SECONDS:-5}
SMALL_REQUESTS=${SMALL_REQUESTS:-200000}

for tool in redis-server redis-benchmark redis-cli; do
  if ! command -v "$tool" >/dev/null; then
    echo "run.sh: $tool not found; install Debian's redis-server and redis-tools" \
      "(e.g. apt-get install redis-server) and run again" >&2
    exit 1
  fi
done

# --- build -------------------------------------------------------------------------------------
build() {
  if [[ ! -f $BUILD/build.ninja && ! -f $BUILD/Makefile ]]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release || return
  fi
  cmake --build "$BUILD" --target packiced packice_bench
}
if ! build_log=$(build 2>&1); then
  printf '%s\n' "$build_log" >&2
  echo "run.sh: build failed in $BUILD" >&2
  exit 1
fi
BENCH=$BUILD/packice_bench
PACKICED=$BUILD/packiced

# --- servers -----------------------------------------------------------------------------------
TMP=$(mktemp -d /tmp/packice-bench.XXXXXX)
PACKICE_SOCK=$TMP/packice.sock
REDIS_SOCK=$TMP/redis.sock
URL=uds://$PACKICE_SOCK
PIDS=()
CHILD=
THP=/sys/kernel/mm/transparent_hugepage/shmem_enabled
THP_FOUND=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$THP" 2>/dev/null || true)
restore_thp() { if [[ -n $THP_FOUND && -w $THP ]]; then echo "$THP_FOUND" >"$THP" 2>/dev/null || true; fi; }
cleanup() {
  if [[ -n $CHILD ]]; then kill "$CHILD" 2>/dev/null || true; fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n ${RAW_DIR:-} ]]; then mkdir -p "$RAW_DIR" && cp "$TMP"/*.out "$TMP"/*.log "$RAW_DIR"/; fi
  rm -rf "$TMP"
}
trap 'cleanup; restore_thp' EXIT
trap 'exit 130' INT TERM

# The object store core: the memory store only (no disk tier, nothing written outside $TMP).
STORE=()
if "$PACKICED" --help 2>/dev/null | grep -q -- --store; then STORE=(--store memory); fi
"$PACKICED" --socket "$PACKICE_SOCK" "${STORE[@]}" --capacity 2G --pool 1G \
  --io-threads "$IO_THREADS" --log-level warn >"$TMP/packiced.log" 2>&1 &
PIDS+=($!)
redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 --save '' \
  --appendonly no --dir "$TMP" --logfile "$TMP/redis.log" &
PIDS+=($!)
for _ in $(seq 100); do
  [[ -S $PACKICE_SOCK && -S $REDIS_SOCK ]] && break
  sleep 0.05
done
if [[ ! -S $PACKICE_SOCK || ! -S $REDIS_SOCK ]]; then
  echo "run.sh: servers did not start; see below" >&2
  cat "$TMP/packiced.log" "$TMP/redis.log" >&2
  exit 1
fi

# --- measurements ------------------------------------------------------------------------------
# Every packice_bench line is key=value pairs; redis-benchmark's are CSV. Raw outputs go to $TMP.
step() { echo "run.sh: $*" >&2; }
# Runs a measurement in the background and waits for it, so that Ctrl-C stops it at once.
run() {
  "$@" &
  CHILD=$!
  wait "$CHILD"
  CHILD=
}
OUT=$TMP/packice.out
RCSV=$TMP/redis.out
: >"$OUT"
: >"$RCSV"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
step "memcpy baseline"
run "$BENCH" memcpy --size 64M --iterations 30 >>"$OUT"

step "1 KiB, $CLIENTS clients: redis-benchmark"
run redis-benchmark -s "$REDIS_SOCK" -c "$CLIENTS" -n "$SMALL_REQUESTS" -d 1024 -P 1 -t set,get \
  --csv >>"$RCSV"
step "1 KiB, $CLIENTS clients: packice_bench (${SMALL_SECONDS}s put, ${SMALL_SECONDS}s get)"
run "$BENCH" small --url "$URL" --clients "$CLIENTS" --seconds "$SMALL_SECONDS" --size 1024 >>"$OUT"

step "1 KiB, $CLIENTS clients: do-nothing echo server (the transport's ceiling)"
run "$BENCH" echo --socket "$TMP/echo.sock" --clients "$CLIENTS" --seconds 3 --size 1024 >>"$OUT"
run "$BENCH" echo --socket "$TMP/echo.sock" --clients "$CLIENTS" --seconds 3 --size 1024 --poll >>"$OUT"

step "large gets: fill"
for size in 1M 64M; do
  "$BENCH" fill --url "$URL" --key "large$size" --size "$size" >>"$OUT"
done
head -c 1048576 /dev/urandom | redis-cli -s "$REDIS_SOCK" -x SET large1M >/dev/null
head -c 67108864 /dev/urandom | redis-cli -s "$REDIS_SOCK" -x SET large64M >/dev/null

step "large gets: redis-benchmark"
run redis-benchmark -s "$REDIS_SOCK" -c 1 -n 2000 --csv GET large1M >"$TMP/large1M.csv"
run redis-benchmark -s "$REDIS_SOCK" -c 1 -n 20 --csv GET large64M >"$TMP/large64M.csv"
sed 1d "$TMP/large1M.csv" "$TMP/large64M.csv" >>"$RCSV"
step "large gets: lean RESP client"
run "$BENCH" redis-get --socket "$REDIS_SOCK" --key large1M --iterations 2000 --seconds 5 >>"$OUT"
run "$BENCH" redis-get --socket "$REDIS_SOCK" --key large64M --iterations 40 --seconds 5 >>"$OUT"
step "large gets: packice_bench"
run "$BENCH" get --url "$URL" --key large1M --iterations 3000 --seconds 5 >>"$OUT"
run "$BENCH" get --url "$URL" --key large64M --iterations 100 --seconds 5 >>"$OUT"

step "64 MiB puts: packice_bench"
run "$BENCH" put --url "$URL" --size 64M --iterations 40 --warmup 5 >>"$OUT"

# --- large objects in 4 KiB and in 2 MiB pages -------------------------------------------------
# The same 64 MiB put and get against a node started with shmem's transparent huge pages off
# (Debian's default, shmem_enabled=never) and on (advise), in this run. Switching needs root;
# the setting found is restored on exit. Without root, only the setting found is measured.
large_objects() {  # PAGES (small|huge) SETTING
  local pages=$1 setting=$2 sock=$TMP/$1.sock pid
  if [[ $(sed -n 's/.*\[\(.*\)\].*/\1/p' "$THP" 2>/dev/null) != "$setting" ]]; then
    { [[ -w $THP ]] && echo "$setting" >"$THP" 2>/dev/null; } || return 0
  fi
  "$PACKICED" --socket "$sock" "${STORE[@]}" --capacity 2G --pool 1G --io-threads "$IO_THREADS" \
    --log-level warn >"$TMP/packiced-$pages.log" 2>&1 &
  pid=$!
  PIDS+=($pid)
  for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
  step "64 MiB put and get, $pages pages (shmem_enabled=$setting)"
  "$BENCH" fill --url "uds://$sock" --key big --size 64M | sed "s/^/pages=$pages /" >>"$OUT"
  run "$BENCH" get --url "uds://$sock" --key big --iterations 100 --seconds 5 >"$TMP/get-$pages.out"
  run "$BENCH" put --url "uds://$sock" --size 64M --iterations 40 --warmup 5 >"$TMP/put-$pages.out"
  sed "s/^/pages=$pages /" "$TMP/get-$pages.out" "$TMP/put-$pages.out" >>"$OUT"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}
large_objects small never
large_objects huge advise
restore_thp

step "memcpy baseline again"
run "$BENCH" memcpy --size 64M --iterations 30 >>"$OUT"

# --- table -------------------------------------------------------------------------------------
# val BENCH_SELECTOR KEY [NTH]: KEY's value on the NTH (default 1) line matching the selector.
val() {
  awk -v sel="$1" -v key="$2" -v nth="${3:-1}" '
    index(" " $0 " ", " " sel " ") { if (++seen == nth) {
      for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) { print kv[2]; exit } } } }
  ' "$OUT"
}
# rval TEST COLUMN: a redis-benchmark CSV column (2 rps, 5 p50 ms, 7 p99 ms) for test TEST.
rval() {
  awk -F'","' -v t="$1" -v c="$2" '{ gsub(/"/, "", $1); gsub(/"/, "", $NF) }
    $1 == t { print $c; exit }' "$RCSV"
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
gbs() { calc "%.2f GB/s" "$1 / 1e9"; }

memcpy1=$(val bench=memcpy bytes_per_s 1)
memcpy2=$(val bench=memcpy bytes_per_s 2)
memcpy=$(calc "%.0f" "($memcpy1 + $memcpy2) / 2")
read_bw=$(val bench=read bytes_per_s 1)

p_put=$(val op=put ops_per_s) p_get=$(val op=get ops_per_s)
echo_recv=$(val wait=recv ops_per_s) echo_poll=$(val wait=poll ops_per_s)
r_set=$(rval SET 2) r_get=$(rval GET 2)
lat() { calc "%.0f / %.0f µs" "$1, $2"; }

r1_rps=$(rval "GET large1M" 2) r64_rps=$(rval "GET large64M" 2)
r1_bw=$(calc "%.0f" "$r1_rps * 1048576") r64_bw=$(calc "%.0f" "$r64_rps * 67108864")
l1_bw=$(val "bench=redis-get key=large1M" bytes_per_s)
l64_bw=$(val "bench=redis-get key=large64M" bytes_per_s)
p1_bw=$(val "bench=get key=large1M" bytes_per_s) p64_bw=$(val "bench=get key=large64M" bytes_per_s)
put_bw=$(val bench=put bytes_per_s)
# pages_row PAGES: the 64 MiB rows of the run with 4 KiB (small) or 2 MiB (huge) pages.
pages_row() {
  local put get
  put=$(val "pages=$1 bench=put" bytes_per_s) get=$(val "pages=$1 bench=get" bytes_per_s)
  if [[ -z $put || -z $get ]]; then
    echo "| 64 MiB put / get, $2 | not measured (changing shmem_enabled needs root) | | | | |"
    return
  fi
  echo "| 64 MiB put, $2 | $(gbs "$put") | memcpy $(gbs "$memcpy") | $(calc "%.0f%% of memcpy" "100 * $put / $memcpy") | ≥ 70% of memcpy | $(verdict "$put" "$memcpy" 0.7) |"
  echo "| 64 MiB get, every byte read, $2 | $(gbs "$get") | summing read $(gbs "$read_bw") | $(calc "%.0f%% of the read" "100 * $get / $read_bw") | ≥ 50% of the read | $(verdict "$get" "$read_bw" 0.5) |"
}
ratio() { calc "%.2fx" "$1 / $2"; }
verdict() { awk -v r="$(calc "%.4f" "$1 / $2")" -v t="$3" \
  'BEGIN { if (r >= t) print "met"; else printf "missed (%.0f%% of target)\n", 100 * r / t }'; }

cat <<EOF
Packice $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), $(date -u +%Y-%m-%dT%H:%MZ), Linux $(uname -r), $(nproc) cores, $(redis-server --version | awk '{print $1, $2, $3}'), packiced --io-threads $IO_THREADS; load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)

| Benchmark | Packice | Redis | Packice / Redis | Target | Result |
|---|---|---|---|---|---|
| 1 KiB put, $CLIENTS clients, ops/s | $(calc %.0f "$p_put") | $(calc %.0f "$r_set") (SET) | $(ratio "$p_put" "$r_set") | ≥ 1x | $(verdict "$p_put" "$r_set" 1) |
| 1 KiB put p50 / p99 | $(lat "$(val op=put p50_us)" "$(val op=put p99_us)") | $(lat "$(rval SET 5)*1000" "$(rval SET 7)*1000") | | | |
| 1 KiB get, $CLIENTS clients, ops/s | $(calc %.0f "$p_get") | $(calc %.0f "$r_get") (GET) | $(ratio "$p_get" "$r_get") | ≥ 1x | $(verdict "$p_get" "$r_get" 1) |
| 1 KiB get p50 / p99 | $(lat "$(val op=get p50_us)" "$(val op=get p99_us)") | $(lat "$(rval GET 5)*1000" "$(rval GET 7)*1000") | | | |
| (ceiling) do-nothing 1 KiB echo server, same client model, ops/s | $(calc %.0f "$echo_recv") | $(calc %.0f "$r_get") (GET) | $(ratio "$echo_recv" "$r_get") | (ceiling) | |
| 1 MiB get, other process, every byte read | $(gbs "$p1_bw") | $(gbs "$r1_bw") (redis-benchmark) | $(ratio "$p1_bw" "$r1_bw") | ≥ 10x | $(verdict "$p1_bw" "$r1_bw" 10) |
| 1 MiB get vs a lean RESP client | $(gbs "$p1_bw") | $(gbs "$l1_bw") (redis-get) | $(ratio "$p1_bw" "$l1_bw") | ≥ 10x | $(verdict "$p1_bw" "$l1_bw" 10) |
| 64 MiB get, other process, every byte read | $(gbs "$p64_bw") | $(gbs "$r64_bw") (redis-benchmark) | $(ratio "$p64_bw" "$r64_bw") | ≥ 10x | $(verdict "$p64_bw" "$r64_bw" 10) |
| 64 MiB get vs a lean RESP client | $(gbs "$p64_bw") | $(gbs "$l64_bw") (redis-get) | $(ratio "$p64_bw" "$l64_bw") | ≥ 10x | $(verdict "$p64_bw" "$l64_bw" 10) |
| Get latency (open) p50, 1 MiB / 64 MiB | $(lat "$(val "bench=get key=large1M" open_p50_us)" "$(val "bench=get key=large64M" open_p50_us)") | $(lat "$(rval "GET large1M" 5)*1000" "$(rval "GET large64M" 5)*1000") | | independent of size | |
| 64 MiB put (create + write + seal), steady state, pages as found | $(gbs "$put_bw") | memcpy $(gbs "$memcpy") | $(calc "%.0f%% of memcpy" "100 * $put_bw / $memcpy") | ≥ 70% of memcpy | $(verdict "$put_bw" "$memcpy" 0.7) |
$(pages_row small "4 KiB pages (shmem_enabled=never, Debian's default)")
$(pages_row huge "2 MiB pages (shmem_enabled=advise)")

Baselines in the same run: single-thread memcpy $(gbs "$memcpy1") before and $(gbs "$memcpy2") after
(64 MiB, pre-faulted, median of 30); single-thread summing read $(gbs "$read_bw").
Echo ceiling with clients blocked in recv(): $(calc %.0f "$echo_recv") round trips/s (p50 $(val wait=recv p50_us) µs); waiting in poll() first: $(calc %.0f "$echo_poll") (p50 $(val wait=poll p50_us) µs).
Put breakdown (p50): create $(val bench=put create_p50_us) µs, copy $(val bench=put copy_p50_us) µs, seal $(val bench=put seal_p50_us) µs.
Get breakdown (p50), 1 MiB: open $(val "bench=get key=large1M" open_p50_us) µs, read $(val "bench=get key=large1M" read_p50_us) µs, release $(val "bench=get key=large1M" release_p50_us) µs; 64 MiB: open $(val "bench=get key=large64M" open_p50_us) µs, read $(val "bench=get key=large64M" read_p50_us) µs, release $(val "bench=get key=large64M" release_p50_us) µs.
EOF
