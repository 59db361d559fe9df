#!/usr/bin/env bash
# The local quick start: installs the npm packages (once, or when the lockfile changed), fetches and
# starts a real single-node Kafka and schema registry, starts the Odoo simulator (unless ODOO_URL
# points at a real Odoo), then runs Lifeline's golden path (topology.yaml) until Ctrl-C.
# Send it partner traffic from another terminal: `set -a; . .lifeline/dev-secrets.env; set +a; node bin/lifeline.mjs demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "Node.js 20+ is needed: https://nodejs.org" >&2; exit 1; }
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund  # see .ci/run for why not npm ci
fi

# Webhook secrets for the demo partners: generated once, kept out of the repository.
mkdir -p .lifeline
secrets=.lifeline/dev-secrets.env
if [ ! -f "$secrets" ]; then
  (
    umask 077
    for partner in QUEST_LAB LABCORP MCKESSON MEDLINE; do
      echo "LIFELINE_WEBHOOK_SECRET_${partner}=whsec_$(node -e "process.stdout.write(require('node:crypto').randomBytes(32).toString('base64'))")"
    done > "$secrets"
  )
  echo "webhook secrets for the demo partners written to $secrets"
fi
set -a
# shellcheck disable=SC1090
. "$secrets"
set +a

node bin/lifeline.mjs dev up

if [ -z "${ODOO_URL:-}" ]; then
  odoo_port="${LIFELINE_ODOO_PORT:-8069}"
  node bin/lifeline.mjs dev odoo --port "$odoo_port" > .lifeline/odoo-simulator.log 2>&1 &
  simulator=$!
  trap 'kill "$simulator" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$odoo_port") 2>/dev/null && break
    kill -0 "$simulator" 2>/dev/null || { cat .lifeline/odoo-simulator.log >&2; exit 1; }
    sleep 0.1
  done
  export ODOO_URL="http://127.0.0.1:$odoo_port"
  # The simulator's own API key (dev/odoo-simulator/seed-data.ts); a real Odoo's comes from your environment.
  export ODOO_API_KEY="${ODOO_API_KEY:-lifeline-simulator-api-key}"
  export ODOO_USERNAME="${ODOO_USERNAME:-lifeline}"
  echo "Odoo simulator on $ODOO_URL (database stmarys; log in .lifeline/odoo-simulator.log)"
fi
: "${ODOO_USERNAME:?set ODOO_USERNAME to the login of the Odoo integration user (docs/odoo.md)}"
: "${ODOO_API_KEY:?set ODOO_API_KEY to the API key of the Odoo user in ODOO_USERNAME}"

node bin/lifeline.mjs run --topology topology.yaml
