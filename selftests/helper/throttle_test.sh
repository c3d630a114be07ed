#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Auto-converge over loopback: a guest that dirties memory faster than the
# capped link carries it; with --auto-converge the source asks the VMM to
# throttle its vCPUs (THROTTLE on the control protocol), the reference
# guest sleeps its writers by that share, the migration completes and every
# page verifies; without it nothing is throttled.  Never asserts timing.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}

# case_thr NAME MIGRATE_ARGS JSON_EXPR: one migration of a heavily dirtying guest.
case_thr() {
	local name=$1 margs=$2 expr=$3 p=t$tap_n
	dest_pair "$p" "--mem 32M --verify-all --run 1" "--json" &&
		src_guest "$p" "--mem 32M --pattern random --dirty-rate 48 --vcpus 2" &&
		migrate "$p" "$p" "--multifd 2 --max-bandwidth 16 --downtime-limit 30 --max-rounds 12 $margs"
	local rc=$?
	local dpid="PID_${p}dg" lpid="PID_${p}ls" spid="PID_${p}sg"
	wait_pid "${!lpid}" 60; local lrc=$?
	wait_pid "${!dpid}" 60; local drc=$?
	wait_pid "${!spid}" 60; local src=$?
	check "$name: migrated, every process exits 0" \
		test $rc -eq 0 -a $lrc -eq 0 -a $drc -eq 0 -a $src -eq 0
	[ $rc -eq 0 ] && [ $drc -eq 0 ] || dump "$p.json" "$p.merr" "${p}ls.err" "${p}dg.err" "${p}sg.err"
	check "$name: every page verified on the destination" \
		grep -q "verify-all after resume: .* 0 errors" "$MIG_TMP/${p}dg.err"
	check "$name: source report" json "$MIG_TMP/$p.json" "d['ok'] and $expr"
	LAST=$p
}

case_thr "auto-converge throttles a guest that outruns the link" "--auto-converge" \
	"d['throttle_pct'] >= 20"
check "... the migrate command said how fast the guest may run" \
	grep -q "auto-converge: the guest runs at [0-9]* % now" "$MIG_TMP/$LAST.merr"
check "... and the guest's vCPUs were throttled by the requested share" \
	grep -q "vCPUs were throttled (auto-converge) up to [2-9][0-9] %" "$MIG_TMP/${LAST}sg.err"

case_thr "without --auto-converge nothing is throttled" "" "d['throttle_pct'] == 0"
check "... and the guest's vCPUs ran unthrottled" \
	sh -c "! grep -q 'throttled' '$MIG_TMP/${LAST}sg.err'"

tap_done
