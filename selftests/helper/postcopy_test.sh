#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Postcopy over loopback: the destination guest resumes at the switch and
# faults its missing pages in while the rest flows in the background; it
# checks every page.  With and without the preempt channel, random and
# sequential guests, 1 and 4 multifd channels; many vCPUs on one page; a
# source lost during postcopy; malformed requests and replies.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}
PEER=$(dirname "$0")/postcopy_peer.py

# case_pc NAME SRC_GUEST_ARGS MIGRATE_ARGS JSON_EXPR_SRC JSON_EXPR_DST [DST_GUEST_ARGS]
case_pc() {
	local name=$1 gargs=$2 margs=$3 sexpr=$4 dexpr=$5 dargs=${6:---verify-all --run 1} p=c$tap_n
	mig_start "$p" "--mem 64M $dargs" "--json" "--mem 64M $gargs" "$margs"
	mig_wait "$p" 30 30 30
	mig_all_ok "$name" "$p"
	if [[ $dargs == *verify-all* ]]; then
		check "$name: every page verified on the destination" \
			grep -q "verify-all after resume: .* 0 errors" "$MIG_TMP/${p}dg.err"
	fi
	check "$name: no page was wrong when touched" \
		grep -q "page writes, 0 wrong pages" "$MIG_TMP/${p}dg.err"
	check "$name: source report" json "$MIG_TMP/$p.json" "d['ok'] and d['postcopy'] and $sexpr"
	check "$name: destination report" json "$MIG_TMP/${p}ls.out" "d['ok'] and $dexpr"
}

PC="d['postcopy']"
# Requested pages come back on the return-path connection by default
# (WIRE_CAP_REPLY_RETURN); a source that does not offer it sends them on
# the preempt channel, and that path must still work (and does for older
# peers and postcopy_peer.py).
case_pc "postcopy after the bulk stage, preempt, random guest, 1 channel" \
	"--pattern random --dirty-rate 100" "--postcopy --multifd 1" \
	"$PC['preempt'] and $PC['replies'] == 'return-path' and $PC['discarded'] > 0" \
	"$PC['preempt'] and $PC['replies'] == 'return-path' and $PC['discarded'] > 0 and d['channels'] == 1 and $PC['released'] == 0"
case_pc "a source that offers no replies on the return path: pages on the preempt channel" \
	"--pattern random --dirty-rate 100" "--postcopy-after 0 --multifd 1 --inject-no-reply-return" \
	"$PC['preempt'] and $PC['replies'] == 'preempt' and $PC['requests'] > 0" \
	"$PC['preempt'] and $PC['replies'] == 'preempt' and $PC['requests'] > 0 and $PC['urgent_pages'] == $PC['requests']"
# Root may run the urgent threads SCHED_FIFO (the default); others get what they may.
SCHED="'fifo'"
[ "$(id -u)" = 0 ] || SCHED="'nice', 'normal'"
export VMIG_PC_TRACE=$MIG_TMP/trace
tp=c$tap_n
case_pc "postcopy from the start, preempt, sequential guest, 4 channels" \
	"--pattern sequential --dirty-rate 100 --vcpus 3" "--postcopy-after 0 --multifd 4" \
	"$PC['preempt'] and $PC['requests'] > 0 and $PC['sched'] in ($SCHED,)" \
	"$PC['preempt'] and $PC['requests'] > 0 and $PC['latency_us']['count'] == $PC['requests'] and $PC['urgent_pages'] == $PC['requests'] and sum($PC['latency_us']['log2_hist']) == $PC['requests'] and $PC['sched'] in ($SCHED,)"
unset VMIG_PC_TRACE
n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["postcopy"]["requests"])' \
	"$MIG_TMP/${tp}ls.out" 2>/dev/null)
check "VMIG_PC_TRACE: every request's stages recorded on both sides and joined" \
	grep -q "^trace: ${n:-x} requests joined" <(python3 "$(dirname "$0")/../../bench/pc_stages.py" \
		"$MIG_TMP/trace" trace 2>&1)
case_pc "--postcopy-sched normal on the source only: its return-path thread left as it is" \
	"--pattern random --dirty-rate 100" "--postcopy-after 0 --multifd 2 --postcopy-sched normal" \
	"$PC['sched'] == 'normal'" "$PC['sched'] in ($SCHED,)"
# From the start, the prefaulted destination RAM (64 MiB: 16384 pages) is
# released at the handshake, with the guest still on the source, not
# punched out at the switch; every page still verifies.  The source tracks
# nothing (no page goes before the switch) and sends each page once: the
# guest's writes since the setup used to be harvested at the stop and go a
# second time besides the list of all pages.
# Both urgent threads follow their sockets by default (--postcopy-cpu
# follow): each moved at least once, to a CPU it reports, once a few
# requests came (2 in a row from one CPU make a move).  Not when they run
# like the others (no privilege to raise them): then they stay unpinned.
FOLLOW="($PC['cpu'] >= 0 and $PC['cpu_moves'] >= 1 if $PC['sched'] in ('fifo', 'nice') else $PC['cpu'] == -1 and $PC['cpu_moves'] == 0) and $PC['requests'] >= 8"
case_pc "postcopy from the start, preempt, random guest, 1 channel" \
	"--pattern random --dirty-rate 100" "--postcopy-after 0 --multifd 1" \
	"$PC['requests'] > 0 and d['tracking'] == '' and d['harvests'] == 0 and d['bytes']['normal'] + d['bytes']['zero'] == d['guest_bytes'] and $FOLLOW" \
	"$PC['requests'] > 0 and $PC['replies'] == 'return-path' and $PC['urgent_pages'] > 0 and $PC['released'] == 16384 and $FOLLOW"
case_pc "postcopy without preempt, random guest, 4 channels" \
	"--pattern random --dirty-rate 100" "--postcopy-after 0 --multifd 4 --no-preempt" \
	"not $PC['preempt'] and $PC['requests'] > 0" \
	"not $PC['preempt'] and $PC['requests'] > 0 and $PC['urgent_pages'] == 0 and $PC['latency_us']['count'] == $PC['requests']"
# Pages written during the one short dirty round are discarded at the switch;
# how many depends on the guest's writer getting a CPU in that round, so the
# count is not asserted here (a "> 0" failed once in a full CI run and never
# in five runs of this file).  The first case asserts it, and the destination
# refuses a POSTCOPY whose count differs from the ranges it got.
case_pc "postcopy without preempt, sequential guest, 1 channel, after two passes" \
	"--pattern sequential --dirty-rate 100" "--postcopy-after 2 --multifd 1 --no-preempt --downtime-limit 0" \
	"not $PC['preempt'] and d['switchover'] == 'postcopy after 2 passes'" "not $PC['preempt']"
case_pc "eight vCPUs reading one missing page: one request for it" \
	"--pattern idle" "--postcopy-after 0 --multifd 2" \
	"True" "$PC['faults'] >= 1 and $PC['requests'] <= 2 and $PC['faults'] >= $PC['requests']" \
	"--pattern hot --vcpus 8 --run 1"

# --postcopy-cpu any: neither thread is moved.
p=cpuany
mig_start $p "--mem 64M --verify-all --run 1" "--json --postcopy-cpu any" \
	"--mem 64M --pattern random --dirty-rate 100" "--postcopy-after 0 --multifd 1 --postcopy-cpu any"
mig_wait $p 30 30 30
check "--postcopy-cpu any on both ends: neither urgent thread moved" \
	json_both "$MIG_TMP/$p.json" "d['ok'] and $PC['requests'] > 0 and $PC['cpu'] == -1 and $PC['cpu_moves'] == 0" \
	"$MIG_TMP/${p}ls.out" "d['ok'] and $PC['cpu'] == -1 and $PC['cpu_moves'] == 0"
# Following stays within the affinity the operator gave: the listener (and
# its guest) on one CPU, the source on another.  Each receives on the
# other's CPU, so neither may move.
read -r cpu_a cpu_b < <(python3 -c 'import os; c = sorted(os.sched_getaffinity(0)); print(*c[:2])')
if [ -n "${cpu_b:-}" ] && [ "$(id -u)" = 0 ]; then
	for c in "$cpu_a" "$cpu_b"; do
		printf '#!/bin/sh\nexec taskset -c %s "%s" "$@"\n' "$c" "$VMIG" >"$MIG_TMP/vmig-cpu$c"
		chmod +x "$MIG_TMP/vmig-cpu$c"
	done
	p=cpuset
	VMIG=$MIG_TMP/vmig-cpu$cpu_a dest_pair $p "--mem 64M --verify-all --run 1" "--json" &&
		VMIG=$MIG_TMP/vmig-cpu$cpu_b src_guest $p "--mem 64M --pattern random --dirty-rate 100" &&
		VMIG=$MIG_TMP/vmig-cpu$cpu_b migrate $p $p "--postcopy-after 0 --multifd 1"
	mig_wait $p 30 30 30
	check "listener on CPU $cpu_a, source on CPU $cpu_b: neither urgent thread left its CPU set" \
		json_both "$MIG_TMP/$p.json" "d['ok'] and $PC['requests'] >= 8 and $PC['sched'] == 'fifo' and $PC['cpu'] == -1" \
		"$MIG_TMP/${p}ls.out" "d['ok'] and $PC['sched'] == 'fifo' and $PC['cpu'] == -1"
	json "$MIG_TMP/${p}ls.out" "d['ok'] and $PC['cpu'] == -1" >/dev/null ||
		dump "$p.json" "$p.merr" "${p}ls.err" "${p}dg.err"
else
	skip "--postcopy-cpu within the CPU set" "needs 2 CPUs in this process's affinity and root"
fi

if [ -x "${VMIG_SAN_BIN:-}" ]; then
	VMIG=$VMIG_SAN_BIN
	case_pc "ASan/UBSan build: postcopy with preempt, 2 channels" \
		"--pattern random --dirty-rate 50" "--postcopy-after 0 --multifd 2" \
		"$PC['requests'] > 0" "$PC['requests'] > 0"
	VMIG=$VMIG_BIN
else
	skip "ASan/UBSan build postcopy" "VMIG_SAN_BIN not built"
fi

# --- a destination that refuses postcopy -----------------------------------
p=refuse
mig_start $p "--mem 16M" "--no-postcopy" "--mem 16M --dirty-rate 20" "--postcopy"
check "a destination started with --no-postcopy: the source fails, saying so" \
	test $RC_M -eq 1 -a -n "$(grep 'the destination does not accept postcopy with a preempt channel' "$MIG_TMP/$p.merr")"
check "... and its guest runs on with every page intact" \
	wait_for "$MIG_TMP/${p}sg.err" "memory intact after the failed migration: .* 0 errors" 10

# --- the source is lost during postcopy ------------------------------------
# A killed source helper cannot be recovered (no process holds the pages):
# the destination pauses, waits --recovery-timeout for it, then gives up.
p=kill
dest_pair $p "--mem 64M --verify-all --run 1" "--recovery-timeout 2" && src_guest $p "--mem 64M --pattern random"
port_var=PORT_$p
start ${p}mig "$VMIG" migrate --vmm "$MIG_TMP/${p}src.sock" --to "127.0.0.1:${!port_var}" $MIG_AUTH \
	--timeout 5 --postcopy-after 0 --max-bandwidth 8 --no-progress
wait_for "$MIG_TMP/${p}ls.err" "postcopy: the guest runs here" 20
kill -9 "$PID_killmig"
wait_pid "$PID_killls" 20; lrc=$?
wait_pid "$PID_killdg" 20; drc=$?
check "source killed during postcopy: the listener fails after --recovery-timeout, saying why" \
	test $lrc -eq 1 -a -n "$(grep 'no source resumed the migration within 2 s; postcopy interrupted with .* pages never received: the guest cannot continue' "$MIG_TMP/${p}ls.err")"
check "source killed during postcopy: the destination guest exits 4 instead of hanging" \
	test $drc -eq 4 -a -n "$(grep 'postcopy failed' "$MIG_TMP/${p}dg.err")"
[ $lrc -eq 1 ] && [ $drc -eq 4 ] || dump ${p}ls.err ${p}dg.err ${p}mig.err

# --- malformed requests and replies -----------------------------------------
p=unreq
dest_pair $p "--mem 16M --pattern idle" ""
python3 "$PEER" unrequested "$PORT_unreq" 4096 >"$MIG_TMP/$p.peer" 2>&1
wait_pid "$PID_unreqls" 15; lrc=$?
wait_pid "$PID_unreqdg" 15; drc=$?
check "a preempt reply nobody requested: the listener drops it, saying so" \
	test $lrc -eq 1 -a -n "$(grep 'page 5 of region 0 was never requested; dropping the connection' "$MIG_TMP/${p}ls.err")"
check "... and the guest, already running on partial memory, exits 4" test $drc -eq 4
[ $lrc -eq 1 ] && [ $drc -eq 4 ] || dump ${p}ls.err ${p}dg.err $p.peer

# --- the background stream yields to the guest -------------------------------
# Once the guest runs on the destination, the multifd senders and receivers
# drop to nice 10 (behind the vCPUs and the request path), unless
# --postcopy-sched normal asks for nobody ahead.
# max_nice PID: the highest nice value among PID's threads.
max_nice() {
	local f m=-20 n
	for f in /proc/"$1"/task/*/stat; do
		n=$(sed 's/^.*) //' "$f" 2>/dev/null | cut -d' ' -f17)
		[ -n "$n" ] && [ "$n" -gt "$m" ] && m=$n
	done
	echo "$m"
}
# min_slice PID: the shortest se.slice (ns) among PID's threads.
min_slice() {
	sed -n 's/^se.slice *: *//p' /proc/"$1"/task/*/sched 2>/dev/null | sort -n | head -1
}
for sched in fifo normal; do
	p=nice$sched
	mig_in_postcopy $p "--postcopy-sched $sched" \
		"--postcopy-after 0 --multifd 2 --max-bandwidth 8 --postcopy-sched $sched"
	sleep 0.5
	lpid="PID_${p}ls" mpid="PID_${p}m"
	ln=$(max_nice "${!lpid}") mn=$(max_nice "${!mpid}")
	if [ $sched = fifo ]; then
		check "postcopy (--postcopy-sched fifo): the listener's receivers run at nice 10 ($ln)" \
			test "$ln" -eq 10
		check "... and the source's multifd senders too ($mn)" test "$mn" -eq 10
		# With a short slice, where the kernel has one per task (EEVDF, 6.12).
		if grep -q '^se.slice' /proc/self/sched; then
			ls=$(min_slice "${!lpid}") ms=$(min_slice "${!mpid}")
			check "... both with a 100 us slice, so a woken vCPU need not wait out theirs ($ls, $ms)" \
				test "$ls" -eq 100000 -a "$ms" -eq 100000
		else
			skip "bulk threads' slice" "this kernel has no per-task slice (se.slice)"
		fi
	else
		check "postcopy (--postcopy-sched normal): no thread of either helper reniced ($ln, $mn)" \
			test "$ln" -eq 0 -a "$mn" -eq 0
	fi
	wait_pid "${!mpid}" 60; rc=$?
	wait_pid "${!lpid}" 20; lrc=$?
	dpid="PID_${p}dg"
	wait_pid "${!dpid}" 20; drc=$?
	check "... and that postcopy completes, every page verified" \
		test $rc -eq 0 -a $lrc -eq 0 -a $drc -eq 0 -a \
		-n "$(grep 'verify-all after resume: .* 0 errors' "$MIG_TMP/${p}dg.err")"
	[ $rc -eq 0 ] && [ $drc -eq 0 ] || dump ${p}m.err ${p}ls.err ${p}dg.err
done

# --- a guest running ahead of the preempt replies ---------------------------
# Each request stays open until its preempt reply, even once the background
# placed the page; the fault thread must then stop reading faults, not fail.
p=slow
dest_pair $p "--mem 64M --pattern sequential --vcpus 2 --run 1" ""
python3 "$PEER" slowreplies "$PORT_slow" 16384 >"$MIG_TMP/$p.peer" 2>&1
seen=$(sed -n 's/^requests before replying: //p' "$MIG_TMP/$p.peer")
check "a guest faulting ahead of the preempt replies: the listener waits for them, no overflow" \
	test -z "$(grep 'requested at once' "$MIG_TMP/${p}ls.err")" -a -n "$(grep '^replies sent' "$MIG_TMP/$p.peer")"
check "... with nearly the whole request table open before the replies came (${seen:-?} requests)" \
	test "${seen:-0}" -ge 900
kill "$PID_slowls" "$PID_slowdg" 2>/dev/null
[ -z "$(grep 'requested at once' "$MIG_TMP/${p}ls.err")" ] || dump ${p}ls.err ${p}dg.err $p.peer

# --- the multifd marker comes after POSTCOPY --------------------------------
# The listener waits (--timeout) for every multifd channel to reach its
# marker.  That wait's deadline was on the wrong clock and expired at once:
# a receiver a moment late (a loaded machine) failed the switch with
# "postcopy switch failed: Connection timed out".
p=latemarker
dest_pair $p "--mem 16M --pattern idle --run 1" ""
python3 "$PEER" latemarker "$PORT_latemarker" >"$MIG_TMP/$p.peer" 2>&1
check "a multifd marker 0.3 s behind POSTCOPY: the listener waits for it and resumes the guest" \
	grep -q '^resumed$' "$MIG_TMP/$p.peer"
grep -q '^resumed$' "$MIG_TMP/$p.peer" || dump $p.peer ${p}ls.err
kill "$PID_latemarkerls" "$PID_latemarkerdg" 2>/dev/null

# --- the END of the preempt channel comes late -------------------------------
# Once every page is in, the fault thread ends the return path and waits for
# the preempt channel's END.  It used to poll its (still readable) stop
# event in a loop meanwhile: a SCHED_FIFO thread spinning for as long as
# the source took, holding a core the guest needs (1040 ms of CPU in this
# second); and the main thread looked every 200 us whether it had ended
# (50-80 ms).  Both sleep now (0 ms; the kernel counts in 10 ms ticks).
p=lateend
dest_pair $p "--mem 16M --pattern idle --run 1" ""
v="PID_${p}ls"
python3 "$PEER" lateend "$PORT_lateend" 4096 "${!v}" >"$MIG_TMP/$p.peer" 2>&1
ms=$(sed -n 's/^listener cpu ms while END was held: //p' "$MIG_TMP/$p.peer")
check "a source holding the preempt END for 1 s: the listener sleeps meanwhile (${ms:-?} ms of CPU)" \
	test -n "$ms" -a "${ms:-1000}" -le 30
[ -n "$ms" ] && [ "$ms" -le 30 ] || dump $p.peer ${p}ls.err
kill "$PID_lateendls" "$PID_lateenddg" 2>/dev/null

p=badreq
src_guest $p "--mem 16M --pattern idle"
port=$(free_port)
start ${p}peer python3 "$PEER" badreq "$port"
sleep 0.3
timeout 30 "$VMIG" migrate --vmm "$MIG_TMP/${p}src.sock" --to "127.0.0.1:$port" --timeout 5 $MIG_AUTH \
	--postcopy-after 0 --multifd 1 --no-progress >"$MIG_TMP/$p.out" 2>"$MIG_TMP/$p.merr"
rc=$?
check "a request outside guest RAM: the source drops it, saying so" \
	test $rc -eq 1 -a -n "$(grep 'request for page 1099511627776 of region 0, outside guest RAM; dropping the connection' "$MIG_TMP/$p.merr")"
[ $rc -eq 1 ] || dump $p.merr ${p}peer.err

tap_done
