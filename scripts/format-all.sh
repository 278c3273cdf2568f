#!/usr/bin/env bash
# Format the whole tree once with prettier (.prettierrc.json) and turn on the format check of
# `npm run lint` (scripts/lint.sh, CHECK_FORMAT). Run it when no other branch is in flight
# (every line of the tree may change), then: npm run build && npm run lint && npx vitest run test/unit
set -euo pipefail
cd "$(dirname "$0")/.."
npx prettier --write --log-level warn src test bench scripts eslint.config.js
sed -i 's/^CHECK_FORMAT=0$/CHECK_FORMAT=1/' scripts/lint.sh
grep -q '^CHECK_FORMAT=1$' scripts/lint.sh
npx prettier --check src test bench scripts eslint.config.js
echo "formatted; scripts/lint.sh now checks the format"
