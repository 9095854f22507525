#!/usr/bin/env bash
# The benchmark (issue 7, docs/PERFORMANCE.md): install what is missing, build,
# and run aidsync-bench at the issue's sizes. One JSON line per scenario, each
# next to plain SQLite doing the same work in the same run, then a summary of
# the targets. The lines are also kept in build/bench-results.jsonl.
#
#   scripts/bench.sh                  the issue's sizes (about a minute on 2 cores)
#   scripts/bench.sh --smoke          small sizes (what CI runs, as a test)
#   scripts/bench.sh --records 200000 anything aidsync-bench --help lists
#
# Exits non-zero when a scenario fails, or (at the issue's sizes) when a
# target is missed. Run it on an otherwise idle machine: the figures are
# timings.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh >/dev/null
check=(--check-targets)
for arg in "$@"; do
  # Small sizes are for checking that the bench runs; their timings are noise.
  if [ "$arg" = "--smoke" ]; then check=(); fi
done
build/bench/aidsync-bench "${check[@]}" "$@" | tee build/bench-results.jsonl
