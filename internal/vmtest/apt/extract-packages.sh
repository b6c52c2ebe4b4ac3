#!/bin/sh
# extract-packages.sh ARCH ROOT PACKAGE...: unpacks Debian's PACKAGE:ARCH
# builds into ROOT without installing them: the guest userland (busybox-static,
# runc and its libraries) of a matrix architecture that is not the host's,
# which dpkg could not install beside the host's own builds of the same
# packages. vmtest reads them from there (internal/vmtest/arch.go). ARCH must
# be a dpkg foreign architecture (dpkg --add-architecture, done by make deps).
# Idempotent: prints nothing when ROOT holds exactly these packages.
set -eu
arch=$1
root=$2
shift 2
want="$*"
[ -e "$root/.packages" ] && [ "$(cat "$root/.packages")" = "$want" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt downloads as _apt when it can
for p in "$@"; do
	(cd "$tmp" && apt-get download -qq "$p:$arch") || {
		echo "extract-packages.sh: apt-get download $p:$arch failed (is $arch a dpkg architecture? dpkg --print-foreign-architectures)" >&2
		exit 1
	}
done
rm -rf "$root.partial"
mkdir -p "$root.partial"
for deb in "$tmp"/*.deb; do
	dpkg-deb -x "$deb" "$root.partial"
done
echo "$want" > "$root.partial/.packages"
rm -rf "$root"
mv "$root.partial" "$root"
echo "extracted $want ($arch) into $root"
