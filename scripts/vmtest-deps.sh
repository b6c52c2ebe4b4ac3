#!/bin/sh
# Installs what `make vmtest` needs, skipping packages already installed:
# QEMU, a static busybox and runc for the guest, xz to unpack 6.12's modules,
# and every kernel package named in the matrix file (second column).
set -eu
matrix=${1:-testdata/vmtest/kernels.txt}

pkgs="qemu-system-x86 busybox-static runc xz-utils"
pkgs="$pkgs $(grep -v '^[[:space:]]*#' "$matrix" | awk 'NF == 3 { print $2 }')"

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "vmtest-deps: all installed"
	exit 0
fi
echo "vmtest-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -q --no-install-recommends $missing
