#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for a bounded time (issue 6 item 4,
# docs/RELIABILITY.md), two at a time, and fails if any of them found a crash.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 25: CI-sized)
#
# Environment:
#   AIDSYNC_FUZZ_BUILD   build dir holding the <name>_fuzz executables. Default:
#                        build-asan when it was configured with AIDSYNC_FUZZ=ON
#                        (scripts/sanitize.sh asan builds them there, so CI
#                        builds the tree under ASan once), else build-fuzz.
#                        Missing executables are built here (clang, ASan+UBSan,
#                        -DAIDSYNC_FUZZ=ON).
#   AIDSYNC_FUZZ_TARGETS names to run (default: all six)
#   AIDSYNC_FUZZ_JOBS    targets run at once (default 2: the CI machine's cores)
#
# Each target fuzzes a scratch copy of its seed corpus (tests/fuzz/corpus/<name>
# plus tests/fuzz/regressions/<name>) under $BUILD/fuzz-run/<name>/ (the
# replicas it writes per input live on /dev/shm when it exists): new
# inputs libFuzzer finds stay there, never written back into the repository.
# A crash leaves its input in $BUILD/fuzz-run/<name>/artifacts/ (named in the
# summary); replay it with $BUILD/tests/fuzz/<name>_replay FILE, fix the
# product, and keep the input in tests/fuzz/regressions/<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-25}"
if [ -n "${AIDSYNC_FUZZ_BUILD:-}" ]; then
  build="$AIDSYNC_FUZZ_BUILD"
elif grep -qs '^AIDSYNC_FUZZ:BOOL=ON' build-asan/CMakeCache.txt; then
  build=build-asan
else
  build=build-fuzz
fi
jobs="${AIDSYNC_FUZZ_JOBS:-2}"
read -r -a targets <<<"${AIDSYNC_FUZZ_TARGETS:-sync_message changeset bundle certificate invite import}"

missing=()
for t in "${targets[@]}"; do [ -x "$build/tests/fuzz/${t}_fuzz" ] || missing+=("${t}_fuzz"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz.sh: building ${missing[*]} in $build" >&2
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DAIDSYNC_SANITIZE=address,undefined -DAIDSYNC_FUZZ=ON >/dev/null
  cmake --build "$build" -j2 --target "${missing[@]}"
fi

run="$PWD/$build/fuzz-run"
rm -rf "$run"
mkdir -p "$run"
# The county's data dirs go to tmpfs when there is one: SQLite fsyncs every
# commit, and on a disk that, not the code under test, would set the pace.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  scratch="$(mktemp -d /dev/shm/aidsync-fuzz-run.XXXXXX)"
else
  scratch="$run/tmp"
  mkdir -p "$scratch"
fi
trap 'rm -rf "$scratch"' EXIT
symbolizer="$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:external_symbolizer_path=$symbolizer"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:external_symbolizer_path=$symbolizer"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"

# One target: a scratch corpus, its own dir for the county's data dirs
# (AIDSYNC_FUZZ_TMP), the log, and the exit status in $dir/status.
fuzz_one() {
  local t="$1" dir="$run/$1"
  mkdir -p "$dir/corpus" "$dir/artifacts" "$scratch/$t"
  cp tests/fuzz/corpus/"$t"/* "$dir/corpus/"
  if compgen -G "tests/fuzz/regressions/$t/*" >/dev/null; then cp tests/fuzz/regressions/"$t"/* "$dir/corpus/"; fi
  local status=0
  AIDSYNC_FUZZ_TMP="$scratch/$t" "$build/tests/fuzz/${t}_fuzz" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/fuzz.log" 2>&1 || status=$?
  echo "$status" >"$dir/status"
}

for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  echo "fuzzing $t for ${seconds}s"
  fuzz_one "$t" &
done
wait

failed=0
printf '%-13s %10s %8s %7s %7s %7s  %s\n' target execs exec/s cov ft corpus result
for t in "${targets[@]}"; do
  dir="$run/$t"
  log="$dir/fuzz.log"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
  last="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  corpus="$(find "$dir/corpus" -type f | wc -l)"
  result=ok
  artifacts="$(find "$dir/artifacts" -type f | sort)"
  if [ "$(cat "$dir/status" 2>/dev/null || echo 1)" != 0 ] || [ -n "$artifacts" ]; then
    failed=1
    result="CRASH: ${artifacts:-no input saved} (log: $log)"
  fi
  printf '%-13s %10s %8s %7s %7s %7s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$result"
done
if [ "$failed" != 0 ]; then
  echo "fuzz.sh: a target crashed; the logs above name the inputs. Fix the product and keep each input in" \
    "tests/fuzz/regressions/<name>/ (replayed by fuzz_replay_<name>)." >&2
  for t in "${targets[@]}"; do
    if [ "$(cat "$run/$t/status" 2>/dev/null || echo 1)" != 0 ]; then
      echo "==== $run/$t/fuzz.log (tail)" >&2
      tail -40 "$run/$t/fuzz.log" >&2
    fi
  done
fi
exit "$failed"
