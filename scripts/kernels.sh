#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# usage: kernels.sh default|lts|all
# The Debian 12 kernels vmig.ko is built and tested for, as releases
# (the names under /lib/modules):
#   default  Debian 12's own kernel, what linux-headers-amd64 depends on
#            (6.1); else the newest installed linux-headers-*-amd64
#   lts      the newest installed 6.12 LTS (linux-headers-6.12.*+deb12-amd64,
#            installed by scripts/deps.sh)
#   all      both, default first
# Prints nothing and exits 1 for a kind that is not installed.
set -euo pipefail
default() {
	local dep
	dep=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null |
	      grep -o 'linux-headers-[^ ,]*' | head -n 1)
	if [ -n "$dep" ] && [ -e "/usr/src/$dep/Makefile" ]; then
		echo "${dep#linux-headers-}"
		return
	fi
	ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1 |
		sed 's|^/usr/src/linux-headers-||' | grep .
}
lts() {
	ls -d /usr/src/linux-headers-6.12.*+deb12-amd64 2>/dev/null | sort -V |
		tail -n 1 | sed 's|^/usr/src/linux-headers-||' | grep .
}
case ${1:-} in
default) default ;;
lts) lts ;;
all) default && lts ;;
*) sed -n '3,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
