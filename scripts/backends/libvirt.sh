#!/bin/bash
# libvirtd (monolithic) + virtlogd for opd's tests and demo, inside a network namespace of its
# own (opd-libvirt) so that NAT networks, their bridges, dnsmasq and firewall rules never touch
# the host's network. QEMU/KVM guests run for real (/dev/kvm group kvm, mode 660).
#   scripts/backends/libvirt.sh up     start unless libvirtd already answers (idempotent)
#   scripts/backends/libvirt.sh down   stop exactly what `up` started (pidfiles), nothing else
#   scripts/backends/libvirt.sh status
# The first start takes ~10 s (QEMU capability probe), later ones ~0.1 s.
set -euo pipefail
URI=qemu:///system
NS=opd-libvirt
STATE=/run/opd-libvirt
LIBVIRTD_PID=$STATE/libvirtd.pid
VIRTLOGD_PID=$STATE/virtlogd.pid

answers() { virsh -c "$URI" version >/dev/null 2>&1; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
  command -v libvirtd >/dev/null || { echo "libvirtd missing: apt-get install libvirt-daemon-system libvirt-clients qemu-system-x86 dnsmasq-base" >&2; exit 69; }
  # every time, also when libvirtd already runs: a group recreated since (kvm removed and added
  # again by a package or a test) leaves /dev/kvm with a stale gid, and QEMU gets "Permission denied"
  if [ -e /dev/kvm ]; then chgrp kvm /dev/kvm && chmod 660 /dev/kvm; fi
  if answers; then
    # reuse only the libvirtd this script started (pidfile): one that a package's install script
    # or somebody else started would run outside the test namespace with its own configuration
    if alive "$LIBVIRTD_PID"; then echo "libvirt: already running ($URI, pid $(cat "$LIBVIRTD_PID"), ours)"; return 0; fi
    other=$(cat /run/libvirtd.pid 2>/dev/null || echo '?')
    echo "a libvirtd that this script did not start answers on $URI (pid $other). Stop it (kill $other) and run '$0 up' again; opd's tests need their own libvirtd in the $NS namespace." >&2
    exit 69
  fi
  mkdir -p "$STATE"
  ip netns list | grep -qx "$NS\( .*\)\?" || { ip netns add "$NS"; touch "$STATE/netns-created"; }
  ip netns exec "$NS" ip link set lo up
  alive "$VIRTLOGD_PID" || ip netns exec "$NS" virtlogd -d -p "$VIRTLOGD_PID"
  alive "$LIBVIRTD_PID" || ip netns exec "$NS" libvirtd -d -p "$LIBVIRTD_PID"
  for _ in $(seq 1 240); do answers && break; sleep 0.25; done
  answers || { echo "libvirtd did not answer on $URI within 60 s (see journal / /var/log/libvirt)" >&2; exit 1; }
  echo "libvirt: up ($URI, netns $NS, pid $(cat "$LIBVIRTD_PID"))"
}

down() {
  # guests and networks that libvirtd started die with it only if we destroy them; the tests
  # remove their own. Stop the daemons we started, by pidfile.
  for f in "$LIBVIRTD_PID" "$VIRTLOGD_PID"; do
    if alive "$f"; then kill "$(cat "$f")"; fi
  done
  for _ in $(seq 1 100); do
    alive "$LIBVIRTD_PID" || alive "$VIRTLOGD_PID" || break; sleep 0.1
  done
  rm -f "$LIBVIRTD_PID" "$VIRTLOGD_PID"
  if [ -f "$STATE/netns-created" ]; then ip netns del "$NS" 2>/dev/null || true; rm -f "$STATE/netns-created"; fi
  echo "libvirt: down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if answers; then echo "libvirt: running"; else echo "libvirt: not running"; exit 3; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 64 ;;
esac
