#!/usr/bin/env bash
# Installs what diego needs on a fresh Debian machine: the system packages through apt-get,
# then the npm packages through `npm ci`, then compiles to dist/ (what bin/diego.js runs). Safe to
# run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  nats-server      # NATS with JetStream: all shared state
  runc crun        # OCI runtimes
  busybox-static   # the built-in root filesystem and the container init
  docker-registry  # a local registry for the image tests
  uidmap iproute2 e2fsprogs attr ca-certificates
  python3-grpcio python3-protobuf  # the cross-language gRPC test
  nftables libnftables1            # container egress firewall (libnftables is called in-process)
  containernetworking-plugins      # CNI plugins, measured against in docs/networking.md
  nginx-light      # the reverse proxy bench/router.ts measures the router against
)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
npm ci --no-audit --no-fund
npm run build
