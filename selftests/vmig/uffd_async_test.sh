#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The uffd backend's tracking mode in the guest (busybox sh), on whichever
# kernel it boots.  From 6.7 (the 6.12 LTS guest) the kernel has
# UFFD_FEATURE_WP_ASYNC and PAGEMAP_SCAN: `vmig info` must say so, and a
# migration of a dirtying guest on the uffd backend must pick async
# tracking by itself (harvests by PAGEMAP_SCAN, no write fault reaching
# the helper) and verify every page; sync, asked for, must still work.
# Before 6.7 (the 6.1 guest) neither is there: info must say so, auto must
# fall back to sync (and verify), and asking for async must be refused
# with a message naming the mode.  Needs /usr/bin/vmig (VMCHECK_EXTRA) and
# tap.sh.
. /usr/bin/tap.sh
. /usr/bin/vm_lib.sh

vmig=/usr/bin/vmig
T=/tmp/uasync
mkdir -p $T
vm_auth $T	# who may connect: vmig listen/migrate need a choice
port=5500
if [ ! -x "$vmig" ]; then
	check "uffd tracking tests: /usr/bin/vmig in the guest" false
	tap_done
	exit 1
fi

# The kernel's own answer: 6.7 brought both features.
rel=$(uname -r)
major=${rel%%.*}
minor=${rel#*.}
minor=${minor%%[!0-9]*}
async_expected=0
if [ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 7 ]; }; then
	async_expected=1
fi

$vmig info --json >$T/info.json 2>$T/info.err
if [ $async_expected = 1 ]; then
	check "vmig info: $rel offers WP_ASYNC and PAGEMAP_SCAN" \
		grep -q '"wp_async":true,"pagemap_scan":true' $T/info.json
else
	check "vmig info: $rel offers neither WP_ASYNC nor PAGEMAP_SCAN" \
		grep -q '"wp_async":false,"pagemap_scan":false' $T/info.json
fi

# migrate_uffd NAME TRACK: a 32 MiB guest writing random pages, uffd backend,
# 2 channels; sets rc (vmig migrate's status) and p (files: $p.json, $p.merr).
migrate_uffd() {
	p=$T/c$tap_n
	port=$((port + 1))
	$vmig guest --socket $p.dst --mem 32M --incoming --verify-all --run 1 --lifetime 250 \
		--backend uffd >$p.dg.out 2>$p.dg.err &
	dg=$!
	wait_for $p.dg.out "guest: ready" 60
	$vmig listen $AUTH --vmm $p.dst --port 127.0.0.1:$port --timeout 60 --accept-timeout 250 \
		--no-progress --json --backend uffd >$p.ls.json 2>$p.ls.err &
	ls=$!
	wait_for $p.ls.err "waiting for a source" 60
	$vmig guest --socket $p.src --mem 32M --lifetime 250 --backend uffd \
		--pattern random --dirty-rate 8 --vcpus 2 >$p.sg.out 2>$p.sg.err &
	sg=$!
	wait_for $p.sg.out "guest: ready" 60
	timeout 250 $vmig migrate $AUTH --vmm $p.src --to 127.0.0.1:$port --json --timeout 60 \
		--no-progress --multifd 2 --track $2 >$p.json 2>$p.merr
	rc=$?
	if [ $rc -ne 0 ]; then
		kill $ls $dg $sg 2>/dev/null
		wait $ls $dg $sg 2>/dev/null
		return
	fi
	wait_pid $ls 60; lrc=$?
	wait_pid $dg 60; drc=$?
	wait_pid $sg 60; src=$?
	check "$1: migrated, all four processes exit 0" \
		[ $lrc -eq 0 -a $drc -eq 0 -a $src -eq 0 ]
	check "$1: every page verified on the destination" \
		grep -q "verify-all after resume: .* 0 errors" $p.dg.err
	[ $drc -eq 0 ] || for f in $p.merr $p.ls.err $p.dg.err; do
		tail -n 5 $f | sed "s|^|# $f: |"
	done
}

if [ $async_expected = 1 ]; then
	migrate_uffd "auto tracking on $rel" auto
	check "auto tracking on $rel: migrate exits 0, the report says async, harvests ran, no write fault reached the helper" \
		sh -c "[ $rc -eq 0 ] && grep -q '\"tracking\":\"async\"' $p.json &&
		       grep -q '\"wp_faults\":0,' $p.json && grep -q '\"harvests\":[1-9]' $p.json"
	[ $rc -eq 0 ] || tail -n 3 $p.merr | sed 's/^/# /'
	migrate_uffd "sync tracking asked for on $rel" sync
	check "sync tracking on $rel: migrate exits 0, the report says sync, write faults resolved by the helper" \
		sh -c "[ $rc -eq 0 ] && grep -q '\"tracking\":\"sync\"' $p.json &&
		       grep -q '\"wp_faults\":[1-9]' $p.json"
else
	migrate_uffd "auto tracking on $rel" auto
	check "auto tracking on $rel: migrate exits 0 and the report says sync" \
		sh -c "[ $rc -eq 0 ] && grep -q '\"tracking\":\"sync\"' $p.json"
	migrate_uffd "async tracking asked for on $rel" async
	check "async tracking on $rel is refused, the message naming the mode" \
		sh -c "[ $rc -ne 0 ] && grep -q 'async' $p.merr"
	[ $rc -ne 0 ] || tail -n 3 $p.merr | sed 's/^/# /'
fi
tap_done
