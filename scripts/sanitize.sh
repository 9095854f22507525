#!/usr/bin/env bash
# Builds the tree with clang under sanitizers and runs tests there (issue 6,
# docs/RELIABILITY.md). scripts/test.sh calls it twice:
#
#   scripts/sanitize.sh asan   AddressSanitizer + UndefinedBehaviorSanitizer,
#                              build-asan, the whole test suite; the libFuzzer
#                              targets are built here too (scripts/fuzz.sh).
#   scripts/sanitize.sh tsan   ThreadSanitizer, build-tsan, the tests of the
#                              daemon and the protocol (the labels below).
#
# Every process is instrumented, the `aidsync` children the tests start
# included. A child's report must not pass unseen when a test expects that
# child to fail (a bad-input test expects a non-zero exit), so reports go to
# files under the build dir (log_path) and this script fails if any exists.
set -euo pipefail
cd "$(dirname "$0")/.."

kind="${1:-}"
case "$kind" in
  asan)
    dir=build-asan
    flags=(-DAIDSYNC_SANITIZE=address,undefined -DAIDSYNC_FUZZ=ON)
    targets=(all)
    labels=""
    ;;
  tsan)
    dir=build-tsan
    flags=(-DAIDSYNC_SANITIZE=thread)
    # The daemon (threads: sync server, ZAP handler, status page workers), the
    # protocol, in process and over real sockets, and the replica's own
    # threads (a received batch verified ahead, a local changeset signed while
    # it is merged: docs/PERFORMANCE.md).
    tests=(protocol_test sync_session_test net_test trust_net_test http_status_test status_page_test load_test
           replica_apply_test replica_property_test replica_test)
    targets=(aidsync "${tests[@]}")
    labels="^($(IFS='|'; echo "${tests[*]}"))\$"
    ;;
  *)
    echo "usage: scripts/sanitize.sh asan|tsan" >&2
    exit 2
    ;;
esac

CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIDSYNC_WERROR=ON "${flags[@]}" >/dev/null
cmake --build "$dir" -j2 --target "${targets[@]}"

reports="$PWD/$dir/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
symbolizer="$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)"
common="log_path=$reports/report:external_symbolizer_path=$symbolizer"
export ASAN_OPTIONS="$common:detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="$common:print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="$common:halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"

status=0
(cd "$dir" && ctest -j2 --output-on-failure --no-tests=error ${labels:+-L "$labels"}) || status=$?

if compgen -G "$reports/report*" >/dev/null; then
  echo "sanitizer reports ($kind):" >&2
  for f in "$reports"/report*; do
    echo "==== $f" >&2
    head -80 "$f" >&2
  done
  status=1
fi
exit "$status"
