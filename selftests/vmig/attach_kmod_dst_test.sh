#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Crash-safe postcopy on vmig.ko regions, destination side, inside the
# guest (busybox sh): the destination helper is killed (kill -9) mid-
# postcopy; the destination VMM runs on, its region in postcopy mode with
# faults waiting; a plain 'vmig listen' is refused; 'vmig listen --attach'
# rebuilds the received bitmap from the region's pages (mincore), queues
# again the requests the dead helper had read (VMIG_REQUEUE), answers the
# source's RESUME and finishes; the destination checks every page.
# Needs /usr/bin/vmig (VMCHECK_EXTRA) and tap.sh next to it.
. /usr/bin/tap.sh
. /usr/bin/vm_lib.sh

vmig=/usr/bin/vmig
if [ ! -x "$vmig" ] || [ ! -e /dev/vmig ]; then
	skip "listen --attach on vmig.ko regions" "no /usr/bin/vmig or /dev/vmig in the guest"
	tap_done
	exit 0
fi
T=/tmp/kattachdst
mkdir -p $T
vm_auth $T	# who may connect: vmig listen/migrate need a choice
port=5400

# attach_case NAME MIGRATE_ARGS WAIT_FOR: kill the destination helper once
# its stderr says WAIT_FOR; with --no-auto-resume in MIGRATE_ARGS the source
# is told to resume once the new helper listens.
attach_case() {
	name=$1
	p=$T/c$tap_n
	port=$((port + 1))
	$vmig guest --socket $p.dst --mem 32M --incoming --verify-all --run 1 --lifetime 280 \
		--backend kmod >$p.dg.out 2>$p.dg.err &
	dg=$!
	wait_for $p.dg.out "guest: ready" 60
	$vmig listen $AUTH --vmm $p.dst --port 127.0.0.1:$port --timeout 60 --accept-timeout 250 \
		--no-progress --json --recovery-timeout 120 >$p.ls.json 2>$p.ls.err &
	ls=$!
	wait_for $p.ls.err "waiting for a source" 60
	$vmig guest --socket $p.src --mem 32M --lifetime 280 --backend kmod \
		--pattern random --dirty-rate 8 >$p.sg.out 2>$p.sg.err &
	sg=$!
	wait_for $p.sg.out "guest: ready" 60
	$vmig migrate $AUTH --vmm $p.src --to 127.0.0.1:$port --json --timeout 60 --no-progress \
		--recovery-timeout 250 --control-socket $p.ctl $2 >$p.m.json 2>$p.m.err &
	m=$!
	wait_for $p.ls.err "$3" 120
	kill -9 $ls
	wait $ls 2>/dev/null
	check "$name: the destination VMM runs on, waiting for a helper to take over" \
		wait_for $p.dg.err "until a helper takes over" 30
	timeout 120 $vmig listen $AUTH --vmm $p.dst --port 127.0.0.1:$((port + 50)) --timeout 60 \
		--no-progress >$p.l2.out 2>$p.l2.err
	rc2=$?
	check "$name: a plain 'vmig listen' is refused" \
		[ $rc2 -eq 1 -a -n "$(grep "only 'vmig listen --attach'" $p.l2.err)" ]
	$vmig listen $AUTH --vmm $p.dst --attach --json --timeout 60 --no-progress \
		--recovery-timeout 200 >$p.l3.json 2>$p.l3.err &
	l3=$!
	wait_for $p.l3.err "for the source to resume it" 60
	case "$2" in *--no-auto-resume*)
		timeout 120 $vmig migrate --resume $p.ctl >$p.r.out 2>&1 ;;
	esac
	wait_pid $l3 250; rc=$?
	wait_pid $m 60; mrc=$?
	wait_pid $dg 60; drc=$?
	wait_pid $sg 60; src=$?
	check "$name: --attach completes, all four processes exit 0" \
		[ $rc -eq 0 -a $mrc -eq 0 -a $drc -eq 0 -a $src -eq 0 ]
	[ $rc -eq 0 -a $drc -eq 0 -a $mrc -eq 0 ] ||
		dump $p.m.err $p.ls.err $p.l2.err $p.l3.err $p.l3.json $p.dg.err $p.sg.err
	check "$name: --attach took over with pages missing" \
		grep -q "took over the postcopy of session .*: [1-9][0-9]* pages missing" $p.l3.err
	check "$name: every page verified on the destination" \
		grep -q "verify-all after resume: .* 0 errors" $p.dg.err
	check "$name: pages checked on touch after resume, none wrong" \
		grep -q "pages checked on touch, .* 0 wrong pages" $p.dg.err
}

attach_case "destination helper killed mid-postcopy on kmod, preempt, 2 channels" \
	"--postcopy-after 0 --multifd 2 --max-bandwidth 2" "postcopy: the guest runs here"
# reqhold: the source cuts every channel at the 3rd request and sends that
# page only on request; the helper, paused with it outstanding, is killed.
# Only VMIG_REQUEUE brings that request to the new helper: without it the
# fault would wait for ever and the verification never finish.
attach_case "a request the dead helper had read, queued again (VMIG_REQUEUE)" \
	"--postcopy-after 0 --multifd 1 --max-bandwidth 2 --inject-cut reqhold:3 --no-auto-resume" \
	"postcopy paused"

tap_done
