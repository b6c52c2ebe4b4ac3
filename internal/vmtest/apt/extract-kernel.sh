#!/bin/sh
# extract-kernel.sh PACKAGE ROOT: unpacks a Debian kernel package into ROOT
# (ROOT/boot/vmlinuz-*, ROOT/lib/modules/<release>) and indexes its modules,
# without installing it. For kernels of older suites (bullseye's 5.10), whose
# installation on this release would run its maintainer scripts and initramfs
# hooks for a kernel nobody boots on the host, and of other architectures
# (PACKAGE:arm64), which dpkg cannot install beside the host's kernel: the
# QEMU harness needs only the vmlinuz and the modules (it builds its own
# initramfs). A metapackage (linux-image-arm64:arm64) is followed to the
# kernel it depends on, so the matrix tracks the suite's current kernel.
# Idempotent: prints nothing when ROOT already holds an indexed kernel.
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
deb=$(ls "$tmp"/*.deb)
if ! dpkg-deb -c "$deb" | grep -q ' \./boot/vmlinuz-'; then
	arch=""
	case "$pkg" in *:*) arch=":${pkg#*:}" ;; esac
	dep=$(dpkg-deb -f "$deb" Depends | tr ',|' '\n\n' | sed -n 's/^ *\(linux-image-[^ (]*\).*/\1/p' | head -n 1)
	[ -n "$dep" ] || { echo "extract-kernel.sh: $pkg holds no vmlinuz and depends on no linux-image package" >&2; exit 1; }
	rm -f "$deb"
	(cd "$tmp" && apt-get download -qq "$dep$arch") || {
		echo "extract-kernel.sh: apt-get download $dep$arch (the kernel of $pkg) failed" >&2
		exit 1
	}
	pkg="$dep$arch"
	deb=$(ls "$tmp"/*.deb)
fi
rm -rf "$root.partial"
mkdir -p "$root.partial"
dpkg-deb -x "$deb" "$root.partial"
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
