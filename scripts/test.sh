#!/usr/bin/env bash
# The README's second command: install what is missing, build, run every test.
#
#   1. the gcc build (build/): the whole suite, with the fuzz corpora replayed,
#      the short crash soak, power-loss, fault and load runs, and the
#      benchmark's smoke run (bench_smoke: small sizes, results checked);
#   2. the Release build packagers and users make (-O3, build-release): the
#      aidsync binary must build without a warning, and the command-line
#      tests pass against it;
#   3. clang + AddressSanitizer + UndefinedBehaviorSanitizer (build-asan): the
#      whole suite again;
#   4. clang + ThreadSanitizer (build-tsan): the daemon, protocol and replica tests;
#   5. each libFuzzer target for a bounded time (scripts/fuzz.sh).
# docs/RELIABILITY.md says what each proves and how to make the runs longer.
set -euo pipefail
cd "$(dirname "$0")/.."
# What only the tests need, not the demo: headless Chromium for the status
# page's browser test (tests/browser_test.cc), and the CJK font its style
# sheet names, so that the screenshot it keeps shows the page's Chinese;
# clang with its sanitizer and libFuzzer runtimes, and llvm-symbolizer so that
# a sanitizer report names source lines.
test_packages=(chromium fonts-noto-cjk clang libclang-rt-14-dev llvm-14)
scripts/install-deps.sh "${test_packages[@]}"
scripts/build.sh -DAIDSYNC_WERROR=ON
(cd build && ctest -j2 --output-on-failure --timeout 600)
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DAIDSYNC_WERROR=ON >/dev/null
cmake --build build-release -j2 --target aidsync cli_test cli_bad_input_test
(cd build-release && ctest -j2 -L '^(cli_test|cli_bad_input_test)$' --no-tests=error --output-on-failure)
scripts/sanitize.sh asan
scripts/sanitize.sh tsan
AIDSYNC_FUZZ_BUILD=build-asan scripts/fuzz.sh
