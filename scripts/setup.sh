#!/usr/bin/env bash
# Installs everything Ambit needs on a Debian machine, idempotently: system packages (only the
# missing ones), npm dependencies (only when package-lock.json changed), then builds.
# Usage: scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*"; }

# Debian packages: network namespaces and veth (iproute2), in-pod redirection (iptables, nftables,
# nsenter from util-linux), the lab's pod wiring (containernetworking-plugins: bridge, host-local),
# the capture addon's build (g++, make, python3 for node-gyp), real clients for tests and the demo
# (curl, openssl, tcpdump; python3-grpcio + grpc-tools for a non-TypeScript gRPC client of the CA and the waypoint; nghttp2-client for h2load),
# /proc tools (procps); the benchmarks' C peer and load tools (haproxy, iperf3, and proxychains4 to
# take iperf3 through a loopback-mode node proxy's SOCKS5 listener).
PACKAGES=(iproute2 iptables nftables util-linux containernetworking-plugins g++ make python3 curl openssl tcpdump procps ca-certificates python3-grpcio python3-grpc-tools python3-protobuf haproxy iperf3 proxychains4 nghttp2-client)

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
      exit 1
    fi
  fi
  log "installing Debian packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

stamp=node_modules/.ambit-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
else
  log "npm dependencies up to date"
fi

bstamp=bench/node_modules/.ambit-lock-hash
bwant=$(sha256sum bench/package-lock.json | cut -d' ' -f1)
if [ ! -f "$bstamp" ] || [ "$(cat "$bstamp")" != "$bwant" ]; then
  log "installing the benchmark package's npm dependencies (bench/)"
  npm ci --prefix bench --no-audit --no-fund --loglevel=error
  echo "$bwant" >"$bstamp"
fi

scripts/build-native.sh
log "building"
npm run --silent build
npm run --silent --prefix bench build
log "ready: try 'npx ambit --help'"
