#!/usr/bin/env bash
# The README's second command: install what is missing, build, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# What only the tests need, not the demo: headless Chromium for the status
# page's browser test (tests/browser_test.cc), and the CJK font its style
# sheet names, so that the screenshot it keeps shows the page's Chinese.
test_packages=(chromium fonts-noto-cjk)
scripts/install-deps.sh "${test_packages[@]}"
scripts/build.sh
cd build
ctest -j2 --output-on-failure --timeout 600
