#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Crash-safe postcopy: the source helper is killed (kill -9) right after the
# postcopy switch, with most pages still missing on the destination.  The
# source VMM must stay stopped (its guest runs on the destination) and keep
# the helper's handover record; a plain 'vmig migrate' must not get hold
# of it; 'vmig migrate --attach' takes over, sends every page the paused
# destination lacks, and the destination guest verifies every page.  Before
# this, the source VMM resumed its own guest on the hang-up (the guest ran
# on both hosts) and nothing could finish the migration.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}

# One event of a --json output, by name, as a python expression on it.
event() {
	python3 -c '
import json, sys
for l in open(sys.argv[1]).read().strip().splitlines():
    d = json.loads(l)
    if d.get("event") == sys.argv[2]:
        sys.exit(0 if eval(sys.argv[3]) else 1)
sys.exit(1)' "$1" "$2" "$3"
}

# attach_case NAME MIGRATE_ARGS [ATTACH_ARGS]
attach_case() {
	local name=$1 margs=$2 aargs=${3:-} p=a$tap_n
	local port_var="PORT_$p" spid="PID_${p}sg" dpid="PID_${p}dg" lpid="PID_${p}ls"
	local m1="PID_${p}m"
	# Kill it as soon as the destination runs the guest: pages still missing.
	mig_in_postcopy "$p" "" "$margs"
	kill -9 "${!m1}"
	wait "${!m1}" 2>/dev/null
	check "$name: the source VMM stays stopped for a helper to take over" \
		wait_for "$MIG_TMP/${p}sg.err" "staying stopped until a helper takes over" 10
	check "$name: the source guest did not run on after the helper died" \
		bash -c "! grep -q 'running on here' '$MIG_TMP/${p}sg.err'"
	check "$name: the destination paused" \
		wait_for "$MIG_TMP/${p}ls.err" "postcopy paused" 10

	# An ordinary helper must not take the stopped guest for a fresh one.
	timeout 60 "$VMIG" migrate $MIG_AUTH --vmm "$MIG_TMP/${p}src.sock" --to "127.0.0.1:${!port_var}" \
		--timeout 5 --no-progress >"$MIG_TMP/${p}m2.out" 2>"$MIG_TMP/${p}m2.err"
	local rc2=$?
	check "$name: a plain 'vmig migrate' is refused and the VMM stays stopped" \
		test $rc2 -ne 0 -a "$(grep -c 'staying stopped' "$MIG_TMP/${p}sg.err")" -ge 2
	check "$name: ... and resumes nothing" \
		bash -c "! grep -q 'running on here' '$MIG_TMP/${p}sg.err'"

	timeout 120 "$VMIG" migrate $MIG_AUTH --vmm "$MIG_TMP/${p}src.sock" --attach --json --timeout 5 \
		--no-progress $aargs >"$MIG_TMP/${p}m3.json" 2>"$MIG_TMP/${p}m3.err"
	local rc=$?
	wait_pid "${!lpid}" 60; local lrc=$?
	wait_pid "${!dpid}" 60; local drc=$?
	wait_pid "${!spid}" 30; local src=$?
	check "$name: --attach completes the migration" \
		test $rc -eq 0 -a $lrc -eq 0 -a $drc -eq 0 -a $src -eq 0
	[ $rc -eq 0 ] && [ $lrc -eq 0 ] && [ $drc -eq 0 ] && [ $src -eq 0 ] ||
		dump "${p}m.err" "${p}m2.err" "${p}m3.err" "${p}m3.json" "${p}ls.err" \
			"${p}dg.err" "${p}sg.err"
	check "$name: --attach had pages left to send" \
		event "$MIG_TMP/${p}m3.json" resumed "d['pages_to_send'] > 0"
	check "$name: every page verified on the destination" \
		grep -q "verify-all after resume: .* 0 errors" "$MIG_TMP/${p}dg.err"
	check "$name: no page was wrong when touched" \
		grep -q "page writes, 0 wrong pages" "$MIG_TMP/${p}dg.err"
	check "$name: the source guest was migrated away" \
		grep -q "migrated away" "$MIG_TMP/${p}sg.err"
	check "$name: both reports count one recovery" \
		json_both "$MIG_TMP/${p}m3.json" "d['ok'] and d['postcopy']['recoveries'] == 1" \
		"$MIG_TMP/${p}ls.out" "d['ok'] and d['postcopy']['recoveries'] == 1"
}

SLOW="--postcopy-after 0 --max-bandwidth 4"
attach_case "kill -9 mid-postcopy, preempt, 2 channels" "$SLOW --multifd 2"
attach_case "kill -9 mid-postcopy, no preempt, 3 channels" "$SLOW --multifd 3 --no-preempt"

# The helper dies after leaving its record but before POSTCOPY reached the
# destination (switchlost: the switch is lost with the link; it waits,
# paused, for a manual resume and is killed there).  --attach hears from
# the destination that it never ran the guest: the record is dropped and
# the guest resumes here, memory intact.
p=l$tap_n
dest_pair "$p" "--mem 64M --verify-all --run 1" "--json --recovery-timeout 60"
src_guest "$p" "--mem 64M --pattern random --dirty-rate 50"
v="PORT_$p"
start "${p}m1" "$VMIG" migrate $MIG_AUTH --vmm "$MIG_TMP/${p}src.sock" --to "127.0.0.1:${!v}" --json \
	--timeout 5 --no-progress --postcopy-after 0 --inject-cut switchlost --no-auto-resume
wait_for "$MIG_TMP/${p}m1.err" "postcopy paused" 30
v="PID_${p}m1"
kill -9 "${!v}"
wait "${!v}" 2>/dev/null
timeout 60 "$VMIG" migrate $MIG_AUTH --vmm "$MIG_TMP/${p}src.sock" --attach --timeout 5 --no-progress \
	>"$MIG_TMP/${p}m2.out" 2>"$MIG_TMP/${p}m2.err"
rc=$?
check "switch lost, then the helper died: --attach learns the guest never ran there" \
	test $rc -eq 1 -a -n "$(grep "never ran the guest" "$MIG_TMP/${p}m2.err")"
[ $rc -eq 1 ] && grep -q "never ran the guest" "$MIG_TMP/${p}m2.err" ||
	dump "${p}m1.err" "${p}m2.err" "${p}ls.err" "${p}dg.err" "${p}sg.err"
check "... and the source guest runs on with its memory intact" \
	wait_for "$MIG_TMP/${p}sg.err" "memory intact after the failed migration: .* 0 errors" 20
v="PID_${p}ls"
wait_pid "${!v}" 30
v="PID_${p}dg"
wait_pid "${!v}" 30
check "... and the destination never ran it" \
	bash -c "! grep -q 'the guest runs here' '$MIG_TMP/${p}ls.err'"

# Nothing to take over: --attach says so and leaves a running guest alone.
p=n$tap_n
src_guest "$p" "--mem 16M --pattern random"
timeout 30 "$VMIG" migrate $MIG_AUTH --vmm "$MIG_TMP/${p}src.sock" --attach --timeout 5 --no-progress \
	>"$MIG_TMP/${p}m.out" 2>"$MIG_TMP/${p}m.err"
rc=$?
check "--attach without a dead helper's postcopy fails and says why" \
	test $rc -eq 1 -a "$(grep -c 'no postcopy migration to take over' "$MIG_TMP/${p}m.err")" -eq 1
v="PID_${p}sg"
check "... and the guest keeps running" kill -0 "${!v}"

tap_done
