#!/usr/bin/env bash
# Blob uploads and downloads of one packiced's CAS over REAPI gRPC (ByteStream, and batches for
# what fits one) and over HTTP (/v1/cas, libcurl), side by side in one run with the baselines:
# the same bytes written by `dd ... conv=fdatasync` (an upload is bounded by the node's
# fdatasync of the blob) and GET of the same size of static file from nginx (Debian's
# nginx-light) with the same libcurl code. Plus FindMissingBlobs of 10,000 digests (half of
# them present) over gRPC. Prints a markdown table with GB/s and the ratios to the baselines
# (docs/benchmarks.md).
#
#   bench/cas_run.sh [BUILD_DIR]        (default: build next to this script's repository)
#   SIZES="1 1024" RUNS=3 bench/cas_run.sh
#
# Everything lives in a fresh directory on the disk (under /var/tmp, the node's default data
# directory's file system: uploads are fsync-bound, so a tmpfs would measure something else),
# removed at exit; packiced and nginx are children of this script, stopped by pid. The node
# serves --store memory for objects and its CAS in that directory (fdatasync on, as by default).
# KEEP=1 keeps the directory (the logs, results.tsv). Installs nothing: nginx (nginx-light)
# must be installed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
SIZES=${SIZES:-"1 1024"}
export RUNS=${RUNS:-3}
NGINX=${NGINX:-/usr/sbin/nginx}
[[ -x $NGINX ]] || { echo "cas_run.sh: $NGINX not found: install nginx-light" >&2; exit 1; }

if [[ ! -f $BUILD/build.ninja ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" --target cas_bench packiced >/dev/null

TMP=$(mktemp -d /var/tmp/packice-casbench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [[ -n ${KEEP:-} ]] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The baseline's files, and dd's write of each with fdatasync (from the page cache to the disk).
mkdir -p "$TMP/www" "$TMP/nginx"
chmod 755 "$TMP" "$TMP/www"  # nginx's worker may run as another user (nobody)
declare -A DD
for mib in $SIZES; do
  head -c "$((mib << 20))" /dev/urandom >"$TMP/www/blob-$mib"
  cat "$TMP/www/blob-$mib" >/dev/null
  best=
  for _ in $(seq "$RUNS"); do
    rm -f "$TMP/dd.out"
    start=$(date +%s.%N)
    dd if="$TMP/www/blob-$mib" of="$TMP/dd.out" bs=1M conv=fdatasync status=none
    t=$(echo "$(date +%s.%N) - $start" | bc)
    if [[ -z $best ]] || (( $(echo "$t < $best" | bc) )); then best=$t; fi
  done
  DD[$mib]=$best
  rm -f "$TMP/dd.out"
done

NGINX_PORT=$(free_port)
cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  server { listen 127.0.0.1:$NGINX_PORT; root $TMP/www; }
}
EOF
"$NGINX" -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" 2>"$TMP/nginx/stderr" &
PIDS+=($!)

"$BUILD/packiced" --socket "$TMP/packice.sock" --data-dir "$TMP/data" --store memory \
  --capacity 256M --cas-dir "$TMP/cas" --cas-capacity 32G --http 127.0.0.1:0 \
  --grpc 127.0.0.1:0 --log-level info >"$TMP/packiced.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q 'event=ready' "$TMP/packiced.log" && break; sleep 0.1; done
HTTP=$(grep -o 'http_url=[^ ]*' "$TMP/packiced.log" | head -1 | cut -d= -f2)
GRPC=$(grep -o 'grpc_url=grpc://[^ ]*' "$TMP/packiced.log" | head -1 | cut -d/ -f3)
[[ -n $HTTP && -n $GRPC ]] || { cat "$TMP/packiced.log" >&2; exit 1; }
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$NGINX_PORT/blob-${SIZES%% *}" -o /dev/null && break; sleep 0.1; done

# shellcheck disable=SC2086
"$BUILD/cas_bench" "$GRPC" "$HTTP" "http://127.0.0.1:$NGINX_PORT" $SIZES >"$TMP/results.tsv"

echo "| op | size | path | GB/s (ms) | vs baseline |"
echo "| --- | --- | --- | --- | --- |"
while IFS=$'\t' read -r op path bytes secs; do
  mib=$((bytes >> 20))
  if [[ $op == find_missing_10000 ]]; then
    printf '| FindMissingBlobs | 10,000 digests | %s | %.1f ms | target 20 ms |\n' "$path" \
      "$(echo "$secs * 1000" | bc -l)"
    continue
  fi
  rate=$(echo "$bytes / $secs / 1000000000" | bc -l)
  if [[ $op == upload ]]; then
    base=${DD[$mib]}
    name="dd conv=fdatasync"
  else
    base=$(awk -F'\t' -v b="$bytes" '$1=="download" && $2=="baseline_get" && $3==b {print $4}' \
      "$TMP/results.tsv")
    name="nginx GET"
  fi
  ratio=$(echo "$base / $secs" | bc -l)
  printf '| %s | %s MiB | %s | %.2f (%.1f ms) | %.2fx %s |\n' "$op" "$mib" "$path" "$rate" \
    "$(echo "$secs * 1000" | bc -l)" "$ratio" "$name"
done <"$TMP/results.tsv"
for mib in $SIZES; do
  printf '| dd write + fdatasync | %s MiB | disk | %.2f (%.1f ms) | baseline |\n' "$mib" \
    "$(echo "($mib * 1048576) / ${DD[$mib]} / 1000000000" | bc -l)" "$(echo "${DD[$mib]} * 1000" | bc -l)"
done
