#!/bin/bash
# A private Open vSwitch: ovsdb-server (and optionally ovs-vswitchd inside a network namespace
# of its own, netdev datapath) in a directory of its own. Touches nothing else on the host.
#   scripts/backends/ovs.sh up DIR [--vswitchd]   prints OPD_OVS_DB=unix:DIR/db.sock
#   scripts/backends/ovs.sh down DIR               stops exactly the daemons it started (pidfiles)
set -euo pipefail
cmd=${1:-}; D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || { echo "usage: $0 up|down DIR [--vswitchd]" >&2; exit 64; }
export OVS_RUNDIR=$D OVS_LOGDIR=$D OVS_DBDIR=$D
case "$cmd" in
  up)
    command -v ovsdb-server >/dev/null || { echo "ovsdb-server missing: apt-get install openvswitch-switch" >&2; exit 69; }
    mkdir -p "$D"
    [ -f "$D/conf.db" ] || ovsdb-tool create "$D/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server "$D/conf.db" --remote=punix:"$D/db.sock" --pidfile="$D/ovsdb-server.pid" --log-file="$D/ovsdb-server.log" --detach
    ovs-vsctl --db=unix:"$D/db.sock" --no-wait init
    if [ "${3:-}" = "--vswitchd" ]; then
      NS=opd-ovs-$(basename "$D" | tr -c 'a-zA-Z0-9\n' '-' | tail -c 12)
      ip netns add "$NS"
      echo "$NS" > "$D/netns"
      ip netns exec "$NS" ip link set lo up
      ip netns exec "$NS" ovs-vswitchd unix:"$D/db.sock" --pidfile="$D/ovs-vswitchd.pid" --log-file="$D/ovs-vswitchd.log" --detach
      ready=0
      for _ in $(seq 1 400); do
        if [ "$(ovs-vsctl --db=unix:$D/db.sock get Open_vSwitch . datapath_types)" != "[]" ]; then ready=1; break; fi
        sleep 0.05
      done
      if [ $ready = 0 ]; then
        echo "ovs-vswitchd did not become ready within 20 s (Open_vSwitch.datapath_types stayed empty); see $D/ovs-vswitchd.log" >&2
        tail -n 20 "$D/ovs-vswitchd.log" >&2 || true
        exit 69
      fi
    fi
    echo "OPD_OVS_DB=unix:$D/db.sock"
    ;;
  down)
    for p in ovs-vswitchd ovsdb-server; do
      if [ -f "$D/$p.pid" ]; then kill "$(cat "$D/$p.pid")" 2>/dev/null || true; fi
    done
    for _ in $(seq 1 50); do
      # a daemon removes its pidfile as it exits: between the test and cat it may be gone
      alive=0; for p in ovs-vswitchd ovsdb-server; do [ -f "$D/$p.pid" ] && kill -0 "$(cat "$D/$p.pid" 2>/dev/null)" 2>/dev/null && alive=1; done
      [ $alive = 0 ] && break; sleep 0.05
    done
    if [ -f "$D/netns" ]; then ip netns del "$(cat "$D/netns")" 2>/dev/null || true; fi
    rm -rf "$D"
    ;;
  *) echo "usage: $0 up|down DIR [--vswitchd]" >&2; exit 64 ;;
esac
