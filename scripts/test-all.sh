#!/bin/bash
# The one command that passes the tests on a fresh machine of this kind (Debian 12, root):
# installs system packages, npm ci, brings up the real backends, runs `npm test` and
# `npm run test:machine` (the examples on booted Debian machines), tears down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/npm-setup.sh
cleanup() {
  bash scripts/backends/libvirt.sh down || true
  bash scripts/backends/systemd.sh down || true
  bash scripts/backends/etcd.sh down || true
}
trap cleanup EXIT
bash scripts/backends/systemd.sh up
bash scripts/backends/libvirt.sh up
bash scripts/backends/etcd.sh up
t0=$(date +%s)
code=0
npm test || code=$?
t1=$(date +%s)
# each example as shipped on a booted Debian 12 machine (test/machine/; image cached by its package list)
npm run test:machine || code=$?
t2=$(date +%s)
echo "test-all: npm test $((t1 - t0)) s, npm run test:machine $((t2 - t1)) s, in all $((t2 - t0)) s (exit $code)"
exit $code
