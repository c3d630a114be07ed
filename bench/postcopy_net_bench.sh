#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Postcopy page-request latency under background load, vanilla (requested
# pages at the head of the multifd queues) against the preempt channel,
# next to the bare 4 KiB request/response TCP round trip measured in the
# same run over the same path.
#
#   bench/postcopy_net_bench.sh [loopback|netns|all]
#
# A BENCH_MEM (default 1G) guest is migrated with --postcopy-after 0: it
# resumes on the destination with no page there, its vCPUs touch random
# pages as fast as they can while the whole RAM streams in the background
# on BENCH_CHANNELS (default 2) multifd channels.  The destination's report
# gives the request latency (fault read to page placed), the guest its slow
# accesses.  netns: two network namespaces joined by a veth pair with tbf at
# BENCH_RATE (default 10gbit; scripts/netns.sh; delay only with netem, which
# this host lacks), once with tbf's own FIFO and once with pfifo_fast's
# priority bands inside tbf (BENCH_QDISCS, default "fifo bands").
# BENCH_MODES (default "vanilla preempt+normal preempt"): MODE+SCHED runs
# both helpers with --postcopy-sched SCHED (preempt alone: the default,
# fifo), so the old scheduling is compared in the same run.
# BENCH_STAGES=1: where each preempt request's time went (VMIG_PC_TRACE,
# bench/pc_stages.py), as comments.  BENCH_SPIN (default 0): --postcopy-spin
# on both sides.  BENCH_MIGRATE_ARGS: more `vmig migrate` options, e.g.
# "--max-bandwidth 100".  Needs root for netns.  Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j2 all build/bench/tcp_rr
vmig=$PWD/build/out/vmig
rr=$PWD/build/bench/tcp_rr
what=${1:-all}
mem=${BENCH_MEM:-1G}
chans=${BENCH_CHANNELS:-2}
rate=${BENCH_RATE:-10gbit}
spin=${BENCH_SPIN:-0}		# --postcopy-spin on both sides (us)
modes=${BENCH_MODES:-vanilla preempt+normal preempt}
stages=${BENCH_STAGES:-0}	# 1: per-stage latency of preempt requests (VMIG_PC_TRACE)
ns=vmigbench
# shellcheck source=../scripts/lib/vmig.sh
. scripts/lib/vmig.sh
vmig_setup vmig-pcbench	# $VMIG_TMP, cleanup on exit, $AUTH: a token both sides hold
tmp=$VMIG_TMP
# shellcheck disable=SC2034  # run by vmig_cleanup (scripts/lib/vmig.sh)
VMIG_AT_EXIT='scripts/netns.sh down $ns'

# run_path NAME: SRC, DST (command prefixes) and ADDR set by the caller.
run_path() {
	local name=$1 port=4555 mode rtt
	$DST "$rr" server "$ADDR:$port" & vmig_track $!
	rtt=$($SRC "$rr" client "$ADDR:$port" 5000)
	for mode in $modes; do
		rm -f "$tmp"/*.sock
		local extra=""
		[ $mode = vanilla ] && extra="--no-preempt"
		# MODE+SCHED: --postcopy-sched SCHED on both sides (default fifo)
		case $mode in *+*) extra="$extra --postcopy-sched ${mode#*+}";; esac
		if [ "$stages" = 1 ] && [ $mode != vanilla ]; then
			export VMIG_PC_TRACE=$tmp/trace.$mode
			rm -f "$VMIG_PC_TRACE".*
		else
			unset VMIG_PC_TRACE
		fi
		port=$((port + 1))
		# The files waited on are emptied first: a job's own > truncates
		# only once the job runs, and the last run's lines would do.
		: >"$tmp/dg.out"
		$vmig guest --socket "$tmp/dst.sock" --mem "$mem" --incoming --pattern random \
			--dirty-rate 0 --run 1 >"$tmp/dg.out" 2>"$tmp/dg.err" & vmig_track $!
		must_wait_for "$tmp/dg.out" "guest: ready" 60
		: >"$tmp/ls.err"
		$DST "$vmig" listen --vmm "$tmp/dst.sock" --port "$ADDR:$port" $AUTH --json --no-progress --no-prefault \
			--postcopy-spin "$spin" ${extra/--no-preempt/} \
			>"$tmp/ls.json" 2>"$tmp/ls.err" & local lpid=$!
		vmig_track $lpid
		: >"$tmp/sg.out"
		$vmig guest --socket "$tmp/src.sock" --mem "$mem" --pattern idle \
			>"$tmp/sg.out" 2>"$tmp/sg.err" & vmig_track $!
		must_wait_for "$tmp/sg.out" "guest: ready" 60
		must_wait_for "$tmp/ls.err" "waiting for a source" 60
		$SRC "$vmig" migrate --vmm "$tmp/src.sock" --to "$ADDR:$port" $AUTH --postcopy-after 0 \
			--postcopy-spin "$spin" --multifd "$chans" $extra ${BENCH_MIGRATE_ARGS:-} --json --no-progress >"$tmp/m.json" 2>"$tmp/m.err" ||
			{ cat "$tmp/m.err" "$tmp/ls.err" "$tmp/dg.err" >&2; exit 1; }
		wait $lpid || { cat "$tmp/ls.err" >&2; exit 1; }
		wait
		python3 - "$name" "$mode" "$rtt" "$tmp/ls.json" "$tmp/m.json" "$tmp/dg.err" <<'PY'
import json, re, sys
name, mode, rtt, ls, m, dg = sys.argv[1:]
r, d, s = json.loads(rtt), json.load(open(ls)), json.load(open(m))
l = d["postcopy"]["latency_us"]
if d["postcopy"]["preempt"]:
    mode = f"preempt, {d['postcopy']['sched']} / {s['postcopy']['sched']}"
g = re.search(r"(\d+) slow page accesses[^:]*(?:: avg ([\d.]+) us)?", open(dg).read())
bg = d["bytes"]["normal"] / (d["postcopy"]["switch_ms"] / 1e3) / 2**20
print(f"| {name} | {mode} | {l['count']} | {l['avg']:.0f} | {l['p50']:.0f} | {l['p99']:.0f} "
      f"| {l['max']:.0f} | {r['avg']:.0f} / {r['p50']:.0f} / {r['p99']:.0f} "
      f"| {l['avg'] / r['avg']:.1f}x / {l['p99'] / r['p99']:.1f}x | {bg:.0f} "
      f"| {g.group(1)} slow, avg {g.group(2) or '-'} us |")
hist = " ".join(f"{1 << i}us:{c}" for i, c in enumerate(l["log2_hist"]) if c)
print(f"<!-- {name} {mode} log2 hist: {hist} -->", file=sys.stderr)
PY
		if [ -n "${VMIG_PC_TRACE:-}" ]; then
			python3 bench/pc_stages.py "$VMIG_PC_TRACE" "$name $mode" | sed 's/^/<!-- /; s/$/ -->/' >&2
		fi
	done
	unset VMIG_PC_TRACE
}

echo "| path | postcopy | requests | avg µs | p50 µs | p99 µs | max µs | bare 4 KiB TCP RTT avg / p50 / p99 µs | avg / p99 vs RTT | background MiB/s | guest vCPUs felt (>= 20 µs) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
if [ "$what" = loopback ] || [ "$what" = all ]; then
	SRC="" DST="" ADDR=127.0.0.1 run_path loopback
fi
if [ "$what" = netns ] || [ "$what" = all ]; then
	for q in ${BENCH_QDISCS:-fifo bands}; do
		info=$(NETNS_QDISC=$q scripts/netns.sh up $ns "$rate" 50us)
		echo "<!-- $info -->" >&2
		label="veth + tbf $rate"
		[ "$q" = bands ] && label="$label + pfifo_fast bands"
		SRC="ip netns exec $ns-src" DST="ip netns exec $ns-dst" ADDR=10.77.0.2 \
			run_path "$label"
	done
fi
