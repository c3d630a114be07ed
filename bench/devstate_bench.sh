#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Device state and free-page hints on loopback.
#
#   bench/devstate_bench.sh [downtime|free|all]
#
# downtime: an idle 64 MiB guest with BENCH_DEVICES (default "1 2 4") emulated devices of
#   BENCH_DEV_SIZE (default 100M) each, saved and loaded at BENCH_DEV_RATE
#   (default 200M, bytes/s; paced by sleeping per 256 KiB chunk, like a
#   device's DMA engine, so on this 2-core machine parallel devices overlap
#   as they would on real hardware); device state on the main channel
#   (in order, one device after another, as a single-channel VMM does)
#   versus spread over BENCH_CHANNELS (default "2 4 6 8 12") multifd
#   channels.  Downtime: median and min-max over BENCH_REPS (default 3) runs,
#   with the median run's parts.
# free: an idle BENCH_FREE_MEM (default 1G) guest, every page written, with
#   0, 50 and 75 % of it hinted free: total time and bytes on the wire.
# Prints markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j2 all
vmig=${VMIG:-build/out/vmig}
what=${1:-all}
reps=${BENCH_REPS:-3}
dsize=${BENCH_DEV_SIZE:-100M}
drate=${BENCH_DEV_RATE:-200M}
chans=${BENCH_CHANNELS:-2 4 6 8 12}
tmp=$(mktemp -d /tmp/vmig-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitfor() {
	for _ in $(seq 1200); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "bench: timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}

# migrate MEM "guest args" "dest guest args" "migrate args": the JSON report.
migrate() {
	local p dg
	p=$(port)
	rm -f "$tmp"/*
	$vmig guest --socket "$tmp/dst.sock" --mem "$1" --incoming --run 0 $3 >"$tmp/dg.out" 2>"$tmp/dg.err" &
	dg=$!
	pids+=($dg)
	$vmig guest --socket "$tmp/src.sock" --mem "$1" $2 >"$tmp/sg.out" 2>"$tmp/sg.err" &
	pids+=($!)
	waitfor "$tmp/dg.out" "guest: ready"
	$vmig listen --vmm "$tmp/dst.sock" --port "127.0.0.1:$p" --no-progress >"$tmp/ls.out" 2>"$tmp/ls.err" &
	pids+=($!)
	waitfor "$tmp/ls.err" "waiting for a source"
	waitfor "$tmp/sg.out" "guest: ready"
	sleep 0.3
	$vmig migrate --vmm "$tmp/src.sock" --to "127.0.0.1:$p" --json --no-progress $4
	wait "$dg" || { echo "bench: destination guest failed" >&2; cat "$tmp/dg.err" >&2; exit 1; }
}

summary() {	# reads JSON lines on stdin: "median (min-max)" of downtime + median run's parts
	python3 -c '
import json, sys
runs = sorted((json.loads(l) for l in sys.stdin if l.strip()), key=lambda d: d["downtime_ms"])
m = runs[len(runs) // 2]
p = m["downtime_parts_ms"]
print("%.0f (%.0f-%.0f) | %.0f / %.0f / %.0f / %.0f / %.0f" % (m["downtime_ms"], runs[0]["downtime_ms"],
      runs[-1]["downtime_ms"], p["final_pages"] + p["stop"], p["device_save"], p["transfer"], p["load"], p["resume"]))'
}

if [ "$what" = downtime ] || [ "$what" = all ]; then
	echo "### Downtime with emulated devices ($dsize each, save and load at $drate/s), idle 64 MiB guest, $reps runs"
	echo
	echo "| devices | device state on | downtime ms, median (min-max) | median run: final pages / device save / transfer / load / resume ms |"
	echo "| --- | --- | --- | --- |"
	for n in ${BENCH_DEVICES:-1 2 4}; do
		devs=""
		for i in $(seq 1 "$n"); do
			devs+=" --device name=fn$i,size=$dsize,save-rate=$drate,load-rate=$drate"
		done
		for c in main $chans; do
			if [ "$c" = main ]; then
				args="--multifd 2 --device-state-channels main"
				label="main channel"
			else
				args="--multifd $c"
				label="$c multifd channels"
			fi
			line=$(for r in $(seq "$reps"); do
				migrate 64M "--pattern idle $devs" "$devs" "$args"
			done | summary)
			echo "| $n | $label | ${line% |*} | ${line#* | } |"
		done
	done
	echo
fi

if [ "$what" = free ] || [ "$what" = all ]; then
	mem=${BENCH_FREE_MEM:-1G}
	echo "### Free-page hints: idle $mem guest, 2 channels, $reps runs"
	echo
	echo "| hinted free | total time s, median (min-max) | page data sent MiB | wire MiB | skipped as free MiB |"
	echo "| --- | --- | --- | --- | --- |"
	for f in 0 50 75; do
		for r in $(seq "$reps"); do
			migrate "$mem" "--pattern idle --free $f" "" "--multifd 2"
		done | python3 -c '
import json, sys
runs = sorted((json.loads(l) for l in sys.stdin if l.strip()), key=lambda d: d["total_ms"])
m = runs[len(runs) // 2]
M = 1 << 20
print("| %s %% | %.2f (%.2f-%.2f) | %.0f | %.0f | %.0f |" % (sys.argv[1], m["total_ms"] / 1e3,
      runs[0]["total_ms"] / 1e3, runs[-1]["total_ms"] / 1e3, m["bytes"]["normal"] / M,
      m["bytes"]["wire"] / M, m["free_bytes"] / M))' "$f"
	done
	echo
fi
