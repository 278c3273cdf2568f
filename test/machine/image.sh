#!/bin/bash
# The machine image of the machine tests (test/machine/): a Debian 12 host as debootstrap makes it
# (priority important: systemd as init, udev, ifupdown, nftables, iproute2, apt; plus dbus), built
# with mmdebstrap from Debian's mirror, and a local apt repository holding exactly the .debs the
# examples install on top of it (each example's package list resolved by apt on the image, with
# Recommends, as `apt-get install` on the machine will do). The image's only apt source is that
# repository (`file:/srv/opd-repo`, bind-mounted at boot): the machine has no route to a mirror.
# Nothing the examples install is installed in the image; apt's policy-rc.d keeps package scripts
# from starting services, so every service the examples run is started by opd.
#
#   image.sh CACHE_DIR LIST_FILE...     (a LIST_FILE: one example's package names, one a line)
#
# Prints the image directory: CACHE_DIR/<key>/{rootfs.tar,repo/,packages.txt,build.json}. The key is
# the sha256 of this script and the package lists: the same lists reuse the cached image (about 1 s);
# a new list builds a new one (cold: mmdebstrap plus the downloads, a few minutes).
set -euo pipefail
cache=$1; shift
[ $# -gt 0 ] || { echo "usage: image.sh CACHE_DIR LIST_FILE..." >&2; exit 64; }
SUITE=bookworm
MIRROR=${OPD_MACHINE_MIRROR:-http://deb.debian.org/debian}
SECURITY=${OPD_MACHINE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
BASE=dbus
command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing: apt-get install mmdebstrap (scripts/install-deps.sh installs it)" >&2; exit 69; }
command -v dpkg-scanpackages >/dev/null || { echo "dpkg-scanpackages is missing: apt-get install dpkg-dev" >&2; exit 69; }

key=$( { sha256sum "$0" | cut -d' ' -f1; echo "$SUITE $MIRROR $SECURITY $BASE"; for f in "$@"; do echo "== $(basename "$f")"; LC_ALL=C sort -u "$f"; done; } | sha256sum | cut -c1-16)
out=$cache/$key
if [ -f "$out/build.json" ]; then touch "$out"; echo "$out"; exit 0; fi

mkdir -p "$cache"
# one builder at a time per cache (two test runs starting together build once)
exec 9>"$cache/.lock"
flock 9
if [ -f "$out/build.json" ]; then echo "$out"; exit 0; fi
work=$(mktemp -d "$cache/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/repo" "$work/lists"
n=0
for f in "$@"; do n=$((n + 1)); cp "$f" "$work/lists/$n-$(basename "$f")"; done
start=$(date +%s.%N)

# In the chroot: resolve and download each example's packages (with Recommends) from the mirror,
# then make the local repository the only source, update apt's lists from it, and keep package
# scripts from starting services (policy-rc.d, exit 101).
dl='set -e; for f in "$1"/lists/*; do apt-get install --download-only -y -q $(cat "$f") >/dev/null; done'
mmdebstrap --variant=important --include="$BASE" --dpkgopt=force-unsafe-io \
  --skip=chroot/policy-rc.d --skip=cleanup/apt/lists \
  --essential-hook="printf '#!/bin/sh\\n# opd machine tests: package scripts start no services; opd does\\nexit 101\\n' > \"\$1/usr/sbin/policy-rc.d\" && chmod 755 \"\$1/usr/sbin/policy-rc.d\"" \
  --aptopt='Acquire::Retries "3"' \
  --customize-hook="mkdir -p \"\$1/lists\" && cp $work/lists/* \"\$1/lists/\"" \
  --customize-hook="chroot \"\$1\" sh -c '$dl' sh /" \
  --customize-hook="sync-out /var/cache/apt/archives $work/repo" \
  --customize-hook="rm -rf \"\$1/lists\" \"\$1\"/var/cache/apt/archives/*.deb && rm -rf $work/repo/partial $work/repo/lock" \
  --customize-hook="cd $work/repo && dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null && gzip -kf Packages && chmod -R a+rX ." \
  --customize-hook="mkdir -p \"\$1/srv/opd-repo\" && cp -al $work/repo/. \"\$1/srv/opd-repo/\"" \
  --customize-hook="echo 'deb [trusted=yes] file:/srv/opd-repo ./' > \"\$1/etc/apt/sources.list\"" \
  --customize-hook="rm -f \"\$1\"/etc/apt/sources.list.d/*" \
  --customize-hook="chroot \"\$1\" apt-get update -q >/dev/null" \
  --customize-hook="find \"\$1/srv/opd-repo\" -mindepth 1 -delete" \
  --customize-hook="echo opd-machine > \"\$1/etc/hostname\" && : > \"\$1/etc/machine-id\"" \
  "$SUITE" "$work/rootfs.tar" \
  "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY $SUITE-security main" \
  >"$work/mmdebstrap.log" 2>&1 || { tail -30 "$work/mmdebstrap.log" >&2; exit 1; }

end=$(date +%s.%N)
(cd "$work/repo" && ls *.deb | sed 's/_.*//' | sort -u) > "$work/packages.txt"
debs=$(ls "$work/repo"/*.deb | wc -l)
bytes=$(du -sb "$work/repo" | cut -f1)
printf '{"key":"%s","seconds":%s,"debs":%s,"repo_bytes":%s,"built":"%s"}\n' \
  "$key" "$(awk "BEGIN{printf \"%.1f\", $end - $start}")" "$debs" "$bytes" "$(date -u +%FT%TZ)" > "$work/build.json"
rm -rf "$work/lists" "$work/mmdebstrap.log"
mv "$work" "$out"
trap - EXIT
# images of this script (16 hex digits) for other package lists that no run used for a week go
find "$cache" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/[0-9a-f]{16}' \
  ! -newermt '-7 days' -exec rm -rf {} +
echo "$out"
