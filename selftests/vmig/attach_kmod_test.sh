#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Crash-safe postcopy on vmig.ko regions, inside the guest (busybox sh): the
# source helper is killed (kill -9) right after the postcopy switch; the
# source VMM, whose region holds the guest memory, stays stopped; the
# destination's region stays in postcopy mode, its faults waiting; 'vmig
# migrate --attach' takes over and the destination checks every page.
# Needs /usr/bin/vmig (VMCHECK_EXTRA) and tap.sh next to it.
. /usr/bin/tap.sh
. /usr/bin/vm_lib.sh

vmig=/usr/bin/vmig
if [ ! -x "$vmig" ] || [ ! -e /dev/vmig ]; then
	skip "--attach on vmig.ko regions" "no /usr/bin/vmig or /dev/vmig in the guest"
	tap_done
	exit 0
fi
T=/tmp/kattach
mkdir -p $T
vm_auth $T	# who may connect: vmig listen/migrate need a choice
port=5300

# attach_case NAME MIGRATE_ARGS
attach_case() {
	name=$1
	p=$T/c$tap_n
	port=$((port + 1))
	$vmig guest --socket $p.dst --mem 32M --incoming --verify-all --run 1 --lifetime 250 \
		--backend kmod >$p.dg.out 2>$p.dg.err &
	dg=$!
	wait_for $p.dg.out "guest: ready" 60
	$vmig listen $AUTH --vmm $p.dst --port 127.0.0.1:$port --timeout 60 --accept-timeout 250 \
		--no-progress --json --recovery-timeout 120 >$p.ls.json 2>$p.ls.err &
	ls=$!
	wait_for $p.ls.err "waiting for a source" 60
	$vmig guest --socket $p.src --mem 32M --lifetime 250 --backend kmod \
		--pattern random --dirty-rate 8 >$p.sg.out 2>$p.sg.err &
	sg=$!
	wait_for $p.sg.out "guest: ready" 60
	$vmig migrate $AUTH --vmm $p.src --to 127.0.0.1:$port --json --timeout 60 --no-progress \
		$2 >$p.m1.json 2>$p.m1.err &
	m1=$!
	wait_for $p.ls.err "postcopy: the guest runs here" 120
	kill -9 $m1
	wait $m1 2>/dev/null
	check "$name: the source VMM stays stopped for a helper to take over" \
		wait_for $p.sg.err "staying stopped until a helper takes over" 30
	timeout 250 $vmig migrate $AUTH --vmm $p.src --attach --json --timeout 60 --no-progress \
		>$p.m2.json 2>$p.m2.err
	rc=$?
	wait_pid $ls 60; lrc=$?
	wait_pid $dg 60; drc=$?
	wait_pid $sg 60; src=$?
	check "$name: --attach completes, all four processes exit 0" \
		[ $rc -eq 0 -a $lrc -eq 0 -a $drc -eq 0 -a $src -eq 0 ]
	[ $rc -eq 0 -a $drc -eq 0 ] ||
		dump $p.m1.err $p.m2.json $p.m2.err $p.ls.err $p.dg.err $p.sg.err
	check "$name: --attach had pages left to send" \
		grep -q '"event":"resumed",.*"pages_to_send":[1-9]' $p.m2.json
	check "$name: every page verified on the destination" \
		grep -q "verify-all after resume: .* 0 errors" $p.dg.err
	check "$name: pages checked on touch after resume, none wrong" \
		grep -q "pages checked on touch, .* 0 wrong pages" $p.dg.err
	check "$name: the source guest did not run on" \
		sh -c "! grep -q 'running on here' $p.sg.err"
}

attach_case "kill -9 mid-postcopy on kmod, preempt, 2 channels" \
	"--postcopy-after 0 --multifd 2 --max-bandwidth 2"

tap_done
