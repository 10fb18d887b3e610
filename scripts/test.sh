#!/usr/bin/env bash
# npm test: install what is missing and build (scripts/setup.sh, as root),
# run the whole tap suite on Node.js 24, then a smoke subset on the machine's
# own node when it is Node 20 (still supported), and end with one
# "N passed, N failed" for both. Extra arguments go to tap (e.g. a test
# file), and then only Node 24 runs them.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/runtime.sh

# The store, collector and detection end to end, and the agent pipeline on
# the synthetic source: what must keep working on the older runtime (~1 min).
SMOKE=(
  test/backend/store.test.ts
  test/backend/network-telemetry-detection.test.ts
  test/scripts/injector.test.ts
  test/agent/synth.test.ts
  test/agent/pipeline.test.ts
)

failed() { echo "$1"; echo "0 passed, 1 failed"; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
  bash scripts/setup.sh || failed "setup failed"
else
  node24_installed || failed "npm test: Node.js $NODE24_VERSION is not installed yet; run sudo npm test (or sudo npm start) once"
  (use_node24 && node scripts/native-abi.mjs && node scripts/build.mjs) || failed "build failed"
fi
sysnode=$(system_node) || sysnode=
syspath=$PATH
use_node24

results=.tap/all-results
rm -rf .tap/test-results "$results"
mkdir -p "$results"
t0=$SECONDS
node node_modules/.bin/tap "$@"
rc=$?
[ -d .tap/test-results ] && mv .tap/test-results "$results/node$NODE24_VERSION"
echo "# Node $NODE24_VERSION: tap in $((SECONDS - t0)) s"

if [ $# -eq 0 ] && [ -n "$sysnode" ]; then
  sysver=$("$sysnode" --version)
  echo "# smoke on $sysnode ($sysver): ${SMOKE[*]}"
  t0=$SECONDS
  # shellcheck disable=SC2030,SC2031
  (
    export PATH=$syspath
    unset npm_config_nodedir
    "$sysnode" scripts/native-abi.mjs && "$sysnode" node_modules/.bin/tap --disable-coverage "${SMOKE[@]}"
  )
  rc20=$?
  [ -d .tap/test-results ] && mv .tap/test-results "$results/node${sysver#v}"
  [ $rc -eq 0 ] && rc=$rc20
  echo "# $sysver: smoke in $((SECONDS - t0)) s"
elif [ $# -eq 0 ]; then
  echo "# no other node on PATH than Node $NODE24_VERSION: no smoke run on an older runtime"
fi
node scripts/tap-summary.mjs "$results" "$rc"
