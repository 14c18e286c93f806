#!/usr/bin/env bash
# HTTP throughput of packiced side by side with nginx serving the same bytes as files, in one
# run, on loopback; prints a markdown table with the ratios (docs/benchmarks.md).
#
#   bench/http_run.sh [BUILD_DIR]   (default: build-bench next to this script's repository)
#   PACKICED=path/to/packiced bench/http_run.sh     (use that binary; builds nothing)
#
# BUILD_DIR is configured (Release) and packiced built there if missing or stale, as bench/run.sh
# does. Installs nothing: wrk, nginx and curl must be there (scripts/install-deps.sh --bench
# installs Debian's wrk and nginx-light). nginx needs its dav module for the PUT rows (Debian's
# nginx-light has it; without it the PUT rows compare against `cat > file` and say so).
#
# Both servers listen on 127.0.0.1 only, with everything they own (objects, nginx's prefix and
# files, a data directory) in a fresh temporary directory; they are stopped by pid, and the
# directory removed, when the script exits. Needs about 3 GiB of free memory and 4 GiB of free
# disk under TMPDIR (default /tmp).
#
# Sections, each measuring packiced and nginx one after the other, in this order:
#   memory   packiced --store memory --io-threads 1   vs nginx, worker_processes 1
#   disk     packiced --store disk   --io-threads 1   vs the same nginx (DISK=0 skips it)
#   2 cores  packiced --store memory --io-threads 2   vs nginx, worker_processes 2 (THREADS2=0 skips)
#
# Knobs (environment): PACKICED, NGINX (nginx binary, default: nginx on PATH or /usr/sbin/nginx),
# DURATION (seconds per wrk run in the memory section, 10), SHORT (seconds per wrk run in the
# other sections, 5), REPS (1 GiB curl GETs per server, median taken, 3), PUT_REPS (1 GiB curl
# PUTs per server, median taken, 1; packiced's first creates the object the GETs read), DISK (1),
# THREADS2 (1), RAW_DIR (keep the raw outputs there).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
DURATION=${DURATION:-10}
SHORT=${SHORT:-5}
REPS=${REPS:-3}
PUT_REPS=${PUT_REPS:-1}
DISK=${DISK:-1}
THREADS2=${THREADS2:-1}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

need() { echo "http_run.sh: $1 not found; $2" >&2; exit 1; }
command -v wrk >/dev/null || need wrk "install Debian's wrk (scripts/install-deps.sh --bench)"
command -v curl >/dev/null || need curl "install Debian's curl"
[[ -x $NGINX ]] || need nginx "install Debian's nginx-light (scripts/install-deps.sh --bench)"
HAVE_DAV=0
if "$NGINX" -V 2>&1 | grep -q -- --with-http_dav_module; then HAVE_DAV=1; fi

# --- build -------------------------------------------------------------------------------------
if [[ -z ${PACKICED:-} ]]; then
  build() {
    if [[ ! -f $BUILD/build.ninja && ! -f $BUILD/Makefile ]]; then
      cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release || return
    fi
    cmake --build "$BUILD" --target packiced
  }
  if ! build_log=$(build 2>&1); then
    printf '%s\n' "$build_log" >&2
    echo "http_run.sh: build failed in $BUILD" >&2
    exit 1
  fi
  PACKICED=$BUILD/packiced
fi
if ! "$PACKICED" --help 2>/dev/null | grep -q -- --http; then
  echo "http_run.sh: $PACKICED has no --http (an old build?)" >&2
  exit 1
fi

# --- scaffolding -------------------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/packice-http-bench.XXXXXX")
WWW=$TMP/www          # nginx's files: the same bytes as packiced's objects
mkdir -p "$WWW" "$TMP/nginx/logs" "$TMP/nginx/body" "$TMP/raw"
P_PID='' N_PID='' CHILD=''
stop_pid() {  # stop_pid PID: SIGTERM, wait for it to go
  [[ -n $1 ]] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  if [[ -n $CHILD ]]; then kill "$CHILD" 2>/dev/null || true; fi
  stop_pid "$P_PID"
  stop_pid "$N_PID"
  if [[ -n ${RAW_DIR:-} ]]; then mkdir -p "$RAW_DIR" && cp -r "$TMP"/raw/. "$RAW_DIR"/; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
step() { echo "http_run.sh: $*" >&2; }
# Runs a measurement in the background and waits for it, so that Ctrl-C stops it at once.
run() {
  "$@" &
  CHILD=$!
  wait "$CHILD"
  CHILD=
}

free_port() {  # a loopback TCP port nobody listens on
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 30000))
    if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return; fi
  done
  echo "http_run.sh: no free port found" >&2
  exit 1
}
P_PORT=$(free_port)
N_PORT=$(free_port)
while [[ $N_PORT == "$P_PORT" ]]; do N_PORT=$(free_port); done
P_URL=http://127.0.0.1:$P_PORT/v1/objects
N_URL=http://127.0.0.1:$N_PORT/v1/objects

wait_http() {  # wait_http URL PID LOG: until URL answers, or fail if PID died
  for _ in $(seq 200); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then break; fi
    sleep 0.05
  done
  echo "http_run.sh: server did not start; its log:" >&2
  cat "$3" >&2
  exit 1
}

start_packiced() {  # start_packiced STORE IO_THREADS
  local data=$TMP/data
  rm -rf "$data" && mkdir -p "$data"
  # The node ignores SIGPIPE itself (a client closing mid-sendfile used to kill it); the script
  # checks after every measurement that it is still alive.
  (
    exec "$PACKICED" --socket "$TMP/packice.sock" --store "$1" --data-dir "$data" \
      --capacity 4G --pool 1G --io-threads "$2" --log-level warn --http "127.0.0.1:$P_PORT" \
      >>"$TMP/raw/packiced.log" 2>&1
  ) &
  P_PID=$!
  wait_http "http://127.0.0.1:$P_PORT/healthz" "$P_PID" "$TMP/raw/packiced.log"
}
stop_packiced() { stop_pid "$P_PID"; P_PID=; }

start_nginx() {  # start_nginx WORKERS
  local conf=$TMP/nginx/nginx.conf dav=
  if [[ $HAVE_DAV == 1 ]]; then
    dav="dav_methods PUT; create_full_put_path on; client_max_body_size 0;"
  fi
  cat >"$conf" <<EOF
daemon off;
user $(id -un) $(id -gn);
worker_processes $1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/raw/nginx.error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 100000000;
  default_type application/octet-stream;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/body;
  fastcgi_temp_path $TMP/nginx/body;
  uwsgi_temp_path $TMP/nginx/body;
  scgi_temp_path $TMP/nginx/body;
  server {
    listen 127.0.0.1:$N_PORT;
    location /v1/objects/ {
      alias $WWW/;
      $dav
    }
  }
}
EOF
  "$NGINX" -c "$conf" -p "$TMP/nginx" 2>>"$TMP/raw/nginx.error.log" &
  N_PID=$!
  wait_http "http://127.0.0.1:$N_PORT/" "$N_PID" "$TMP/raw/nginx.error.log"
}
stop_nginx() { stop_pid "$N_PID"; N_PID=; }

# CPU time (clock ticks, user + system) of a process and its children that are alive now
# (nginx's workers), by pid.
cpu_ticks() {
  local total=0 p f
  for p in "$1" $(pgrep -P "$1"); do
    f=$(cat /proc/"$p"/stat 2>/dev/null) || continue
    local fields
    read -r -a fields <<<"${f##*) }"  # after the command name: utime, stime are fields 14, 15
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}
HZ=$(getconf CLK_TCK)

# wrk's own report and the key=value line of done() below.
cat >"$TMP/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "wrk requests=%d duration_us=%d bytes=%d errors=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
EOF

OUT=$TMP/raw/results.txt   # one line a measurement: name key=value...
: >"$OUT"
record() { echo "$*" >>"$OUT"; }

# wrk_run NAME SERVER(p|n) PATH CONNS SECONDS: wrk, and the server's CPU over the run.
wrk_run() {
  local name=$1 who=$2 path=$3 conns=$4 secs=$5 url pid
  if [[ $who == p ]]; then url=$P_URL/$path pid=$P_PID; else url=$N_URL/$path pid=$N_PID; fi
  step "$name: wrk -t2 -c$conns -d${secs}s $url"
  local before after
  before=$(cpu_ticks "$pid")
  run wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s -s "$TMP/report.lua" "$url" >"$TMP/raw/$name.wrk"
  after=$(cpu_ticks "$pid")
  alive "$pid" "$name"
  local line
  line=$(grep '^wrk ' "$TMP/raw/$name.wrk")
  record "$name ${line#wrk } cpu_s=$(awk -v t=$((after - before)) -v hz="$HZ" 'BEGIN { print t / hz }')"
  if ! grep -q ' errors=0 ' <<<"$line"; then
    echo "http_run.sh: $name had errors:" >&2
    cat "$TMP/raw/$name.wrk" >&2
  fi
}

alive() {  # alive PID WHAT: fail, saying how, if the server PID has died during WHAT
  kill -0 "$1" 2>/dev/null && return 0
  local rc=0
  wait "$1" 2>/dev/null || rc=$?
  [[ $1 == "$P_PID" ]] && P_PID= || N_PID=
  echo "http_run.sh: the server (pid $1) died during $2, exit status $rc; its log:" >&2
  cat "$TMP/raw/packiced.log" "$TMP/raw/nginx.error.log" >&2
  exit 1
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# curl_get NAME URL: median download speed (bytes/s) of REPS GETs.
curl_get() {
  local name=$1 url=$2 speeds=()
  step "$name: $REPS x curl GET $url"
  for _ in $(seq "$REPS"); do
    local r
    r=$(curl -sS -o /dev/null -w '%{http_code} %{speed_download}' "$url")
    [[ ${r%% *} == 200 ]] || { echo "http_run.sh: $name: HTTP ${r%% *}" >&2; exit 1; }
    speeds+=("${r#* }")
  done
  record "$name bytes_per_s=$(printf '%s\n' "${speeds[@]}" | median)"
  if [[ $name == *.p ]]; then alive "$P_PID" "$name"; fi
}

# curl_put NAME URL FILE: median upload speed (bytes/s, measured as size / total time) of REPS PUTs.
curl_put() {
  local name=$1 url=$2 file=$3 size speeds=() reps=${4:-$PUT_REPS}
  size=$(stat -c %s "$file")
  step "$name: $reps x curl PUT $url"
  for _ in $(seq "$reps"); do
    local r
    r=$(curl -sS -o /dev/null -H 'Expect:' -w '%{http_code} %{time_total}' -T "$file" "$url")
    case ${r%% *} in 200 | 201 | 204) ;; *) echo "http_run.sh: $name: HTTP ${r%% *}" >&2; exit 1 ;; esac
    speeds+=("$(awk -v s="$size" -v t="${r#* }" 'BEGIN { printf "%.0f", s / t }')")
  done
  record "$name bytes_per_s=$(printf '%s\n' "${speeds[@]}" | median)"
  if [[ $name == *.p ]]; then alive "$P_PID" "$name"; fi
}

# time_cmd NAME BYTES CMD...: bytes/s of one run of CMD.
time_cmd() {
  local name=$1 bytes=$2 t0 t1
  shift 2
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  record "$name bytes_per_s=$(awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.0f", b / (z - a) }')"
}

put_objects() {  # put_objects NAME...: packiced gets the files of $WWW under the same keys
  local k code
  for k in "$@"; do
    code=$(curl -sS -o /dev/null -H 'Expect:' -w '%{http_code}' -T "$WWW/$k" "$P_URL/$k")
    case $code in 201 | 204) ;; *) echo "http_run.sh: PUT $k: HTTP $code" >&2; exit 1 ;; esac
  done
}

check_same() {  # both servers answer the same bytes for each key
  local k
  for k in "$@"; do
    if ! cmp -s <(curl -sS "$P_URL/$k") <(curl -sS "$N_URL/$k"); then
      echo "http_run.sh: packiced and nginx disagree on $k" >&2
      exit 1
    fi
  done
}

# --- data --------------------------------------------------------------------------------------
step "writing the objects' bytes (1 KiB, 1 MiB, 64 MiB, 1 GiB)"
head -c 1024 /dev/urandom >"$WWW/small1k"
head -c 1048576 /dev/urandom >"$WWW/large1m"
head -c 67108864 /dev/urandom >"$WWW/large64m"
for _ in $(seq 16); do cat "$WWW/large64m"; done >"$WWW/huge1g"
HUGE=$(stat -c %s "$WWW/huge1g")

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date +%s)

# --- memory section ----------------------------------------------------------------------------
# The 1 GiB PUTs come first: packiced's creates the object that the 1 GiB GETs read. Both read
# the body from the same file, in the page cache.
start_nginx 1
start_packiced memory 1
step "memory: filling packiced"
put_objects small1k large1m large64m
curl_put mem.put1g.p "$P_URL/huge1g" "$WWW/huge1g"
if [[ $HAVE_DAV == 1 ]]; then
  curl_put mem.put1g.n "$N_URL/put1g" "$WWW/huge1g"
else
  time_cmd mem.put1g.n "$HUGE" sh -c "cat '$WWW/huge1g' >'$WWW/put1g'"
fi
rm -f "$WWW/put1g"
check_same small1k large1m large64m huge1g
for conns in 64 8; do
  wrk_run "mem.small.c$conns.p" p small1k "$conns" "$DURATION"
  wrk_run "mem.small.c$conns.n" n small1k "$conns" "$DURATION"
done
for k in large1m large64m; do
  wrk_run "mem.$k.p" p "$k" 4 "$DURATION"
  wrk_run "mem.$k.n" n "$k" 4 "$DURATION"
done
curl_get mem.get1g.p "$P_URL/huge1g"
curl_get mem.get1g.n "$N_URL/huge1g"
stop_packiced

# --- disk section ------------------------------------------------------------------------------
if [[ $DISK == 1 ]]; then
  start_packiced disk 1
  step "disk: filling packiced (each seal is fdatasync'd)"
  put_objects small1k large64m
  curl_put disk.put1g.p "$P_URL/huge1g" "$WWW/huge1g"
  if [[ $HAVE_DAV == 1 ]]; then
    curl_put disk.put1g.n "$N_URL/put1g" "$WWW/huge1g"
  else
    time_cmd disk.put1g.n "$HUGE" sh -c "cat '$WWW/huge1g' >'$WWW/put1g'"
  fi
  rm -f "$WWW/put1g"
  step "disk: dd 1 GiB + fdatasync into the same filesystem (the disk's own speed)"
  time_cmd disk.dd "$HUGE" dd if="$WWW/huge1g" of="$TMP/dd1g" bs=1M conv=fdatasync status=none
  rm -f "$TMP/dd1g"
  check_same small1k large64m huge1g
  wrk_run disk.small.c64.p p small1k 64 "$SHORT"
  wrk_run disk.small.c64.n n small1k 64 "$SHORT"
  wrk_run disk.large64m.p p large64m 4 "$SHORT"
  wrk_run disk.large64m.n n large64m 4 "$SHORT"
  curl_get disk.get1g.p "$P_URL/huge1g"
  curl_get disk.get1g.n "$N_URL/huge1g"
  stop_packiced
fi

# --- two cores ---------------------------------------------------------------------------------
if [[ $THREADS2 == 1 ]]; then
  stop_nginx
  start_nginx 2
  start_packiced memory 2
  step "2 io threads / 2 workers: filling packiced"
  put_objects small1k large64m
  wrk_run t2.small.c64.p p small1k 64 "$SHORT"
  wrk_run t2.small.c64.n n small1k 64 "$SHORT"
  wrk_run t2.large64m.p p large64m 4 "$SHORT"
  wrk_run t2.large64m.n n large64m 4 "$SHORT"
  stop_packiced
fi
stop_nginx
ELAPSED=$(($(date +%s) - START))

# --- table -------------------------------------------------------------------------------------
# val NAME KEY: KEY's value on the line of measurement NAME.
val() {
  awk -v n="$1" -v key="$2" '$1 == n { for (i = 2; i <= NF; i++) { split($i, kv, "=");
    if (kv[1] == key) { print kv[2]; exit } } }' "$OUT"
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
rps() { calc "%.0f" "$(val "$1" requests) * 1e6 / $(val "$1" duration_us)"; }
# Body bytes/s of a large-object wrk run: every byte read (a response cut by the end of the run
# counts for what arrived), headers included (under 400 bytes a response).
mbs_wrk() { calc "%.0f" "$(val "$1" bytes) / $(val "$1" duration_us)"; }
mbs() { calc "%.0f" "$(val "$1" bytes_per_s) / 1e6"; }
cpu_us() { calc "%.1f" "$(val "$1" cpu_s) * 1e6 / $(val "$1" requests)"; }
lat() { calc "%.0f / %.0f µs" "$(val "$1" p50_us), $(val "$1" p99_us)"; }
ratio() { calc "%.2f" "$1 / $2"; }
lat_ratio() {
  calc "%.2f / %.2f" "$(val "$1" p50_us) / $(val "$2" p50_us), $(val "$1" p99_us) / $(val "$2" p99_us)"
}
row() { echo "| $1 | $2 | $3 | $(ratio "$2" "$3") |"; }
small_rows() {  # small_rows PREFIX LABEL
  local p=$1.p n=$1.n
  row "$2: requests/s" "$(rps "$p")" "$(rps "$n")"
  echo "| $2: latency p50 / p99 | $(lat "$p") | $(lat "$n") | $(lat_ratio "$p" "$n") |"
  echo "| $2: server CPU per request | $(cpu_us "$p") µs | $(cpu_us "$n") µs | $(ratio "$(cpu_us "$p")" "$(cpu_us "$n")") |"
}
if [[ $HAVE_DAV == 1 ]]; then PUT_N="nginx dav PUT (temp file + rename, no fsync)"; else
  PUT_N="no dav module: \`cat > file\` instead"; fi

cat <<EOF
Packice $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), $(date -u +%Y-%m-%dT%H:%MZ), Linux $(uname -r), $(nproc) cores, $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $(wrk --version 2>&1 | head -1 | awk '{print "wrk", $2}'), $(curl --version | head -1 | awk '{print $1, $2}'); loopback; wrk -t2 (its 2 threads share the 2 cores with the server); load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg); ${ELAPSED}s of measurements.

| workload | packiced | nginx | packiced / nginx |
|---|---:|---:|---:|
| **memory store, 1 io thread vs 1 worker** | | | |
$(small_rows mem.small.c64 "1 KiB GET, 64 conns, ${DURATION}s")
$(small_rows mem.small.c8 "1 KiB GET, 8 conns, ${DURATION}s")
$(row "1 MiB GET, 4 conns, MB/s" "$(mbs_wrk mem.large1m.p)" "$(mbs_wrk mem.large1m.n)")
$(row "64 MiB GET, 4 conns, MB/s" "$(mbs_wrk mem.large64m.p)" "$(mbs_wrk mem.large64m.n)")
$(row "1 GiB GET, one curl, MB/s (median of $REPS)" "$(mbs mem.get1g.p)" "$(mbs mem.get1g.n)")
$(row "1 GiB PUT, one curl, MB/s (nginx: $PUT_N)" "$(mbs mem.put1g.p)" "$(mbs mem.put1g.n)")
EOF
if [[ $DISK == 1 ]]; then
  cat <<EOF
| **disk store (fdatasync on seal), 1 io thread vs 1 worker** | | | |
$(small_rows disk.small.c64 "1 KiB GET, 64 conns, ${SHORT}s")
$(row "64 MiB GET, 4 conns, MB/s" "$(mbs_wrk disk.large64m.p)" "$(mbs_wrk disk.large64m.n)")
$(row "1 GiB GET, one curl, MB/s (median of $REPS)" "$(mbs disk.get1g.p)" "$(mbs disk.get1g.n)")
$(row "1 GiB PUT, one curl, MB/s (nginx: $PUT_N)" "$(mbs disk.put1g.p)" "$(mbs disk.put1g.n)")
| (baseline) dd 1 GiB + fdatasync, same filesystem, MB/s | $(mbs disk.dd) | | |
EOF
fi
if [[ $THREADS2 == 1 ]]; then
  cat <<EOF
| **memory store, 2 io threads vs 2 workers** | | | |
$(small_rows t2.small.c64 "1 KiB GET, 64 conns, ${SHORT}s")
$(row "64 MiB GET, 4 conns, MB/s" "$(mbs_wrk t2.large64m.p)" "$(mbs_wrk t2.large64m.n)")
EOF
fi
