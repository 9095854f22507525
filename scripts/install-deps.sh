#!/usr/bin/env bash
# Installs the Debian 12 packages aidsync needs to build and test, if missing,
# and any further packages named as arguments (scripts/test.sh names those only
# its tests need). Idempotent: does nothing (and needs no network) when all are
# present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config python3
  libsqlite3-dev sqlite3 libsodium-dev capnproto libcapnp-dev
  libzmq3-dev cppzmq-dev catch2 libcli11-dev nlohmann-json3-dev libcsv-dev libzstd-dev
  libcpp-httplib-dev
  time  # GNU time: aidsync-bench measures each command's peak memory with it
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
