#!/usr/bin/env bash
# Installs the locked dependencies (npm ci) when the lock file changed since
# the last install; Playwright downloads no browser (Debian's chromium is used).
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
