#!/usr/bin/env bash
# Idempotent setup for Picket on Debian 12:
#   - Debian packages: BPF toolchain, scanners, Chromium, NATS, peers for
#     benchmarks, systemd-analyze (the units' exposure check)
#   - tracefs mounted at /sys/kernel/tracing
#   - Node.js 24 LTS, the runtime, in .runtime/node (scripts/runtime.sh); the
#     machine's own node (Debian 12's is 18, NodeSource's 20: both past end
#     of life) runs npm
#   - npm ci, its install scripts on Node 24 (skipped when node_modules
#     matches package-lock.json)
#   - better-sqlite3's binary for Node 24 and for the machine's own node
#     (scripts/native-abi.mjs), so that both run Picket
#   - npm run build (BPF objects, addon, TypeScript, console page)
# Run as root for the apt and mount steps; without root it checks and explains.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/runtime.sh

log() { printf 'setup: %s\n' "$*" >&2; }

PKGS=(
  clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make gcc libc6-dev
  bpftool libbpf-tools linux-perf
  nmap masscan hping3 iproute2 procps util-linux python3 curl wget git cron
  dnsmasq-base dnsutils
  chromium nats-server
  systemd
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}"
    log "run this script as root (sudo $0) to install them"
    exit 1
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# tracefs: the loader reads tracepoint formats from it.
if [ ! -d /sys/kernel/tracing/events ]; then
  if [ "$(id -u)" -eq 0 ]; then
    mount -t tracefs nodev /sys/kernel/tracing && log "mounted tracefs at /sys/kernel/tracing"
  else
    log "tracefs is not mounted; capture needs it: sudo mount -t tracefs nodev /sys/kernel/tracing"
  fi
fi

log "Node.js $NODE24_VERSION in .runtime/"
node24_install
sysnode=$(system_node) || sysnode=
use_node24

# npm ci only when package-lock.json changed since the last install. npm runs
# on its own node; the install scripts run on Node 24 (first on PATH), with
# this checkout's node-gyp, and better-sqlite3 builds from source without
# trying a prebuilt download (only the registry is reachable, and a root
# agent loads it).
stamp=node_modules/.picket-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "npm ci"
  npm_config_build_from_source=better-sqlite3 npm_config_node_gyp="$PWD/node_modules/node-gyp/bin/node-gyp.js" \
    "$NPM_NODE" "$NPM_CLI" ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

node scripts/native-abi.mjs
if [ -n "$sysnode" ]; then "$sysnode" scripts/native-abi.mjs; fi

log "building"
node scripts/build.mjs
log "ready (Node.js $(node --version))"
