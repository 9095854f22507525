#!/usr/bin/env bash
# Configures and builds aidsync into ./build (two parallel jobs: CI has 2 cores).
# Arguments are passed to cmake's configure step (scripts/test.sh adds
# -DAIDSYNC_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build build -j2
