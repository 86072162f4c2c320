#!/usr/bin/env bash
# Builds the in-pod capture addon (native/, N-API) with node-gyp against the installed Node's
# headers — never downloading them. Idempotent: skips the build when the output is newer than
# its sources.
set -euo pipefail
cd "$(dirname "$0")/../native"
out=build/Release/ambit_net.node
if [ -f "$out" ] && [ "$out" -nt src/ambit_net.c ] && [ "$out" -nt binding.gyp ]; then
  echo "build-native: up to date"
  exit 0
fi
if [ "$(uname -s)" != "Linux" ]; then
  echo "build-native: in-pod capture needs Linux (network namespaces, netfilter); skipping on $(uname -s)" >&2
  exit 0
fi
prefix=$(dirname "$(dirname "$(command -v node)")")
if [ ! -f "$prefix/include/node/node_api.h" ]; then
  echo "build-native: Node headers not found under $prefix/include/node (Debian: apt-get install libnode-dev or nodejs-dev)" >&2
  exit 1
fi
gyp="$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || gyp="$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
node "$gyp" rebuild --nodedir="$prefix" --loglevel=warn
echo "build-native: built native/$out"
