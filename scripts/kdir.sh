#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Print the kernel build directory to build vmig.ko against: the running
# kernel's if it has one, else the newest Debian linux-headers-*-amd64.
set -euo pipefail
run=/lib/modules/$(uname -r)/build
if [ -e "$run/Makefile" ]; then
	echo "$run"
	exit 0
fi
newest=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1)
if [ -z "$newest" ]; then
	echo "kdir: no kernel build directory (install linux-headers-amd64)" >&2
	exit 1
fi
echo "$newest"
