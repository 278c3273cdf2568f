#!/bin/bash
# The main job on a built-in sandbox: a private ovsdb-server + ovs-vswitchd (netdev datapath,
# in a network namespace of its own). Touches nothing else on the machine.
#   validate → diff → apply → diff (nothing to do) → audit verify
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v ovsdb-server >/dev/null; then
  echo "== installing openvswitch-switch (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openvswitch-switch
fi
[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || bash scripts/npm-setup.sh
npm run build --silent
SANDBOX=$(mktemp -d /tmp/opd-demo.XXXXXX)
cleanup() { bash scripts/backends/ovs.sh down "$SANDBOX/ovs" >/dev/null 2>&1 || true; rm -rf "$SANDBOX"; }
trap cleanup EXIT
bash scripts/backends/ovs.sh up "$SANDBOX/ovs" --vswitchd >/dev/null
export OPD_OVS_DB="unix:$SANDBOX/ovs/db.sock" OPD_AUDIT_LOG="$SANDBOX/audit.jsonl"
opd() { node bin/opd.js "$@"; }
step() { printf '\n\033[1m$ opd %s\033[0m\n' "$*"; }
echo "sandbox: $SANDBOX (OVS database $OPD_OVS_DB)"
step validate examples/demo.yaml; opd validate examples/demo.yaml
step diff examples/demo.yaml; set +e; opd diff examples/demo.yaml; rc=$?; set -e; echo "(exit $rc: changes pending)"
step apply examples/demo.yaml; opd apply examples/demo.yaml
step diff examples/demo.yaml; opd diff examples/demo.yaml; echo "(exit 0: nothing to do)"
step audit verify; opd audit verify
step audit log; opd audit log
step show --plugin ovs; opd show --plugin ovs
echo; echo "demo done: the sandbox is removed on exit"
