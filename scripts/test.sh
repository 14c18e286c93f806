#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (warnings are errors), runs every
# GoogleTest suite through CTest — unit tests and integration tests with real packiced
# processes — and the Python binding's pytest suite (CTest's python_tests: the API, zero-copy
# between processes, errors, the examples; not in sanitizer builds), then builds the fuzz
# targets with clang and runs them briefly.
# Usage: scripts/test.sh          (PACKICE_SANITIZE=address|thread for a sanitizer build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)

"$root/scripts/install-deps.sh"

sanitize=${PACKICE_SANITIZE:-}
build=$root/build${sanitize:+-$sanitize}
echo "== build ($build)"
"$root/scripts/build.sh" "$build" -DPACKICE_SANITIZE="$sanitize" -DPACKICE_BENCH=OFF
echo "== tests"
(cd "$build" && ctest --output-on-failure -j "$jobs" --timeout 600)

echo "== fuzz (clang, libFuzzer)"
fuzz=$root/build-fuzz
PACKICE_TARGETS="fuzz_frame fuzz_file_header fuzz_http_request" CXX=clang++ "$root/scripts/build.sh" "$fuzz" \
  -DPACKICE_FUZZ=ON -DPACKICE_BENCH=OFF
(cd "$fuzz" && ctest --output-on-failure -R fuzz --timeout 600)
