#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Precopy throughput against iperf3 on loopback, and downtime vs dirty rate.
#
#   bench/migrate_bench.sh [throughput|dirty|all]
#
# throughput: idle guests of BENCH_SIZES (default "1G 4G"), every page
#   written (non-zero), migrated with BENCH_CHANNELS (default "1 2 4")
#   multifd channels; next to each, iperf3 over loopback with as many
#   parallel streams, measured in the same run.  Migration throughput is
#   page data / (total time - setup).
# dirty: a 1 GiB guest dirtying random pages at BENCH_RATES MiB/s (default
#   "0 50 100 200 400", 0 = idle), 2 channels: total time, downtime, rounds.
# Prints markdown tables.  Needs iperf3 (scripts/deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j2 all
vmig=${VMIG:-build/out/vmig}
what=${1:-all}
# shellcheck source=../scripts/lib/vmig.sh
. scripts/lib/vmig.sh
vmig_setup vmig-bench	# $VMIG_TMP, cleanup on exit, $AUTH: a token both sides hold
tmp=$VMIG_TMP

# migrate MEM CHANNELS "guest args": prints the JSON report.
migrate() {
	local p
	p=$(free_port)
	find "$tmp" -mindepth 1 ! -name token -delete	# (the token stays)
	bench_guests "$vmig" "$1" "$3" ""
	bench_listen $vmig listen --vmm "$tmp/dst.sock" --port "127.0.0.1:$p" $AUTH --no-progress
	sleep 0.3
	$vmig migrate --vmm "$tmp/src.sock" --to "127.0.0.1:$p" $AUTH --multifd "$2" --json --no-progress
	wait "$BENCH_DG" || { echo "bench: destination guest failed" >&2; cat "$tmp/dg.err" >&2; exit 1; }
}

iperf() {	# STREAMS -> Gbit/s
	local p
	p=$(free_port)
	iperf3 -s -1 -p "$p" >/dev/null 2>&1 &
	vmig_track $!
	sleep 0.3
	iperf3 -c 127.0.0.1 -p "$p" -P "$1" -t 3 -J | python3 -c \
		'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'
}

js() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

echo "# vmig precopy benchmark, $(date -u +%F), $(nproc) CPUs, kernel $(uname -r)"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$what" = all ] || [ "$what" = throughput ]; then
	echo
	echo "| guest | channels | vmig Gbit/s | iperf3 Gbit/s (same streams) | vmig / iperf3 | total s | downtime ms |"
	echo "| --- | --- | --- | --- | --- | --- | --- |"
	for size in ${BENCH_SIZES:-1G 4G}; do
		for n in ${BENCH_CHANNELS:-1 2 4}; do
			ip=$(iperf "$n")
			j=$(migrate "$size" "$n" "--pattern idle")
			g=$(js "$j" '"%.2f" % (d["throughput_bps"] * 8 / 1e9)')
			echo "| $size idle | $n | $g | $ip | $(js "$j" "'%.0f %%' % (100 * $g / $ip)") |" \
				"$(js "$j" '"%.2f" % (d["total_ms"] / 1e3)') | $(js "$j" '"%.1f" % d["downtime_ms"]') |"
		done
	done
fi
if [ "$what" = all ] || [ "$what" = dirty ]; then
	echo
	echo "| guest | dirty MiB/s set (measured at switchover) | total s | downtime ms | dirty rounds | stalled | sent MiB |"
	echo "| --- | --- | --- | --- | --- | --- | --- |"
	for rate in ${BENCH_RATES:-0 50 100 200 400}; do
		if [ "$rate" = 0 ]; then ga="--pattern idle"; else ga="--pattern random --dirty-rate $rate"; fi
		j=$(migrate 1G 2 "$ga")
		echo "| 1G random | $rate ($(js "$j" '"%.0f" % (d["dirty_rate_bps"] / 2**20)')) | $(js "$j" '"%.2f" % (d["total_ms"] / 1e3)') |" \
			"$(js "$j" '"%.1f" % d["downtime_ms"]') | $(js "$j" 'd["rounds"]') |" \
			"$(js "$j" '"yes" if d["stalled"] else "no"') | $(js "$j" 'd["bytes"]["normal"] >> 20') |"
	done
fi
