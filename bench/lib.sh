# Shell helpers the bench/*_run.sh scripts share; `source "$ROOT/bench/lib.sh"` after set -e.
# A script that uses run() and wait_socket() sets CHILD= and keeps its server pids in PIDS.

BENCH_NAME=$(basename "$0")

step() { echo "$BENCH_NAME: $*" >&2; }

# Runs a measurement in the background and waits for it, so that Ctrl-C stops it at once.
run() {
  "$@" &
  CHILD=$!
  wait "$CHILD"
  CHILD=
}

wait_socket() {  # PATH LOG: until a Unix socket is at PATH; else print LOG and fail
  for _ in $(seq 200); do [[ -S $1 ]] && return; sleep 0.05; done
  echo "$BENCH_NAME: no socket at $1; its log:" >&2
  cat "$2" >&2
  exit 1
}

stop() {  # PID: SIGTERM, and wait for it to go
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

need_tools() {  # TOOL...: fail, saying how to get them, when one is missing
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "$BENCH_NAME: $tool not found; scripts/install-deps.sh --bench installs it" >&2
      exit 1
    fi
  done
}
