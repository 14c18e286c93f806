#!/usr/bin/env bash
# Packice's cache groups side by side with groupcache, in one run, on loopback; prints a
# markdown table with the ratios (docs/benchmarks.md).
#
#   bench/groupcache_run.sh [BUILD_DIR]   (default: build-bench; group_cluster_bench built there)
#
# Both systems get the same setting: three nodes (processes) on 127.0.0.1, one group, the same
# 1000 keys, values of 1 KiB, 64 KiB and 1 MiB loaded from the same HTTP origin (the Go
# program's origin mode), the group used in-process by the application on one node while the
# two others serve it. groupcache is Debian's (golang-github-golang-groupcache-dev), built with
# Debian's Go in GOPATH mode, offline. Measured on the benchmarking node: loading every key once
# (misses, each loaded by its owner), then hits of keys it owns and of keys another node owns,
# from CLIENTS threads (goroutines) for CASE_SECONDS each. Both systems keep copies of hot remote
# keys (groupcache's hotCache, Packice's mirrors), as they do by default.
#
# Knobs (environment): CLIENTS (8), CASE_SECONDS (3), KEYS (1000), SIZES ("1024 65536 1048576"),
# RAW_DIR (keep the raw JSON lines there). Installs nothing: scripts/install-deps.sh --bench
# installs golang-go and golang-github-golang-groupcache-dev.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
CLIENTS=${CLIENTS:-8}
SECONDS_PER_CASE=${CASE_SECONDS:-3}
KEYS=${KEYS:-1000}
SIZES=${SIZES:-1024 65536 1048576}

command -v go >/dev/null || { echo "groupcache_run.sh: go not found; scripts/install-deps.sh --bench" >&2; exit 1; }
[[ -d /usr/share/gocode/src/github.com/golang/groupcache ]] ||
  { echo "groupcache_run.sh: groupcache not found; scripts/install-deps.sh --bench" >&2; exit 1; }

if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPACKICE_PYTHON=OFF >/dev/null
fi
cmake --build "$BUILD" --target group_cluster_bench >/dev/null

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

export GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$WORK/gocache GOFLAGS=
go build -o "$WORK/groupcache_bench" "$ROOT/bench/groupcache/main.go"
GCB=$WORK/groupcache_bench
PCB=$BUILD/group_cluster_bench

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "groupcache_run.sh: nothing listens on port $1" >&2; exit 1
}
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
}

RAW=$WORK/raw.jsonl
: >"$RAW"
for size in $SIZES; do
  op=$(free_port)
  "$GCB" -mode origin -listen 127.0.0.1:"$op" -size "$size" & PIDS+=($!)
  wait_port "$op"
  origin="http://127.0.0.1:$op/{key}"

  # groupcache: two serving nodes, then the benchmarking one.
  p1=$(free_port); p2=$(free_port); p3=$(free_port)
  peers="http://127.0.0.1:$p1,http://127.0.0.1:$p2,http://127.0.0.1:$p3"
  for p in "$p2" "$p3"; do
    "$GCB" -self "http://127.0.0.1:$p" -peers "$peers" -origin "$origin" & PIDS+=($!)
    wait_port "$p"
  done
  "$GCB" -self "http://127.0.0.1:$p1" -peers "$peers" -origin "$origin" -bench -size "$size" \
    -keys "$KEYS" -clients "$CLIENTS" -duration "${SECONDS_PER_CASE}s" >>"$RAW"
  stop_all
  "$GCB" -mode origin -listen 127.0.0.1:"$op" -size "$size" & PIDS+=($!)
  wait_port "$op"

  # Packice: the same.
  p1=$(free_port); p2=$(free_port); p3=$(free_port)
  peers="127.0.0.1:$p1,127.0.0.1:$p2,127.0.0.1:$p3"
  for p in "$p2" "$p3"; do
    "$PCB" --self "127.0.0.1:$p" --peers "$peers" --origin "$origin" & PIDS+=($!)
    wait_port "$p"
  done
  "$PCB" --self "127.0.0.1:$p1" --peers "$peers" --origin "$origin" --bench --keys "$KEYS" \
    --clients "$CLIENTS" --seconds "$SECONDS_PER_CASE" --size "$size" >>"$RAW"
  stop_all
done
if [[ -n ${RAW_DIR:-} ]]; then mkdir -p "$RAW_DIR" && cp "$RAW" "$RAW_DIR/groupcache.jsonl"; fi

python3 - "$RAW" "$CLIENTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["system"], r["case"], r["size"]): r for r in rows}
def size(n): return f"{n // 1024} KiB" if n < 1 << 20 else f"{n >> 20} MiB"
print(f"| case | value | Packice ops/s | groupcache ops/s | ratio | Packice p50 / p99 µs | groupcache p50 / p99 µs |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for case in ("hit_local_owner", "hit_remote_owner", "miss"):
    for s in sorted({r["size"] for r in rows}):
        p, g = by.get(("packice", case, s)), by.get(("groupcache", case, s))
        if not p or not g: continue
        lat = lambda r: "-" if case == "miss" else f'{r["p50_us"]:.2f} / {r["p99_us"]:.2f}'
        print(f'| {case} | {size(s)} | {p["ops_per_s"]:,.0f} | {g["ops_per_s"]:,.0f} | '
              f'{p["ops_per_s"] / g["ops_per_s"]:.2f}x | {lat(p)} | {lat(g)} |')
print(f"\n{sys.argv[2]} clients; misses are sequential (one client), each loaded by its owner.")
EOF
