#!/usr/bin/env bash
# The local quick start: uses the pinned Node (.nvmrc; fetched from the npm registry when the
# machine's Node is older), installs the npm packages (once, or when the lockfile changed), builds
# the JavaScript (when a source changed), fetches and starts a real single-node Kafka and schema
# registry, starts the Odoo simulator (unless ODOO_URL points at a real Odoo), then runs Lifeline's
# golden path (topology.yaml) from the built dist/ until Ctrl-C.
# Send it partner traffic from another terminal: `set -a; . .lifeline/dev-secrets.env; set +a; node bin/lifeline.mjs demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../bin/pinned-node.sh
. bin/pinned-node.sh
lifeline_use_pinned_node

# One quick start per checkout: a second one says where the first runs and touches none of its files.
mkdir -p .lifeline
pidfile=.lifeline/start.pid
if [ -f "$pidfile" ]; then
  read -r running_pid running_info < "$pidfile" || true
  if [ -n "${running_pid:-}" ] && kill -0 "$running_pid" 2>/dev/null; then
    echo "Lifeline already runs from this checkout (dev/start.sh pid $running_pid${running_info:+; $running_info})." >&2
    echo "Stop it with Ctrl-C in its terminal (or kill $running_pid); its simulator log is .lifeline/odoo-simulator.log." >&2
    exit 1
  fi
fi
odoo_port="${LIFELINE_ODOO_PORT:-8069}"
http_port="${LIFELINE_HTTP_PORT:-9464}"
webhook_port="${LIFELINE_WEBHOOK_PORT:-8088}"
console_port="${LIFELINE_CONSOLE_PORT:-8080}"
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$http_port" "$webhook_port" "$console_port"; do
  if port_busy "$port"; then
    echo "port $port is already in use (another Lifeline, or another program): stop it, or choose other ports with LIFELINE_HTTP_PORT / LIFELINE_WEBHOOK_PORT / LIFELINE_CONSOLE_PORT." >&2
    exit 1
  fi
done
echo "$$ console http://127.0.0.1:$console_port, metrics http://127.0.0.1:$http_port/readyz, webhooks http://127.0.0.1:$webhook_port, started $(date -u +%FT%TZ)" > "$pidfile"
trap 'rm -f "$pidfile"' EXIT

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund  # see .ci/run for why not npm ci
fi
if [ ! -f dist/BUILD.json ] || [ -n "$(find src connectors processors dev schemas console deploy/versions.json package-lock.json tsconfig.json -newer dist/BUILD.json -print -quit)" ]; then
  npm run build --silent
fi

# Webhook secrets for the demo partners: generated once, kept out of the repository.
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
export LIFELINE_HTTP_PORT="$http_port" LIFELINE_WEBHOOK_PORT="$webhook_port"

node bin/lifeline.mjs dev up

if [ -z "${ODOO_URL:-}" ]; then
  if port_busy "$odoo_port"; then
    echo "port $odoo_port (the Odoo simulator's) is already in use: stop what listens there, set LIFELINE_ODOO_PORT to another port, or set ODOO_URL to a running Odoo." >&2
    exit 1
  fi
  # The previous run's log is kept one generation, never truncated while something writes it.
  [ -f .lifeline/odoo-simulator.log ] && mv -f .lifeline/odoo-simulator.log .lifeline/odoo-simulator.log.1
  node bin/lifeline.mjs dev odoo --port "$odoo_port" > .lifeline/odoo-simulator.log 2>&1 &
  simulator=$!
  trap 'kill "$simulator" 2>/dev/null || true; rm -f "$pidfile"' EXIT
  for _ in $(seq 1 100); do
    port_busy "$odoo_port" && break
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

node bin/lifeline.mjs run --topology topology.yaml --console-port "$console_port"
