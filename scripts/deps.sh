#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install every package vmig needs to build and test, from Debian.
# Idempotent and quiet: prints nothing when everything is there already.
# Fails loudly, naming the package, when one cannot be installed.
set -euo pipefail

pkgs=(
	build-essential pkg-config kmod cpio xz-utils
	linux-headers-amd64 linux-image-amd64 linux-source-6.1
	qemu-system-x86 busybox-static
	libmnl-dev libnl-3-dev libnl-genl-3-dev libnl-route-3-dev libkmod-dev
	iproute2 iperf3 valgrind clang libclang-rt-14-dev dkms
	libssl-dev openssl
	help2man man-db groff-base
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# The second kernel the module is tested on: Debian 12's newest 6.12 LTS
# (image and headers of one release; no meta-package names it).
lts_installed() {
	local h
	for h in /usr/src/linux-headers-6.12.*+deb12-amd64; do
		[ -e "$h/Makefile" ] && [ -r "/boot/vmlinuz-${h#/usr/src/linux-headers-}" ] && return 0
	done
	return 1
}
need_lts=0
lts_installed || need_lts=1
[ ${#missing[@]} -eq 0 ] && [ $need_lts = 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! apt-get update -qq >"$log" 2>&1; then
	cat "$log" >&2
	echo "deps: apt-get update failed" >&2
	exit 1
fi
if [ $need_lts = 1 ]; then
	lts=$(apt-cache search --names-only '^linux-headers-6\.12\.[0-9]+\+deb12-amd64$' |
	      awk '{print $1}' | sed 's/^linux-headers-//' | sort -V | tail -n 1)
	[ -n "$lts" ] || { echo "deps: no linux-headers-6.12.*+deb12-amd64 in the archive" >&2; exit 1; }
	img=linux-image-$lts
	apt-cache show "$img" >/dev/null 2>&1 || img=linux-image-$lts-unsigned
	missing+=("$img" "linux-headers-$lts")
	echo "deps: installing the 6.12 LTS kernel $lts"
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
	tail -n 30 "$log" >&2
	for p in "${missing[@]}"; do
		apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: (none)' &&
			echo "deps: package not available: $p" >&2
	done
	echo "deps: apt-get install failed for: ${missing[*]}" >&2
	exit 1
fi
for p in "${missing[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || {
		echo "deps: package still missing after install: $p" >&2
		exit 1
	}
done
