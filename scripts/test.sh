#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (warnings are errors), runs every
# GoogleTest suite through CTest — unit tests and integration tests with real packiced
# processes — and the Python binding's pytest suite (CTest's python_tests: the API, zero-copy
# between processes, errors, the examples; not in sanitizer builds), then builds the fuzz
# targets with clang and runs them briefly. Then checks that every header the builds included
# and every program the tests ran belong to packages install-deps.sh installs
# (scripts/check-deps.py). The tests run beside a packiced on the default paths.
# Usage: scripts/test.sh          (PACKICE_SANITIZE=address|thread for a sanitizer build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)

"$root/scripts/install-deps.sh"

sanitize=${PACKICE_SANITIZE:-}
build=$root/build${sanitize:+-$sanitize}
echo "== build ($build)"
"$root/scripts/build.sh" "$build" -DPACKICE_SANITIZE="$sanitize" -DPACKICE_BENCH=OFF
# Tests own their sockets, directories and ports: they must pass beside a node on the default
# paths (socket and --data-dir). If no node holds them, one of this build does while they run.
sentinel=""
"$build/packiced" >"$build/default-node.log" 2>&1 &
sentinel=$!
trap '[[ -n "$sentinel" ]] && kill "$sentinel" 2>/dev/null; true' EXIT
for _ in $(seq 100); do
  grep -q "event=ready" "$build/default-node.log" 2>/dev/null && break
  kill -0 "$sentinel" 2>/dev/null || { sentinel=""; break; }  # the paths are taken already
  sleep 0.05
done
if [[ -n $sentinel ]]; then
  echo "== beside a node on the default paths: pid $sentinel, started for the tests"
else
  echo "== beside a node on the default paths: another process holds them"
fi
# Programs the tests start are logged here for the dependency check below.
export PACKICE_EXEC_LOG=$build/exec.log
rm -f "$PACKICE_EXEC_LOG"
echo "== tests"
(cd "$build" && ctest --output-on-failure -j "$jobs" --timeout 600)
if [[ -n "$sentinel" ]]; then
  kill -0 "$sentinel" 2>/dev/null || { echo "the node on the default paths died:" >&2; cat "$build/default-node.log" >&2; exit 1; }
  kill "$sentinel"; wait "$sentinel" || true; sentinel=""
fi

echo "== fuzz (clang, libFuzzer)"
fuzz=$root/build-fuzz
PACKICE_TARGETS="fuzz_frame fuzz_file_header fuzz_http_request fuzz_member_record fuzz_digest fuzz_log_segment fuzz_kv fuzz_kv_wire fuzz_kv_http fuzz_queue_record fuzz_queue_segment fuzz_queue_export fuzz_queue_http fuzz_queue_schema fuzz_grpc_chunk" CXX=clang++ "$root/scripts/build.sh" "$fuzz" \
  -DPACKICE_FUZZ=ON -DPACKICE_BENCH=OFF
(cd "$fuzz" && ctest --output-on-failure -R fuzz --timeout 600)

echo "== dependencies: what the builds include and the tests run comes from install-deps.sh"
"$root/scripts/check-deps.py" --build "$build" --build "$fuzz" --exec-log "$PACKICE_EXEC_LOG"
