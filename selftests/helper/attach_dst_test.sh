#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Crash-safe postcopy, destination side: the destination helper is killed
# (kill -9) right after the postcopy switch, with most pages still missing
# and vCPU threads waiting for some of them.  The destination VMM must run
# on (not exit 4 as before: the source still held every page) and keep the
# dead helper's record and userfaultfd; a plain 'vmig listen' must neither
# restart nor discard that guest (with its default --prefault it would
# have filled every missing page with zeros); 'vmig listen --attach' takes
# over, the source (paused, reconnecting by itself) resumes, and the
# destination guest verifies every page.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}

# attach_dst_case NAME MIGRATE_ARGS [LISTEN_ARGS (both listeners)]
attach_dst_case() {
	local name=$1 margs=$2 largs=${3:-} p=d$tap_n
	local port_var="PORT_$p" spid="PID_${p}sg" dpid="PID_${p}dg" lpid="PID_${p}ls" mpid="PID_${p}m"
	# Kill it as soon as the guest runs here: pages still missing.
	mig_in_postcopy "$p" "$largs" "--recovery-timeout 120 $margs"
	kill -9 "${!lpid}"
	wait "${!lpid}" 2>/dev/null
	check "$name: the destination VMM runs on, waiting for a helper to take over" \
		wait_for "$MIG_TMP/${p}dg.err" "until a helper takes over (vmig listen --attach)" 10
	check "$name: ... and did not give the guest up" \
		bash -c "! grep -q 'cannot continue' '$MIG_TMP/${p}dg.err' && kill -0 ${!dpid}"
	check "$name: the source paused" wait_for "$MIG_TMP/${p}m.err" "postcopy paused" 20

	# An ordinary helper must not take the running guest for a fresh one.
	local port2
	port2=$(free_port)
	timeout 60 "$VMIG" listen $(auth_args "$largs") $largs --vmm "$MIG_TMP/${p}dst.sock" \
		--port "127.0.0.1:$port2" --timeout 5 --no-progress >"$MIG_TMP/${p}l2.out" 2>"$MIG_TMP/${p}l2.err"
	local rc2=$?
	check "$name: a plain 'vmig listen' is refused, saying why" \
		test $rc2 -eq 1 -a -n "$(grep "only 'vmig listen --attach' may take it over" \
			"$MIG_TMP/${p}l2.err")"
	check "$name: ... and the guest runs on, still waiting" \
		bash -c "kill -0 ${!dpid} && [ \$(grep -c 'until a helper takes over' \
			'$MIG_TMP/${p}dg.err') -ge 2 ]"

	timeout 180 "$VMIG" listen $(auth_args "$largs") --vmm "$MIG_TMP/${p}dst.sock" --attach --json --timeout 5 \
		--no-progress --recovery-timeout 60 $largs >"$MIG_TMP/${p}l3.json" \
		2>"$MIG_TMP/${p}l3.err"
	local rc=$?
	wait_pid "${!mpid}" 60; local mrc=$?
	wait_pid "${!dpid}" 60; local drc=$?
	wait_pid "${!spid}" 30; local src=$?
	check "$name: --attach completes the migration" \
		test $rc -eq 0 -a $mrc -eq 0 -a $drc -eq 0 -a $src -eq 0
	[ $rc -eq 0 ] && [ $mrc -eq 0 ] && [ $drc -eq 0 ] && [ $src -eq 0 ] ||
		dump "${p}m.err" "${p}m.out" "${p}ls.err" "${p}l2.err" "${p}l3.err" "${p}l3.json" \
			"${p}dg.err" "${p}sg.err"
	check "$name: --attach took over with pages missing, on the dead helper's port" \
		grep -q "took over the postcopy of session .*: [1-9][0-9]* pages missing; waiting on 127.0.0.1:${!port_var}" \
			"$MIG_TMP/${p}l3.err"
	check "$name: every page verified on the destination" \
		grep -q "verify-all after resume: .* 0 errors" "$MIG_TMP/${p}dg.err"
	check "$name: no page was wrong when touched" \
		grep -q "page writes, 0 wrong pages" "$MIG_TMP/${p}dg.err"
	check "$name: the source guest was migrated away" \
		grep -q "migrated away" "$MIG_TMP/${p}sg.err"
	check "$name: both reports count the takeover as a recovery" \
		json_both "$MIG_TMP/${p}m.out" "d['ok'] and d['postcopy']['recoveries'] >= 1" \
		"$MIG_TMP/${p}l3.json" "d['ok'] and d['postcopy']['recoveries'] == 1"
}

SLOW="--postcopy-after 0 --max-bandwidth 4"
attach_dst_case "destination helper killed mid-postcopy, preempt, 2 channels" "$SLOW --multifd 2"
attach_dst_case "destination helper killed mid-postcopy, no preempt, 3 channels" \
	"$SLOW --multifd 3 --no-preempt"
vmig_psk "$MIG_TMP/attach.psk"
attach_dst_case "destination helper killed mid-postcopy, TLS (PSK)" \
	"$SLOW --multifd 2 --tls-psk $MIG_TMP/attach.psk" "--tls-psk $MIG_TMP/attach.psk"

# The faults the dead helper had read must be raised again.  reqhold: the
# source cuts every channel at the 3rd page request and never sends that
# page in the background, only on request.  The destination helper, paused
# with that request outstanding, is killed; the new one never saw it.  Only
# the woken thread faulting again brings a request for it: without that the
# thread would wait until COMPLETE and then read a zero page.  The source
# waits for a manual resume, so that it does not resume with the first
# helper before it is killed.
p=w$tap_n
dest_pair "$p" "--mem 64M --verify-all --run 1" "--json --recovery-timeout 60"
src_guest "$p" "--mem 64M --pattern random --dirty-rate 100"
v="PORT_$p"
start "${p}m" "$VMIG" migrate $MIG_AUTH --vmm "$MIG_TMP/${p}src.sock" --to "127.0.0.1:${!v}" --json \
	--timeout 5 --no-progress --recovery-timeout 120 --no-auto-resume \
	--control-socket "$MIG_TMP/${p}ctl.sock" --postcopy-after 0 --max-bandwidth 4 \
	--multifd 1 --inject-cut reqhold:3
wait_for "$MIG_TMP/${p}ls.err" "postcopy paused" 60
wait_for "$MIG_TMP/${p}m.err" "postcopy paused" 20
v="PID_${p}ls"
kill -9 "${!v}"
wait "${!v}" 2>/dev/null
start "${p}l2" "$VMIG" listen $MIG_AUTH --vmm "$MIG_TMP/${p}dst.sock" --attach --json --timeout 5 \
	--no-progress --recovery-timeout 60
wait_for "$MIG_TMP/${p}l2.err" "waiting on .* for the source to resume it" 30
timeout 60 "$VMIG" migrate --resume "$MIG_TMP/${p}ctl.sock" >"$MIG_TMP/${p}r.out" 2>&1
v="PID_${p}l2"; wait_pid "${!v}" 120; rc=$?
v="PID_${p}m"; wait_pid "${!v}" 60; mrc=$?
v="PID_${p}dg"; wait_pid "${!v}" 60; drc=$?
check "a request the dead helper had read: raised again, the migration completes" \
	test $rc -eq 0 -a $mrc -eq 0 -a $drc -eq 0
[ $rc -eq 0 ] && [ $mrc -eq 0 ] && [ $drc -eq 0 ] ||
	dump "${p}m.err" "${p}ls.err" "${p}l2.err" "${p}r.out" "${p}dg.err"
check "... the held page came on request, and every page verified" \
	grep -q "verify-all after resume: .* 0 errors" "$MIG_TMP/${p}dg.err"
check "... no page was wrong when touched" \
	grep -q "page writes, 0 wrong pages" "$MIG_TMP/${p}dg.err"

# The helper dies after every page arrived and DONE went out, before the
# source's acknowledgement (done: the source drops DONE as a cut): the new
# helper finds every page present, tells the returning source DONE, and the
# guest completes instead of exiting 4 after a wait for pages nobody lacks.
p=f$tap_n
dest_pair "$p" "--mem 32M --verify-all --run 1" "--json --recovery-timeout 60"
src_guest "$p" "--mem 32M --pattern random --dirty-rate 20"
v="PORT_$p"
start "${p}m" "$VMIG" migrate $MIG_AUTH --vmm "$MIG_TMP/${p}src.sock" --to "127.0.0.1:${!v}" --json \
	--timeout 5 --no-progress --recovery-timeout 120 --postcopy-after 0 --multifd 2 \
	--inject-cut done --no-auto-resume --control-socket "$MIG_TMP/${p}ctl.sock"
wait_for "$MIG_TMP/${p}ls.err" "every page is here" 60
v="PID_${p}ls"
kill -9 "${!v}"
wait "${!v}" 2>/dev/null
start "${p}l2" "$VMIG" listen $MIG_AUTH --vmm "$MIG_TMP/${p}dst.sock" --attach --json --timeout 5 \
	--no-progress --recovery-timeout 60
wait_for "$MIG_TMP/${p}l2.err" "for the source to resume it" 30
timeout 60 "$VMIG" migrate --resume "$MIG_TMP/${p}ctl.sock" >"$MIG_TMP/${p}r.out" 2>&1
v="PID_${p}l2"; wait_pid "${!v}" 120; rc=$?
v="PID_${p}m"; wait_pid "${!v}" 60; mrc=$?
v="PID_${p}dg"; wait_pid "${!v}" 60; drc=$?
check "killed after its DONE: --attach finds every page and tells the source" \
	test $rc -eq 0 -a $mrc -eq 0 -a $drc -eq 0 -a \
	-n "$(grep "took over the postcopy of session .*: 0 pages missing" "$MIG_TMP/${p}l2.err")"
[ $rc -eq 0 ] && [ $mrc -eq 0 ] && [ $drc -eq 0 ] ||
	dump "${p}m.err" "${p}ls.err" "${p}l2.err" "${p}dg.err"
check "... every page verified" grep -q "verify-all after resume: .* 0 errors" "$MIG_TMP/${p}dg.err"

# Nothing to take over: --attach says so.
p=n$tap_n
start "${p}dg" "$VMIG" guest --socket "$MIG_TMP/${p}dst.sock" --incoming --lifetime 60 --mem 16M
wait_for "$MIG_TMP/${p}dg.out" "guest: ready"
timeout 30 "$VMIG" listen $MIG_AUTH --vmm "$MIG_TMP/${p}dst.sock" --attach --timeout 5 --no-progress \
	>"$MIG_TMP/${p}l.out" 2>"$MIG_TMP/${p}l.err"
rc=$?
check "--attach with no dead helper's postcopy fails and says why" \
	test $rc -eq 1 -a "$(grep -c 'no postcopy migration to take over' "$MIG_TMP/${p}l.err")" -eq 1

tap_done
