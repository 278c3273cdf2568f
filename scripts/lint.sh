#!/usr/bin/env bash
# `npm run lint` (part of `npm test`): ESLint over the tree (typescript-eslint recommended, the
# layer rule; eslint.config.js), then prettier --check (.prettierrc.json).
set -euo pipefail
cd "$(dirname "$0")/.."
npx eslint --max-warnings 0 src test bench scripts eslint.config.js
# SWITCH: 0 until the whole tree has been formatted once (scripts/format-all.sh, which sets it
# to 1); from then on every change must be formatted.
CHECK_FORMAT=1
if [ "$CHECK_FORMAT" = 1 ]; then
  npx prettier --check src test bench scripts eslint.config.js
fi
