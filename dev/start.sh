#!/usr/bin/env bash
# The local quick start: installs the npm packages (once, or when the lockfile changed), fetches and
# starts a real single-node Kafka and schema registry, then runs Lifeline on topology.yaml until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "Node.js 20+ is needed: https://nodejs.org" >&2; exit 1; }
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund  # see .ci/run for why not npm ci
fi
node bin/lifeline.mjs dev up
exec node bin/lifeline.mjs run --topology topology.yaml
