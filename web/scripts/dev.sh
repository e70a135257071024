#!/usr/bin/env bash
# `make dev`: the backend (the command given, e.g. `.venv/bin/haunted dev`) and,
# when Node 20+ is on PATH, the web app with `next dev` on HAUNTED_WEB_PORT,
# proxying the API to the gateway so both share one origin.
set -uo pipefail
web="$(cd "$(dirname "$0")/.." && pwd)"
port="${HAUNTED_WEB_PORT:-3000}"
gateway="http://${HAUNTED_HOST:-127.0.0.1}:${HAUNTED_PORT:-8000}"
[ "${HAUNTED_HOST:-127.0.0.1}" = "0.0.0.0" ] && gateway="http://127.0.0.1:${HAUNTED_PORT:-8000}"

major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$major" -lt 20 ]; then
  echo "web app not started: it needs Node.js 20+ on PATH (https://nodejs.org, or apt-get install nodejs npm); running the backend alone"
  exec "$@"
fi

"$web/scripts/install.sh" || { echo "web app not started: npm ci failed; running the backend alone"; exec "$@"; }
(cd "$web" && HAUNTED_GATEWAY_URL="$gateway" NEXT_TELEMETRY_DISABLED=1 exec npx next dev -H 127.0.0.1 -p "$port") &
next_pid=$!
trap 'kill "$next_pid" 2>/dev/null; wait "$next_pid" 2>/dev/null' EXIT
trap 'exit 130' INT TERM
echo "web app: http://127.0.0.1:${port} (API proxied to ${gateway})"
"$@"
