#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# An unmodified QEMU takes vmigfs files as guest RAM:
#   -object memory-backend-file,mem-path=PATH,size=S,share=on
# on a region file (QEMU checks its size with lseek and maps it shared),
# on a vmigfs directory (QEMU makes, unlinks and sizes its own file there:
# a region that lives exactly as long as QEMU), and a region of the wrong
# size is refused by QEMU.  A smoke test with -machine none; the inner
# guest tests run whole VMs.  Skips when the guest has no QEMU (give it
# with VMCHECK_EXTRA="... qemu-system-x86_64 accel-tcg-x86_64.so").
. /usr/bin/tap.sh

vmig=/usr/bin/vmig
qemu=$(command -v qemu-system-x86_64)
if [ ! -x "$vmig" ] || [ -z "$qemu" ]; then
	skip "QEMU on vmigfs" "no vmig or qemu-system-x86_64 in the guest"
	tap_done
	exit 0
fi
# QEMU's TCG accelerator is a module; VMCHECK_EXTRA puts it beside QEMU.
export QEMU_MODULE_DIR=${QEMU_MODULE_DIR:-$(dirname "$qemu")}
out=/tmp/regionfs_qemu_test.out
regions() { $vmig stats --json | sed -n 's/.*"region_count":\([0-9]*\).*/\1/p'; }

# qemu_start MEMPATH SIZE: QEMU in the background, stopped (-S), pid in $qpid.
qemu_start() {
	"$qemu" -nodefaults -machine none -accel tcg -display none -S \
		-object memory-backend-file,id=m0,mem-path="$1",size="$2",share=on \
		>"$out" 2>&1 &
	qpid=$!
	# Up when it has the backend mapped (or gone, when it refused).
	i=0
	while [ $i -lt 300 ] && kill -0 $qpid 2>/dev/null &&
	      ! grep -q vmig "/proc/$qpid/maps" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
}
qemu_stop() {
	kill $qpid 2>/dev/null
	wait $qpid 2>/dev/null
}

$vmig region create /run/vmig/qram --size 64M >/dev/null
base=$(regions)
qemu_start /run/vmig/qram 64M
check "QEMU maps a 64M region file as its RAM backend" \
	sh -c "grep -q ' /run/vmig/qram\$' /proc/$qpid/maps"
check "...shared, not a private copy" \
	sh -c "grep ' /run/vmig/qram\$' /proc/$qpid/maps | grep -q 'rw-s'"
qemu_stop

timeout 120 "$qemu" -nodefaults -machine none -accel tcg -display none -S \
	-object memory-backend-file,id=m0,mem-path=/run/vmig/qram,size=128M,share=on \
	>"$out" 2>&1
rc=$?
check "QEMU refuses a region whose size is not the backend's (lseek SEEK_END)" \
	sh -c "[ $rc -eq 1 ] && grep -q 'does not match' $out"

qemu_start /run/vmig 32M
check "QEMU given the vmigfs directory makes its own region" \
	sh -c "grep -q '/run/vmig/qemu_back_mem.* (deleted)\$' /proc/$qpid/maps &&
	       [ \"\$($vmig stats --json | sed -n 's/.*\"region_count\":\([0-9]*\).*/\1/p')\" = $((base + 1)) ]"
check "...unlinked at once: no name is left in the directory" \
	sh -c "! ls /run/vmig | grep -q qemu_back_mem"
qemu_stop
check "...and the region goes when QEMU exits" test "$(regions)" = "$base"

$vmig region remove /run/vmig/qram >/dev/null
umount /run/vmig
tap_done
