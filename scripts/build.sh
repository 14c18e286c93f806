#!/usr/bin/env bash
# Configures and builds Packice. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# Environment: PACKICE_TARGETS (default: all).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
fi
ninja -C "$build" ${PACKICE_TARGETS:-}
