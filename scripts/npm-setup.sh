#!/bin/bash
# Installs the exact dependency tree of package-lock.json. A failure fails the run: the lock is
# complete (every optional platform package of rollup/esbuild has its entry), so `npm ci` must work.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
