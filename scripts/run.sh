#!/usr/bin/env bash
# One command: installs what is missing, builds, starts a node with embedded defaults and runs
# the seed's walkthrough against it (process A writes an object, process B reads it zero-copy),
# in C++ and then in Python (the `packice` package, built into build/python).
# The node keeps running afterwards; the last lines say where it listens, how to use it from
# Python and how to stop it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build

"$root/scripts/install-deps.sh"
PACKICE_TARGETS="packiced packice_cli packice_walkthrough packice_python" \
  "$root/scripts/build.sh" "$build"

# 2 MiB pages for large objects: shmem's transparent huge pages in `advise` mode apply only to
# mappings that ask for them (MADV_HUGEPAGE, as packiced and its clients do), so no other
# program changes; a 64 MiB put or get is then about 25x faster (docs/benchmarks.md). Debian's
# default is `never`. As root, this script switches `never` to `advise` (until the next boot);
# PACKICE_HUGE_PAGES=keep leaves the setting alone. Otherwise it says how.
thp=/sys/kernel/mm/transparent_hugepage/shmem_enabled
if [[ -r $thp ]] && grep -q '\[never\]' "$thp" && [[ ${PACKICE_HUGE_PAGES:-} != keep ]]; then
  if [[ -w $thp ]] && echo advise >"$thp" 2>/dev/null; then
    echo "== 2 MiB pages for shared memory: $thp set to advise (was never; echo never > $thp undoes it)"
  else
    echo "== 4 KiB pages only: as root, 'echo advise > $thp' makes large objects about 25x faster"
  fi
fi

socket=${PACKICE_SOCKET:-${XDG_RUNTIME_DIR:-/tmp}/packice-$(id -u)-demo.sock}
pidfile=$socket.pid
logfile=$socket.log
# A node this script started earlier is replaced by one from this build.
if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  kill "$(cat "$pidfile")"
  for _ in $(seq 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.05; done
fi

"$build/packiced" --socket "$socket" >"$logfile" 2>&1 &
pid=$!
echo "$pid" >"$pidfile"
for _ in $(seq 200); do
  [[ -S "$socket" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$logfile" >&2; exit 1; }
  sleep 0.05
done
[[ -S "$socket" ]] || { echo "packiced did not start; log:" >&2; cat "$logfile" >&2; exit 1; }

echo "== packiced (pid $pid) listening on uds://$socket"
echo "== walkthrough"
"$build/packice_walkthrough" --url "uds://$socket"
# The interpreter the binding was built for (Debian's /usr/bin/python3 unless configured so).
python=$(sed -n 's/^Python3_EXECUTABLE:[A-Z]*=//p' "$build/CMakeCache.txt")
python=${python:-/usr/bin/python3}
# `import packice` for that interpreter with no set-up: a .pth file in its /usr/local site
# directory names build/python (needs write access there; otherwise PYTHONPATH, printed below).
site=$("$python" -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null || true)
if [[ -n "$site" ]] && mkdir -p "$site" 2>/dev/null && echo "$build/python" >"$site/packice.pth"; then
  echo "== import packice: $site/packice.pth -> $build/python"
fi
echo "== walkthrough in Python ($python)"
PYTHONPATH="$build/python${PYTHONPATH:+:$PYTHONPATH}" "$python" "$root/examples/walkthrough.py" \
  --url "uds://$socket"
echo "== the node holds:"
"$build/packice" --url "uds://$socket" ls
echo "== the namespaced KV (seed 001): a namespace, a put, a prefix read, its history"
ns="/demo/run-$$"
"$build/packice" --url "uds://$socket" kv ns create "$ns" --engine memtable
"$build/packice" --url "uds://$socket" kv put "$ns" config/greeting "Hello Packice"
"$build/packice" --url "uds://$socket" kv put "$ns" config/answer 42
"$build/packice" --url "uds://$socket" kv get "$ns" config/ --prefix
"$build/packice" --url "uds://$socket" kv watch "$ns" config/ --prefix --rev 1 --max-events 2
"$build/packice" --url "uds://$socket" kv ns rm "$ns"
echo "== the queue (seed 002): a topic in buckets, records by key, a group that consumes and commits"
topic="demo-run-$$"
"$build/packice" --url "uds://$socket" queue create "$topic" --buckets 2
printf 'order-1\norder-2\norder-3\n' | "$build/packice" --url "uds://$socket" queue produce "$topic"
"$build/packice" --url "uds://$socket" queue produce "$topic" "priority order" --key vip --header source=run.sh
"$build/packice" --url "uds://$socket" queue consume "$topic" --group billing --wait 200ms --print-offsets
"$build/packice" --url "uds://$socket" queue stat "$topic"
"$build/packice" --url "uds://$socket" queue rm "$topic"
cat <<MSG

packiced is running: pid $pid, url uds://$socket, log $logfile
  try:   export PACKICE_URL=uds://$socket
         echo hello | $build/packice put greeting -   &&   $build/packice get greeting
  Python: $python -c 'import packice; print(packice.connect("uds://$socket").list())'
          (elsewhere, or without $site/packice.pth: export PYTHONPATH=$build/python)
  stop:  kill $pid
MSG
