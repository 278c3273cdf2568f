#!/bin/bash
# A real systemd as PID 1 of a private PID+mount namespace, sharing the host's /etc and /run,
# so that the system bus (/run/dbus/system_bus_socket) and systemctl reach it.
#   scripts/backends/systemd.sh up     start it unless it already runs (idempotent)
#   scripts/backends/systemd.sh down   stop the one we started (by pidfile)
#   scripts/backends/systemd.sh status
# SAFETY: systemd-tmpfiles-setup and the clean timer are masked on the argv: without the
# masks it empties the whole machine's /tmp.
set -euo pipefail
PIDFILE=/run/opd-systemd-unshare.pid
LOG=${OPD_SYSTEMD_LOG:-/var/log/opd-systemd.log}

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

bus_ok() {
  busctl --system call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager GetUnit s opd-ci.target >/dev/null 2>&1
}

up() {
  if running && bus_ok; then echo "systemd: already running (unshare pid $(cat $PIDFILE))"; return 0; fi
  if [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ] && bus_ok; then echo "systemd: the host's own"; return 0; fi
  if busctl --system status >/dev/null 2>&1; then
    echo "a system bus that this script did not start answers on /run/dbus/system_bus_socket (no live $PIDFILE)." >&2
    echo "Stop that systemd/dbus-daemon first, then run '$0 up' again: opd's tests need their own namespaced systemd." >&2
    exit 69
  fi
  # sockets left by a systemd that died without 'down' answer nobody: remove them
  rm -rf /run/systemd/system /run/systemd/private /run/systemd/notify /run/systemd/container /run/systemd/units /run/dbus/system_bus_socket
  command -v unshare >/dev/null || { echo "unshare missing (util-linux)" >&2; exit 69; }
  [ -x /lib/systemd/systemd ] || { echo "systemd missing: apt-get install systemd" >&2; exit 69; }
  mountpoint -q /run || mount --bind /run /run
  cat > /etc/systemd/system/opd-ci.target <<'UNIT'
[Unit]
Description=opd test target (dbus only)
Requires=dbus.socket dbus.service
After=dbus.socket dbus.service
AllowIsolate=yes
UNIT
  unshare --pid --fork --mount --mount-proc --propagation private \
    env -i container=opd-ci PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --unit=opd-ci.target --show-status=no --log-target=journal-or-kmsg \
    systemd.mask=systemd-tmpfiles-setup.service systemd.mask=systemd-tmpfiles-clean.timer \
    systemd.mask=systemd-tmpfiles-setup-dev.service \
    </dev/null >"$LOG" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 200); do bus_ok && break; sleep 0.05; done
  bus_ok || { echo "systemd did not come up; see $LOG" >&2; exit 69; }
  echo "systemd: up (unshare pid $(cat $PIDFILE)), state $(busctl --system get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager SystemState)"
}

down() {
  running || { rm -f "$PIDFILE"; echo "systemd: not ours / not running"; return 0; }
  P=$(cat "$PIDFILE")
  SD=$(pgrep -P "$P" || true)          # systemd is the only child of our unshare (by parent PID)
  [ -n "$SD" ] && kill -s RTMIN+3 "$SD" || true   # = systemctl halt
  for _ in $(seq 1 100); do kill -0 "$P" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$P" 2>/dev/null; then [ -n "$SD" ] && kill -9 "$SD" || true; kill -9 "$P" 2>/dev/null || true; fi
  rm -rf /run/systemd/system /run/systemd/private /run/systemd/notify /run/systemd/io.system.ManagedOOM \
         /run/systemd/container /run/systemd/units /run/dbus/system_bus_socket "$PIDFILE"
  echo "systemd: down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if running && bus_ok; then echo up; else echo down; exit 1; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 64 ;;
esac
