#!/usr/bin/env bash
# npm start: make sure Picket is installed and built (idempotent, quick when
# done), then run agent + backend + console on this host with embedded
# defaults, on Node.js 24 (scripts/runtime.sh) whichever node runs npm.
# Extra arguments go to `picket start`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/runtime.sh
if [ "$(id -u)" -eq 0 ]; then
  bash scripts/setup.sh
elif [ ! -f dist/cli/main.js ] || [ ! -d node_modules ] || ! node24_installed; then
  echo "npm start: Picket is not installed yet; run it once as root (sudo npm start) to install Node.js $NODE24_VERSION and the system packages, and build." >&2
  exit 1
fi
use_node24
# the one process holds the backend: bound its main thread's young generation
# as the backend unit does (scripts/systemd/picket-backend.service)
exec node --max-semi-space-size=16 bin/picket.js start "$@"
