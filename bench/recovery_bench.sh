#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Postcopy recovery time on loopback.  The source reaches the destination
# through bench/tcp_proxy.py; one second into the postcopy background
# transfer the proxy is killed (every connection drops, as a broken link),
# kept down BENCH_DOWN seconds (default "0 0.5 2 5"), then started again.
# Figure: from the link coming back to the migration running again (the
# source's pause minus the time the link was down), median and max over
# BENCH_REPS (default 3) runs, with the pause each helper reported.
#
#   bench/recovery_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j2 all
vmig=${VMIG:-build/out/vmig}
reps=${BENCH_REPS:-3}
downs=${BENCH_DOWN:-0 0.5 2 5}
# shellcheck source=../scripts/lib/vmig.sh
. scripts/lib/vmig.sh
vmig_setup vmig-bench	# $VMIG_TMP, cleanup on exit, $AUTH: a token both sides hold
tmp=$VMIG_TMP
now() { date +%s.%N; }

run() {	# run DOWN -> "recovery_ms src_pause_ms dst_pause_ms"
	local down=$1 dport pport t_cut t_up
	dport=$(free_port); pport=$(free_port)
	# The files waited on are emptied first: a job's own > truncates only
	# once the job runs, and the last run's (or proxy's) lines would do.
	: >"$tmp/dg.out"
	"$vmig" guest --socket "$tmp/d.sock" --incoming --mem 256M --lifetime 60 --run 1 \
		>"$tmp/dg.out" 2>"$tmp/dg.err" & vmig_track $!
	must_wait_for "$tmp/dg.out" "guest: ready" 15
	: >"$tmp/ls.err"
	"$vmig" listen --vmm "$tmp/d.sock" --port "127.0.0.1:$dport" $AUTH --json --no-progress \
		>"$tmp/ls.out" 2>"$tmp/ls.err" & vmig_track $!; local lpid=$!
	: >"$tmp/sg.out"
	"$vmig" guest --socket "$tmp/s.sock" --mem 256M --pattern random --dirty-rate 20 \
		--lifetime 60 >"$tmp/sg.out" 2>"$tmp/sg.err" & vmig_track $!
	must_wait_for "$tmp/sg.out" "guest: ready" 15
	must_wait_for "$tmp/ls.err" "waiting for a source" 15
	: >"$tmp/px.out"
	python3 bench/tcp_proxy.py "$pport" "$dport" >"$tmp/px.out" 2>&1 & vmig_track $!; local px=$!
	must_wait_for "$tmp/px.out" "proxy: ready" 15
	"$vmig" migrate --vmm "$tmp/s.sock" --to "127.0.0.1:$pport" $AUTH --postcopy-after 0 \
		--multifd 2 --max-bandwidth 64 --json --no-progress >"$tmp/m.json" \
		2>"$tmp/m.err" & vmig_track $!; local mpid=$!
	must_wait_for "$tmp/ls.err" "postcopy: the guest runs here" 15
	sleep 1
	t_cut=$(now)
	kill -9 "$px"; wait "$px" 2>/dev/null || true
	sleep "$down"
	: >"$tmp/px.out"
	python3 bench/tcp_proxy.py "$pport" "$dport" >"$tmp/px.out" 2>&1 & vmig_track $!; px=$!
	must_wait_for "$tmp/px.out" "proxy: ready" 15
	t_up=$(awk '{print $3}' "$tmp/px.out")	# the proxy listens again
	wait "$mpid"; wait "$lpid"
	kill -9 "$px" 2>/dev/null || true
	wait 2>/dev/null || true
	python3 - "$tmp/m.json" "$tmp/ls.out" "$t_cut" "$t_up" <<'PY'
import json, sys
# --json: recovery events as JSON lines, the report last
s, d = (json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[1:3])
assert s["ok"] and d["ok"] and s["postcopy"]["recoveries"] == 1, (s, d)
down_ms = (float(sys.argv[4]) - float(sys.argv[3])) * 1e3
sp = s["postcopy"]["last_pause_ms"]
print("%.1f %.1f %.1f" % (max(sp - down_ms, 0.0), sp, d["postcopy"]["last_pause_ms"]))
PY
}

echo "| link down (s) | link back to running again: median / max (ms) | source pause (ms) | destination pause (ms) |"
echo "|---|---|---|---|"
for down in $downs; do
	rs=() sps=() dps=()
	for _ in $(seq "$reps"); do
		read -r rec sp dp < <(run "$down")
		rs+=("$rec"); sps+=("$sp"); dps+=("$dp")
	done
	med=$(printf '%s\n' "${rs[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	max=$(printf '%s\n' "${rs[@]}" | sort -g | tail -1)
	echo "| $down | $med / $max | ${sps[*]} | ${dps[*]} |"
done
