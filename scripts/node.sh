#!/usr/bin/env bash
# `bash scripts/node.sh ARGS...`: node ARGS on Picket's Node.js 24
# (scripts/runtime.sh), whichever node runs npm. For npm scripts.
set -euo pipefail
source "$(dirname "$0")/runtime.sh"
use_node24 || { echo "Node.js $NODE24_VERSION is not installed yet: run sudo npm start (or sudo scripts/setup.sh) once" >&2; exit 1; }
exec node "$@"
