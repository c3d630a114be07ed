#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# `vmig region create|list|remove|mount` in the guest (busybox sh): create
# mounts a vmigfs on /run/vmig on demand and makes a region file of the
# size, mode and owner asked; list shows it (text and JSON); bad sizes,
# a name taken, a directory that is not a vmigfs are refused with a
# message naming the problem and nothing left behind; remove unlinks only
# region files, and a region still open lives on until it is closed.
# Needs the helper in /usr/bin (VMCHECK_EXTRA) and tap.sh next to it.
. /usr/bin/tap.sh

vmig=/usr/bin/vmig
if [ ! -x "$vmig" ]; then
	skip "vmig region" "no /usr/bin/vmig in the guest"
	tap_done
	exit 0
fi
out=/tmp/region_cmd_test.out
run() {
	"$@" >"$out" 2>&1
	rc=$?
}
has() { grep -q -- "$1" "$out"; }
# The module's count of live regions, from its netlink info.
regions() { $vmig stats --json | sed -n 's/.*"region_count":\([0-9]*\).*/\1/p'; }

run $vmig region create /run/vmig/ram0 --size 4M --mode 0640 --owner 1000:1000
check "create mounts a vmigfs on /run/vmig and makes the region" \
	sh -c "[ $rc -eq 0 ] && grep -q ' /run/vmig vmigfs ' /proc/mounts && [ -f /run/vmig/ram0 ]"
check "the region file has the size, mode and owner asked" \
	sh -c "ls -ln /run/vmig/ram0 | grep -q '^-rw-r----- *1 1000 *1000 *4194304 '"

run $vmig region list
check "list shows path, size, mode and owner" \
	sh -c "[ $rc -eq 0 ] && grep -q '^/run/vmig/ram0 .*4.0 MiB 0640 *1000:1000' $out"
run $vmig region list --json
check "list --json describes it" \
	has '{"path":"/run/vmig/ram0","size":4194304,"mode":"0640","uid":1000,"gid":1000,"pages_present":0,"postcopy":false,"dirty_logging":false}'

run $vmig region create /run/vmig/ram0 --size 8M
check "create refuses a name that is taken" sh -c "[ $rc -eq 1 ] && grep -q 'exists already' $out"
check "...and leaves the region as it was" sh -c "ls -ln /run/vmig/ram0 | grep -q ' 4194304 '"

run $vmig region create /run/vmig/odd --size 4097
check "create refuses a size that is not page aligned" \
	sh -c "[ $rc -eq 1 ] && grep -q 'not a multiple of the page size' $out && [ ! -e /run/vmig/odd ]"
run $vmig region create /run/vmig/huge --size 64G
check "create refuses a size over the module's cap, naming it" \
	sh -c "[ $rc -eq 1 ] && grep -q 'max_region_mb' $out && [ ! -e /run/vmig/huge ]"
run $vmig region create /run/vmig/x --size 4M --mode 9
check "create refuses a bad --mode as a usage error" sh -c "[ $rc -eq 2 ] && grep -q -- '--mode' $out"
run $vmig region create /run/vmig/x
check "create without --size is a usage error" sh -c "[ $rc -eq 2 ] && grep -q -- '--size is required' $out"
mkdir -p /tmp/plain
run $vmig region create /tmp/plain/ram --size 4M
check "create refuses a directory that is not a vmigfs" \
	sh -c "[ $rc -eq 1 ] && grep -q 'not on a vmigfs' $out && [ ! -e /tmp/plain/ram ]"

# remove: only region files; an open region lives on until closed.
echo keep >/tmp/plain/file
run $vmig region remove /tmp/plain/file
check "remove leaves a file that is not on a vmigfs alone" \
	sh -c "[ $rc -eq 1 ] && grep -q 'not on a vmigfs' $out && [ -f /tmp/plain/file ]"
before=$(regions)
run $vmig region create /run/vmig/ram1 --size 12M
exec 3</run/vmig/ram1
run $vmig region remove /run/vmig/ram1
check "remove unlinks the region file" sh -c "[ $rc -eq 0 ] && [ ! -e /run/vmig/ram1 ]"
check "a removed region that is still open stays alive" \
	sh -c "[ -n \"$before\" ] && [ \"$(regions)\" = $((before + 1)) ]"
exec 3<&-
check "...and goes with its last close" test "$(regions)" = "$before"
run $vmig region list
check "list no longer shows it" sh -c "! grep -q ram1 $out"

run $vmig region mount /tmp/v2
check "mount makes a vmigfs on the directory given" \
	sh -c "[ $rc -eq 0 ] && grep -q ' /tmp/v2 vmigfs ' /proc/mounts"
run $vmig region mount /tmp/v2
check "mount again is no error and no second mount" \
	sh -c "[ $rc -eq 0 ] && [ \$(grep -c ' /tmp/v2 vmigfs ' /proc/mounts) -eq 1 ]"

run $vmig region remove /run/vmig/ram0
check "remove the last region" test "$rc" -eq 0
umount /tmp/v2
umount /run/vmig
check "both vmigfs unmount once no region is in use" sh -c "! grep -q vmigfs /proc/mounts"
tap_done
