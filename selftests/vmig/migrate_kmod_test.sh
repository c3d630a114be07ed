#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Full precopy migrations on vmig.ko regions, inside the guest (busybox sh):
# a source VMM and a destination VMM whose RAM is a region each, vmig
# migrate and vmig listen over loopback, the destination checking every
# page after resuming.  Every dirty-logging mode, idle, dirtying and
# never-written guests, several dirty rounds, auto-converge throttling in
# the bulk stage; postcopy with and without a
# preempt channel (the destination's regions switched to postcopy mode,
# pages discarded, requested and placed by the module), and recovering
# from a cut link; a backend that
# does not fit the VMM's RAM is refused; `vmig stats` and `vmig monitor`
# show the regions, the dirty-logging and postcopy events of the run.  Needs /usr/bin/vmig
# (VMCHECK_EXTRA) and tap.sh next to it.
. /usr/bin/tap.sh
. /usr/bin/vm_lib.sh

vmig=/usr/bin/vmig
if [ ! -x "$vmig" ] || [ ! -e /dev/vmig ]; then
	skip "migrations on vmig.ko regions" "no /usr/bin/vmig or /dev/vmig in the guest"
	tap_done
	exit 0
fi
T=/tmp/kmig
mkdir -p $T
vm_auth $T	# who may connect: vmig listen/migrate need a choice
port=5100

# start_pair P MEM GUEST_ARGS [BACKEND]: destination guest + listener, source guest.
start_pair() {
	be=${4:-kmod}
	port=$((port + 1))
	$vmig guest --socket $1.dst --mem $2 --incoming --verify-all --run 1 --lifetime 250 \
		--backend kmod >$1.dg.out 2>$1.dg.err &
	dg=$!
	wait_for $1.dg.out "guest: ready" 60 || return 1
	$vmig listen --vmm $1.dst --port 127.0.0.1:$port --timeout 60 --accept-timeout 250 $AUTH \
		--no-progress --json --backend $be ${LS_EXTRA:-} >$1.ls.json 2>$1.ls.err &
	ls=$!
	wait_for $1.ls.err "waiting for a source" 60 || return 1
	$vmig guest --socket $1.src --mem $2 --lifetime 250 --backend kmod $3 \
		>$1.sg.out 2>$1.sg.err &
	sg=$!
	wait_for $1.sg.out "guest: ready" 60
}

# run_case NAME MEM GUEST_ARGS MIGRATE_ARGS PATTERN...: migrate; expect
# success, every page verified on the destination, and each PATTERN in the
# source's JSON report.
run_case() {
	name=$1 mem=$2 gargs=$3 margs=$4
	shift 4
	p=$T/c$tap_n
	t0=$(date +%s)
	start_pair $p $mem "$gargs"
	timeout 250 $vmig migrate --vmm $p.src --to 127.0.0.1:$port $AUTH --json --timeout 60 \
		--no-progress $margs >$p.json 2>$p.merr
	rc=$?
	wait_pid $ls 60; lrc=$?
	wait_pid $dg 60; drc=$?
	wait_pid $sg 60; src=$?
	check "$name: migrated, all four processes exit 0" \
		[ $rc -eq 0 -a $lrc -eq 0 -a $drc -eq 0 -a $src -eq 0 ]
	[ $rc -eq 0 -a $drc -eq 0 ] || dump $p.json $p.merr $p.ls.err $p.dg.err $p.sg.err
	check "$name: every page verified on the destination" \
		grep -q "verify-all after resume: .* 0 errors" $p.dg.err
	check "$name: pages checked on touch after resume, none wrong" \
		grep -q "pages checked on touch, .* 0 wrong pages" $p.dg.err
	ok=0
	for pat in '"ok":true' '"backend":"kmod"' "$@"; do
		grep -q -- "$pat" $p.json || { ok=1; echo "# $p.json lacks $pat"; }
	done
	check "$name: the report says so" [ $ok -eq 0 ]
	echo "# $name: $(($(date +%s) - t0)) s"
}

# The monitor follows the whole run.
$vmig monitor --json >$T/monitor.json 2>$T/monitor.err &
mon=$!
sleep 0.5

run_case "idle guest, 1 channel, manual-init" 32M "--pattern idle" "--multifd 1" \
	'"tracking":"kmod-manual-init"'
# "protected_after_stop": what the module write-protected from the stop to
# the end: work in the downtime for nothing, since no round follows.  Manual
# modes re-arm a page's protection just before sending it, and not after
# the stop; the protect mode's last harvest (VMIG_DIRTY_LOG_FINAL) leaves
# what it finds writable.  None in every mode.
run_case "random dirtying guest, 3 vCPUs, 4 channels, manual-init" 32M \
	"--pattern random --dirty-rate 8 --vcpus 3" "--multifd 4" '"tracking":"kmod-manual-init"' \
	'"protected_after_stop":0,'
run_case "random dirtying guest, manual" 32M "--pattern random --dirty-rate 8" \
	"--multifd 2 --dirty-mode manual" '"tracking":"kmod-manual"' '"protected_after_stop":0,'
run_case "random dirtying guest, protect" 32M "--pattern random --dirty-rate 8" \
	"--multifd 2 --dirty-mode protect" '"tracking":"kmod-protect"' \
	'"protected_after_stop":0,'
run_case "random dirtying guest, hwdirty" 32M "--pattern random --dirty-rate 8" \
	"--multifd 2 --dirty-mode hwdirty" '"tracking":"kmod-hwdirty"'
run_case "sequential dirtying guest, 2 vCPUs, 3 channels" 48M \
	"--pattern sequential --dirty-rate 8" "--multifd 3"
run_case "pages first written during the migration are caught" 32M \
	"--pattern random --no-fill --dirty-rate 8" "--multifd 2"
run_case "dirty rounds run until the downtime fits (manual-init)" 32M \
	"--pattern random --dirty-rate 2" "--multifd 2 --max-bandwidth 16 --downtime-limit 50"
check "the capped run had dirty rounds" sh -c "! grep -q '\"rounds\":0,' $p.json"
run_case "auto-converge throttles a guest that outruns the link already in the bulk stage" 32M \
	"--pattern random --dirty-rate 48 --vcpus 2" \
	"--multifd 2 --max-bandwidth 8 --downtime-limit 30 --max-rounds 12 --auto-converge" \
	'"throttle_pct":[2-9][0-9],'
check "... the source saw pages re-dirtied during the bulk stage and throttled then" \
	grep -q "auto-converge in the bulk stage: [0-9]* pages written again of [0-9]* sent" $p.merr
check "... and the guest's vCPUs were throttled" \
	grep -q "vCPUs were throttled (auto-converge) up to [2-9][0-9] %" $p.sg.err
run_case "never-written pages are skipped, not sent" 64M "--pattern idle --no-fill" \
	"--multifd 2"
check "never-written pages: skipped, (almost) nothing sent whole" \
	sh -c "grep -q '\"skipped\":6[0-9]\{7\},' $p.json && grep -q '\"normal\":[0-9]\{1,6\},' $p.json"

# Postcopy on vmig.ko regions at both ends: the destination's requests
# come from the regions' queues and are placed with VMIG_PLACE_BATCH.
PC='"postcopy":{"preempt'
run_case "postcopy from the start, preempt, random dirtying guest, 2 vCPUs, 2 channels" 32M \
	"--pattern random --dirty-rate 8 --vcpus 2" "--postcopy-after 0 --multifd 2" \
	"$PC\":true"
check "... the destination requested pages from the regions and measured them" \
	grep -q '"postcopy":{"preempt":true,.*"requests":[1-9][0-9]*,.*"latency_us":{"count":[1-9]' \
	$p.ls.json
check "... from the helper's read of each fault and from the fault itself (the module's stamp)" \
	grep -q '"latency_us":{"count":[1-9].*"fault_latency_us":{"count":[1-9]' $p.ls.json
# On plain TCP vmig.ko writes the requests to the return path itself.
check "... vmig.ko wrote the requests to the return path itself (VMIG_POSTCOPY_SET_SINK)" \
	grep -q '"requests":[1-9][0-9]*,"kernel_requests":[1-9]' $p.ls.json
# The helper's own request path, as before the sink, stays covered.
LS_EXTRA=--no-kernel-requests
run_case "postcopy after the bulk stage, preempt, pages re-dirtied are discarded, requests written by the helper" 32M \
	"--pattern random --dirty-rate 8" "--postcopy --multifd 1" \
	"$PC\":true,\"replies\":\"return-path\",\"sched\":\"[^\"]*\",\"discarded\":[1-9]" '"protected_after_stop":0,'
LS_EXTRA=
check "... the helper wrote every request, vmig.ko none" \
	grep -q '"requests":[1-9][0-9]*,"kernel_requests":0,' $p.ls.json
run_case "postcopy without preempt, sequential guest, 2 channels" 32M \
	"--pattern sequential --dirty-rate 8" "--postcopy-after 0 --multifd 2 --no-preempt" \
	"$PC\":false"
check "... the destination requested pages without a preempt channel" \
	grep -q '"postcopy":{"preempt":false,.*"requests":[1-9]' $p.ls.json

run_case "postcopy recovers from a cut during the background transfer" 32M \
	"--pattern random --dirty-rate 8" \
	"--postcopy-after 0 --multifd 2 --max-bandwidth 8 --inject-cut pages:2000" '"recoveries":1,'
check "... the destination paused, took the session back and counted it" \
	sh -c "grep -q 'postcopy paused' $p.ls.err && grep -q '\"recoveries\":1,' $p.ls.json"

# vmig stats while the destination runs in postcopy: its region in postcopy mode.
p=$T/pcstats
start_pair $p 32M "--pattern random --dirty-rate 8"
timeout 250 $vmig migrate --vmm $p.src --to 127.0.0.1:$port $AUTH --json --timeout 60 \
	--no-progress --postcopy-after 0 --multifd 1 --max-bandwidth 4 >$p.json 2>$p.merr &
mg=$!
wait_for $p.ls.err "postcopy: the guest runs here" 60
$vmig stats --json >$p.stats.json 2>&1
wait_pid $mg 120; rc=$?
wait_pid $ls 60; wait_pid $dg 60; drc=$?
wait_pid $sg 60
check "vmig stats during postcopy shows the destination region in postcopy mode" \
	grep -q '"size":33554432,"flags":[0-9]*,"postcopy":true' $p.stats.json
check "... and that migration completes, every page verified" \
	sh -c "[ $rc -eq 0 -a $drc -eq 0 ] && grep -q 'verify-all after resume: .* 0 errors' $p.dg.err"
[ $rc -eq 0 -a $drc -eq 0 ] || dump $p.json $p.merr $p.ls.err $p.dg.err $p.stats.json

# A backend that does not fit the VMM's RAM is refused with the reason.
p=$T/mismatch
start_pair $p 32M "--pattern idle"
timeout 60 $vmig migrate --vmm $p.src --to 127.0.0.1:$port $AUTH --timeout 10 --no-progress \
	--backend uffd >$p.json 2>$p.merr
rc=$?
check "--backend uffd on vmig.ko regions fails saying why" \
	sh -c "[ $rc -eq 1 ] && grep -q 'vmig.ko regions, not memfds' $p.merr"
check "... and the source guest runs on, memory intact" \
	wait_for $p.sg.err "memory intact after the failed migration: .* 0 errors" 30
kill $sg $dg $ls 2>/dev/null
wait_pid $sg 10; wait_pid $dg 10; wait_pid $ls 10

# vmig stats shows live regions of the VMMs.
p=$T/stats
$vmig guest --socket $p.src --mem 40M --lifetime 60 --backend kmod --pattern idle \
	>$p.sg.out 2>$p.sg.err &
sg=$!
wait_for $p.sg.out "guest: ready" 60
$vmig stats --json >$p.json 2>&1
check "vmig stats shows the VMM's region (40 MiB)" grep -q '"size":41943040' $p.json
kill $sg
wait_pid $sg 10

sleep 0.5
kill $mon
wait_pid $mon 10
m=$T/monitor.json
check "vmig monitor saw the run's regions created (32 MiB) with the VMMs' pids" \
	grep -q '"event":"region-created",.*"size":33554432,.*"pid":[1-9]' $m
check "vmig monitor saw dirty logging turned on with manual-init flags (3)" \
	grep -q '"event":"dirty",.*"dirty_on":true,"dirty_flags":3' $m
check "vmig monitor saw dirty logging turned on in hwdirty mode (4)" \
	grep -q '"event":"dirty",.*"dirty_on":true,"dirty_flags":4' $m
check "vmig monitor saw dirty logging turned off" \
	grep -q '"event":"dirty",.*"dirty_on":false' $m
check "vmig monitor saw source regions destroyed with harvests and clears counted" \
	grep -q '"event":"region-destroyed",.*"harvest_calls":[1-9][0-9]*,.*"clear_calls":[1-9]' $m
check "vmig monitor saw write faults counted on a source region" \
	grep -q '"event":"region-destroyed",.*"write_faults":[1-9]' $m
check "vmig monitor saw a destination region enter postcopy mode" \
	grep -q '"event":"postcopy",.*"postcopy_on":true' $m
check "vmig monitor saw it leave postcopy mode when every page was there" \
	grep -q '"event":"postcopy",.*"postcopy_on":false' $m
check "vmig monitor saw a destination region destroyed with requests served and pages discarded" \
	grep -q '"event":"region-destroyed",.*"requests":[1-9][0-9]*,"pages_placed":[1-9][0-9]*,.*"pages_discarded":[1-9]' $m
[ $tap_failed -eq 0 ] || dump $m $T/monitor.err
rm -rf $T
tap_done
