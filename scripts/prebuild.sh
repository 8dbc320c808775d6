#!/usr/bin/env bash
# Builds the prebuilt addons that `npm pack` ships (Node-API: one binary per
# platform serves every Node version): linux-x64 always, linux-arm64 when
# Debian's cross compiler (g++-aarch64-linux-gnu) is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf prebuilds
if command -v aarch64-linux-gnu-g++ >/dev/null; then
  # prebuildify's --strip runs the host's strip, which cannot read arm64: strip with the cross one.
  CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ npx --no-install prebuildify --napi --arch arm64 >/dev/null
  aarch64-linux-gnu-strip --strip-unneeded prebuilds/linux-arm64/*.node
else
  echo "prebuild: no aarch64-linux-gnu-g++, so no linux-arm64 prebuild (apt-get install g++-aarch64-linux-gnu)" >&2
fi
# Last, so that build/Release (which a clone loads first) is this machine's again.
npx --no-install prebuildify --napi --strip >/dev/null
file prebuilds/*/*.node >&2 || true
