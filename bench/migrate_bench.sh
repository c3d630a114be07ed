#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Precopy throughput against iperf3 on loopback, and downtime vs dirty rate.
#
#   bench/migrate_bench.sh [throughput|dirty|all]
#
# throughput: idle guests of BENCH_SIZES (default "1G 4G"), every page
#   written (non-zero), migrated with BENCH_CHANNELS (default "1 2 4")
#   multifd channels.  First, per size, the machine's limits in the same run
#   (build/out/bench/precopy_limits: memory write rate and loopback TCP into
#   destination memory, as the destination has it).  Migration throughput is
#   page data / (total time - setup), printed as a share of the lower limit:
#   TCP with as many streams into prefaulted memory, or the write rate into
#   it (into fresh memory with BENCH_LISTEN_ARGS=--no-prefault); with it the
#   helpers' CPU seconds (their reports' cpu_s, not the guests') per GiB of
#   page data (the destination's with the part of it that allocated guest RAM
#   before the source came, prefault_cpu_s), and iperf3 with as many parallel streams.  Each channel count
#   runs twice, interleaved: guest RAM in memfds (4 KiB pages here when
#   shmem_enabled is never), and `vmig guest --mem-path` on a tmpfs mounted
#   huge=always (2 MiB pages, as QEMU's THP-backed RAM; needs root, else
#   those rows say why not), measured against the limits into a prefaulted
#   file on that tmpfs.
# dirty: a 1 GiB guest dirtying random pages at BENCH_RATES MiB/s (default
#   "0 50 100 200 400", 0 = idle), 2 channels: total time, downtime, rounds.
# Prints markdown tables.  Needs iperf3 (scripts/deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j2 all build/out/bench/precopy_limits
vmig=${VMIG:-build/out/vmig}
what=${1:-all}
# shellcheck source=../scripts/lib/vmig.sh
. scripts/lib/vmig.sh
vmig_setup vmig-bench	# $VMIG_TMP, cleanup on exit, $AUTH: a token both sides hold
tmp=$VMIG_TMP

# migrate MEM CHANNELS "guest args" ["destination guest args"]: prints the JSON report.
migrate() {
	local p
	p=$(free_port)
	find "$tmp" -mindepth 1 -maxdepth 1 ! -name token ! -name huge -exec rm -rf {} +	# (the token and the tmpfs stay)
	bench_guests "$vmig" "$1" "$3" "${4:-}"
	bench_listen $vmig listen --vmm "$tmp/dst.sock" --port "127.0.0.1:$p" $AUTH --no-progress \
		--json ${BENCH_LISTEN_ARGS:-}
	sleep 0.3
	$vmig migrate --vmm "$tmp/src.sock" --to "127.0.0.1:$p" $AUTH --multifd "$2" --json --no-progress
	wait "$BENCH_DG" || { echo "bench: destination guest failed" >&2; cat "$tmp/dg.err" >&2; exit 1; }
	wait "$BENCH_LS" || { echo "bench: vmig listen failed" >&2; cat "$tmp/ls.err" >&2; exit 1; }
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
limit() { awk -F' *[|] *' -v k="$1" '$2 == k { print $5 }' <<<"$lim"; }	# KEY -> Gbit/s
cpu_gib() { js "$1" '"%.2f" % (d["cpu_s"] / (d["bytes"]["normal"] / 2**30))'; }	# JSON -> CPU-s/GiB
# listener JSON -> CPU-s/GiB (of it, allocating guest RAM before the source came)
dst_gib() { js "$1" '"%.2f (%.2f)" % tuple(x / (d["bytes"]["normal"] / 2**30) for x in (d["cpu_s"], d["prefault_cpu_s"]))'; }

echo "# vmig precopy benchmark, $(date -u +%F), $(nproc) CPUs, kernel $(uname -r)"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$what" = all ] || [ "$what" = throughput ]; then
	dst=prefaulted
	[[ " ${BENCH_LISTEN_ARGS:-} " != *" --no-prefault "* ]] || dst=fresh
	huge=$tmp/huge
	if [ $dst = fresh ]; then
		huge=
		echo "# no --mem-path rows: its limits are for prefaulted RAM"
	elif ! huge_tmpfs "$huge" 50%; then
		huge=
		echo "# no --mem-path rows: $HUGE_WHY"
	fi
	for size in ${BENCH_SIZES:-1G 4G}; do
		echo
		lim=$(build/out/bench/precopy_limits -s "$size" -n "${BENCH_CHANNELS:-1 2 4}" \
			${huge:+-H "$huge"})
		echo "$lim"
		echo
		echo "| guest, RAM | channels | vmig Gbit/s | limit Gbit/s (into: TCP, memory) | vmig / limit |" \
			"src CPU-s/GiB | dst CPU-s/GiB (prefault) | iperf3 Gbit/s | total s | downtime ms |"
		echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
		for n in ${BENCH_CHANNELS:-1 2 4}; do
			ip=$(iperf "$n")
			for ram in memfd ${huge:+huge}; do
				if [ "$ram" = memfd ]; then
					ga="--pattern idle" d=$dst
				else
					ga="--pattern idle --mem-path $huge" d=file
				fi
				j=$(migrate "$size" "$n" "$ga" "${ga#--pattern idle}")
				l=$(tail -n 1 "$tmp/ls.out")
				g=$(js "$j" '"%.2f" % (d["throughput_bps"] * 8 / 1e9)')
				tcp=$(limit "tcp$n-$d") mem=$(limit "mem-$d")
				low=$(python3 -c "print(min($tcp, $mem))")
				echo "| $size idle, $ram | $n | $g | $low ($d: $tcp, $mem) |" \
					"$(python3 -c "print('%.0f %%' % (100 * $g / $low))") |" \
					"$(cpu_gib "$j") | $(dst_gib "$l") | $ip |" \
					"$(js "$j" '"%.2f" % (d["total_ms"] / 1e3)') | $(js "$j" '"%.1f" % d["downtime_ms"]') |"
			done
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
