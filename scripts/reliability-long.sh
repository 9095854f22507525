#!/usr/bin/env bash
# The long reliability run whose figures docs/RELIABILITY.md quotes (issue 6).
# Not part of CI: on 2 cores it takes about an hour and a half. It builds like
# scripts/test.sh (gcc into build/, clang + ASan/UBSan into build-asan), then
# runs each heavy test at its long size and prints each one's summary line.
#
#   scripts/reliability-long.sh [FUZZ_SECONDS_PER_TARGET]   (default 300)
#
# AIDSYNC_SEED=N replays a run's random choices (docs/RELIABILITY.md, "Seeds").
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds="${1:-300}"

scripts/build.sh
export AIDSYNC_SOAK_ITERATIONS="${AIDSYNC_SOAK_ITERATIONS:-200}"
export AIDSYNC_POWER_LOSS_POINTS="${AIDSYNC_POWER_LOSS_POINTS:-345}"
export AIDSYNC_IO_FAULT_POINTS="${AIDSYNC_IO_FAULT_POINTS:-468}"
export AIDSYNC_LOAD_SECONDS="${AIDSYNC_LOAD_SECONDS:-600}"
logs=build/reliability-long
mkdir -p "$logs"
status=0
for t in crash_soak_test power_loss_test io_fault_test load_test; do
  echo "== $t (log: $logs/$t.log)" >&2
  build/tests/"$t" >"$logs/$t.log" 2>&1 || { status=1; echo "$t FAILED" >&2; }
  # The summary lines each test prints on stdout.
  grep -E "^(crash soak|power loss|io fault|load)" "$logs/$t.log" || true
done
AIDSYNC_FUZZ_BUILD=build-asan scripts/fuzz.sh "$fuzz_seconds" || status=1
exit "$status"
