#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Postcopy recovery over loopback: the source cuts every one of its
# connections (--inject-cut, as a broken link would) during the background
# transfer, with page requests in flight, during the resume handshake, and
# twice in one migration; both helpers pause, the source reconnects, the
# destination sends its received bitmap, what is missing is sent again, and
# the destination guest checks every page.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}

# case_rec NAME SRC_GUEST_ARGS MIGRATE_ARGS RECOVERIES [JSON_EXPR_DST] [LISTEN_ARGS]
case_rec() {
	local name=$1 gargs=$2 margs=$3 n=$4 dexpr=${5:-True} largs=${6:-} p=r$tap_n
	dest_pair "$p" "--mem 64M --verify-all --run 1" "--json --recovery-timeout 10 $largs" &&
		src_guest "$p" "--mem 64M $gargs" && migrate "$p" "$p" "$margs"
	local rc=$?
	local dpid="PID_${p}dg" lpid="PID_${p}ls" spid="PID_${p}sg"
	wait_pid "${!lpid}" 30; local lrc=$?
	wait_pid "${!dpid}" 30; local drc=$?
	wait_pid "${!spid}" 30; local src=$?
	check "$name: migration completes" test $rc -eq 0 -a $lrc -eq 0 -a $drc -eq 0 -a $src -eq 0
	[ $rc -eq 0 ] && [ $drc -eq 0 ] && [ $lrc -eq 0 ] ||
		dump "$p.json" "$p.merr" "${p}ls.err" "${p}ls.out" "${p}dg.err" "${p}sg.err"
	check "$name: both helpers paused and said so" \
		test "$(grep -c "postcopy paused" "$MIG_TMP/$p.merr")" -eq $n -a \
		"$(grep -c "postcopy paused" "$MIG_TMP/${p}ls.err")" -eq $n
	[ -n "${REC_DEBUG:-}" ] && dump "$p.merr" "${p}ls.err" "${p}dg.err"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["postcopy"]; print("# requests asked again after a reconnection: %d" % d["resent"])' \
		"$MIG_TMP/${p}ls.out" 2>/dev/null
	check "$name: every page verified on the destination" \
		grep -q "verify-all after resume: .* 0 errors" "$MIG_TMP/${p}dg.err"
	check "$name: no page was wrong when touched" \
		grep -q "page writes, 0 wrong pages" "$MIG_TMP/${p}dg.err"
	check "$name: source report counts $n recoveries" json "$MIG_TMP/$p.json" \
		"d['ok'] and d['postcopy']['recoveries'] == $n"
	check "$name: destination report counts $n recoveries" json "$MIG_TMP/${p}ls.out" \
		"d['ok'] and d['postcopy']['recoveries'] == $n and $dexpr"
}

SLOW="--postcopy-after 0 --max-bandwidth 16"
case_rec "one cut during the background transfer, preempt, 2 channels" \
	"--pattern idle" "$SLOW --multifd 2 --inject-cut pages:2000" 1
# The request cut comes before the source answers it; whether the page is
# still missing when the destination resumes (it re-sends the request) or
# the background stream placed it meanwhile is a race, so it is not asserted.
case_rec "a cut with a page request in flight" \
	"--pattern random --dirty-rate 100" "$SLOW --multifd 1 --inject-cut req:3" 1
case_rec "a cut with a request in flight, without preempt, 4 channels" \
	"--pattern random --dirty-rate 100" "$SLOW --multifd 4 --no-preempt --inject-cut req:3" 1
case_rec "a cut during the resume handshake: the next attempt resumes" \
	"--pattern random --dirty-rate 50" "$SLOW --multifd 2 --inject-cut pages:1000,resume" 1
case_rec "two cuts in one migration" \
	"--pattern random --dirty-rate 50" "$SLOW --multifd 2 --inject-cut pages:1000,pages:1000" 2
if command -v openssl >/dev/null; then
	echo "vmig:$(openssl rand -hex 32)" >"$MIG_TMP/rec.psk"
	case_rec "over TLS (PSK): the resumed session binds its channels to the new handshake" \
		"--pattern random --dirty-rate 50" \
		"$SLOW --multifd 2 --tls-psk $MIG_TMP/rec.psk --inject-cut req:2,pages:1000" 2 True \
		"--tls-psk $MIG_TMP/rec.psk"
else
	skip "recovery over TLS" "the openssl command is missing"
fi
case_rec "postcopy after a precopy pass, cut in the background" \
	"--pattern sequential --dirty-rate 100" "--postcopy --max-bandwidth 32 --multifd 2 --inject-cut pages:500" 1
if [ -x "${VMIG_SAN_BIN:-}" ]; then
	VMIG=$VMIG_SAN_BIN
	case_rec "ASan/UBSan build: a cut with a request in flight, then one in the background" \
		"--pattern random --dirty-rate 50" "$SLOW --multifd 2 --inject-cut req:2,pages:1000" 2
	VMIG=$VMIG_BIN
else
	skip "ASan/UBSan build recovery" "VMIG_SAN_BIN not built"
fi

tap_done
