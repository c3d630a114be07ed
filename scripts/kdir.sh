#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Print the kernel build directory to build vmig.ko against:
#   KVER=RELEASE in the environment: /usr/src/linux-headers-RELEASE;
#   else the running kernel's build directory, if it has one;
#   else the headers of Debian's default kernel (what linux-headers-amd64
#   depends on), so that installing another kernel's headers beside it
#   does not change what a plain 'make kmod' builds against;
#   else the newest /usr/src/linux-headers-*-amd64.
set -euo pipefail
if [ -n "${KVER:-}" ]; then
	d=/usr/src/linux-headers-$KVER
	[ -e "$d/Makefile" ] || { echo "kdir: no $d (install linux-headers-$KVER)" >&2; exit 1; }
	echo "$d"
	exit 0
fi
run=/lib/modules/$(uname -r)/build
if [ -e "$run/Makefile" ]; then
	echo "$run"
	exit 0
fi
dflt=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null | grep -o 'linux-headers-[^ ,]*-amd64' | head -n 1 || true)
if [ -n "$dflt" ] && [ -e "/usr/src/$dflt/Makefile" ]; then
	echo "/usr/src/$dflt"
	exit 0
fi
newest=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1)
if [ -z "$newest" ]; then
	echo "kdir: no kernel build directory (install linux-headers-amd64)" >&2
	exit 1
fi
echo "$newest"
