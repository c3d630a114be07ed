#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Extract the few kernel-source files vmig uses (the kselftest harness
# headers and checkpatch.pl with its data) from Debian's linux-source
# tarball into $1 (default build/ksrc).  Does nothing if already there.
set -euo pipefail
out=${1:-build/ksrc}
stamp=$out/.extracted
[ -e "$stamp" ] && exit 0
tarball=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n 1)
if [ -z "$tarball" ]; then
	echo "ksrc: no /usr/src/linux-source-*.tar.xz (install linux-source-6.1)" >&2
	exit 1
fi
top=$(basename "$tarball" .tar.xz)
mkdir -p "$out"
tar -xJf "$tarball" -C "$out" --strip-components=1 \
	"$top/tools/testing/selftests/kselftest.h" \
	"$top/tools/testing/selftests/kselftest_harness.h" \
	"$top/scripts/checkpatch.pl" \
	"$top/scripts/spelling.txt" \
	"$top/scripts/const_structs.checkpatch"
touch "$stamp"
