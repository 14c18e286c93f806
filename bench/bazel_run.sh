#!/usr/bin/env bash
# Bazel served from a packiced remote cache against the same build served from --disk_cache, in
# one run: a workspace of GENRULES genrules (each writes BLOB_BYTES), built once to fill each
# cache, cleaned, and rebuilt ROUNDS times from it; prints a markdown table (docs/benchmarks.md).
#
#   bench/bazel_run.sh [BUILD_DIR]   (default: build-bench; packiced built there)
#
# Knobs (environment): GENRULES (200), BLOB_BYTES (65536), ROUNDS (3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
GENRULES=${GENRULES:-200}
BLOB_BYTES=${BLOB_BYTES:-65536}
ROUNDS=${ROUNDS:-3}

command -v bazel >/dev/null || { echo "bazel_run.sh: bazel not found; scripts/install-deps.sh" >&2; exit 1; }
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPACKICE_PYTHON=OFF >/dev/null
fi
cmake --build "$BUILD" --target packiced >/dev/null

WORK=$(mktemp -d)
NODE=
cleanup() {
  [[ -n $NODE ]] && kill "$NODE" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$WORK/ws"
: > "$WORK/ws/WORKSPACE"
{
  for i in $(seq 1 "$GENRULES"); do
    echo "genrule(name = \"g$i\", outs = [\"g$i.bin\"], cmd = \"head -c $BLOB_BYTES /dev/urandom > \$@\")"
  done
  echo -n 'filegroup(name = "all", srcs = ['
  for i in $(seq 1 "$GENRULES"); do echo -n "\":g$i\", "; done
  echo '])'
} > "$WORK/ws/BUILD"

GRPC=$(free_port)
"$BUILD/packiced" --socket "$WORK/node.sock" --data-dir "$WORK/data" --grpc "127.0.0.1:$GRPC" \
  --log-level warn > "$WORK/node.log" 2>&1 &
NODE=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$GRPC") 2>/dev/null && break; sleep 0.1; done

bz() { (cd "$WORK/ws" && bazel --nohome_rc --noworkspace_rc --batch \
          --output_user_root="$WORK/root" "$@" 2>&1); }
# Seconds of a clean rebuild with cache flag $1 (best of ROUNDS), after one build that fills it.
timed() {
  bz build "$1" //:all > "$WORK/fill.log" || { cat "$WORK/fill.log" >&2; exit 1; }
  local best=
  for _ in $(seq "$ROUNDS"); do
    bz clean > /dev/null
    local t0 t1
    t0=$(date +%s.%N)
    bz build "$1" //:all > "$WORK/build.log" || { cat "$WORK/build.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    local s
    s=$(python3 -c "print(round($t1 - $t0, 2))")
    if [[ -z $best ]] || python3 -c "import sys; sys.exit(0 if $s < $best else 1)"; then best=$s; fi
  done
  hits=$(grep -oE '[0-9]+ [a-z ]*cache hit' "$WORK/build.log" | head -1 || true)
  echo "$best|$hits"
}

remote=$(timed "--remote_cache=grpc://127.0.0.1:$GRPC")
disk=$(timed "--disk_cache=$WORK/disk_cache")
r=${remote%%|*}; d=${disk%%|*}
echo "| cache | clean rebuild of $GENRULES actions ($BLOB_BYTES bytes each), best of $ROUNDS | hits |"
echo "| --- | ---: | --- |"
echo "| packiced --remote_cache=grpc:// | ${r} s | ${remote#*|} |"
echo "| --disk_cache | ${d} s | ${disk#*|} |"
echo "| ratio (disk / packiced) | $(python3 -c "print(round($d / $r, 2))")x | |"
