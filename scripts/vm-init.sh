#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
# /init of the vmcheck guest: load vmig.ko, run the listed tests with a
# timeout each, check that the module unloads, dump the kernel log, power off.
# Every line the host parses starts with "VMIG-".
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/tests
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /sys/kernel/debug && mount -t debugfs none /sys/kernel/debug 2>/dev/null
mkdir -p /sys/kernel/tracing && mount -t tracefs none /sys/kernel/tracing 2>/dev/null
# Enabling a trace event would also hook sched_switch to record task names,
# patching a static branch inside __schedule through an int3; multi-threaded
# TCG can run a stale int3 after the patch (docs/testing.md): an Oops.
[ -w /sys/kernel/tracing/options/record-cmd ] && echo 0 >/sys/kernel/tracing/options/record-cmd
ip link set lo up
export VMIG_KO=/lib/vmig.ko
timeout_s=$(cat /tests/timeout)
# VMCHECK_ENV from the host, for the tests.
[ -r /tests/env ] && . /tests/env

echo "VMIG-BOOTED $(uname -r) cpus=$(nproc) mem=$(awk '/MemTotal/ {print $2}' /proc/meminfo)kB" \
	"clock=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
for m in $(cat /tests/modules 2>/dev/null); do
	insmod "/lib/modules-extra/$m" || echo "VMIG-NOTE insmod $m failed"
done
if insmod $VMIG_KO; then
	echo "VMIG-RESULT ok - vm: insmod vmig.ko"
else
	echo "VMIG-RESULT not ok - vm: insmod vmig.ko"
fi
for t in $(cat /tests/list); do
	echo "VMIG-TEST-BEGIN $t"
	cd /tmp
	timeout "$timeout_s" "/tests/$t" 2>&1
	rc=$?
	echo "VMIG-TEST-END $t rc=$rc"
	# A test may unload the module; put it back for the next one.
	grep -q '^vmig ' /proc/modules || insmod $VMIG_KO
done
if rmmod vmig; then
	echo "VMIG-RESULT ok - vm: rmmod vmig.ko"
else
	echo "VMIG-RESULT not ok - vm: rmmod vmig.ko"
fi
echo "VMIG-DMESG-BEGIN"
dmesg
echo "VMIG-DMESG-END"
echo "VMIG-ALL-DONE"
poweroff -f
