#!/usr/bin/env bash
# npm test: build, run the whole tap suite, and end with "N passed, N failed".
# Extra arguments go to tap (e.g. a test file).
set -uo pipefail
cd "$(dirname "$0")/.."
npm run --silent build || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
rm -rf .tap/test-results
npx tap "$@"
rc=$?
node scripts/tap-summary.mjs .tap/test-results "$rc"
