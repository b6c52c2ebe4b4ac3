#!/bin/sh
# extract-kernel.sh PACKAGE ROOT: unpacks a Debian kernel package into ROOT
# (ROOT/boot/vmlinuz-*, ROOT/lib/modules/<release>) and indexes its modules,
# without installing it. For kernels of older suites (bullseye's 5.10), whose
# installation on this release would run its maintainer scripts and initramfs
# hooks for a kernel nobody boots on the host: the QEMU harness needs only the
# vmlinuz and the modules (it builds its own initramfs). Idempotent: prints
# nothing when ROOT already holds an indexed kernel.
set -eu
pkg=$1
root=$2
for d in "$root"/lib/modules/*/; do
	[ -e "$d/modules.dep" ] && ls "$root"/boot/vmlinuz-* >/dev/null 2>&1 && exit 0
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt downloads as _apt when it can
# apt-get download fetches the .deb into the working directory, through the
# machine's apt sources, with no dpkg state change.
(cd "$tmp" && apt-get download -qq "$pkg") || {
	echo "extract-kernel.sh: apt-get download $pkg failed (is its suite configured? see add-suite.sh)" >&2
	exit 1
}
rm -rf "$root.partial"
mkdir -p "$root.partial"
dpkg-deb -x "$tmp"/*.deb "$root.partial"
n=0
for d in "$root.partial"/lib/modules/*/; do
	release=$(basename "$d")
	depmod -b "$root.partial" "$release"
	n=$((n + 1))
done
[ "$n" -eq 1 ] || { echo "extract-kernel.sh: $pkg holds $n module trees, want 1" >&2; exit 1; }
rm -rf "$root"
mv "$root.partial" "$root"
echo "extracted $pkg ($release) into $root"
