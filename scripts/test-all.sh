#!/bin/bash
# The one command that passes the tests on a fresh machine of this kind (Debian 12, root):
# installs system packages, npm ci, brings up the real backends, runs `npm test`, tears down.
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
npm test
