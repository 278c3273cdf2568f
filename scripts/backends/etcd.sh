#!/bin/bash
# A private 3-member etcd cluster on loopback ports of its own, data in a directory of its own,
# one pidfile per member. Touches nothing else on the host (stops only the pids it recorded).
#   scripts/backends/etcd.sh up            fresh cluster (wipes its own data dir), waits until healthy
#   scripts/backends/etcd.sh down          stops every member by pidfile, removes the data dir
#   scripts/backends/etcd.sh status        endpoint health of each member (exit 1 if one is down)
#   scripts/backends/etcd.sh stop [N]      stop member N (1-3) or all, keeping the data
#   scripts/backends/etcd.sh start [N]     start member N or all again on the kept data
#   scripts/backends/etcd.sh endpoints     prints the client URLs, comma-separated
# Environment (defaults chosen not to collide with the recipe's 2379x/2380x):
#   OPD_ETCD_DIR (/var/tmp/opd-etcd), OPD_ETCD_CLIENT_PORTS ("24791 24792 24793"),
#   OPD_ETCD_PEER_PORTS ("24891 24892 24893"), OPD_ETCD_TOKEN (opd-etcd), OPD_ETCD_BIN_DIR
set -euo pipefail
D=${OPD_ETCD_DIR:-/var/tmp/opd-etcd}
read -r -a CP <<< "${OPD_ETCD_CLIENT_PORTS:-24791 24792 24793}"
read -r -a PP <<< "${OPD_ETCD_PEER_PORTS:-24891 24892 24893}"
TOKEN=${OPD_ETCD_TOKEN:-opd-etcd}
# OPD_ETCD_BIN_DIR: where etcd and etcdctl are when they are not on PATH (an unpacked .deb)
ETCD=${OPD_ETCD_BIN_DIR:+$OPD_ETCD_BIN_DIR/}etcd
ETCDCTL=${OPD_ETCD_BIN_DIR:+$OPD_ETCD_BIN_DIR/}etcdctl
[ ${#CP[@]} = 3 ] && [ ${#PP[@]} = 3 ] || { echo "etcd.sh: OPD_ETCD_CLIENT_PORTS and OPD_ETCD_PEER_PORTS need three ports each" >&2; exit 64; }
CLUSTER="m1=http://127.0.0.1:${PP[0]},m2=http://127.0.0.1:${PP[1]},m3=http://127.0.0.1:${PP[2]}"
ENDPOINTS="http://127.0.0.1:${CP[0]},http://127.0.0.1:${CP[1]},http://127.0.0.1:${CP[2]}"

usage() { echo "usage: $0 up|down|status|stop [N]|start [N]|endpoints" >&2; exit 64; }
members() { if [ -n "${1:-}" ]; then case "$1" in 1|2|3) echo "$1" ;; *) usage ;; esac; else echo 1 2 3; fi; }
pidof_member() { [ -f "$D/m$1.pid" ] && cat "$D/m$1.pid"; }
running() { local p; p=$(pidof_member "$1" || true); [ -n "$p" ] && kill -0 "$p" 2>/dev/null && grep -q etcd "/proc/$p/cmdline" 2>/dev/null; }

start_member() {
  local i=$1 state=$2
  if running "$i"; then return 0; fi
  local c=${CP[$((i-1))]} p=${PP[$((i-1))]}
  mkdir -p "$D"
  # setsid: the member outlives this script and is not in the caller's process group
  setsid "$ETCD" --name "m$i" --data-dir "$D/m$i" \
    --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
    --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
    --initial-cluster "$CLUSTER" --initial-cluster-state "$state" --initial-cluster-token "$TOKEN" \
    --heartbeat-interval 100 --election-timeout 1000 \
    >> "$D/m$i.log" 2>&1 < /dev/null &
  echo $! > "$D/m$i.pid"
}

stop_member() {
  local i=$1 p
  p=$(pidof_member "$i" || true)
  [ -n "$p" ] || return 0
  if running "$i"; then kill "$p" 2>/dev/null || true; fi
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$p" 2>/dev/null && grep -q etcd "/proc/$p/cmdline" 2>/dev/null; then kill -9 "$p" 2>/dev/null || true; fi
  rm -f "$D/m$i.pid"
}

health() { # health of the given members' endpoints; prints one line each
  local ok=0 i
  for i in "$@"; do
    if ETCDCTL_API=3 "$ETCDCTL" --endpoints="http://127.0.0.1:${CP[$((i-1))]}" --command-timeout=2s endpoint health >/dev/null 2>&1; then
      echo "m$i http://127.0.0.1:${CP[$((i-1))]} healthy"
    else
      echo "m$i http://127.0.0.1:${CP[$((i-1))]} unhealthy"; ok=1
    fi
  done
  return $ok
}

wait_healthy() {
  local end=$((SECONDS + ${OPD_ETCD_START_TIMEOUT:-60}))
  while [ $SECONDS -lt $end ]; do
    if health "$@" >/dev/null; then return 0; fi
    for i in "$@"; do running "$i" || { echo "etcd.sh: member m$i exited; last log lines:" >&2; tail -n 20 "$D/m$i.log" >&2; exit 69; }; done
    sleep 0.2
  done
  echo "etcd.sh: the cluster did not become healthy within ${OPD_ETCD_START_TIMEOUT:-60}s:" >&2
  health "$@" >&2 || true
  for i in "$@"; do echo "--- m$i.log" >&2; tail -n 20 "$D/m$i.log" >&2 || true; done
  exit 69
}

cmd=${1:-}
case "$cmd" in
  up)
    command -v "$ETCD" >/dev/null && command -v "$ETCDCTL" >/dev/null || { echo "etcd.sh: etcd or etcdctl missing: apt-get install etcd-server etcd-client (scripts/install-deps.sh)" >&2; exit 69; }
    for i in 1 2 3; do stop_member "$i"; done
    rm -rf "$D/m1" "$D/m2" "$D/m3"; rm -f "$D"/m?.log
    for i in 1 2 3; do start_member "$i" new; done
    wait_healthy 1 2 3
    echo "OPD_ETCD=$ENDPOINTS"
    ;;
  down)
    for i in 1 2 3; do stop_member "$i"; done
    rm -rf "$D/m1" "$D/m2" "$D/m3"; rm -f "$D"/m?.log
    rmdir "$D" 2>/dev/null || true
    ;;
  stop)
    for i in $(members "${2:-}"); do stop_member "$i"; done
    ;;
  start)
    ms=$(members "${2:-}")
    for i in $ms; do [ -d "$D/m$i" ] || { echo "etcd.sh: no data for m$i in $D: run 'up' first" >&2; exit 69; }; start_member "$i" existing; done
    # one member alone cannot be healthy without a quorum: wait for it only when a quorum can form
    up=0; for i in 1 2 3; do running "$i" && up=$((up+1)); done
    # shellcheck disable=SC2086
    if [ $up -ge 2 ]; then wait_healthy $ms; fi
    ;;
  status)
    health 1 2 3
    ;;
  endpoints)
    echo "$ENDPOINTS"
    ;;
  *) usage ;;
esac
