#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Failure injection.  Whatever goes wrong, the connection is dropped with a
# clear message, the source guest keeps running with its memory intact (it
# verifies every page and can still be migrated), the destination discards
# its partial guest, and nothing hangs (every wait here is bounded).
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}
PEER=$(dirname "$0")/wire_peer.py

# --- before a session: junk is dropped and the listener keeps waiting -----
p=pre
dest_pair $p "--mem 32M --verify-all --run 0" ""
python3 "$PEER" "$PORT_pre" badmagic >/dev/null 2>&1
check "a wrong magic is dropped with a clear message" wait_for "$MIG_TMP/${p}ls.err" "dropped connection: not a vmig connection: bad magic" 5
python3 "$PEER" "$PORT_pre" badversion >/dev/null 2>&1
check "a wrong channel version is dropped naming the versions" wait_for "$MIG_TMP/${p}ls.err" "peer speaks wire version 0, this vmig needs 1..1" 5
python3 "$PEER" "$PORT_pre" nohello >/dev/null 2>&1
check "a main channel that does not start with HELLO is dropped" wait_for "$MIG_TMP/${p}ls.err" "out-of-order packet: COMPLETE before HELLO" 5
src_guest $p "--mem 32M --dirty-rate 20"
migrate $p $p "--wire-version 9"; rc=$?
check "a source speaking another wire version fails with a clear message" \
	test $rc -eq 1 -a -n "$(grep 'wire version mismatch: source speaks 9..9, destination 1..1' "$MIG_TMP/$p.merr")"
check "... and its guest keeps running with memory intact" \
	wait_for "$MIG_TMP/${p}sg.err" "memory intact after the failed migration: .* 0 errors" 10
migrate $p $p ""; rc=$?
wait_pid "$PID_predg" 20; drc=$?
check "after all that, the same listener takes a good migration, every page verified" \
	test $rc -eq 0 -a $drc -eq 0 -a -n "$(grep 'verify-all after resume: .* 0 errors' "$MIG_TMP/${p}dg.err")"
[ $rc -eq 0 ] || dump $p.merr ${p}ls.err ${p}dg.err

# --- a VMM without a dirty log of its own: --track vmm is refused ---------
p=nolog
dest_pair $p "--mem 16M --run 0" ""
src_guest $p "--mem 16M --dirty-rate 4"
migrate $p $p "--track vmm"; rc=$?
check "--track vmm of a VMM that offers no dirty log fails, saying so" \
	test $rc -eq 1 -a -n "$(grep 'does not offer a dirty log of its own' "$MIG_TMP/$p.merr")"
check "... and its guest keeps running with memory intact" \
	wait_for "$MIG_TMP/${p}sg.err" "memory intact after the failed migration: .* 0 errors" 10
[ $rc -eq 1 ] || dump $p.merr ${p}ls.err

# --- inside a session: a bad packet ends it; the destination discards -----
session_fault() {
	local mode=$1 msg=$2 p=s$1
	dest_pair $p "--mem 16M" ""
	python3 "$PEER" "$(eval echo \$PORT_$p)" "$mode" 4096 >"$MIG_TMP/$p.peer" 2>&1
	local lpid="PID_${p}ls" dpid="PID_${p}dg"
	wait_pid "${!lpid}" 15; local lrc=$?
	wait_pid "${!dpid}" 15; local drc=$?
	check "$mode: the listener ends the session saying '$msg'" \
		test $lrc -eq 1 -a -n "$(grep -- "$msg" "$MIG_TMP/${p}ls.err")"
	check "$mode: the destination guest discards its partial RAM" \
		test $drc -eq 3 -a -n "$(grep 'partial guest discarded' "$MIG_TMP/${p}dg.err")"
	[ $lrc -eq 1 ] && [ $drc -eq 3 ] || dump ${p}ls.err ${p}dg.err $p.peer
}
session_fault oversized "oversized PAGES packet: 2147483648 bytes"
session_fault truncated "peer closed the connection"
session_fault outoforder "out-of-order packet on multifd channel: HELLO"
session_fault badcount "PAGES with 0 pages"
session_fault badpage "out of range"
session_fault hangup "peer closed the connection"

# --- a real migration that breaks in the middle ---------------------------
# mid_round NAME TRACK WHAT: kill WHAT ("source" helper or "destination"
# helper) while pages are flowing (bandwidth capped so it lasts).
mid_round() {
	local name=$1 track=$2 what=$3 p=m$tap_n
	dest_pair $p "--mem 128M" ""
	src_guest $p "--mem 128M --dirty-rate 50"
	local port_var="PORT_$p"
	start "${p}mig" "$VMIG" migrate --vmm "$MIG_TMP/${p}src.sock" --to "127.0.0.1:${!port_var}" $MIG_AUTH \
		--max-bandwidth 40 --track "$track" --timeout 5 --no-progress
	sleep 1.2
	local mpid="PID_${p}mig" lpid="PID_${p}ls" dpid="PID_${p}dg"
	if [ "$what" = "source guest" ]; then
		local spid="PID_${p}sg"
		kill -9 "${!spid}"
		wait "${!spid}" 2>/dev/null
		wait_pid "${!mpid}" 30; local rc=$?
		wait_pid "${!lpid}" 15; local lrc=$?
		wait_pid "${!dpid}" 15; local drc=$?
		check "$name: the source helper stops, saying the VMM went away" \
			test $rc -eq 1 -a -n "$(grep 'source VMM went away' "$MIG_TMP/${p}mig.err")"
		check "$name: the destination discards its partial guest" test $lrc -eq 1 -a $drc -eq 3
		[ $rc -eq 1 ] && [ $drc -eq 3 ] || dump ${p}mig.err ${p}ls.err ${p}dg.err
		return
	elif [ "$what" = "destination guest" ]; then
		kill -9 "${!dpid}"
		wait "${!dpid}" 2>/dev/null
		wait_pid "${!mpid}" 30; local rc=$?
		wait_pid "${!lpid}" 15; local lrc=$?
		check "$name: both helpers fail, saying the VMM went away" \
			test $rc -eq 1 -a $lrc -eq 1 -a -n "$(grep 'destination VMM went away' "$MIG_TMP/${p}mig.err")"
		check "$name: the source guest runs on, every page intact" \
			wait_for "$MIG_TMP/${p}sg.err" "memory intact after the failed migration: .* 0 errors" 10
		[ $rc -eq 1 ] && grep -q "VMM went away" "$MIG_TMP/${p}mig.err" || dump ${p}mig.err ${p}ls.err ${p}sg.err
		return
	elif [ "$what" = source ]; then
		kill -9 "${!mpid}"
		wait "${!mpid}" 2>/dev/null
		wait_pid "${!lpid}" 15; local rc=$?
		check "$name: the destination notices, saying the source is gone" \
			test $rc -eq 1 -a -n "$(grep -E 'peer closed the connection|nothing from the source' "$MIG_TMP/${p}ls.err")"
	else
		kill -9 "${!lpid}"
		wait "${!lpid}" 2>/dev/null
		wait_pid "${!mpid}" 15; local rc=$?
		check "$name: the source gives up, saying the destination is gone" \
			test $rc -eq 1 -a -n "$(grep -E 'peer closed|destination|channel' "$MIG_TMP/${p}mig.err")"
	fi
	wait_pid "${!dpid}" 15; local drc=$?
	check "$name: the destination guest discards its partial RAM" test $drc -eq 3
	check "$name: the source guest runs on, every page intact" \
		wait_for "$MIG_TMP/${p}sg.err" "memory intact after the failed migration: .* 0 errors" 10
	[ $drc -eq 3 ] || dump ${p}mig.err ${p}ls.err ${p}dg.err ${p}sg.err
	# ... and it can still be migrated.
	dest_pair ${p}r "--mem 128M --verify-all --run 0" ""
	local port2="PORT_${p}r"
	timeout 60 "$VMIG" migrate --vmm "$MIG_TMP/${p}src.sock" --to "127.0.0.1:${!port2}" $MIG_AUTH \
		--json --track "$track" --timeout 5 >"$MIG_TMP/${p}r.json" 2>"$MIG_TMP/${p}r.merr"; rc=$?
	local d2="PID_${p}rdg"
	wait_pid "${!d2}" 20; drc=$?
	check "$name: a second migration of the same guest succeeds, every page verified" \
		test $rc -eq 0 -a $drc -eq 0 -a -n "$(grep 'verify-all after resume: .* 0 errors' "$MIG_TMP/${p}rdg.err")"
	[ $rc -eq 0 ] && [ $drc -eq 0 ] || dump ${p}r.merr ${p}rls.err ${p}rdg.err
}
mid_round "source helper killed mid-round (async)" async source
mid_round "source helper killed mid-round (sync: vCPUs blocked in faults are released)" sync source
mid_round "destination helper killed mid-round" async destination
mid_round "destination VMM killed mid-round" async "destination guest"
mid_round "source VMM killed mid-round" sync "source guest"

# --- a corrupted packet in a real stream -----------------------------------
p=corrupt
dest_pair $p "--mem 64M" ""
src_guest $p "--mem 64M --dirty-rate 20"
migrate $p $p "--inject-corrupt 5"; rc=$?
wait_pid "$PID_corruptls" 15; lrc=$?
wait_pid "$PID_corruptdg" 15; drc=$?
check "a corrupted packet: the destination names it and ends the session" \
	test $lrc -eq 1 -a -n "$(grep 'malformed packet: unknown type 30583' "$MIG_TMP/${p}ls.err")"
check "a corrupted packet: the source fails with exit 1 and a message" \
	test $rc -eq 1 -a -s "$MIG_TMP/$p.merr"
check "a corrupted packet: the destination guest is discarded" test $drc -eq 3
check "a corrupted packet: the source guest runs on, every page intact" \
	wait_for "$MIG_TMP/${p}sg.err" "memory intact after the failed migration: .* 0 errors" 10
tap_done
