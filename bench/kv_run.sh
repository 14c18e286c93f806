#!/usr/bin/env bash
# The KV (docs/kv.md) side by side with Redis and etcd, in one run, on this machine (issue 12;
# docs/benchmarks.md, "KV"). Prints markdown tables:
#   1. 1 KiB SET/GET, 8 clients, 10,000 keys: redis-benchmark against redis-server in each of
#      its persistence modes, next to kv_bench against packiced with the matching fsync policy:
#        none     (--save '' --appendonly no)                 <-> fsync never
#        everysec (--appendonly yes --appendfsync everysec)   <-> fsync interval 1000 ms
#        always   (--appendonly yes --appendfsync always)     <-> fsync always
#      unpipelined (redis-benchmark -P 1, kv_bench --depth 1) and pipelined (-P 16, --depth 16:
#      16 PutAsync/GetAsync sent, then their 16 futures awaited, as redis-benchmark does it).
#      Also batched: --depth 16 --batch, each window of 16 keys one MultiGet / MultiPut.
#   2. durable puts against a single-member etcd 3.4 (kv_bench etcd-put: Debian ships no etcd
#      `benchmark` tool, so it is the project's EtcdClient, one per client thread).
#   3. watch event latency, Packice (KvClient Watch) and etcd (v3 Watch through EtcdClient).
#   4. recovery: OpenKvStore over a 1 GiB log (kv_bench recovery, in-process).
#
#   bench/kv_run.sh [BUILD_DIR]       (default: build next to this script's repository)
#   DIR=/srv/disk bench/kv_run.sh     (where the servers' files go; default /var/tmp: a disk,
#                                      since fsync is measured; not /tmp, which may be tmpfs)
#
# Knobs (environment): CLIENTS (8), SECONDS_PER_PHASE (3, each kv_bench phase), REQUESTS
# (redis-benchmark -n unpipelined, 100000), PIPELINED_REQUESTS (-n with -P 16, 500000),
# ALWAYS_REQUESTS / ALWAYS_PIPELINED_REQUESTS (SET -n under appendfsync always: 5000 / 40000),
# WATCH_EVENTS (1000), RECOVERY_BYTES (1G), RAW_DIR (keep the raw outputs there).
# Every server listens in a fresh directory only (Unix sockets; etcd on free loopback ports),
# is owned by its pid, and is stopped, and the directory removed, when the script exits.
# Needs redis-server, redis-benchmark, etcd (scripts/install-deps.sh --bench).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
BASE=${DIR:-/var/tmp}
CLIENTS=${CLIENTS:-8}
SECS=${SECONDS_PER_PHASE:-3}
REQUESTS=${REQUESTS:-100000}
PIPELINED_REQUESTS=${PIPELINED_REQUESTS:-500000}
ALWAYS_REQUESTS=${ALWAYS_REQUESTS:-5000}
ALWAYS_PIPELINED_REQUESTS=${ALWAYS_PIPELINED_REQUESTS:-40000}
WATCH_EVENTS=${WATCH_EVENTS:-1000}
RECOVERY_BYTES=${RECOVERY_BYTES:-1G}
KEYS=10000
DEPTH=16

source "$ROOT/bench/lib.sh"
need_tools redis-server redis-benchmark etcd curl python3

# --- build -------------------------------------------------------------------------------------
build() {
  if [[ ! -f $BUILD/build.ninja ]]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPACKICE_BENCH=ON ||
      return
  fi
  cmake --build "$BUILD" --target packiced kv_bench
}
if ! build_log=$(build 2>&1); then
  printf '%s\n' "$build_log" >&2
  echo "kv_run.sh: build failed in $BUILD" >&2
  exit 1
fi
KV_BENCH=$BUILD/kv_bench
PACKICED=$BUILD/packiced

# --- servers -----------------------------------------------------------------------------------
TMP=$(mktemp -d "$BASE/packice-kv.XXXXXX")
PACKICE_SOCK=$TMP/packice.sock
REDIS_SOCK=$TMP/redis.sock
URL=uds://$PACKICE_SOCK
PIDS=()
CHILD=
cleanup() {
  if [[ -n $CHILD ]]; then kill "$CHILD" 2>/dev/null || true; fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n ${RAW_DIR:-} ]]; then mkdir -p "$RAW_DIR" && cp "$TMP"/*.out "$TMP"/*.log "$RAW_DIR"/; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


OUT=$TMP/kv.out    # kv_bench lines (key=value pairs)
RCSV=$TMP/redis.out  # redis-benchmark CSV lines, each prefixed by "mode,pipeline,"
: >"$OUT"
: >"$RCSV"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# The KV only: the memory object store, the KV's files in $TMP/kv.
"$PACKICED" --socket "$PACKICE_SOCK" --data-dir "$TMP/data" --store memory --kv-dir "$TMP/kv" \
  --log-level warn >"$TMP/packiced.log" 2>&1 &
PIDS+=($!)
wait_socket "$PACKICE_SOCK" "$TMP/packiced.log"

redis_bench() {  # MODE PIPELINE TEST N
  local mode=$1 p=$2 t=$3 n=$4
  run redis-benchmark -s "$REDIS_SOCK" -c "$CLIENTS" -d 1024 -t "$t" -r "$KEYS" -n "$n" -P "$p" \
    --csv >"$TMP/rb.csv"
  sed 1d "$TMP/rb.csv" | sed "s/^/$mode,$p,/" >>"$RCSV"
}
kv_load() {  # MODE FSYNC OP DEPTH [--batch]
  run "$KV_BENCH" load --url "$URL" --ns "/bench/$1" --fsync "$2" --interval-ms 1000 --op "$3" \
    --depth "$4" ${5:+"$5"} --clients "$CLIENTS" --seconds "$SECS" --size 1024 --keys "$KEYS" |
    sed "s/^/mode=$1 /" >>"$OUT"
}

for mode in none everysec always; do
  case $mode in
    none) persist=(--appendonly no) fsync=never n_set=$REQUESTS n_pset=$PIPELINED_REQUESTS ;;
    everysec) persist=(--appendonly yes --appendfsync everysec) fsync=interval n_set=$REQUESTS
      n_pset=$PIPELINED_REQUESTS ;;
    always) persist=(--appendonly yes --appendfsync always) fsync=always n_set=$ALWAYS_REQUESTS
      n_pset=$ALWAYS_PIPELINED_REQUESTS ;;
  esac
  mkdir -p "$TMP/redis-$mode"
  redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 --save '' "${persist[@]}" \
    --dir "$TMP/redis-$mode" --logfile "$TMP/redis-$mode.log" &
  redis_pid=$!
  PIDS+=($redis_pid)
  wait_socket "$REDIS_SOCK" "$TMP/redis-$mode.log"
  step "$mode: redis-benchmark SET and GET, -P 1 and -P $DEPTH"
  redis_bench "$mode" 1 set "$n_set"
  redis_bench "$mode" "$DEPTH" set "$n_pset"
  redis_bench "$mode" 1 get "$REQUESTS"
  redis_bench "$mode" "$DEPTH" get "$PIPELINED_REQUESTS"
  stop "$redis_pid"
  rm -f "$REDIS_SOCK"
  step "$mode: kv_bench put and get (fsync $fsync), depth 1 and $DEPTH, ${SECS}s each"
  kv_load "$mode" "$fsync" put 1
  kv_load "$mode" "$fsync" put "$DEPTH"
  kv_load "$mode" "$fsync" get 1
  kv_load "$mode" "$fsync" get "$DEPTH"
  kv_load "$mode" "$fsync" put "$DEPTH" --batch
  kv_load "$mode" "$fsync" get "$DEPTH" --batch
done

# --- etcd --------------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ec=$(free_port)
ep=$(free_port)
while [[ $ep == "$ec" ]]; do ep=$(free_port); done
etcd --name kv-bench --data-dir "$TMP/etcd" --listen-client-urls "http://127.0.0.1:$ec" \
  --advertise-client-urls "http://127.0.0.1:$ec" --listen-peer-urls "http://127.0.0.1:$ep" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ep" \
  --initial-cluster "kv-bench=http://127.0.0.1:$ep" --initial-cluster-state new \
  --logger zap --log-level warn >"$TMP/etcd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do curl -s "http://127.0.0.1:$ec/health" | grep -q true && break; sleep 0.05; done
curl -s "http://127.0.0.1:$ec/health" | grep -q true ||
  { echo "kv_run.sh: etcd did not start; its log:" >&2; cat "$TMP/etcd.log" >&2; exit 1; }
step "etcd: $CLIENTS clients of 1 KiB puts, ${SECS}s"
run "$KV_BENCH" etcd-put --endpoint "http://127.0.0.1:$ec" --clients "$CLIENTS" --seconds "$SECS" \
  --size 1024 --keys "$KEYS" >>"$OUT"

step "watch latency: Packice (fsync always, never) and etcd, $WATCH_EVENTS events each"
run "$KV_BENCH" watch --url "$URL" --ns /bench/watch-always --fsync always \
  --events "$WATCH_EVENTS" >>"$OUT"
run "$KV_BENCH" watch --url "$URL" --ns /bench/watch-never --fsync never \
  --events "$WATCH_EVENTS" >>"$OUT"
run "$KV_BENCH" etcd-watch --endpoint "http://127.0.0.1:$ec" --events "$WATCH_EVENTS" >>"$OUT"
for pid in "${PIDS[@]}"; do stop "$pid"; done
PIDS=()

step "recovery: fill $RECOVERY_BYTES of 64 KiB puts in-process, reopen warm and cold"
run "$KV_BENCH" recovery --dir "$TMP/recovery" --bytes "$RECOVERY_BYTES" --size 64K >>"$OUT"

# --- tables ------------------------------------------------------------------------------------
python3 - "$OUT" "$RCSV" "$DEPTH" <<'PY'
import csv, sys
out_path, rcsv_path, depth = sys.argv[1], sys.argv[2], int(sys.argv[3])
kv = []
for line in open(out_path):
    kv.append(dict(f.split("=", 1) for f in line.split()))
redis = {}
for row in csv.reader(open(rcsv_path)):
    mode, p, test, rps, _avg, _min, p50, _p95, p99, _max = row
    redis[(mode, int(p), test.lower())] = (float(rps), float(p50) * 1000, float(p99) * 1000)

def find(**want):
    for r in kv:
        if all(r.get(k) == str(v) for k, v in want.items()):
            return r
    return None

def verdict(ratio, target):
    return "met" if ratio >= target else f"missed ({100 * ratio / target:.0f}% of target)"

fsync_of = {"none": "never", "everysec": "interval 1000 ms", "always": "always"}
redis_of = {"none": "no AOF", "everysec": "AOF everysec", "always": "AOF always"}
print("| persistence (Redis / Packice) | op | pipeline | Redis ops/s | Packice ops/s | ratio | "
      "target | result | Redis p50 / p99 µs | Packice p50 / p99 µs |")
print("| --- | --- | --- | ---: | ---: | ---: | --- | --- | --- | --- |")
for mode in ("none", "everysec", "always"):
    for op in ("put", "get"):
        for p, batch in ((1, 0), (depth, 0), (depth, 1)):
            r = redis.get((mode, p, "set" if op == "put" else "get"))
            k = find(mode=mode, op=op, depth=p, batch=batch)
            if r is None or k is None:
                continue
            ops = float(k["ops_per_s"])
            ratio = ops / r[0]
            target = 1.2 if p == 1 else 1.5
            pipe = ("none" if p == 1 else f"{p} (-P {p} / depth {p})" if not batch
                    else f"{p} (-P {p} / Multi{'Put' if op == 'put' else 'Get'} of {p})")
            print(f"| {redis_of[mode]} / fsync {fsync_of[mode]} | {'SET' if op == 'put' else 'GET'} / {op} | "
                  f"{pipe} | {r[0]:,.0f} | {ops:,.0f} | {ratio:.2f}x | ≥ {target}x | {verdict(ratio, target)} | "
                  f"{r[1]:.0f} / {r[2]:.0f} | {float(k['p50_us']):.0f} / {float(k['p99_us']):.0f} |")
print("\nLatency: per call unpipelined; per window of 16 calls pipelined or per Multi call "
      "(redis-benchmark: per request, from its pipeline's write).\n")

etcd = find(bench="etcd", op="put")
print("| durable 1 KiB puts, 8 clients | ops/s | p50 / p99 µs | / etcd | target | result |")
print("| --- | ---: | --- | ---: | --- | --- |")
if etcd:
    e = float(etcd["ops_per_s"])
    print(f"| etcd 3.4, Put per client (EtcdClient, gRPC) | {e:,.0f} | "
          f"{float(etcd['p50_us']):.0f} / {float(etcd['p99_us']):.0f} | 1.00x | | |")
    for p in (1, depth):
        k = find(mode="always", op="put", depth=p, batch=0)
        if k:
            ops = float(k["ops_per_s"])
            label = "Packice fsync always, unpipelined" if p == 1 else f"Packice fsync always, depth {p}"
            print(f"| {label} | {ops:,.0f} | {float(k['p50_us']):.0f} / {float(k['p99_us']):.0f} | "
                  f"{ops / e:.2f}x | ≥ 10x | {verdict(ops / e, 10)} |")

print("\n| watch: put sent → event received | p50 µs | p99 µs | events |")
print("| --- | ---: | ---: | ---: |")
for label, sel in (("Packice, fsync always", dict(bench="kv-watch", fsync="always")),
                   ("Packice, fsync never", dict(bench="kv-watch", fsync="never")),
                   ("etcd 3.4", dict(bench="etcd-watch"))):
    w = find(**sel)
    if w:
        print(f"| {label} | {float(w['p50_us']):.0f} | {float(w['p99_us']):.0f} | {w['received']} / {w['events']} |")

fill = find(bench="kv-recovery", phase="fill")
if fill:
    print(f"\nRecovery: {int(fill['keys']):,} puts of {int(fill['value_bytes']) // 1024} KiB "
          f"(fsync never, no snapshot) filled at {fill['mb_per_s']} MB/s; then OpenKvStore:\n")
    print("| log in page cache | keys + values logged | files (preallocated segments) | OpenKvStore s | MB/s (logged) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for cache in ("warm", "cold"):
        o = find(bench="kv-recovery", phase="open", cache=cache)
        if o:
            print(f"| {'yes' if cache == 'warm' else 'no (POSIX_FADV_DONTNEED)'} | "
                  f"{int(o['logged_bytes']):,} | {int(o['dir_bytes']):,} | {float(o['seconds']):.3f} | {o['mb_per_s']} |")
PY
echo
echo "Packice $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), $(date -u +%Y-%m-%dT%H:%MZ), Linux $(uname -r), $(nproc) cores, $(redis-server --version | awk '{print $1, $2, $3}'), etcd $(etcd --version | awk 'NR == 1 {print $3}'), files on $(df -T "$TMP" | awk 'NR == 2 {print $2}'); load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
