#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# `vmig module status|unload|load` round trip in the guest (busybox sh):
# status tells loaded from not loaded, unload refuses while /dev/vmig is
# open and refuses non-root, load works from --ko and by name from a module
# tree (with parameters), and stats/monitor say clearly when the module
# is gone.  Needs the helper in /usr/bin (VMCHECK_EXTRA), $VMIG_KO, and
# tap.sh next to the helper.
. /usr/bin/tap.sh

vmig=/usr/bin/vmig
if [ ! -x "$vmig" ] || [ -z "${VMIG_KO:-}" ]; then
	skip "vmig module round trip" "no /usr/bin/vmig or VMIG_KO in the guest"
	tap_done
	exit 0
fi
kver=$(uname -r)
out=/tmp/module_test.out

# run CMD...: stdout+stderr into $out, status into $rc
run() {
	"$@" >"$out" 2>&1
	rc=$?
}
has() { grep -q -- "$1" "$out"; }

loaded() { grep -q '^vmig ' /proc/modules; }

run $vmig module status
check "status of the loaded module exits 0 with version and parameters" \
	sh -c "[ $rc -eq 0 ] && grep -q 'loaded (live), version 0' $out &&
	       grep -q 'max_region_mb' $out && grep -q 'stall_event_us' $out"
run $vmig module status --json
check "status --json says loaded" has '"loaded":true'

# A process holding /dev/vmig keeps the module.
exec 3<>/dev/vmig
run $vmig module unload
check "unload while /dev/vmig is open fails saying it is in use" \
	sh -c "[ $rc -eq 1 ] && grep -q 'in use' $out && grep -q '^vmig ' /proc/modules"
exec 3<&-

mkdir -p /etc
echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>/etc/passwd
echo 'nogroup:x:65534:' >>/etc/group
run su nobody -s /bin/sh -c "$vmig module unload"
check "unload as non-root fails saying it needs root" \
	sh -c "[ $rc -eq 1 ] && grep -q 'needs root' $out && grep -q '^vmig ' /proc/modules"
run su nobody -s /bin/sh -c "$vmig stats --reset"
check "stats --reset as non-root is refused (CAP_NET_ADMIN)" \
	sh -c "[ $rc -eq 1 ] && grep -q 'CAP_NET_ADMIN' $out"
run su nobody -s /bin/sh -c "$vmig stats --json"
check "stats as non-root works" sh -c "[ $rc -eq 0 ] && grep -q '\"regions\":\\[' $out"

run $vmig module unload
check "unload exits 0 and the module is gone" sh -c "[ $rc -eq 0 ] && ! grep -q '^vmig ' /proc/modules"
run $vmig module status
check "status of an unloaded module exits 1 saying not loaded" \
	sh -c "[ $rc -eq 1 ] && grep -q 'not loaded' $out"
run $vmig module unload
check "unload of an unloaded module exits 1" sh -c "[ $rc -eq 1 ] && grep -q 'not loaded' $out"
run $vmig stats
check "stats without the module exits 1 saying it is not loaded" \
	sh -c "[ $rc -eq 1 ] && grep -q 'module is not loaded' $out"
run $vmig monitor --count 1
check "monitor without the module exits 1 saying it is not loaded" \
	sh -c "[ $rc -eq 1 ] && grep -q 'module is not loaded' $out"
run $vmig module load
check "load by name with no module tree exits 1 saying not installed" \
	sh -c "[ $rc -eq 1 ] && grep -q 'not installed' $out"
run $vmig module load --ko /nonexistent/vmig.ko
check "load of a missing file exits 1 naming it" \
	sh -c "[ $rc -eq 1 ] && grep -q '/nonexistent/vmig.ko' $out"

run $vmig module load --ko "$VMIG_KO"
check "load --ko exits 0 and the module is live" sh -c "[ $rc -eq 0 ] && grep -q '^vmig .* Live' /proc/modules"
run $vmig module load --ko "$VMIG_KO"
check "loading again is no error" sh -c "[ $rc -eq 0 ] && grep -q 'already loaded' $out"
run $vmig module status
check "status after load exits 0" test $rc -eq 0

# By name, from a module tree, as modprobe: needs kmod's depmod.
if [ -x /usr/bin/depmod ]; then
	mkdir -p "/lib/modules/$kver/extra"
	cp "$VMIG_KO" "/lib/modules/$kver/extra/vmig.ko"
	/usr/bin/depmod "$kver" >/dev/null 2>&1	# it warns of files a real tree has
	$vmig module unload >/dev/null 2>&1
	run $vmig module load stall_event_us=4321
	check "load by name from the module tree with a parameter" \
		sh -c "[ $rc -eq 0 ] && grep -q '^vmig ' /proc/modules &&
		       [ \$(cat /sys/module/vmig/parameters/stall_event_us) = 4321 ]"
	run $vmig module status
	check "status shows the installed file and the parameter" \
		sh -c "grep -q 'installed: /lib/modules/$kver/extra/vmig.ko' $out &&
		       grep -q 'stall_event_us *4321' $out"
	run $vmig module load bogus_param=1
	check "load with parameters while loaded is no error" test $rc -eq 0
	rm -rf "/lib/modules/$kver"
else
	skip "load by name from the module tree" "no kmod depmod in the guest"
fi
loaded || insmod "$VMIG_KO"
tap_done
