#!/bin/bash
# Install what opd's tests and demo need from Debian (idempotent; skips what is present).
set -euo pipefail
# Prerequisites that apt does not give us here: Node.js >= 20.11 with npm, and python3 (a test
# drives a lock holder with it). Say how to get them instead of failing later.
need_node=20.11
if ! command -v node >/dev/null; then
  echo "Node.js >= $need_node is required: install it (e.g. from https://nodejs.org or your distribution's nodejs >= $need_node), then rerun." >&2; exit 69
fi
have=$(node -p 'process.versions.node')
if ! node -e "const [a,b]=process.versions.node.split('.').map(Number);process.exit(a>20||(a===20&&b>=11)?0:1)"; then
  echo "Node.js $have is too old: opd needs >= $need_node. Upgrade Node.js, then rerun." >&2; exit 69
fi
command -v npm >/dev/null || { echo "npm is missing: install npm (it ships with Node.js), then rerun." >&2; exit 69; }
command -v python3 >/dev/null || { echo "python3 is missing: apt-get install python3, then rerun." >&2; exit 69; }
PKGS=(openvswitch-switch lxc busybox-static libvirt-daemon-system libvirt-clients qemu-system-x86
      qemu-utils dnsmasq-base libvirt-dbus nftables iptables iproute2 dpkg-dev packagekit polkitd dbus
      systemd sudo util-linux procps postgresql mariadb-server nix-bin iputils-ping ufw
      etcd-server etcd-client zstd openssl strace
      # packages-sources test: a throwaway OpenPGP key signs its test repository
      gpg
      # the Debian package and its tests (npm run package, test/machine/package.test.ts): lintian,
      # stripping the arm64 runtime, running it under qemu-user, a booted Debian 12 machine
      lintian binutils binutils-aarch64-linux-gnu qemu-user-static mmdebstrap systemd-container file
      # man pages and shell completion (their tests): groff renders, the three shells complete
      groff-base man-db bash-completion zsh fish)
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
