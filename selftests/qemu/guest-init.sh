#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
# /init of the inner test guest (the Linux guest QEMU runs inside the
# module's test VM; built by scripts/qemu-guest.sh).  Mounts the basics,
# says it booted, then runs guest_workload on the console for good.
# Kernel command-line words wl.NAME=VALUE become guest_workload options
# --NAME VALUE (for example wl.mib=128 wl.write-rate=4000).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
args=
for w in $(cat /proc/cmdline); do
	case $w in
	wl.*=*) n=${w%%=*}; args="$args --${n#wl.} ${w#*=}" ;;
	esac
done
echo "WL-BOOTED $(uname -r) cpus=$(nproc) mem=$(awk '/MemTotal/ {print $2}' /proc/meminfo)kB args=$args"
# shellcheck disable=SC2086
/bin/guest_workload $args
echo "WL-EXITED rc=$?"
poweroff -f
