#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the inner test guest's initramfs: busybox (Debian's busybox-static),
# selftests/qemu/guest-init.sh as /init and the static guest_workload.
# Its kernel is Debian's, the one the outer test VM boots (vmcheck.sh
# copies it next to this initramfs when VMCHECK_QEMU=1).
#
# usage: qemu-guest.sh OUT.gz WORKLOAD
set -euo pipefail
[ $# -eq 2 ] || { sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
out=$1 workload=$2
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$workload" ] || { echo "qemu-guest: no workload program $workload" >&2; exit 2; }
work=$(mktemp -d /tmp/qemu-guest.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,proc,sys,dev,tmp}
cp /bin/busybox "$work/bin/busybox"
cp "$here/../selftests/qemu/guest-init.sh" "$work/init"
cp "$workload" "$work/bin/guest_workload"
chmod 755 "$work/init" "$work/bin/guest_workload"
mkdir -p "$(dirname "$out")"
(cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
