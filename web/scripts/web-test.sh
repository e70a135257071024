#!/usr/bin/env bash
# The web app's share of `make test`: generated types current, lint, types,
# unit tests, one production build, its first-load size, then the end-to-end
# journeys in Debian's chromium against a real `haunted dev`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh
npm run --silent codegen:check
npm run --silent lint
npm run --silent typecheck
npm run --silent test -- --ci

# The build proxies the API to a gateway whose port is fixed now (rewrites are
# written into the build), so the end-to-end ports are chosen first.
read -r E2E_GATEWAY_PORT E2E_KAFKA_PORT E2E_WEB_PORT E2E_MAIL_PORT < <(node e2e/ports.mjs 4)
export E2E_GATEWAY_PORT E2E_KAFKA_PORT E2E_WEB_PORT E2E_MAIL_PORT
export NEXT_TELEMETRY_DISABLED=1
HAUNTED_GATEWAY_URL="http://127.0.0.1:${E2E_GATEWAY_PORT}" npm run --silent build
node scripts/first-load.mjs --max-kb 300

npx playwright test "$@"
