#!/usr/bin/env bash
# Configures and builds aidsync into ./build (two parallel jobs: CI has 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
