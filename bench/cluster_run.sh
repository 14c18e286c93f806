#!/usr/bin/env bash
# A read of another node's object (P2P) side by side with a read of a node's own, in one run, on
# loopback: etcd and two packiced nodes in a cluster; prints a markdown table (docs/benchmarks.md).
#
#   bench/cluster_run.sh [BUILD_DIR]   (default: build-bench; packiced and packice_bench built there)
#
# Node B owns a 64 MiB object. `packice_bench get` (Get, read every byte, Release) reads it on
# B's socket (local: a mapping of B's shared memory) and on A's socket (remote: A streams it from
# B over gRPC into a copy in its own shared memory, which the client maps), with mirrors off so
# that every remote read is a fetch, and then with mirrors on (a key read more than once a second
# is kept on A). Then the ring's lookup speed and the keys moved by a join or leave (ring_bench).
#
# Knobs (environment): SIZE (64M), ITERATIONS (20), RAW_DIR (keep raw outputs there).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
SIZE=${SIZE:-64M}
ITERATIONS=${ITERATIONS:-20}

command -v etcd >/dev/null || { echo "cluster_run.sh: etcd not found; scripts/install-deps.sh" >&2; exit 1; }
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPACKICE_PYTHON=OFF >/dev/null
fi
cmake --build "$BUILD" --target packiced packice_bench ring_bench >/dev/null

WORK=$(mktemp -d)
PIDS=()
NODE_PIDS=()
cleanup() {
  for p in "${NODE_PIDS[@]}" "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The value of metric $2 (its first series, labels or not) on the node whose HTTP port is $1.
metric() {
  curl -s "http://127.0.0.1:$1/metrics" |
    awk -v m="$2" '!found && ($1 == m || index($1, m "{") == 1) {print $2; found = 1}'
}

ec=$(free_port); ep=$(free_port)
etcd --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$ec" \
  --advertise-client-urls "http://127.0.0.1:$ec" --listen-peer-urls "http://127.0.0.1:$ep" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ep" \
  --initial-cluster "default=http://127.0.0.1:$ep" >"$WORK/etcd.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do curl -s "http://127.0.0.1:$ec/health" | grep -q true && break; sleep 0.1; done

start_nodes() {  # extra flags for both nodes
  stop_nodes
  for n in a b; do
    hp=$(free_port)
    eval "HTTP_$n=$hp"
    "$BUILD/packiced" --store memory --capacity 2G --socket "$WORK/$n.sock" --data-dir "$WORK/$n" \
      --grpc 127.0.0.1:0 --http "127.0.0.1:$hp" --cluster bench --etcd "http://127.0.0.1:$ec" \
      --cluster-copy-capacity 512M "$@" >"$WORK/$n.log" 2>&1 &
    NODE_PIDS+=($!)
  done
  for _ in $(seq 100); do
    [[ $(metric "$HTTP_a" packice_cluster_ring_nodes) == 2 && $(metric "$HTTP_b" packice_cluster_ring_nodes) == 2 ]] && return
    sleep 0.1
  done
  echo "cluster_run.sh: the nodes did not form a ring" >&2; exit 1
}
stop_nodes() {
  for p in "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  NODE_PIDS=()
}

# A key B owns: written through A, it lands on B's objects.
owned_by_b() {
  for i in $(seq 100); do
    local before after
    before=$(metric "$HTTP_b" packice_objects)
    "$BUILD/packice_bench" fill --url "uds://$WORK/a.sock" --key "big$i" --size "$SIZE" >/dev/null
    after=$(metric "$HTTP_b" packice_objects)
    if [[ $after != "$before" ]]; then KEY=big$i; return; fi
  done
  echo "cluster_run.sh: no key landed on node b" >&2; exit 1
}

get() {  # socket -> "bytes/s open_mean_us size" (Get + read every byte + Release; the Get alone)
  "$BUILD/packice_bench" get --url "uds://$WORK/$1.sock" --key "$KEY" --iterations "$ITERATIONS" |
    tr ' ' '\n' | awk -F= '$1 == "bytes_per_s" {b = $2} $1 == "open_mean_us" {o = $2} $1 == "size" {n = $2} END {print b, o, n}'
}

start_nodes --mirror-min-rate 1000000000
owned_by_b
local_bps=$(get b)
# The first fetches on a new connection are slower (gRPC's flow-control window grows with use;
# A's copy memory is touched for the first time): untimed.
get a >/dev/null
remote_bps=$(get a)
# Mirrors on: a key read more than once a second on A is kept there (the default threshold, 20
# reads a second, is for small keys; 64 MiB reads at remote speed come fewer than that).
start_nodes --mirror-min-rate 1
owned_by_b
get a >/dev/null  # warms the mirror
mirror_bps=$(get a)
stop_nodes

python3 - "$local_bps" "$remote_bps" "$mirror_bps" "$SIZE" <<'EOF'
import sys
(local, local_us, size), (remote, remote_us, _), (mirror, mirror_us, _) = (
    [float(v) for v in x.split()] for x in sys.argv[1:4])
gb = lambda v: f"{v / 1e9:.2f} GB/s"
get = lambda us: f"{us / 1e3:.1f} ms, {gb(size / (us / 1e6))}"
print(f"| {sys.argv[4]} object | Get (the bytes in a view on this node) | Get + read every byte + Release | / local |")
print("| --- | --- | --- | --- |")
print(f"| local (the node owns it) | {get(local_us)} | {gb(local)} | 1.00 |")
print(f"| remote (fetched from its owner each time) | {get(remote_us)} | {gb(remote)} | {remote / local:.2f} |")
print(f"| remote, mirrored (a hot key) | {get(mirror_us)} | {gb(mirror)} | {mirror / local:.2f} |")
EOF
echo
"$BUILD/ring_bench"
