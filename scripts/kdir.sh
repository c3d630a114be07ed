#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# usage: kdir.sh [KVER]
# Print the kernel build directory to build vmig.ko against: with KVER
# (a release as under /lib/modules, e.g. 6.12.118+deb12-amd64), that
# kernel's; else the running kernel's if it has one, else Debian 12's
# default kernel's (scripts/kernels.sh default).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kver=${1:-}
if [ -z "$kver" ]; then
	run=/lib/modules/$(uname -r)/build
	if [ -e "$run/Makefile" ]; then
		echo "$run"
		exit 0
	fi
	kver=$("$here/kernels.sh" default) || {
		echo "kdir: no kernel build directory (install linux-headers-amd64)" >&2
		exit 1
	}
fi
for d in "/lib/modules/$kver/build" "/usr/src/linux-headers-$kver"; do
	if [ -e "$d/Makefile" ]; then
		echo "$d"
		exit 0
	fi
done
echo "kdir: no build directory for kernel $kver (install linux-headers-$kver)" >&2
exit 1
