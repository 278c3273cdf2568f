#!/bin/bash
# npm ci, falling back to npm install: npm 11 writes only this platform's optional rollup
# binaries into package-lock.json and then `npm ci` refuses the lockfile it wrote.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! npm ci --no-audit --no-fund >/tmp/opd-npm-ci.log 2>&1; then
  grep -q "Missing: @rollup" /tmp/opd-npm-ci.log && echo "npm ci refused the lockfile (npm 11 optional-dependency quirk); using npm install" >&2 || cat /tmp/opd-npm-ci.log >&2
  npm install --no-audit --no-fund || exit 1
fi
