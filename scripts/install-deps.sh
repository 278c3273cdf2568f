#!/bin/bash
# Install what opd's tests and demo need from Debian (idempotent; skips what is present).
set -euo pipefail
PKGS=(openvswitch-switch lxc busybox-static libvirt-daemon-system libvirt-clients qemu-system-x86
      qemu-utils dnsmasq-base libvirt-dbus nftables iptables iproute2 dpkg-dev packagekit polkitd dbus
      systemd sudo util-linux procps postgresql mariadb-server nix-bin zstd)
missing=()
for p in "${PKGS[@]}" ${OPD_EXTRA_PKGS:-}; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "system packages: all present"
fi
